"""Stage 5 of the import: the dose of courses of several plans (issue 18, part 3).

After the datasets of a run are loaded, each person and frame of reference that got
a new plan dose is looked at again: when the person has two or more loaded plan doses
on that frame (a sequential boost, an adaptation), they are summed
(:func:`etl.dose.course.sum_course`, trilinear resampling onto the union grid,
physically and in EQD2 with each plan's own fractions and each structure's
alpha/beta: targets and organs at risk of :class:`~etl.store.metric_set.AlphaBeta`),
the DVH of each structure of the first plan's structure set is computed on the sums
by the one engine, and the course-level metrics are stored linked to the course's
one RT course EPISODE (:mod:`etl.store.course_metrics`), replacing those of an
earlier sum. The plans' episodes become children of that course EPISODE, which spans
them all (:func:`etl.store.course_episode.group_course`), whether or not the dose
could be summed. Plans on other frames of reference are not summed (no registration):
they keep their per-plan metrics, and the run's warnings say so. A course that cannot
be summed (a rotated grid, unknown fractions: physical only) is a warning too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from etl.dicom.rtdose import read_rtdose
from etl.dicom.rtstruct import StructureSet, read_rtstruct
from etl.dose.course import PlanDose, sum_course
from etl.dose.dvh import DVH
from etl.dose.grid import DoseGrid
from etl.dose.structures import structure_dvhs
from etl.errors import EtlError
from etl.ingest.consent import ConsentDecision, decide
from etl.store.course_episode import group_course
from etl.store.course_metrics import (
    CourseStructure,
    delete_course_metrics,
    write_course_metrics,
)
from etl.store.course_plans import (
    CoursePlan,
    PlanStructure,
    frames_of_person,
    read_course_plans,
)
from etl.store.metric_set import AlphaBeta
from omop.cdm import Person

if TYPE_CHECKING:
    from etl.ingest.run import ImportOptions, ImportSummary

__all__ = ["sum_courses"]

_LOG = logging.getLogger(__name__)


def sum_courses(
    factory: sessionmaker[Session],
    touched: Iterable[tuple[int, str]],
    opts: ImportOptions,
    summary: ImportSummary,
) -> int:
    """Sum and store the course dose of each (person, frame) touched by a run.

    Parameters
    ----------
    factory
        Session factory; each course is written in its own transaction.
    touched
        ``(person_id, frame_of_reference_uid)`` of the plan doses loaded.
    opts
        The import's options (file store, consent check, alpha/beta).
    summary
        Gets a warning per course not summed, and the count in ``courses``.

    Returns
    -------
    int
        The number of courses whose metrics were (re)written.
    """
    done = 0
    for person_id, frame in sorted(set(touched)):
        with factory.begin() as session:
            plans = read_course_plans(session, person_id, frame)
            frames = frames_of_person(session, person_id)
        if len(frames) > 1:
            summary.warnings["plans on different frames of reference: not summed"] += 1
        if len(plans) < 2:  # noqa: PLR2004
            continue
        structures: list[CourseStructure] | None = None
        try:
            structures = _course_structures(plans, opts)
        except (EtlError, OSError) as exc:
            _LOG.warning("course of %d plans not summed: %s", len(plans), exc)
            summary.warnings[f"course not summed: {exc}"[:80]] += 1
        with factory.begin() as session:
            person = session.get(Person, person_id)
            pseudonym = person.person_source_value if person is not None else ""
            if decide(opts.consent, session, pseudonym or "") is not (
                ConsentDecision.LOAD
            ):
                continue
            plan_episodes = [p.episode_id for p in plans]
            course = group_course(session, person_id, plan_episodes)
            if structures is None:
                continue
            delete_course_metrics(session, [course, *plan_episodes])
            write_course_metrics(
                session,
                person_id=person_id,
                episode_id=course,
                day=min(p.course_start for p in plans),
                structures=structures,
                n_plans=len(plans),
            )
        done += 1
    return done


def _course_structures(
    plans: list[CoursePlan], opts: ImportOptions
) -> list[CourseStructure]:
    """Sum the plans and compute the DVHs of the first plan's structures on it."""
    first = plans[0]
    if not first.structure_set_sha256 or not all(p.dose_sha256 for p in plans):
        raise EtlError("a dose or the structure set is not in the file store")
    doses = [
        PlanDose(
            read_rtdose(opts.store.path(p.dose_sha256)),
            p.n_fractions,
            f"RTDOSE {p.dose_uid}",
        )
        for p in plans
    ]
    ratios = opts.alpha_beta or AlphaBeta()
    known = all(p.n_fractions for p in plans)
    wanted = {ratios.oar_gy, ratios.target_gy} if known else set()
    if not known:
        _LOG.warning("course: fractions of a plan unknown; physical sum only")
    course = sum_course(doses, wanted)
    ss = read_rtstruct(opts.store.path(first.structure_set_sha256))
    by_name = {s.roi_name: s for s in first.structures}
    physical = _dvhs(ss, course.physical, by_name)
    eqd2: dict[str, DVH] = {}
    for ab in wanted:
        names = {
            n: s for n, s in by_name.items() if ratios.for_structure(s.is_target) == ab
        }
        eqd2 |= _dvhs(ss, course.eqd2[ab], names)
    out: list[CourseStructure] = []
    for name, dvh in physical.items():
        s = by_name.get(name)
        if s is None:
            continue
        ratio = ratios.for_structure(s.is_target) if name in eqd2 else None
        out.append(
            CourseStructure(
                s.tg263_name or name, s.is_target, dvh, eqd2.get(name), ratio
            )
        )
    return out


def _dvhs(
    ss: StructureSet, grid: DoseGrid, names: Mapping[str, PlanStructure]
) -> dict[str, DVH]:
    """DVHs (by ROI name) of the named structures on one summed grid."""
    if not names:
        return {}
    found = structure_dvhs(ss, grid, names=list(names))
    return {d.roi.name: d.dvh for d in found if d.dvh is not None}
