"""The anatomy of the site phantoms: organs as simple solids, their dose parts.

Each builder returns ``(rois, conformal, beams)`` of one site for a target ``scale``
(:func:`etl.phantom.sites.site_spec` assembles, mirrors, jitters and normalises
them). Patient coordinates in mm: x to the patient's left, y posterior, z superior.
Organs are small spheres, ellipsoids and cylinders (one body-size structure per
site, the ``BODY``) so a phantom stays cheap to write and to compute. ROI names are
TG-263; the ``Lungs`` unions are in :data:`UNIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["BUILDERS", "CONVENTIONAL", "TARGET", "UNIONS", "Builder", "Roi"]

Roi = dict[str, Any]
Builder = Callable[[float], tuple[list[Roi], list[Roi], list[Roi]]]


def _sphere(name: str, dia: float, at: tuple[float, ...], **kw: Any) -> Roi:
    return {"name": name, "shape": "sphere", "size_mm": dia, "offset_mm": list(at)} | kw


def _solid(
    shape: str,
    name: str,
    dia: float,
    height: float,
    at: tuple[float, ...],
    *,
    axis: Any = "z",
    **kw: Any,
) -> Roi:
    return {
        "name": name,
        "shape": shape,
        "size_mm": dia,
        "height_mm": height,
        "offset_mm": list(at),
        "axis": axis,
    } | kw


def _ellipsoid(
    name: str, dia: float, height: float, at: tuple[float, ...], **kw: Any
) -> Roi:
    return _solid("ellipsoid", name, dia, height, at, **kw)


def _cylinder(
    name: str, dia: float, height: float, at: tuple[float, ...], **kw: Any
) -> Roi:
    return _solid("cylinder", name, dia, height, at, **kw)


_BODY = {"interpreted_type": "EXTERNAL", "ct_hu": 0}
_LUNG = {"ct_hu": -750}
_BONE = {"ct_hu": 700}
_SOFT = {"ct_hu": 30}
_PTV = {"interpreted_type": "PTV", "ct_hu": 20}
_CTV = {"interpreted_type": "CTV"}
_GTV = {"interpreted_type": "GTV"}


def _thorax(lung_y: float = 10.0) -> list[Roi]:
    return [
        _cylinder("BODY", 360, 260, (0, 0, 0), **_BODY),
        _ellipsoid("Lung_L", 110, 200, (95, lung_y, 20), **_LUNG),
        _ellipsoid("Lung_R", 120, 210, (-90, lung_y, 20), **_LUNG),
        _ellipsoid("Heart", 90, 85, (18, -45, -35), ct_hu=40),
    ]


def _mediastinum() -> list[Roi]:
    return [
        _cylinder("Esophagus", 18, 220, (0, 25, 10), **_SOFT),
        _cylinder("SpinalCord", 10, 260, (0, 75, 0), **_SOFT),
    ]


def _breast(scale: float) -> tuple[list[Roi], list[Roi], list[Roi]]:
    rois = [
        # the lungs reach forward to the chest wall under the breast
        *_thorax(lung_y=-40.0),
        _ellipsoid("A_LAD", 6, 60, (36, -84, -30), axis=[0.3, -0.2, -0.93], ct_hu=60),
        _ellipsoid("Breast_L", 130, 64, (75, -110, 0), axis="y", ct_hu=-100),
        _ellipsoid("Breast_R", 130, 64, (-75, -110, 0), axis="y", ct_hu=-100),
        _ellipsoid("CTV", 120 * scale, 54 * scale, (75, -110, 0), axis="y", **_CTV),
        _ellipsoid("PTV", 126 * scale, 60 * scale, (75, -110, 0), axis="y", **_PTV),
        # (organs added later follow, so the jitter of the others is unchanged)
        *_mediastinum(),
        # thyroid lobes and isthmus as one ellipsoid across the lower neck
        _ellipsoid("Glnd_Thyroid", 18, 50, (0, -40, 118), axis="x", ct_hu=60),
        _ellipsoid("Humerus_L", 30, 70, (158, 10, 85), **_BONE),
        _ellipsoid("Humerus_R", 30, 70, (-158, 10, 85), **_BONE),
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
        _sphere("Femur_Head_L", 46, (95, 10, -5), **_BONE),
        _sphere("Femur_Head_R", 46, (-95, 10, -5), **_BONE),
        _sphere("CTV", 46 * scale, (0, 0, 0), **_CTV),
        _ellipsoid("SeminalVes", 14, 44, (0, 24, 26), axis="x", ct_hu=20),
        _cylinder("Canal_Anal", 22, 26, (0, 38, -70), ct_hu=20),
        _sphere("PenileBulb", 22, (0, -6, -46), ct_hu=40),
        _ellipsoid("Bowel_Small", 24, 110, (0, -62, 86), axis="x", ct_hu=-20),
        _cylinder("Colon_Sigmoid", 24, 60, (10, 42, 70), axis="x", ct_hu=-20),
        # the urethra through the prostate down to the penile bulb
        _cylinder("Urethra", 6, 70, (0, -4, -14), ct_hu=10),
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
        _sphere("Glnd_Submand_L", 24, (36, -24, -8), **_SOFT),
        _sphere("Glnd_Submand_R", 24, (-36, -24, -8), **_SOFT),
        _cylinder("SpinalCord", 10, 200, (0, 42, 0), **_SOFT),
        _cylinder("Brainstem", 24, 34, (0, 34, 68), **_SOFT),
        _ellipsoid("Cavity_Oral", 46, 26, (0, -44, 30), axis="x", ct_hu=0),
        _cylinder("Larynx", 34, 40, (0, -28, -62), ct_hu=0),
        # the supraglottic larynx: the upper part of the larynx
        _cylinder("Larynx_SG", 30, 20, (0, -28, -52), ct_hu=0),
        _cylinder("Musc_Constrict", 18, 70, (0, 14, 5), ct_hu=40),
        # superior, middle and inferior constrictors: thirds of Musc_Constrict
        _cylinder("Musc_Constrict_S", 18, 22, (0, 14, 29), ct_hu=40),
        _cylinder("Musc_Constrict_M", 18, 22, (0, 14, 5), ct_hu=40),
        _cylinder("Musc_Constrict_I", 18, 22, (0, 14, -19), ct_hu=40),
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


def _lung(
    scale: float, *, nodal: bool = False
) -> tuple[list[Roi], list[Roi], list[Roi]]:
    primary = "PTVp" if nodal else "PTV"
    rois = [
        *_thorax(),
        *_mediastinum(),
        _sphere(primary, 66 * scale, (78, 5, 52), **_PTV),
        _cylinder("Trachea", 18, 80, (0, -5, 90), ct_hu=-900),
        # the left main bronchus, from the carina to the hilum
        _cylinder("Bronchus", 12, 50, (24, -3, 40), axis=[0.9, 0, -0.4], ct_hu=-900),
        _ellipsoid("BrachialPlex_L", 12, 60, (62, 10, 118), axis="x", **_SOFT),
        _ellipsoid("BrachialPlex_R", 12, 60, (-62, 10, 118), axis="x", **_SOFT),
        _sphere("GTV", 36 * scale, (78, 5, 52), **_GTV),
        _sphere("CTV", 50 * scale, (78, 5, 52), **_CTV),
    ]
    if nodal:
        rois.append(_nodes(scale))
    conformal = [
        {"target": "PTV", "penumbra_mm": 10, "tail_fraction": 0.45, "tail_mm": 60}
    ]
    beams = [
        {"target": primary, "direction": "y", "dose": 0.12},
        {"target": primary, "direction": "-x", "dose": 0.1},
        {"target": primary, "direction": [0.8, -0.6, 0.0], "dose": 0.12},
    ]
    if nodal:  # the mediastinum is in the AP-PA and an oblique field too
        beams += [
            {"target": "PTVn", "direction": "y", "dose": 0.12, "radius_mm": 30},
            {
                "target": "PTVn",
                "direction": [-0.8, -0.6, 0.0],
                "dose": 0.1,
                "radius_mm": 30,
            },
        ]
    return rois, conformal, beams


def _nodes(scale: float) -> Roi:
    # ipsilateral hilar, lower paratracheal and subcarinal nodes: one ellipsoid in
    # the mediastinum beside the Esophagus and the Trachea (disjoint from PTVp)
    return _ellipsoid("PTVn", 36 * scale, 70 * scale, (10, 12, 45), **_PTV)


def _lung_nodal(scale: float) -> tuple[list[Roi], list[Roi], list[Roi]]:
    return _lung(scale, nodal=True)


#: The builder of each site.
BUILDERS: dict[str, Builder] = {
    "breast": _breast,
    "prostate": _prostate,
    "head_neck": _head_neck,
    "lung": _lung,
}
_LUNGS = [{"name": "Lungs", "of": ["Lung_L", "Lung_R"]}]
#: The unions of each site (ROIs made of disjoint parts).
UNIONS: dict[str, list[dict[str, Any]]] = {"breast": _LUNGS, "lung": _LUNGS}
#: The prescription target of a site when it is not ``PTV``.
TARGET = {"head_neck": "PTV_High"}
#: Conventionally fractionated plans of a site that differ from its builder: their
#: builder, extra unions and prescription target. Conventional lung RT (stage II-III)
#: treats the mediastinal and hilar nodes too: the ``PTV`` is the union of the
#: primary's ``PTVp`` and the nodes' ``PTVn``, prescribed at the primary's centre.
CONVENTIONAL: dict[str, tuple[Builder, list[dict[str, Any]], str]] = {
    "lung": (
        _lung_nodal,
        [{"name": "PTV", "of": ["PTVp", "PTVn"], "interpreted_type": "PTV"}],
        "PTVp",
    ),
}
