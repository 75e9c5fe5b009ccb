"""The client's File Meta reader agrees with the server's Part-10 check on every pydicom test file."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from prizmed_client.part10 import NotPart10, read_file_meta, read_meta

from dicom.part10 import NotDicom
from tests.support.client import files_under
from tests.support.dicomfactory import make_instance
from tests.support.part10 import meta_from_prefix

TEST_FILES = files_under(Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_it_agrees_with_the_server_on_what_is_part10(path: Path) -> None:
    prefix = path.read_bytes()[: 132 + 64 * 1024 + 16]
    try:
        server = meta_from_prefix(prefix, at_eof=True)
    except NotDicom:
        server = None
    try:
        client = read_file_meta(path)
    except NotPart10:
        client = None
    assert (client is None) == (server is None)
    if client is not None and server is not None:
        assert client.sop_instance_uid == server.media_storage_sop_instance_uid
        assert client.transfer_syntax_uid == server.transfer_syntax_uid


def test_it_reads_the_sop_instance_uid_of_an_instance() -> None:
    data = make_instance(sop_uid="1.2.3.4.5")
    assert read_meta(data).sop_instance_uid == "1.2.3.4.5"
    with pytest.raises(NotPart10):
        read_meta(data[:140])  # cut inside the meta group
    assert read_meta(b"GIF89a" + data[6:]).sop_instance_uid == "1.2.3.4.5"  # the preamble may hold anything
    with pytest.raises(NotPart10):
        read_meta(data[:128] + b"DICX" + data[132:])
