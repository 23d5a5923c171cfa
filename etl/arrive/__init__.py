"""How DICOM arrives: the C-STORE receiver and the inbox."""

__all__: list[str] = []
