"""The loaded plan doses of one person on one frame of reference (a course to sum).

Read by the import's course stage (:mod:`etl.ingest.course_stage`): every loaded
dataset of a plan dose (``DoseSummationType`` PLAN or FRACTION) of the person on the
frame, the latest dataset per plan, ordered by course start; with the file-store
hashes of its dose and structure set, the plan's prescribed fractions
(:func:`etl.store.course.course_fractions`) and its structures' mapping.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from etl.store.course import course_fractions
from omop.cdm import Episode
from omop.ingest_tables import Dvh, IngestDataset, IngestObject

__all__ = ["CoursePlan", "PlanStructure", "frames_of_person", "read_course_plans"]

_PLAN_TYPES = ("PLAN", "FRACTION")


@dataclass(frozen=True)
class PlanStructure:
    """A structure of a loaded dataset: its ROI, TG-263 name and target flag."""

    roi_number: int
    roi_name: str
    tg263_name: str | None
    is_target: bool


@dataclass(frozen=True)
class CoursePlan:
    """One loaded plan dose of a course.

    Attributes
    ----------
    dataset_id, episode_id : int
        The dataset and the RT course EPISODE it was loaded into.
    course_start : datetime.date
        That episode's start.
    dose_uid, dose_sha256 : str
        The RTDOSE and its current file in the store.
    structure_set_uid, structure_set_sha256 : str
        Its structure set and file ('' when not in the store).
    n_fractions : int or None
        The plan's prescribed fractions.
    structures : tuple of PlanStructure
        The structures of its stored DVHs.
    """

    dataset_id: int
    episode_id: int
    course_start: datetime.date
    dose_uid: str
    dose_sha256: str
    structure_set_uid: str
    structure_set_sha256: str
    n_fractions: int | None
    structures: tuple[PlanStructure, ...]


def _current_files(session: Session, uids: list[str]) -> dict[str, str]:
    rows = session.execute(
        select(IngestObject.sop_instance_uid, IngestObject.sha256).where(
            IngestObject.sop_instance_uid.in_(uids), IngestObject.current.is_(True)
        )
    ).all()
    return {str(u): str(h) for u, h in rows}


def frames_of_person(session: Session, person_id: int) -> set[str]:
    """Return the frames of reference of a person's loaded plan doses."""
    return set(
        session.scalars(
            select(IngestDataset.frame_of_reference_uid).where(
                IngestDataset.person_id == person_id,
                IngestDataset.dose_summation_type.in_(_PLAN_TYPES),
            )
        )
    )


def read_course_plans(
    session: Session, person_id: int, frame_uid: str
) -> list[CoursePlan]:
    """Return the person's loaded plan doses on ``frame_uid``, by course start.

    One per plan (``plan_sop_instance_uid``; the latest dataset when a plan has
    several doses); datasets without an RT course EPISODE are left out.
    """
    rows = session.execute(
        select(IngestDataset, Episode.episode_start_date)
        .join(Episode, Episode.episode_id == IngestDataset.episode_id)
        .where(
            IngestDataset.person_id == person_id,
            IngestDataset.frame_of_reference_uid == frame_uid,
            IngestDataset.dose_summation_type.in_(_PLAN_TYPES),
        )
        .order_by(IngestDataset.dataset_id)
    ).all()
    latest: dict[str, tuple[IngestDataset, datetime.date]] = {}
    for dataset, start in rows:
        latest[dataset.plan_sop_instance_uid or dataset.dose_sop_instance_uid] = (
            dataset,
            start,
        )
    chosen = sorted(latest.values(), key=lambda r: (r[1], r[0].dataset_id))
    uids = [d.dose_sop_instance_uid for d, _ in chosen]
    uids += [d.structure_set_sop_instance_uid for d, _ in chosen]
    files = _current_files(session, uids)
    fractions = course_fractions(session, [int(d.episode_id or 0) for d, _ in chosen])
    out: list[CoursePlan] = []
    for dataset, start in chosen:
        dvhs = session.scalars(
            select(Dvh)
            .where(Dvh.dataset_id == dataset.dataset_id)
            .order_by(Dvh.roi_number)
        ).all()
        out.append(
            CoursePlan(
                dataset_id=dataset.dataset_id,
                episode_id=int(dataset.episode_id or 0),
                course_start=start,
                dose_uid=dataset.dose_sop_instance_uid,
                dose_sha256=files.get(dataset.dose_sop_instance_uid, ""),
                structure_set_uid=dataset.structure_set_sop_instance_uid,
                structure_set_sha256=files.get(
                    dataset.structure_set_sop_instance_uid, ""
                ),
                n_fractions=fractions.get(int(dataset.episode_id or 0)),
                structures=tuple(
                    PlanStructure(d.roi_number, d.roi_name, d.tg263_name, d.is_target)
                    for d in dvhs
                ),
            )
        )
    return out
