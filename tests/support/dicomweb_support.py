"""Helpers for the DICOMweb tests: the standard client (dicomweb-client, unmodified, only the
Bearer header set on its session), pydicom's own test files, and what pydicom reads of them."""

from __future__ import annotations

import io
import warnings

import pydicom
from dicomweb_client import DICOMwebClient
from dicomweb_client.session_utils import create_session
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from tests.support.live import Server
from tests.support.world import Party

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary={boundary}'
# pydicom test files the index accepts today (a Patient ID each), of every kind: native and
# encapsulated (JPEG baseline, extended, 2000, RLE), big endian, implicit VR, multi-frame,
# colour, palette, overlays (bulk data), a waveform (bulk data in a sequence), no pixels.
VARIETY = (
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "examples_ybr_color.dcm",  # JPEG baseline, 30 frames, YBR
    "rtdose.dcm",  # implicit VR, native, 15 frames of 32 bits
    "SC_rgb_rle_2frame.dcm",
    "examples_palette.dcm",
    "examples_overlay.dcm",
    "waveform_ecg.dcm",
    "rtplan.dcm",
    "693_J2KI.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
)
JPEG_MULTIFRAME = "examples_ybr_color.dcm"
NATIVE_MULTIFRAME = "rtdose.dcm"


def dicomweb_client(server: Server, party: Party) -> DICOMwebClient:
    """dicomweb-client as a user would make it: a session with the Bearer header, nothing else."""
    session = create_session()
    session.headers.update(party.headers)
    return DICOMwebClient(url=f"{server.url}/api/v2/dicomweb", session=session)


def read_testfile(name: str) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(str(get_testdata_file(name)))


def encoded(ds: Dataset) -> bytes:
    """The bytes dicomweb-client's store_instances sends for ``ds`` (it calls dcmwrite so)."""
    with io.BytesIO() as out:
        pydicom.dcmwrite(out, ds)
        return out.getvalue()


def as_stored(data: bytes) -> bytes:
    """What PrizMed stores and serves: the instance with its preamble zeroed (CVE-2019-11687)."""
    return bytes(128) + data[128:]


def frames_of(ds: Dataset) -> list[bytes]:
    """Each frame's bytes as pydicom finds them: the encapsulated frames, or native slices."""
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        return list(generate_frames(ds.PixelData, number_of_frames=count))
    size = len(ds.PixelData) // count
    return [ds.PixelData[i * size : (i + 1) * size] for i in range(count)]


def same_values(read: Dataset, served: Dataset, *, skip_pixels: bool = True) -> list[str]:
    """Elements whose values differ between pydicom's reading of a file and what was served
    (file meta aside; elements served as bulk data are compared by the caller)."""
    differences = []
    for elem in read:
        if elem.tag.group == 0x0002 or (skip_pixels and elem.tag >= 0x7FE00000):
            continue
        if elem.tag not in served:
            differences.append(f"{elem.tag} missing")
            continue
        other = served[elem.tag]
        if elem.VR == "SQ":
            if len(elem.value) != len(other.value):
                differences.append(f"{elem.tag} has {len(other.value)} items, not {len(elem.value)}")
            else:
                for a, b in zip(elem.value, other.value, strict=True):
                    differences += same_values(a, b)
            continue
        if other.value is None or other.value == b"":
            continue  # a bulk data value, fetched and compared on its own
        if elem.value != other.value and str(elem.value) != str(other.value):
            differences.append(f"{elem.tag} {elem.VR}: {elem.value!r} served as {other.value!r}")
    return differences


def read_bytes(data: bytes) -> Dataset:
    """pydicom's reading of an instance's bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data))
