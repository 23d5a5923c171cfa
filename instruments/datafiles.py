"""Where the instruments' data files live."""

from __future__ import annotations

from importlib import resources

__all__ = ["read_data_text"]


def read_data_text(name: str) -> str:
    """Return the text of a shipped data file.

    Files of the instruments themselves live in ``instruments/data``; the CTCAE
    catalogues and the QLQ-C30 structure are shared with the vocabulary seed and live
    once, in ``omop/vocab/data``.
    """
    own = resources.files("instruments").joinpath("data").joinpath(name)
    if own.is_file():
        return own.read_text("utf-8")
    return (
        resources.files("omop.vocab").joinpath("data").joinpath(name).read_text("utf-8")
    )
