"""dicomweb.rendering: the table-lookup grayscale path gives the bytes of mapping every pixel."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from dicomweb.rendering import Window, _grayscale, _grayscale_each

RNG = np.random.default_rng(11)
WINDOWS = [None, Window(40.0, 400.0), Window(40.0, 400.0, "linear_exact"), Window(-600.0, 1500.0, "sigmoid"),
           Window(3.0, 0.0)]  # fmt: skip


def _header(**values: object) -> Dataset:
    header = Dataset()
    for name, value in values.items():
        setattr(header, name, value)
    return header


def _modality_lut() -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.ModalityLUTType = "HU"
    # Not monotonic: the frame's own range must come from the values present.
    item.LUTData = [(v * 7919) % 3000 for v in range(4096)]
    header = _header(PixelRepresentation=0, BitsStored=12)
    header.ModalityLUTSequence = [item]
    return header


FRAMES: dict[str, tuple[np.ndarray, Dataset]] = {
    "uint8": (RNG.integers(0, 256, (64, 80), dtype=np.uint8), _header()),
    "uint16 rescaled": (
        RNG.integers(0, 4096, (64, 80), dtype=np.uint16),
        _header(RescaleSlope=1.0, RescaleIntercept=-1024.0),
    ),
    "int16 negative slope": (
        RNG.integers(-2000, 3000, (64, 80), dtype=np.int16),
        _header(RescaleSlope=-0.5, RescaleIntercept=10.0),
    ),
    "int16 full range": (np.array([[-32768, 32767], [0, -1]], dtype=np.int16), _header()),
    "constant": (np.full((8, 8), 7, dtype=np.uint16), _header()),
    "modality LUT": (RNG.integers(0, 4096, (64, 80), dtype=np.uint16), _modality_lut()),
}


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("name", FRAMES)
def test_it_renders_the_same_bytes_as_mapping_every_pixel(name: str, window: Window | None, photometric: str) -> None:
    pixels, header = FRAMES[name]
    ours = _grayscale(pixels, header, window, photometric)
    assert ours.dtype == np.uint8 and ours.shape == pixels.shape
    assert np.array_equal(ours, _grayscale_each(pixels, header, window, photometric))


def test_it_uses_the_range_of_the_values_present_under_a_modality_lut() -> None:
    pixels = np.array([[0, 2]], dtype=np.uint16)  # 1 (LUT 1919) lies between, absent
    header = _modality_lut()
    ours = _grayscale(pixels, header, None, "MONOCHROME2")
    assert ours.tolist() == [[0, 255]]  # LUT 0 and 838, not 0 to 1919, stretched to 0-255
