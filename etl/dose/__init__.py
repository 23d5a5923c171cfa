"""Dose computation, numpy/scipy only.

Dose grid, DVH engine, dose metrics and radiobiology (EQD2, gEUD).
"""

__all__: list[str] = []
