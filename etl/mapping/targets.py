"""TG-263 target names: a grammar, not a list.

TG-263 (AAPM Report 263, section 8) names targets by a rule rather than a table: the
target type (``GTV``, ``CTV``, ``ITV``, ``PTV``), an optional classifier (``p``
primary, ``n`` nodal, ``sb`` surgical bed, ``par`` parenchyma, ``v`` venous
thrombosis, ``vas`` vascular), an optional number (``PTV1``), then an optional
relative dose level (``_High``, ``_Mid``, ``_Low``, possibly numbered: ``_Mid01``)
and an optional dose (``_7000`` in cGy, or ``_70Gy``). The CC0 mCODE list we ship
holds only the four bare types, so ``PTV_High`` would otherwise be "unmapped".

Only names that already follow the grammar (letter case aside) are recognised, and
they are returned in TG-263's casing; anything else is left to the mapping rules.

Examples
--------
>>> tg263_target_name("PTV_High"), tg263_target_name("ptv_low")
('PTV_High', 'PTV_Low')
>>> tg263_target_name("CTVn_7000"), tg263_target_name("PTVp1_Mid01_54Gy")
('CTVn_7000', 'PTVp1_Mid01_54Gy')
>>> tg263_target_name("PTV boost") is None, tg263_target_name("PTVs") is None
(True, True)
"""

from __future__ import annotations

import re

__all__ = ["tg263_target_name"]

_TARGET = re.compile(
    r"(?P<type>gtv|ctv|itv|ptv)"
    r"(?P<cls>p|n|sb|par|vas|v)?"
    r"(?P<num>\d{0,2})"
    r"(?:_(?P<level>high|mid|low)(?P<lnum>\d{0,2}))?"
    r"(?:_(?P<dose>\d{3,5}|\d{1,3}(?:\.\d{1,2})?gy))?",
    re.IGNORECASE,
)


def tg263_target_name(roi_name: str) -> str | None:
    """Return the TG-263 spelling of a target name, or None when it is not one.

    Parameters
    ----------
    roi_name
        The ROI name as the planning system wrote it.
    """
    found = _TARGET.fullmatch(roi_name.strip())
    if found is None:
        return None
    parts = [found["type"].upper() + (found["cls"] or "").lower() + found["num"]]
    if found["level"]:
        parts.append(found["level"].capitalize() + found["lnum"])
    if found["dose"]:
        dose = found["dose"]
        parts.append(dose[:-2] + "Gy" if dose.lower().endswith("gy") else dose)
    return "_".join(parts)
