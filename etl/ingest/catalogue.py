"""The import's bookkeeping: earlier objects, datasets to compute, held items, retry.

:class:`DbCatalogue` finds the objects loaded earlier (the resolver's second source);
:func:`sort_datasets` decides per resolved dataset whether it is computed, held
(no structure set, no consent yet, ...), unchanged or discarded (consent refused);
:func:`retry_held` and :func:`retry_items` run the import again over held items.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from etl.dicom.enums import PLAN_MODALITIES, Modality
from etl.dicom.index import (
    IndexedObject,
    Resolution,
    ResolvedDataset,
    index_bytes,
    resolve,
)
from etl.errors import EtlError
from etl.ingest.consent import (
    REFUSED_REASON,
    ConsentDecision,
    decide,
    delete_files,
    discard,
)
from etl.ingest.qa import Finding, Reason
from etl.ingest.quarantine import hold, release
from etl.store.computed import content_hash
from etl.store.course import study_day
from omop.cdm import Person
from omop.filestore import FileStore
from omop.ingest_tables import IngestDataset, IngestObject

if TYPE_CHECKING:
    from etl.ingest.run import ImportOptions, ImportSummary

__all__ = [
    "NO_CONSENT",
    "DbCatalogue",
    "consent_changed",
    "hold_objects",
    "retry_held",
    "retry_items",
    "sort_datasets",
]

#: The finding of a dataset whose patient has no recorded consent yet.
NO_CONSENT = Finding(
    Reason.NO_CONSENT, "no recorded consent to data use; held until it is"
)


class DbCatalogue:
    """Objects loaded earlier (current versions), indexed from the file store."""

    def __init__(self, session: Session, store: FileStore) -> None:
        self.session = session
        self.store = store
        self._cache: dict[str, IndexedObject] = {}

    def _index(self, sha: str) -> IndexedObject | None:
        if sha not in self._cache:
            try:
                self._cache[sha] = index_bytes(
                    self.store.get(sha), str(self.store.path(sha)), sha
                )
            except (EtlError, OSError):
                return None
        return self._cache[sha]

    def by_sop(self, sop_instance_uid: str) -> IndexedObject | None:
        """Return the current version of an object, or None."""
        sha = self.session.scalar(
            select(IngestObject.sha256).where(
                IngestObject.sop_instance_uid == sop_instance_uid,
                IngestObject.current.is_(True),
            )
        )
        return self._index(sha) if sha else None

    def by_series(
        self, series_instance_uid: str, exclude: frozenset[str] = frozenset()
    ) -> list[IndexedObject]:
        """Return the current objects of a series (but those whose UID is excluded)."""
        rows = self.session.execute(
            select(IngestObject.sop_instance_uid, IngestObject.sha256).where(
                IngestObject.series_instance_uid == series_instance_uid,
                IngestObject.current.is_(True),
            )
        ).all()
        found = (self._index(sha) for uid, sha in rows if uid not in exclude)
        return [o for o in found if o is not None]

    def structure_sets(self, patient_id: str, frame_uid: str) -> list[IndexedObject]:
        """Return the current structure sets of a patient in a frame of reference."""
        uids = self.session.scalars(
            select(IngestDataset.structure_set_sop_instance_uid)
            .join(Person, Person.person_id == IngestDataset.person_id)
            .where(
                Person.person_source_value == patient_id,
                IngestDataset.frame_of_reference_uid == frame_uid,
            )
            .distinct()
        ).all()
        return [o for o in (self.by_sop(u) for u in uids) if o is not None]

    def doses_using_changed(
        self, objects: Sequence[IndexedObject]
    ) -> list[IndexedObject]:
        """Return the current doses of loaded datasets that use a changed object.

        An object is changed when its SOP Instance UID is loaded with other content;
        doses among ``objects`` are not returned again.
        """
        by_uid = {o.sop_instance_uid: o for o in objects}
        uids = sorted(by_uid)
        changed: list[IndexedObject] = []
        for start in range(0, len(uids), 500):
            rows = self.session.execute(
                select(IngestObject.sop_instance_uid, IngestObject.sha256).where(
                    IngestObject.sop_instance_uid.in_(uids[start : start + 500]),
                    IngestObject.current.is_(True),
                )
            ).all()
            changed += [by_uid[u] for u, sha in rows if by_uid[u].sha256 != sha]
        if not changed:
            return []
        condition = []
        for obj in changed:
            if obj.modality == Modality.RTSTRUCT:
                condition.append(
                    IngestDataset.structure_set_sop_instance_uid == obj.sop_instance_uid
                )
            elif obj.modality in PLAN_MODALITIES:
                condition.append(
                    IngestDataset.plan_sop_instance_uid.contains(obj.sop_instance_uid)
                )
            else:
                condition.append(
                    IngestDataset.ct_series_instance_uid == obj.series_instance_uid
                )
        doses = set(
            self.session.scalars(
                select(IngestDataset.dose_sop_instance_uid).where(or_(*condition))
            )
        )
        doses -= set(by_uid)
        return [o for o in (self.by_sop(u) for u in sorted(doses)) if o is not None]


def hold_objects(
    session: Session,
    objects: Iterable[IndexedObject],
    finding: Finding,
    opts: ImportOptions,
    group: str,
) -> int:
    """Hold pseudonymised objects (stored) with one finding; return how many."""
    n = 0
    for obj in objects:
        hold(
            session,
            path=obj.path,
            source_path=obj.path,
            sha256=obj.sha256,
            finding=finding,
            centre=opts.centre,
            pseudonymised=True,
            person_source_value=obj.patient_id[:50] or None,
            group_key=group[:64],
        )
        n += 1
    return n


def _hold_orphans(
    session: Session,
    resolution: Resolution,
    opts: ImportOptions,
    summary: ImportSummary,
) -> list[str]:
    """Hold the objects no dose uses yet; return the hashes of refused ones."""
    known = set(
        session.scalars(
            select(IngestObject.sha256).where(
                IngestObject.sha256.in_([o.sha256 for o in resolution.orphans] or [""])
            )
        )
    )
    discarded: list[str] = []
    for orphan in resolution.orphans:
        if orphan.sha256 in known:
            continue  # part of a dataset loaded earlier
        if decide(opts.consent, session, orphan.patient_id) is ConsentDecision.REFUSE:
            summary.refused[REFUSED_REASON] += 1
            discarded.append(orphan.sha256)
            continue
        summary.quarantined[Reason.AWAITING_DOSE.value] += hold_objects(
            session,
            [orphan],
            Finding(Reason.AWAITING_DOSE, f"{orphan.modality}: no RTDOSE uses it yet"),
            opts,
            orphan.study_instance_uid,
        )
    return discarded


def _held_because(ds: ResolvedDataset, decision: ConsentDecision) -> Finding | None:
    """Return why a dataset is held rather than computed, or None."""
    if ds.structure_set is None:
        return Finding(
            Reason.NO_STRUCTURE_SET, "no structure set to pair the dose with"
        )
    if ds.structure_set.frame_of_reference_uid != ds.dose.frame_of_reference_uid:
        return Finding(
            Reason.FRAME_OF_REFERENCE_MISMATCH,
            "structure set and dose are in different frames of reference",
        )
    if study_day(ds) is None:
        return Finding(
            Reason.NO_STUDY_DATE,
            "no readable StudyDate in the RTDOSE or RTPLAN: the RT course "
            "start is unknown; not loaded",
        )
    if decision is ConsentDecision.HOLD:
        return NO_CONSENT
    return None


def sort_datasets(
    session: Session,
    objects: list[IndexedObject],
    opts: ImportOptions,
    summary: ImportSummary,
) -> tuple[list[ResolvedDataset], list[str]]:
    """Resolve the prepared objects and decide what becomes of each dataset.

    Datasets that use an object changed since it was loaded are resolved again. Held
    and unchanged datasets are counted in ``summary``.

    Returns
    -------
    tuple of (list of ResolvedDataset, list of str)
        The datasets to compute, and the hashes of objects to discard (consent
        refused).
    """
    catalogue = DbCatalogue(session, opts.store)
    # A changed object (same UID, new content) re-loads the datasets using it.
    objects.extend(catalogue.doses_using_changed(objects))
    resolution = resolve(objects, catalogue)
    discarded = _hold_orphans(session, resolution, opts, summary)
    existing = dict(
        session.execute(
            select(IngestDataset.dose_sop_instance_uid, IngestDataset.content_sha256)
        ).all()
    )
    jobs: list[ResolvedDataset] = []
    for ds in resolution.datasets:
        group = ds.dose.sop_instance_uid
        decision = decide(opts.consent, session, ds.patient_id)
        if decision is ConsentDecision.REFUSE:
            summary.refused[REFUSED_REASON] += len(ds.members())
            discarded += [o.sha256 for o in ds.members()]
            continue
        finding = _held_because(ds, decision)
        if finding is not None:
            summary.quarantined[finding.reason.value] += hold_objects(
                session, ds.members(), finding, opts, group
            )
            summary.datasets_held += 1
            continue
        if existing.get(group) == content_hash(ds):
            summary.unchanged += 1
            release(session, [o.sha256 for o in ds.members()])
            continue
        jobs.append(ds)
    return jobs, discarded


def consent_changed(
    factory: sessionmaker[Session],
    resolved: ResolvedDataset,
    opts: ImportOptions,
    summary: ImportSummary,
    decision: ConsentDecision,
) -> None:
    """Hold (no consent yet) or discard (declined, withdrawn) a dataset not loaded."""
    members = list(resolved.members())
    group = resolved.dose.sop_instance_uid
    with factory.begin() as session:
        if decision is ConsentDecision.REFUSE:
            summary.refused[REFUSED_REASON] += len(members)
            orphans = discard(session, [o.sha256 for o in members])
        else:
            summary.quarantined[Reason.NO_CONSENT.value] += hold_objects(
                session, members, NO_CONSENT, opts, group
            )
            summary.datasets_held += 1
            orphans = []
    delete_files(opts.store, orphans)


def retry_held(factory: sessionmaker[Session], opts: ImportOptions) -> ImportSummary:
    """Retry every held item that waits (consent, a missing object); no new files.

    This is what the cohort side calls after recording a consent.
    """
    from etl.ingest.run import run_import

    return run_import(factory, [], opts)


def retry_items(
    factory: sessionmaker[Session], quarantine_ids: Sequence[int], opts: ImportOptions
) -> ImportSummary:
    """Retry chosen quarantine rows (``rtcohort quarantine retry ID``).

    Pseudonymised files go straight to resolution; files held as received are
    pseudonymised again (``opts.key`` needed). A retried row whose file now passes
    is released; the run loads what it can.
    """
    from etl.ingest.run import run_import
    from omop.ingest_tables import QuarantineItem

    with factory.begin() as session:
        items = [session.get(QuarantineItem, i) for i in quarantine_ids]
        missing = [
            i for i, item in zip(quarantine_ids, items, strict=True) if item is None
        ]
        if missing:
            raise EtlError(f"no quarantine item {missing[0]}")
        chosen = [
            (item.path, item.pseudonymised, item.quarantine_id)
            for item in items
            if item
        ]
    summary = run_import(factory, [], opts, extra=[(p, done) for p, done, _ in chosen])
    from datetime import UTC, datetime

    with factory.begin() as session:
        for path, _done, qid in chosen:
            item = session.get(QuarantineItem, qid)
            if (
                item is not None
                and item.status == "held"
                and path not in summary.held_sources
            ):
                still = item.reason_code in {
                    r.value
                    for r in (
                        Reason.NO_CONSENT,
                        Reason.NO_STRUCTURE_SET,
                        Reason.AWAITING_DOSE,
                        Reason.LOAD_FAILED,
                        Reason.DOSE_UNUSABLE,
                        Reason.FRAME_OF_REFERENCE_MISMATCH,
                        Reason.DOSE_IMPLAUSIBLE,
                        Reason.NO_CONTOURS,
                    )
                }
                if not still:
                    item.status = "released"
                    item.resolved_at = datetime.now(UTC)
    return summary
