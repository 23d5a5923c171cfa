"""DICOM-RT objects: reading, defined terms and the header index.

The one RTDOSE -> RTPLAN -> RTSTRUCT -> CT resolver lives in ``index``.
"""

__all__: list[str] = []
