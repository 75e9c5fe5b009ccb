"""The DICOM standard as PrizMed reads it: UIDs, Part-10 files, STOW-RS framing, instance headers.

No Django here (import-linter holds that): every module works on bytes and is unit-tested so.
"""
