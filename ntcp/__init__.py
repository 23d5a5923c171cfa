"""NTCP models: LKB, logistic and time-to-event, with validation."""

__all__: list[str] = []
