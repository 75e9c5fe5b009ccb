"""The studies API over real HTTP on real-world values (issue 12): a Person Name found by any of its
component groups, an accession number longer than SH allows found by its whole value."""

from __future__ import annotations

import httpx

from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.indexing import http_upload, wait_indexed
from tests.support.world import World
from tests.test_index_conformance import person_name_element


def test_it_finds_a_study_by_any_person_name_group_and_by_a_long_accession_number(
    api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    name = person_name_element("\\ISO 2022 IR 87", "Yamada^Hanako=山田^花子=やまだ^はなこ")
    files = [
        make_instance(patient_id="P-JP", accession="RIS-2020-0000001-A", encoded=name),
        make_instance(patient_id="P-X", accession="RIS-2020-0000001-B"),
    ]
    upload = wait_indexed(http_upload(api, world.bob, files))
    assert (upload.instances_indexed, upload.instances_rejected) == (2, 0)

    def found(**params: str) -> list[str]:
        response = api.get("/studies", params=params, headers=world.bob.headers)
        assert response.status_code == 200, response.text
        return [study["patient"]["patient_id"] for study in response.json()["results"]]

    for prefix in ("Yamada", "山田", "やまだ^は"):
        assert found(patient_name=prefix) == ["P-JP"]
    assert found(accession_number="RIS-2020-0000001-A") == ["P-JP"]
    assert found(accession_number="RIS-2020-0000001-B") == ["P-X"]
    assert found(accession_number="RIS-2020-0000001") == []
    [study] = api.get("/studies", params={"patient_id": "P-JP"}, headers=world.bob.headers).json()["results"]
    assert study["patient"]["name"] == "Yamada^Hanako=山田^花子=やまだ^はなこ"
    assert study["accession_number"] == "RIS-2020-0000001-A"
