"""Site phantoms: simple-shape anatomy of four treatment sites with a conformal dose.

:func:`site_spec` returns the :class:`~etl.phantom.spec.PhantomSpec` of a breast,
prostate, head and neck or lung patient: organs as spheres, ellipsoids and cylinders at
plausible positions and sizes (patient coordinates in mm: x to the patient's left,
y posterior, z superior), named in TG-263, with a dose that conforms to the PTV
(:mod:`etl.phantom.conformal`) plus beam paths. The organ doses fall in the ranges of
the literature at the standard schedules (tested through the DVH engine on DICOM):

=============  ======================  =====================
site           structures              literature range
=============  ======================  =====================
breast (left)  CTV, PTV, Heart, A_LAD,  Heart Mean 1-5 Gy
               Lung_L/R, Breast_L/R
prostate       PTV, Rectum, Bladder,    Rectum V70Gy 5-20 %
               Femur_Head_L/R           at 78 Gy / 39
head and neck  PTV_High, PTV_Low,       Parotid Mean
               Parotid_L/R,             15-35 Gy
               Glnd_Submand_L/R,
               SpinalCord, Larynx,
               Musc_Constrict
lung           PTV, Lungs (union),      Lungs Mean 10-20 Gy
               Lung_L/R, Heart,
               Esophagus, SpinalCord
=============  ======================  =====================

``laterality`` mirrors the anatomy in x (a right breast, a right lung tumour, a
right-sided head and neck primary). ``sparing`` scales the low-dose bath and the beam
paths (1 typical; below 1 a centre that spares better, above 1 worse). A lung
schedule of at most 8 fractions (SBRT) halves the PTV. ``rng`` jitters
positions (up to 2.5 mm) and the PTV size (up to 10 %) per patient. ``names`` renames
the ROIs (TG-263 -> local name), for simulated local naming.

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
from etl.phantom.spec import PhantomSpec, parse_spec

__all__ = ["SITES", "site_spec"]

#: The sites :func:`site_spec` knows.
SITES = ("breast", "prostate", "head_neck", "lung")

Roi = dict[str, Any]


def _sphere(name: str, dia: float, at: tuple[float, ...], **kw: Any) -> Roi:
    return {"name": name, "shape": "sphere", "size_mm": dia, "offset_mm": list(at)} | kw


def _ellipsoid(
    name: str,
    dia: float,
    height: float,
    at: tuple[float, ...],
    axis: Any = "z",
    **kw: Any,
) -> Roi:
    return {
        "name": name,
        "shape": "ellipsoid",
        "size_mm": dia,
        "height_mm": height,
        "offset_mm": list(at),
        "axis": axis,
    } | kw


def _cylinder(
    name: str,
    dia: float,
    height: float,
    at: tuple[float, ...],
    axis: Any = "z",
    **kw: Any,
) -> Roi:
    return {
        "name": name,
        "shape": "cylinder",
        "size_mm": dia,
        "height_mm": height,
        "offset_mm": list(at),
        "axis": axis,
    } | kw


_BODY = {"interpreted_type": "EXTERNAL", "ct_hu": 0}
_LUNG = {"ct_hu": -750}
_PTV = {"interpreted_type": "PTV", "ct_hu": 20}


def _thorax() -> list[Roi]:
    return [
        _cylinder("BODY", 360, 260, (0, 0, 0), **_BODY),
        _ellipsoid("Lung_L", 110, 200, (95, 10, 20), **_LUNG),
        _ellipsoid("Lung_R", 120, 210, (-90, 10, 20), **_LUNG),
        _ellipsoid("Heart", 90, 85, (18, -45, -35), ct_hu=40),
    ]


def _breast(scale: float) -> tuple[list[Roi], list[Roi], list[Roi]]:
    rois = [
        *_thorax(),
        _ellipsoid("A_LAD", 6, 60, (36, -84, -30), axis=[0.3, -0.2, -0.93], ct_hu=60),
        _ellipsoid("Breast_L", 130, 64, (75, -110, 0), axis="y", ct_hu=-100),
        _ellipsoid("Breast_R", 130, 64, (-75, -110, 0), axis="y", ct_hu=-100),
        _ellipsoid(
            "CTV",
            120 * scale,
            54 * scale,
            (75, -110, 0),
            axis="y",
            interpreted_type="CTV",
        ),
        _ellipsoid("PTV", 126 * scale, 60 * scale, (75, -110, 0), axis="y", **_PTV),
    ]
    # Tangents cover the whole breast: their paths are in the low-dose bath.
    conformal = [
        {"target": "PTV", "penumbra_mm": 6, "tail_fraction": 0.12, "tail_mm": 50}
    ]
    return rois, conformal, []


def _prostate(scale: float) -> tuple[list[Roi], list[Roi], list[Roi]]:
    rois = [
        _cylinder("BODY", 360, 200, (0, 0, 0), **_BODY),
        _sphere("PTV", 56 * scale, (0, 0, 0), **_PTV),
        _cylinder("Rectum", 32, 100, (0, 34, -10), ct_hu=-50),
        _sphere("Bladder", 70, (0, -15, 62), ct_hu=10),
        _sphere("Femur_Head_L", 46, (95, 10, -5), ct_hu=700),
        _sphere("Femur_Head_R", 46, (-95, 10, -5), ct_hu=700),
    ]
    conformal = [
        {"target": "PTV", "penumbra_mm": 7, "tail_fraction": 0.12, "tail_mm": 15}
    ]
    beams = [
        {"target": "PTV", "direction": "x", "dose": 0.12},
        {"target": "PTV", "direction": "-x", "dose": 0.12},
    ]
    return rois, conformal, beams


def _head_neck(scale: float) -> tuple[list[Roi], list[Roi], list[Roi]]:
    rois = [
        _cylinder("BODY", 150, 200, (0, 0, 0), **_BODY),
        _sphere("PTV_High", 46 * scale, (22, -8, 18), **_PTV),
        _ellipsoid("PTV_Low", 80 * scale, 110 * scale, (0, -8, 0), **_PTV),
        _ellipsoid("Parotid_L", 30, 45, (42, 8, 34), ct_hu=-20),
        _ellipsoid("Parotid_R", 30, 45, (-42, 8, 34), ct_hu=-20),
        _sphere("Glnd_Submand_L", 24, (36, -24, -8), ct_hu=30),
        _sphere("Glnd_Submand_R", 24, (-36, -24, -8), ct_hu=30),
        _cylinder("SpinalCord", 10, 200, (0, 42, 0), ct_hu=30),
        _cylinder("Larynx", 34, 40, (0, -28, -62), ct_hu=0),
        _cylinder("Musc_Constrict", 18, 70, (0, 14, 5), ct_hu=40),
    ]
    conformal = [
        {
            "target": "PTV_Low",
            "penumbra_mm": 8,
            "tail_fraction": 0.25,
            "tail_mm": 25,
            "share": 54.0 / 70.0,
        },
        {
            "target": "PTV_High",
            "penumbra_mm": 7,
            "tail_fraction": 0.1,
            "tail_mm": 12,
            "share": 16.0 / 70.0,
        },
    ]
    return rois, conformal, []


def _lung(scale: float) -> tuple[list[Roi], list[Roi], list[Roi]]:
    rois = [
        *_thorax(),
        _cylinder("Esophagus", 18, 220, (0, 25, 10), ct_hu=30),
        _cylinder("SpinalCord", 10, 260, (0, 75, 0), ct_hu=30),
        _sphere("PTV", 66 * scale, (78, 5, 52), **_PTV),
    ]
    conformal = [
        {"target": "PTV", "penumbra_mm": 10, "tail_fraction": 0.45, "tail_mm": 60}
    ]
    beams = [
        {"target": "PTV", "direction": "y", "dose": 0.12},
        {"target": "PTV", "direction": "-x", "dose": 0.1},
        {"target": "PTV", "direction": [0.8, -0.6, 0.0], "dose": 0.12},
    ]
    return rois, conformal, beams


_SBRT_MAX_FRACTIONS = 8
_BUILDERS = {
    "breast": _breast,
    "prostate": _prostate,
    "head_neck": _head_neck,
    "lung": _lung,
}
_UNIONS = {"lung": [{"name": "Lungs", "of": ["Lung_L", "Lung_R"]}]}
_TARGET = {"head_neck": "PTV_High"}


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
    if site not in _BUILDERS:
        raise PhantomSpecError(f"site {site!r}: unknown (choose {', '.join(SITES)})")
    if laterality not in {"L", "R"}:
        raise PhantomSpecError(f"laterality {laterality!r}: expected L or R")
    if not prescription_gy > 0 or fractions < 1:
        raise PhantomSpecError("prescription: dose and fractions must be positive")
    if not sparing > 0:
        raise PhantomSpecError(f"sparing {sparing!r}: must be positive")
    scale = 1.0 + (float(rng.uniform(-0.1, 0.1)) if rng is not None else 0.0)
    if site == "lung" and fractions <= _SBRT_MAX_FRACTIONS:
        scale *= 0.5  # stereotactic: a small peripheral target
    rois, conformal, beams = _BUILDERS[site](scale)
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
    target = _TARGET.get(site, "PTV")
    spec: dict[str, Any] = {
        "contour_spacing_mm": grid_mm,
        "dose_grid_mm": grid_mm,
        "ct_pixel_mm": grid_mm,
        "rois": rois,
        "dose": [{"dose_gy": 0.0}],
        "conformal": conf,
        "beam_fields": beam_fields,
        "unions": _UNIONS.get(site, []),
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
        {"name": nm(u["name"]), "of": [nm(n) for n in u["of"]]} for u in spec["unions"]
    ]
    for part in ("conformal", "beam_fields"):
        spec[part] = [c | {"target": nm(c["target"])} for c in spec[part]]
    spec["plan"]["target"] = nm(spec["plan"]["target"])
    return spec
