"""DICOM-RT reading, DVHs and dose metrics, pseudonymisation, loading into OMOP."""

__all__: list[str] = []
