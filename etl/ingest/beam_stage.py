"""Between resolve and compute: a per-beam dose set becomes its plan dose (issue 18.3).

The RTDOSEs of ``DoseSummationType`` BEAM of one plan (one object per beam) are
grouped by patient and referenced plan. When the set is complete (every beam of the
plan's fraction group, each once: :func:`etl.dose.course.sum_beams`) it is summed
and written as one RTDOSE of type PLAN (:mod:`etl.dicom.beam_sum`) into the file
store; that dose replaces the beam doses among the datasets to compute, with them as
its ``parts`` (stored, recorded and erased with it), so it gets DVHs, metrics, EQD2
and joins course sums like any plan dose. An incomplete set (a beam missing, given
twice or unnamed, or the plan not available) is held with the reason
``beam-set-incomplete`` naming what is missing; held objects join every later run, so
the set is summed when its last beam arrives. Brachytherapy and control-point doses
are not summed (stored, no DVH, as before).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from etl.dicom.beam_sum import write_beam_sum
from etl.dicom.course_files import plan_beam_numbers, read_dose_file
from etl.dicom.enums import DoseSummationType, normalise
from etl.dicom.index import DoseRole, ResolvedDataset, index_bytes
from etl.dicom.rtplan import read_rtplan
from etl.dose.course import BeamDose, sum_beams
from etl.errors import EtlError
from etl.ingest.catalogue import hold_objects
from etl.ingest.qa import Finding, Reason
from etl.ingest.quarantine import release
from etl.store.computed import content_hash
from omop.ingest_tables import IngestDataset

if TYPE_CHECKING:
    from etl.ingest.run import ImportOptions, ImportSummary

__all__ = ["sum_beam_sets"]


def _is_beam(ds: ResolvedDataset) -> bool:
    return ds.role is DoseRole.BEAM and (
        normalise(DoseSummationType, ds.dose.dose_summation_type)
        == DoseSummationType.BEAM
    )


def sum_beam_sets(
    session: Session,
    jobs: list[ResolvedDataset],
    opts: ImportOptions,
    summary: ImportSummary,
    keywords: tuple[str, ...] = (),
) -> list[ResolvedDataset]:
    """Return the datasets to compute, with each complete beam set as its plan dose.

    Parameters
    ----------
    session
        The caller's transaction: holds and releases (never committed here).
    jobs
        The resolved datasets to compute (:func:`etl.ingest.catalogue.sort_datasets`).
    opts
        The import's options (file store, centre).
    summary
        Counts held sets (``datasets_held``, ``quarantined``) and unchanged sums.
    keywords
        Extra header keywords to index (the triggers need them).
    """
    out = [ds for ds in jobs if not _is_beam(ds)]
    sets: dict[tuple[str, str], list[ResolvedDataset]] = defaultdict(list)
    for ds in jobs:
        if _is_beam(ds):
            plan = ds.dose.referenced_plan_uids[:1] or ("",)
            sets[ds.patient_id, plan[0]].append(ds)
    for group in sets.values():
        summed = _sum_set(session, group, opts, summary, keywords)
        if summed is not None:
            out.append(summed)
    return out


def _sum_set(
    session: Session,
    group: list[ResolvedDataset],
    opts: ImportOptions,
    summary: ImportSummary,
    keywords: tuple[str, ...],
) -> ResolvedDataset | None:
    """Sum one plan's beam doses (a dataset to compute), or hold them (None)."""
    group = sorted(group, key=lambda d: d.dose.sop_instance_uid)
    first = group[0]
    try:
        files = [read_dose_file(Path(d.dose.path), None) for d in group]
        plan = read_rtplan(Path(first.plans[0].path)) if first.plans else None
        beams = [
            BeamDose(f.plan.grid, f.plan_uid, f.beam_number, Path(f.path).name)
            for f in files
        ]
        result = sum_beams(beams, plan_beam_numbers(plan, files[0].fraction_group))
        reason = result.reason
    except (EtlError, OSError) as exc:
        result, reason = None, f"beam doses not readable: {exc}"
    if result is None or result.grid is None:
        finding = Finding(Reason.BEAM_SET_INCOMPLETE, f"per-beam dose held: {reason}")
        for ds in group:
            summary.quarantined[finding.reason.value] += hold_objects(
                session, ds.members(), finding, opts, ds.dose.sop_instance_uid
            )
            summary.datasets_held += 1
        return None
    uids = [d.dose.sop_instance_uid for d in group]
    data = write_beam_sum(Path(first.dose.path), result.grid, uids)
    sha = opts.store.put(data)
    dose = index_bytes(data, str(opts.store.path(sha)), sha, keywords)
    summed = replace(
        first, dose=dose, role=DoseRole.PLAN, parts=[d.dose for d in group]
    )
    loaded = session.scalar(
        select(IngestDataset.content_sha256).where(
            IngestDataset.dose_sop_instance_uid == dose.sop_instance_uid
        )
    )
    if loaded == content_hash(summed):
        summary.unchanged += 1
        release(session, [o.sha256 for o in summed.members()])
        return None
    return summed
