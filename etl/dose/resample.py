"""Trilinear resampling of aligned dose grids onto a common lattice (pure numpy).

The plans of a course are summed on one grid (:mod:`etl.dose.course`): the *union*
of their grids on the lattice of the first (its spacing and voxel positions, extended
by whole voxels to cover every grid's voxel centres). Each grid is resampled there by
trilinear interpolation, done axis by axis (trilinear interpolation is the product of
three linear ones, so the result is exact trilinear and needs memory of one grid,
not of one coordinate triple per voxel).

A point within half a voxel beyond a grid's outer voxel centres takes the dose of the
outer voxels (as :meth:`etl.dose.grid.DoseGrid.interpolate`); a point farther out
gets no dose from that grid (0 Gy): a dose grid covers where its plan deposits dose.

Grids must be aligned: the rows and columns of each grid run along those of the
first (``ImageOrientationPatient`` equal within :data:`ALIGNMENT_TOLERANCE`), and the
frames along the same axis (either direction). Rotated grids are refused
(:func:`check_aligned`); they would need a general rotation, which planning systems
of one course do not produce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from etl.dose.grid import DoseGrid
from etl.errors import CourseDoseError

__all__ = ["ALIGNMENT_TOLERANCE", "check_aligned", "resample_to", "union_grid"]

#: Largest accepted difference between direction cosines of aligned grids.
ALIGNMENT_TOLERANCE = 1e-3
_EDGE = 1e-6  # voxel-index tolerance when rounding the union box to the lattice

FloatArray = NDArray[np.float64]


def check_aligned(first: DoseGrid, other: DoseGrid, where: str = "dose grid") -> None:
    """Raise :class:`~etl.errors.CourseDoseError` unless ``other`` is aligned.

    Parameters
    ----------
    first, other
        The reference grid and the grid to check.
    where
        Names ``other`` in the message (its file).

    Examples
    --------
    >>> e = np.eye(3)
    >>> g = DoseGrid(np.zeros((2, 2, 2)), np.zeros(3), e[0], e[1], e[2], (1, 1, 1))
    >>> check_aligned(g, replace(g, slice_dir=-e[2]))  # frames reversed: aligned
    """
    tol = ALIGNMENT_TOLERANCE
    rows = float(np.max(np.abs(np.asarray(other.row_dir) - first.row_dir)))
    cols = float(np.max(np.abs(np.asarray(other.col_dir) - first.col_dir)))
    slices = abs(abs(float(np.dot(other.slice_dir, first.slice_dir))) - 1.0)
    if rows > tol or cols > tol or slices > tol:
        raise CourseDoseError(
            f"{where}: ImageOrientationPatient "
            f"{[*np.round(other.row_dir, 4), *np.round(other.col_dir, 4)]} differs "
            f"from that of the first dose "
            f"{[*np.round(first.row_dir, 4), *np.round(first.col_dir, 4)]}; "
            "rotated dose grids are not summed"
        )


def _corners(grid: DoseGrid) -> FloatArray:
    """Patient coordinates (8, 3) of the outer voxel centres of a grid."""
    k, j, i = (np.asarray(grid.shape) - 1).tolist()
    idx = np.array(
        [[a, b, c] for a in (0, i) for b in (0, j) for c in (0, k)], dtype=np.float64
    )
    return grid.to_patient_mm(idx * np.asarray(grid.spacing_mm))


def union_grid(grids: Sequence[DoseGrid]) -> DoseGrid:
    """Return an empty (0 Gy) grid on the first grid's lattice covering all of them.

    Parameters
    ----------
    grids
        Aligned grids (:func:`check_aligned`), the first being the reference.

    Returns
    -------
    DoseGrid
        Same directions, spacing and references as ``grids[0]``; its voxel centres
        cover every voxel centre of every grid.

    Examples
    --------
    >>> e = np.eye(3)
    >>> a = DoseGrid(np.zeros((2, 2, 2)), np.zeros(3), e[0], e[1], e[2], (2, 2, 2))
    >>> b = replace(a, origin_mm=np.array([3.0, 0, 0]))
    >>> u = union_grid([a, b])
    >>> u.shape, u.origin_mm.tolist()
    ((2, 2, 4), [0.0, 0.0, 0.0])
    """
    first = grids[0]
    spacing = np.asarray(first.spacing_mm)
    points = np.vstack([_corners(g) for g in grids])
    idx = first.to_grid_mm(points) / spacing
    lo = np.floor(idx.min(axis=0) + _EDGE)
    hi = np.ceil(idx.max(axis=0) - _EDGE)
    ni, nj, nk = (hi - lo + 1).astype(int).tolist()
    origin = first.to_patient_mm((lo * spacing)[None, :])[0]
    return replace(first, dose_gy=np.zeros((nk, nj, ni)), origin_mm=origin)


def _axis_weights(
    u: FloatArray, n: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray, FloatArray]:
    """Neighbour indices and weights of positions ``u`` (in voxels) along one axis."""
    inside = (u >= -0.5) & (u <= n - 0.5)  # noqa: PLR2004
    c = np.clip(u, 0.0, n - 1.0)
    lo = np.clip(np.floor(c).astype(np.int64), 0, max(n - 2, 0))
    hi = np.minimum(lo + 1, n - 1)
    f = c - lo
    return lo, hi, np.where(inside, 1.0 - f, 0.0), np.where(inside, f, 0.0)


def resample_to(grid: DoseGrid, target: DoseGrid) -> FloatArray:
    """Dose of ``grid`` at the voxel centres of ``target``, trilinear, in Gy.

    Parameters
    ----------
    grid
        The dose to resample.
    target
        The grid whose voxel centres are wanted, aligned with ``grid``
        (:func:`check_aligned`).

    Returns
    -------
    ndarray, shape ``target.shape``
        0 Gy where a voxel centre lies more than half a voxel outside ``grid``.

    Examples
    --------
    >>> e = np.eye(3)
    >>> g = DoseGrid(np.arange(4.0).reshape(1, 1, 4), np.zeros(3), e[0], e[1],
    ...              e[2], (1, 1, 1))
    >>> t = replace(g, dose_gy=np.zeros((1, 1, 3)), origin_mm=np.array([0.5, 0, 0]))
    >>> resample_to(g, t).ravel().tolist()
    [0.5, 1.5, 2.5]
    """
    check_aligned(target, grid)
    dose = np.asarray(grid.dose_gy, dtype=np.float64)
    offset = np.asarray(target.origin_mm) - grid.origin_mm
    source_dirs = (grid.row_dir, grid.col_dir, grid.slice_dir)
    target_dirs = (target.row_dir, target.col_dir, target.slice_dir)
    n_target = target.shape[::-1]  # (ni, nj, nk)
    for axis_ijk in range(3):
        axis = 2 - axis_ijk  # array axis of i, j, k
        sign = float(np.sign(np.dot(target_dirs[axis_ijk], source_dirs[axis_ijk])))
        start = float(np.dot(offset, source_dirs[axis_ijk]))
        steps = np.arange(n_target[axis_ijk]) * target.spacing_mm[axis_ijk] * sign
        u = np.asarray((start + steps) / grid.spacing_mm[axis_ijk], dtype=np.float64)
        lo, hi, w_lo, w_hi = _axis_weights(u, dose.shape[axis])
        shape = [1, 1, 1]
        shape[axis] = -1
        dose = np.take(dose, lo, axis=axis) * w_lo.reshape(shape) + np.take(
            dose, hi, axis=axis
        ) * w_hi.reshape(shape)
    return dose
