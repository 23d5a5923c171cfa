"""Loading RT datasets into OMOP and reading them back (reports, export)."""

__all__: list[str] = []
