"""The dose of a simulated patient: the site phantom and its DVHs from the truth.

Each patient's plan is :func:`etl.phantom.sites.site_spec` (with the centre's sparing
and naming, the patient's laterality, schedule and jitter). Its DVHs are computed from
the analytic solids and the analytic dose (one RQMC replicate of
:func:`etl.phantom.truth_numeric.sample_doses`, ``samples`` points per structure; see
that module for the method), binned at :data:`BIN_WIDTH_GY` into the
:class:`etl.dose.histogram.DVH` the loader stores. The same DVH feeds the toxicity
truth,
so a model fitted on the stored DVHs sees exactly the doses the outcomes came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from etl.dose.histogram import DVH
from etl.phantom.sites import site_spec
from etl.phantom.spec import PhantomSpec
from etl.phantom.truth_numeric import sample_doses

__all__ = ["BIN_WIDTH_GY", "StructureDose", "patient_dose", "patient_spec"]

FloatArray = NDArray[np.float64]

#: Bin width of the simulated DVHs (Gy).
BIN_WIDTH_GY = 0.1


@dataclass(frozen=True)
class StructureDose:
    """One structure of a simulated plan."""

    roi_number: int
    roi_name: str
    tg263: str
    interpreted_type: str
    dvh: DVH

    def bins(self) -> tuple[FloatArray, FloatArray]:
        """Return bin-centre doses (Gy) and volume fractions (what ``ntcp`` fits)."""
        diff = np.asarray(self.dvh.differential_cc, dtype=np.float64)
        centres = (np.arange(len(diff), dtype=np.float64) + 0.5) * self.dvh.bin_width_gy
        total = float(diff.sum())
        keep = diff > 0
        return centres[keep], diff[keep] / total


def patient_spec(
    site: str,
    *,
    prescription_gy: float,
    fractions: int,
    laterality: str,
    sparing: float,
    names: Mapping[str, str],
    rng: np.random.Generator,
    truth_samples: int = 32_768,
) -> PhantomSpec:
    """Return the phantom of one patient (names are TG-263 -> local)."""
    return site_spec(
        site,
        prescription_gy=prescription_gy,
        fractions=fractions,
        laterality=laterality,
        sparing=sparing,
        rng=rng,
        names=names,
        truth_samples=truth_samples,
    )


def _dvh(dose: FloatArray, weight_mm3: FloatArray) -> DVH:
    n_bins = int(np.floor(float(dose.max()) / BIN_WIDTH_GY)) + 1
    index = np.minimum((dose / BIN_WIDTH_GY).astype(np.int64), n_bins - 1)
    diff = np.bincount(index, weights=weight_mm3 / 1000.0, minlength=n_bins)
    volume_cc = float(weight_mm3.sum()) / 1000.0
    return DVH(
        volume_cc=volume_cc,
        outside_grid_cc=0.0,
        min_gy=float(dose.min()),
        mean_gy=float(np.sum(dose * weight_mm3) / weight_mm3.sum()),
        max_gy=float(dose.max()),
        bin_width_gy=BIN_WIDTH_GY,
        differential_cc=np.asarray(diff, dtype=np.float64),
    )


def patient_dose(
    spec: PhantomSpec,
    tg263_of: Mapping[str, str],
    *,
    samples: int = 4096,
    seed: int = 0,
) -> list[StructureDose]:
    """DVHs of every structure of a plan (ROI numbering as the written RTSTRUCT).

    Parameters
    ----------
    spec
        The patient's phantom.
    tg263_of
        Local ROI name -> TG-263 name.
    samples
        RQMC points per structure (and per part of a union).
    seed
        Seed of the scrambling.
    """
    model = spec.dose_model()
    parts = [[r.solid()] for r in spec.rois] + spec.union_parts()
    kinds = [str(r.interpreted_type) for r in spec.rois]
    kinds += [str(u.interpreted_type) for u in spec.unions]
    out = []
    for number, (name, solids, kind) in enumerate(
        zip(spec.roi_names(), parts, kinds, strict=True), start=1
    ):
        dose, weight = sample_doses(solids, model.dose_at, samples, seed * 64 + number)
        out.append(
            StructureDose(
                number, name, tg263_of.get(name, name), kind, _dvh(dose, weight)
            )
        )
    return out
