"""Site phantoms: simple-shape anatomy of four treatment sites with a conformal dose.

:func:`site_spec` returns the :class:`~etl.phantom.spec.PhantomSpec` of a breast,
prostate, head and neck or lung patient: organs as spheres, ellipsoids and cylinders at
plausible positions and sizes, 13-16 structures per site (patient coordinates in
mm: x to the patient's left, y posterior, z superior), named in TG-263, with a dose
that conforms to the PTV (:mod:`etl.phantom.conformal`) plus beam paths. The organ
doses fall in the ranges of the literature at the standard schedules (tested through
the DVH engine on DICOM):

=============  ==========================  =========================
site           structures (TG-263)         literature range (tested)
=============  ==========================  =========================
breast (left)  BODY, CTV, PTV, Heart,      Heart Mean 1-5 Gy;
(15)           A_LAD, Breast_L/R,          ipsilateral lung Mean
               Lung_L/R, Lungs (union),    2-8 Gy; Glnd_Thyroid
               Esophagus, SpinalCord,      Mean < 3 Gy
               Glnd_Thyroid, Humerus_L/R
prostate       BODY, CTV, PTV, Rectum,     Rectum V70Gy 5-20 %
(13)           Bladder, SeminalVes,        at 78 Gy / 39;
               Canal_Anal, PenileBulb,     PenileBulb Mean < 50 Gy
               Urethra, Bowel_Small,
               Colon_Sigmoid, Femur_Head_L/R
head and neck  BODY, PTV_High, PTV_Low,    Parotid Mean 15-35 Gy;
(16)           Parotid_L/R,                Musc_Constrict_S Mean
               Glnd_Submand_L/R,           40-65 Gy; Larynx_SG Mean
               SpinalCord, Brainstem,      30-60 Gy; Brainstem
               Cavity_Oral, Larynx,        Max < 54 Gy
               Larynx_SG, Musc_Constrict,
               Musc_Constrict_S/M/I
lung           BODY, GTV, CTV, PTV,        Lungs Mean 10-20 Gy;
(14; 16 at     Lung_L/R, Lungs (union),    SpinalCord Max < 50 Gy;
conventional   Heart, Esophagus,           at 60 Gy / 30: Esophagus
schedules)     SpinalCord, Trachea,        Mean 15-30 Gy, Heart Mean
               Bronchus, BrachialPlex_L/R  5-15 Gy; SBRT (54 Gy / 3):
               (conventional: PTVp, PTVn,  Esophagus Mean < 10 Gy
               PTV = union of the two)
=============  ==========================  =========================

The organs (:mod:`etl.phantom.site_anatomy`) are small simple solids (the ``BODY`` is
the only body-size structure). Musc_Constrict_S/M/I are the upper, middle and lower
thirds of Musc_Constrict; Larynx_SG the upper part of the Larynx.

``laterality`` mirrors the anatomy in x (a right breast, a right lung tumour, a
right-sided head and neck primary). ``sparing`` scales the low-dose bath and the beam
paths (1 typical; below 1 a centre that spares better, above 1 worse). A lung
schedule of at most 8 fractions (SBRT) halves the PTV: a small peripheral lesion. A
conventional lung schedule (stage II-III) treats the mediastinal and hilar nodes too:
the ``PTV`` is then the union of the primary's ``PTVp`` and the nodes' ``PTVn`` (an
ellipsoid beside the Esophagus and the Trachea, with fields of its own), the conformal
dose falls off from the union (:mod:`etl.phantom.conformal`) and the prescription is
at the centre of ``PTVp`` (the plan's target); ``GTV`` and ``CTV`` are the primary's.
``rng`` jitters positions (up to 2.5 mm) and the PTV size (up to 10 %) per patient.
``names`` renames the ROIs (TG-263 -> local name), for simulated local naming.

Examples
--------
>>> spec = site_spec("prostate", prescription_gy=78, fractions=39)
>>> [r.name for r in spec.rois][:3]
['BODY', 'PTV', 'Rectum']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from etl.phantom.geometry import PhantomSpecError
from etl.phantom.site_anatomy import BUILDERS, CONVENTIONAL, TARGET, UNIONS, Roi
from etl.phantom.spec import PhantomSpec, parse_spec

__all__ = ["SBRT_MAX_FRACTIONS", "SITES", "site_spec"]

#: The sites :func:`site_spec` knows.
SITES = ("breast", "prostate", "head_neck", "lung")

#: A lung schedule of at most this many fractions is SBRT (a small target).
SBRT_MAX_FRACTIONS = 8


def _mirror(rois: list[Roi], beams: list[Roi]) -> None:
    swap = {"_L": "_R", "_R": "_L"}
    for roi in rois:
        if roi["name"] in {"Heart", "A_LAD"}:  # the heart stays on the left
            continue
        x, y, z = roi["offset_mm"]
        roi["offset_mm"] = [-x, y, z]
        if isinstance(roi.get("axis"), list):
            ax = roi["axis"]
            roi["axis"] = [-ax[0], ax[1], ax[2]]
        suffix = roi["name"][-2:]
        if suffix in swap:
            roi["name"] = roi["name"][:-2] + swap[suffix]
    for beam in beams:
        d = beam["direction"]
        if isinstance(d, list):
            beam["direction"] = [-d[0], d[1], d[2]]
        elif d.lstrip("-") == "x":
            beam["direction"] = d[1:] if d.startswith("-") else "-" + d


def _jitter(rois: list[Roi], rng: np.random.Generator | None) -> None:
    if rng is None:
        return
    for roi in rois:
        if roi["name"] == "BODY":
            continue
        shift = rng.uniform(-2.5, 2.5, size=3)
        roi["offset_mm"] = [
            float(a + b) for a, b in zip(roi["offset_mm"], shift, strict=True)
        ]


def site_spec(
    site: str,
    *,
    prescription_gy: float,
    fractions: int,
    laterality: str = "L",
    sparing: float = 1.0,
    rng: np.random.Generator | None = None,
    names: Mapping[str, str] | None = None,
    grid_mm: float = 4.0,
    truth_samples: int = 32_768,
) -> PhantomSpec:
    """Return the phantom of one patient of ``site`` (see the module docstring).

    Raises
    ------
    PhantomSpecError
        Unknown site or laterality, or a non-positive prescription or fractions.
    """
    if site not in BUILDERS:
        raise PhantomSpecError(f"site {site!r}: unknown (choose {', '.join(SITES)})")
    if laterality not in {"L", "R"}:
        raise PhantomSpecError(f"laterality {laterality!r}: expected L or R")
    if not prescription_gy > 0 or fractions < 1:
        raise PhantomSpecError("prescription: dose and fractions must be positive")
    if not sparing > 0:
        raise PhantomSpecError(f"sparing {sparing!r}: must be positive")
    scale = 1.0 + (float(rng.uniform(-0.1, 0.1)) if rng is not None else 0.0)
    builder, unions = BUILDERS[site], UNIONS.get(site, [])
    target = TARGET.get(site, "PTV")
    if site == "lung" and fractions <= SBRT_MAX_FRACTIONS:
        scale *= 0.5  # stereotactic: a small peripheral target
    elif site in CONVENTIONAL:
        builder, more, target = CONVENTIONAL[site]
        unions = [*unions, *more]
    rois, conformal, beams = builder(scale)
    if laterality == "R":
        _mirror(rois, beams)
    _jitter(rois, rng)
    conf = [
        {k: v for k, v in c.items() if k != "share"}
        | {
            "dose_gy": prescription_gy * float(c.get("share", 1.0)),
            "tail_fraction": min(1.0, float(c["tail_fraction"]) * sparing),
        }
        for c in conformal
    ]
    beam_fields = [
        {k: v for k, v in b.items() if k != "dose"}
        | {"dose_gy": prescription_gy * float(b["dose"]) * sparing}
        for b in beams
    ]
    spec: dict[str, Any] = {
        "contour_spacing_mm": grid_mm,
        "dose_grid_mm": grid_mm,
        "ct_pixel_mm": grid_mm,
        "rois": rois,
        "dose": [{"dose_gy": 0.0}],
        "conformal": conf,
        "beam_fields": beam_fields,
        "unions": unions,
        "truth_samples": truth_samples,
        "plan": {
            "target": target,
            "prescription_gy": prescription_gy,
            "fractions": fractions,
            "beams": max(3, len(beams)),
        },
    }
    # Normalise: the dose at the target centre is the prescription.
    model = parse_spec(spec).dose_model()
    centre = next(r["offset_mm"] for r in rois if r["name"] == target)
    factor = prescription_gy / float(model.dose_at(np.asarray(centre, dtype=float)))
    for part in (spec["conformal"], spec["beam_fields"]):
        for item in part:
            item["dose_gy"] = float(item["dose_gy"]) * factor
    return parse_spec(_rename(spec, names or {}))


def _rename(spec: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    def nm(name: str) -> str:
        return names.get(name, name)

    spec["rois"] = [r | {"name": nm(r["name"])} for r in spec["rois"]]
    spec["unions"] = [
        u | {"name": nm(u["name"]), "of": [nm(n) for n in u["of"]]}
        for u in spec["unions"]
    ]
    for part in ("conformal", "beam_fields"):
        spec[part] = [c | {"target": nm(c["target"])} for c in spec[part]]
    spec["plan"]["target"] = nm(spec["plan"]["target"])
    return spec
