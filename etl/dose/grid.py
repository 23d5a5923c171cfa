"""A dose grid in patient coordinates (pure numpy, no DICOM).

:class:`DoseGrid` is what :func:`etl.dicom.rtdose.read_rtdose` returns and what the DVH
engine
(:mod:`etl.dose.dvh`) consumes. It lives here, apart from the reader, so that the engine
imports no pydicom.

Conventions
-----------
``dose_gy[k, j, i]`` is the dose at the centre of voxel ``(i, j, k)``, located at::

    origin_mm + i * di * row_dir + j * dj * col_dir + k * dk * slice_dir

``row_dir`` and ``col_dir`` are ``ImageOrientationPatient[:3]`` and ``[3:]``;
``slice_dir`` points towards increasing frame index, so ``dk`` is always positive.
Patient orientation (HFS, HFP, FFS, FFP, decubitus) is carried entirely by these
direction cosines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from etl.dicom.enums import DoseSummationType, DoseType, DoseUnits
from etl.errors import DoseGridError, GeometryError

__all__ = ["ORTHOGONALITY_TOLERANCE", "DoseGrid", "check_orthonormal"]

_POINTS_PER_BLOCK = 4096  # points interpolated at once

#: Largest accepted deviation of a dot product / norm from 0 / 1 for direction cosines.
ORTHOGONALITY_TOLERANCE = 1e-4

FloatArray = NDArray[np.float64]


def check_orthonormal(row_dir: FloatArray, col_dir: FloatArray) -> None:
    """Raise :class:`~etl.errors.GeometryError` unless the two cosines are orthonormal.

    Parameters
    ----------
    row_dir, col_dir
        The two direction cosines of ``ImageOrientationPatient``.

    Raises
    ------
    GeometryError
        When a vector is not of unit length or the two are not orthogonal.
    """
    tol = ORTHOGONALITY_TOLERANCE
    if (
        abs(float(np.linalg.norm(row_dir)) - 1.0) > tol
        or abs(float(np.linalg.norm(col_dir)) - 1.0) > tol
    ):
        raise GeometryError(
            f"direction cosines are not unit vectors: {row_dir.tolist()}, "
            f"{col_dir.tolist()}"
        )
    if abs(float(np.dot(row_dir, col_dir))) > tol:
        raise GeometryError(
            f"direction cosines are not orthogonal: {row_dir.tolist()}, "
            f"{col_dir.tolist()} (dot product {float(np.dot(row_dir, col_dir)):.3g})"
        )


@dataclass(frozen=True)
class DoseGrid:
    """A 3-D dose distribution on a regular grid, in Gy.

    Attributes
    ----------
    dose_gy : ndarray of float64, shape (n_frames, rows, cols)
        Dose in Gy, indexed ``[k, j, i]``.
    origin_mm : ndarray, shape (3,)
        Patient coordinates (mm) of the centre of voxel ``i = j = k = 0``.
    row_dir, col_dir, slice_dir : ndarray, shape (3,)
        Unit directions of increasing ``i``, ``j`` and ``k``.
    spacing_mm : tuple of float
        ``(di, dj, dk)`` in mm, all positive.
    frame_of_reference_uid, sop_instance_uid : str
        References of the source object (empty strings for synthetic grids).
    dose_type, summation_type, units : str
        ``DoseType``, ``DoseSummationType`` and the units of ``dose_gy`` (always
        ``"GY"`` after reading; the source units are converted).
    """

    dose_gy: FloatArray
    origin_mm: FloatArray
    row_dir: FloatArray
    col_dir: FloatArray
    slice_dir: FloatArray
    spacing_mm: tuple[float, float, float]
    frame_of_reference_uid: str = ""
    sop_instance_uid: str = ""
    dose_type: DoseType | str = DoseType.PHYSICAL
    summation_type: DoseSummationType | str = DoseSummationType.PLAN
    units: DoseUnits | str = DoseUnits.GY

    def __post_init__(self) -> None:
        if self.dose_gy.ndim != 3:  # noqa: PLR2004
            raise DoseGridError(
                f"dose array must be 3-D, got shape {self.dose_gy.shape}"
            )
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing_mm):
            raise DoseGridError(f"grid spacing must be positive, got {self.spacing_mm}")
        check_orthonormal(np.asarray(self.row_dir), np.asarray(self.col_dir))
        check_orthonormal(np.asarray(self.row_dir), np.asarray(self.slice_dir))
        check_orthonormal(np.asarray(self.col_dir), np.asarray(self.slice_dir))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape ``(n_frames, rows, cols)``."""
        k, j, i = self.dose_gy.shape
        return (int(k), int(j), int(i))

    def rotation(self) -> FloatArray:
        """Return the 3x3 matrix whose rows are ``row_dir``, ``col_dir``, ``slice_dir``.

        ``rotation() @ (p - origin_mm)`` gives the position of ``p`` in mm along the
        ``i``, ``j`` and ``k`` axes of the grid.
        """
        return np.vstack([self.row_dir, self.col_dir, self.slice_dir]).astype(
            np.float64
        )

    def to_grid_mm(self, points_mm: FloatArray) -> FloatArray:
        """Express patient points (N, 3) in the grid frame, in mm from voxel 0.

        Examples
        --------
        >>> import numpy as np
        >>> g = DoseGrid(np.zeros((2, 2, 2)), np.array([10.0, 0, 0]),
        ...              np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
        ...              np.array([0, 0, 1.0]), (2.0, 2.0, 2.0))
        >>> g.to_grid_mm(np.array([[12.0, 1.0, 3.0]])).tolist()
        [[2.0, 1.0, 3.0]]
        """
        pts = np.asarray(points_mm, dtype=np.float64)
        return (pts - self.origin_mm) @ self.rotation().T

    def to_patient_mm(self, grid_mm: FloatArray) -> FloatArray:
        """Inverse of :meth:`to_grid_mm`."""
        pts = np.asarray(grid_mm, dtype=np.float64)
        return pts @ self.rotation() + self.origin_mm

    def interpolate(
        self, points_mm: FloatArray
    ) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Trilinear dose (Gy) at patient points, and whether each lies in the grid.

        A point is inside when it lies within the voxels of the grid (up to half a voxel
        beyond the outer voxel centres); within that half-voxel border the dose of the
        outer voxel centres is continued at constant value. Points outside get NaN.

        Parameters
        ----------
        points_mm : ndarray, shape (N, 3)
            Patient coordinates in mm.

        Returns
        -------
        dose_gy : ndarray, shape (N,)
        inside : ndarray of bool, shape (N,)
        """
        g = self.to_grid_mm(points_mm) / np.asarray(self.spacing_mm)
        out = np.empty(len(g))
        inside = np.empty(len(g), dtype=bool)
        # In blocks of points (the temporaries stay small), one axis per row.
        for s in range(0, len(g), _POINTS_PER_BLOCK):
            part = slice(s, s + _POINTS_PER_BLOCK)
            out[part], inside[part] = self._trilinear(np.ascontiguousarray(g[part].T))
        out[~inside] = np.nan
        return out, inside

    def _trilinear(self, g: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Trilinear dose at points ``g`` (grid units, rows i, j, k); inside flags."""
        n = np.array(self.shape[::-1], dtype=np.float64)[:, None]  # (ni, nj, nk)
        inside = np.all((g >= -0.5) & (g <= n - 0.5), axis=0)  # noqa: PLR2004
        g = np.clip(g, 0.0, n - 1.0)
        lo = np.minimum(
            np.floor(g).astype(np.int64), np.maximum(n - 2, 0).astype(np.int64)
        )
        lo = np.maximum(lo, 0)
        f = g - lo
        hi = np.minimum(lo + 1, (n - 1).astype(np.int64))
        _, nj, ni = self.shape
        flat = self.dose_gy.ravel()  # gathers by flat index: faster than d[k, j, i]
        out = np.zeros(g.shape[1])
        for ck in (0, 1):
            kk = (hi[2] if ck else lo[2]) * nj
            wk = f[2] if ck else 1.0 - f[2]
            for cj in (0, 1):
                kj = (kk + (hi[1] if cj else lo[1])) * ni
                wkj = wk * (f[1] if cj else 1.0 - f[1])
                for ci in (0, 1):
                    ii = hi[0] if ci else lo[0]
                    wi = f[0] if ci else 1.0 - f[0]
                    out += wkj * wi * flat.take(kj + ii)
        return out, inside
