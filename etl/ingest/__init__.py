"""The import pipeline.

File collection, quality checks, quarantine, the run and the consent triggers.
"""

__all__: list[str] = []
