"""The rtcohort command line, settings and wiring (the composition root)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
