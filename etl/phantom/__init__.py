"""Analytic phantoms: geometry, specification, DVH truth and the DICOM writer."""

__all__: list[str] = []
