"""The OpenAPI schema is the contract: the served one is docs/openapi.json, reviewed as a diff
(`make openapi` rewrites it), and every operation in it is complete (issue 14)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
from django.core.management import call_command

from tests.support import live

COMMITTED = live.ROOT / "docs" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in schema["paths"].items()
        if path.startswith("/api/v2/")
        for method in METHODS
        if method in item
    ]


def test_the_served_schema_is_the_committed_contract(server: live.Server) -> None:
    served = httpx.get(f"{server.url}/api/schema/", params={"format": "json"}, timeout=30).json()
    committed = json.loads(COMMITTED.read_text())
    changed = sorted(
        f"{method.upper()} {path}"
        for path in set(served["paths"]) | set(committed["paths"])
        for method in METHODS
        if served["paths"].get(path, {}).get(method) != committed["paths"].get(path, {}).get(method)
    )
    assert served == committed, (
        f"The served schema differs from docs/openapi.json ({changed or 'components'}): "
        "run `make openapi` and review the diff."
    )


def test_the_schema_builds_without_a_warning(tmp_path: Path) -> None:
    """drf-spectacular warns on two serializers sharing a component name (the two `Output`s once
    described GET /studies/{uid} with the Organization schema) and on unknown authentication."""
    call_command(
        "spectacular", format="openapi-json", validate=True, fail_on_warn=True, file=str(tmp_path / "s.json"),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip


def test_every_operation_is_secured_and_answers_errors_with_problems() -> None:
    schema = json.loads(COMMITTED.read_text())
    for path, method, operation in _operations(schema):
        where = f"{method.upper()} {path}"
        assert operation.get("security") == [{"bearer": []}], where
        responses = operation["responses"]
        assert {"400", "401", "429"} <= set(responses), where
        # Errors are problem+json, but OperationOutcomes under the FHIR API (API.md §8).
        error_type = "application/fhir+json" if path.startswith("/api/v2/fhir/") else "application/problem+json"
        for status, response in responses.items():
            if status[0] in "45":
                assert any(t.startswith(error_type) for t in response["content"]), (where, status)


def test_the_studies_operations_describe_what_they_answer() -> None:
    schema = json.loads(COMMITTED.read_text())
    paths, components = schema["paths"], schema["components"]["schemas"]
    listing = paths["/api/v2/studies"]["get"]
    assert {"cursor", "limit", "patient_id", "modality"} <= {p["name"] for p in listing["parameters"]}
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(components[page]["properties"]) == {"next", "previous", "results"}
    read = paths["/api/v2/studies/{study_uid}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert read["schema"]["$ref"].endswith("/StudyOutput")
    delete = paths["/api/v2/studies/{study_uid}"]["delete"]["responses"]
    assert "204" not in delete and delete["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/StudyDeletedOutput"
    )
    assert "403" in delete
    chunk = paths["/api/v2/dicom/stream"]["post"]["responses"]["202"]["content"]["application/json"]["schema"]
    assert [variant["$ref"].rsplit("/", 1)[1] for variant in chunk["oneOf"]] == ["UploadAccepted", "ChunkAccepted"]
    for name in ("UploadAccepted", "ChunkAccepted"):  # closed, so a reply matches exactly one
        assert components[name]["additionalProperties"] is False and components[name]["required"]
