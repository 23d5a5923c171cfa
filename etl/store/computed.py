"""What the pipeline hands the loader: a resolved dataset, its DVHs and plan facts.

The loader (:mod:`etl.store.load`) writes one :class:`ComputedDataset` into OMOP;
:func:`content_hash` identifies its content so a re-send of the same objects is skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from etl.dicom.index import ResolvedDataset
from etl.dose.dvh import DVH
from etl.ingest.qa import Finding

__all__ = ["ComputedDataset", "ComputedStructure", "content_hash"]


@dataclass
class ComputedStructure:
    """The DVH of one ROI (computed by the pipeline's workers)."""

    roi_number: int
    roi_name: str
    interpreted_type: str | None
    dvh: DVH


@dataclass
class ComputedDataset:
    """A resolved dataset with its DVHs, plan facts and warnings."""

    resolved: ResolvedDataset
    structures: list[ComputedStructure]
    findings: list[Finding] = field(default_factory=list)
    n_fractions: int | None = None
    #: Planned fractions of all the dose's plans (the course length; set for a plan
    #: sum too, where ``n_fractions`` is None because EQD2 needs one plan's).
    course_fractions: int | None = None
    prescription_gy: float | None = None
    plan_intent: str = ""
    plan_label: str = ""
    compute_metrics: bool = True


def content_hash(resolved: ResolvedDataset) -> str:
    """Return the SHA-256 over the members' (UID, content hash) pairs."""
    parts = sorted(f"{o.sop_instance_uid}={o.sha256}" for o in resolved.members())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
