"""CTCAE grading, EORTC QLQ-C30 scoring and their FHIR R4 forms."""

__all__: list[str] = []
