"""Analytic test geometry shared by the dose-engine tests (no engine code used)."""

from __future__ import annotations

import numpy as np

from etl.dose.grid import DoseGrid


def linear_grid(
    spacing_mm: float,
    extent_mm: float = 80.0,
    *,
    base_gy: float = 16.0,
    gradient: tuple[float, float, float] = (0.0, 0.0, 0.0),
    row_dir: tuple[float, float, float] = (1.0, 0.0, 0.0),
    col_dir: tuple[float, float, float] = (0.0, 1.0, 0.0),
) -> DoseGrid:
    """Cubic grid centred on the origin holding D(p) = base + gradient . p (mm)."""
    r = np.asarray(row_dir, float)
    c = np.asarray(col_dir, float)
    s = np.cross(r, c)
    n = round(extent_mm / spacing_mm)
    half = (n - 1) * spacing_mm / 2
    origin = -half * (r + c + s)
    idx = np.arange(n) * spacing_mm
    kk, jj, ii = np.meshgrid(idx, idx, idx, indexing="ij")
    pts = origin + ii[..., None] * r + jj[..., None] * c + kk[..., None] * s
    dose = base_gy + pts @ np.asarray(gradient, float)
    return DoseGrid(dose, origin, r, c, s, (spacing_mm,) * 3, "1.2.3", "1.2.3.4")


def circle(radius: float, z: float, n: int = 256, centre=(0.0, 0.0)) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack(
        [centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t), np.full(n, z)]
    )


def square(half: float, z: float, centre=(0.0, 0.0)) -> np.ndarray:
    cx, cy = centre
    return np.array(
        [[cx - half, cy - half, z], [cx + half, cy - half, z],
         [cx + half, cy + half, z], [cx - half, cy + half, z]]
    )  # fmt: skip


def cube_contours(
    half: float, spacing: float, centre=(0.0, 0.0, 0.0)
) -> list[np.ndarray]:
    """Square contours on centred planes; with half end caps the stack is the cube."""
    zs = np.arange(-half + spacing / 2, half, spacing) + centre[2]
    return [square(half, z, centre[:2]) for z in zs]


def cylinder_contours(
    radius: float, half_len: float, spacing: float
) -> list[np.ndarray]:
    zs = np.arange(-half_len + spacing / 2, half_len, spacing)
    return [circle(radius, z) for z in zs]
