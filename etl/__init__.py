"""Reading DICOM-RT, computing DVHs and dose metrics, pseudonymising and loading into OMOP."""

__all__: list[str] = []
