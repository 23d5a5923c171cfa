"""Which target the prescription check reads when the plan names none.

The dicompyler-core example breast plan names no ROI in its dose reference; its
first target by type is the 1.3 cc ``Borders`` (D95 0.04 Gy), its boost target the
``Tumor Bed`` (D95 14.1 Gy of 14 Gy). Uniform-dose DVHs stand in for them here:
D95% of a structure that receives one dose everywhere is that dose.
"""

from __future__ import annotations

import numpy as np
import pytest

from etl.dose.histogram import DVH
from etl.ingest.compute import prescription_finding
from etl.ingest.qa import Reason
from etl.store.computed import ComputedStructure

WIDTH = 0.01


def _uniform(
    number: int, name: str, kind: str | None, dose_gy: float
) -> ComputedStructure:
    diff = np.zeros(round(dose_gy / WIDTH) + 1)
    diff[-1] = 2.0
    dvh = DVH(2.0, 0.0, dose_gy, dose_gy, dose_gy, WIDTH, diff)
    return ComputedStructure(number, name, kind, dvh)


PLAN = [
    _uniform(1, "BODY", "EXTERNAL", 5.0),
    _uniform(3, "Borders", "CTV", 0.04),
    _uniform(5, "Heart", "ORGAN", 1.0),
    _uniform(9, "Tumor Bed", "CTV", 14.1),
    _uniform(10, "Nodes", "PTV", 9.0),
]


def test_a_plan_naming_no_target_is_consistent_when_one_target_is() -> None:
    assert prescription_finding(PLAN, None, 14.0) is None


def test_the_finding_names_the_closest_target() -> None:
    finding = prescription_finding(PLAN, None, 20.0)
    assert finding is not None
    assert finding.reason is Reason.PRESCRIPTION_INCONSISTENT
    assert finding.detail.startswith("Tumor Bed, the closest of 3 target(s): ")
    assert "target D95 14.10 Gy is 30% off the prescription 20.00 Gy" in finding.detail


def test_the_plans_own_target_is_read_and_named() -> None:
    finding = prescription_finding(PLAN, 3, 14.0)
    assert finding is not None
    assert finding.detail.startswith("Borders: target D95 0.04 Gy")
    assert prescription_finding(PLAN, 9, 14.0) is None


@pytest.mark.parametrize(
    ("structures", "rx"),
    [
        ([s for s in PLAN if s.interpreted_type not in {"CTV", "PTV"}], 14.0),
        (PLAN, None),
        (PLAN, 0.0),
    ],
)
def test_nothing_to_check(
    structures: list[ComputedStructure], rx: float | None
) -> None:
    assert prescription_finding(structures, None, rx) is None
