"""Bodies framed like STOW-RS (PS3.18 §10.5): what clients send to `POST /dicom/stream`."""

from __future__ import annotations

from dicom.multipart import MultipartError, check_boundary


def build_multipart(parts: list[bytes], boundary: str) -> bytes:
    """Frame ``parts`` as a STOW-RS style body, each part ``Content-Type: application/dicom``
    (PS3.18 §10.5, RFC 2046 §5.1.1: CRLF line breaks, close delimiter at the end)."""
    check_boundary(boundary)
    dash = b"--" + boundary.encode("ascii")
    chunks: list[bytes] = []
    for part in parts:
        # The delimiter is CRLF + "--boundary": a part holding it would be cut in two.
        if b"\r\n" + dash in part:
            raise MultipartError("a part contains the boundary delimiter")
        chunks += [dash, b"\r\nContent-Type: application/dicom\r\n\r\n", part, b"\r\n"]
    chunks += [dash, b"--\r\n"]
    return b"".join(chunks)
