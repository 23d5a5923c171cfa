"""The import pipeline: pseudonymise, check, index, resolve, compute DVHs, load.

Stages (``rtcohort import`` drives them):

1. *prepare* each file (workers): integrity check, pseudonymisation (objects already
   pseudonymised with this key pass unchanged), into the file store, header index;
   a blocking problem holds the file as received;
2. *resolve* (main): datasets per RTDOSE, with objects that arrived earlier; held
   objects that wait for something (consent, a structure set, a dose) join every run;
3. *compute* (workers): dose grid, structures, plan, DVH per structure, warnings;
4. *load* (main, one transaction per dataset, as results arrive).

Re-importing the same files finds every dataset unchanged (by content hash) and
writes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from etl.deid.keys import CentreKey
from etl.deid.pseudonymise import DeidOutcome, deidentify_bytes
from etl.dicom.enums import PLAN_MODALITIES, Modality
from etl.dicom.index import (
    DoseRole,
    IndexedObject,
    ResolvedDataset,
    index_bytes,
    resolve,
)
from etl.dose.metrics import evaluate
from etl.dose.structures import structure_dvhs
from etl.errors import EtlError, OutsideGridWarning
from etl.ingest.consent import (
    REFUSED_REASON,
    ConsentChangedError,
    ConsentCheck,
    ConsentDecision,
    decide,
    delete_files,
    discard,
)
from etl.ingest.files import collect_files, read_file, scan_import_paths
from etl.ingest.plausibility import plausibility_findings
from etl.ingest.qa import (
    Finding,
    Reason,
    check_ct_series,
    check_integrity,
    check_prescription,
    classify_deid_refusal,
)
from etl.ingest.quarantine import held_items, hold, release, stash_raw
from etl.ingest.triggers import (
    TriggerRule,
    active_triggers,
    keywords_needed,
    projects_for,
)
from etl.mapping.naming import RuleSet, current_rules, ensure_default_rules, is_target
from etl.store.computed import ComputedDataset, ComputedStructure, content_hash
from etl.store.course import study_day
from etl.store.dvh_rows import AlphaBeta
from etl.store.load import load_dataset
from omop.cdm import Person
from omop.errors import RTCohortError
from omop.filestore import FileStore
from omop.filestore_gc import collect_garbage
from omop.ingest_tables import IngestDataset, IngestObject

__all__ = [
    "ConsentCheck",
    "ImportOptions",
    "ImportSummary",
    "ProjectAttach",
    "WriteCheck",
    "collect_files",
    "run_import",
]

_LOG = logging.getLogger(__name__)

#: ``(session, project_code, person_id, rule_text) -> None``: attach to a project.
ProjectAttach = Callable[[Session, str, int, str], None]
#: ``(session, centre) -> None``: raise unless the acting user may write there.
WriteCheck = Callable[[Session, str], None]


@dataclass
class ImportOptions:
    """How to import (see :func:`run_import`)."""

    centre: str
    key: CentreKey | None
    store: FileStore
    quarantine_dir: Path
    consent: ConsentCheck | None = None
    attach: ProjectAttach | None = None
    authorise: WriteCheck | None = None  # checked before anything is read
    project: str | None = None
    workers: int = 1
    alpha_beta: AlphaBeta = field(default_factory=AlphaBeta)
    retry_held: bool = True
    dvh_samples: int | None = None  # None: the engine default, as `rtcohort dvh`
    progress: Callable[[str, int, int], None] | None = None


@dataclass
class ImportSummary:
    """What one run did; ``quarantined`` counts held files by reason code.

    ``refused`` counts by reason the paths not read at all (a symbolic link out of the
    import root, :mod:`etl.ingest.files`); ``refused_sources`` names them.
    """

    files: int = 0
    loaded: int = 0
    unchanged: int = 0
    datasets_held: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    refused_sources: list[str] = field(default_factory=list)
    unmapped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    attached: Counter[str] = field(default_factory=Counter)
    held_sources: set[str] = field(default_factory=set)
    read_s: float = 0.0
    dvh_s: float = 0.0
    load_s: float = 0.0
    wall_s: float = 0.0
    #: Orphan files of crashed imports removed from the store at the start (and bytes).
    orphans_removed: int = 0
    orphan_bytes: int = 0

    def as_dict(self) -> dict[str, object]:
        """Return the summary as plain data (JSON-serialisable)."""
        return {
            "files": self.files,
            "datasets_loaded": self.loaded,
            "datasets_unchanged": self.unchanged,
            "datasets_held": self.datasets_held,
            "quarantined": dict(self.quarantined),
            "refused": dict(self.refused),
            "unmapped_structures": dict(self.unmapped),
            "warnings": dict(self.warnings),
            "attached": dict(self.attached),
            "seconds": {
                "read": round(self.read_s, 3),
                "dvh": round(self.dvh_s, 3),
                "load": round(self.load_s, 3),
                "wall": round(self.wall_s, 3),
            },
        }


# -- stage 1: prepare one file (runs in a worker) -----------------------------------


@dataclass(frozen=True)
class _Source:
    path: str
    pseudonymised: bool = False


@dataclass
class _Prepared:
    source: str
    obj: IndexedObject | None = None
    finding: Finding | None = None
    held_path: str = ""
    sha256: str = ""
    seconds: float = 0.0


def _prepare(
    src: _Source,
    key: CentreKey,
    store_root: str,
    quarantine_dir: str,
    keywords: tuple[str, ...],
) -> _Prepared:
    start = time.perf_counter()
    out = _Prepared(src.path)
    try:
        data = read_file(src.path)
    except OSError as exc:
        out.finding = Finding(
            Reason.UNREADABLE, f"cannot read the file ({exc.strerror})"
        )
        out.seconds = time.perf_counter() - start
        return out
    raw_sha = hashlib.sha256(data).hexdigest()

    def held(finding: Finding) -> _Prepared:
        out.finding = finding
        out.sha256 = raw_sha
        out.held_path = (
            src.path
            if src.pseudonymised
            else str(stash_raw(Path(quarantine_dir), data))
        )
        out.seconds = time.perf_counter() - start
        return out

    problem = check_integrity(data)
    if problem is not None:
        return held(problem)
    if not src.pseudonymised:
        if key is None:
            return held(
                Finding(Reason.UNREADABLE, "not pseudonymised and no key given")
            )
        result = deidentify_bytes(data, key)
        if result.outcome is DeidOutcome.QUARANTINED or result.data is None:
            return held(Finding(classify_deid_refusal(result.reason), result.reason))
        data = result.data
    store = FileStore(Path(store_root))
    sha = store.put(data)
    try:
        out.obj = index_bytes(data, str(store.path(sha)), sha, keywords)
    except EtlError as exc:
        return held(Finding(Reason.UNREADABLE, str(exc)))
    out.sha256 = sha
    out.seconds = time.perf_counter() - start
    return out


# -- stage 3: compute one dataset (runs in a worker) ----------------------------------


@dataclass
class _Computed:
    resolved: ResolvedDataset
    dataset: ComputedDataset | None
    finding: Finding | None
    read_s: float
    dvh_s: float


@contextmanager
def _numpy_ds() -> Iterator[None]:
    """Parse DS values (ContourData) with numpy: same numbers, ~10x faster."""
    import pydicom.config

    previous = pydicom.config.use_DS_numpy
    pydicom.config.use_DS_numpy = True
    try:
        yield
    finally:
        pydicom.config.use_DS_numpy = previous


def _ct_findings(resolved: ResolvedDataset) -> list[Finding]:
    ss = resolved.structure_set
    assert ss is not None
    if not ss.referenced_series_uids and not resolved.ct:
        return [
            Finding(Reason.CT_MISSING, "the structure set references no image series")
        ]
    positions = [
        o.slice_position_mm for o in resolved.ct if o.slice_position_mm is not None
    ]
    return check_ct_series(
        positions, ss.referenced_image_uids, [o.sop_instance_uid for o in resolved.ct]
    )


def _compute(resolved: ResolvedDataset, dvh_samples: int | None = None) -> _Computed:
    from etl.dicom.rtdose import read_rtdose
    from etl.dicom.rtplan import read_rtplan
    from etl.dicom.rtstruct import read_rtstruct

    t0 = time.perf_counter()
    assert resolved.structure_set is not None
    try:
        grid = read_rtdose(resolved.dose.path)
    except EtlError as exc:
        return _Computed(
            resolved,
            None,
            Finding(Reason.DOSE_UNUSABLE, str(exc)),
            time.perf_counter() - t0,
            0.0,
        )
    try:
        with _numpy_ds():
            ss = read_rtstruct(resolved.structure_set.path)
    except EtlError as exc:
        return _Computed(
            resolved,
            None,
            Finding(Reason.NO_STRUCTURE_SET, f"structure set unreadable: {exc}"),
            time.perf_counter() - t0,
            0.0,
        )
    findings = _ct_findings(resolved)
    n_fractions: int | None = None
    prescription: float | None = None
    intent = label = ""
    target_roi: int | None = None
    if resolved.missing_plan_uids or not resolved.plans:
        findings.append(
            Finding(
                Reason.PLAN_MISSING,
                "the dose's RT plan did not arrive: fractions unknown, no EQD2",
            )
        )
    for plan_obj in resolved.plans:
        try:
            plan = read_rtplan(plan_obj.path)
        except EtlError as exc:
            findings.append(Finding(Reason.PLAN_MISSING, f"plan unreadable: {exc}"))
            continue
        label = label or plan.label
        intent = intent or plan_obj.plan_intent
        if plan.number_of_fractions:
            n_fractions = (n_fractions or 0) + plan.number_of_fractions
        rx = [
            r for r in plan.dose_references if r.target_prescription_dose_gy is not None
        ]
        if rx:
            prescription = (prescription or 0.0) + float(
                rx[0].target_prescription_dose_gy or 0.0
            )
            target_roi = target_roi or rx[0].referenced_roi_number
    course_fractions = n_fractions
    if resolved.role is DoseRole.PLAN_SUM and len(resolved.plans) > 1:
        n_fractions = None  # fractions of a sum of plans are not one number for EQD2
        findings.append(
            Finding(
                Reason.PLAN_MISSING, "plan sum: EQD2 needs per-plan doses; not computed"
            )
        )
    findings[:0] = plausibility_findings(
        grid, ss, role=resolved.role, prescription_gy=prescription,
        n_fractions=n_fractions, n_plans=len(resolved.plans),
    )  # fmt: skip
    if findings and findings[0].blocking:
        return _Computed(resolved, None, findings[0], time.perf_counter() - t0, 0.0)
    read_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    structures: list[ComputedStructure] = []
    if resolved.role is DoseRole.BEAM:
        findings.append(
            Finding(
                Reason.BEAM_DOSE_ONLY,
                "per-beam dose: stored, no DVH (not a course dose)",
            )
        )
    else:
        outside: list[str] = []
        for done in structure_dvhs(ss, grid, target_samples=dvh_samples):
            roi = done.roi
            if done.error is not None:
                findings.append(
                    Finding(
                        Reason.STRUCTURE_UNUSABLE, f"ROI {roi.number}: {done.error}"
                    )
                )
                continue
            if done.dvh is None:  # no contours, or not CLOSED_PLANAR
                continue
            dvh = done.dvh
            if done.warned(OutsideGridWarning) or dvh.outside_grid_cc > 0:
                outside.append(
                    f"{roi.name} ({dvh.outside_grid_cc:.2f} of {dvh.volume_cc:.2f} cc)"
                )
            structures.append(
                ComputedStructure(roi.number, roi.name, roi.interpreted_type, dvh)
            )
        if outside:
            findings.append(
                Finding(
                    Reason.OUTSIDE_DOSE_GRID,
                    "partly outside the dose grid: " + "; ".join(outside),
                )
            )
        target = next((s for s in structures if s.roi_number == target_roi), None)
        if target is None:
            target = next(
                (s for s in structures if is_target(None, s.interpreted_type)), None
            )
        if target is not None and resolved.role is DoseRole.PLAN:
            found = check_prescription(evaluate(target.dvh, "D95%[Gy]"), prescription)
            if found is not None:
                findings.append(found)
    dvh_s = time.perf_counter() - t1
    computed = ComputedDataset(
        resolved=resolved,
        structures=structures,
        findings=findings,
        n_fractions=n_fractions,
        course_fractions=course_fractions,
        prescription_gy=prescription,
        plan_intent=intent,
        plan_label=label,
        compute_metrics=resolved.role is not DoseRole.BEAM,
    )
    return _Computed(resolved, computed, None, read_s, dvh_s)


# -- the earlier objects -------------------------------------------------------


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


# -- the run -------------------------------------------------------------------


class _Runner:
    """Runs jobs inline (one worker) or in a process pool."""

    def __init__(self, workers: int) -> None:
        self.pool = (
            ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
            if workers > 1
            else None
        )

    def map(
        self, fn: Callable[..., object], items: Sequence[object], *args: object
    ) -> Iterator[object]:
        if self.pool is None:
            for item in items:
                yield fn(item, *args)
            return
        futures: list[Future[object]] = [
            self.pool.submit(fn, item, *args) for item in items
        ]
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            yield fut.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


_NO_CONSENT = Finding(
    Reason.NO_CONSENT, "no recorded consent to data use; held until it is"
)


def _refused(
    session: Session,
    opts: ImportOptions,
    pseudonym: str,
    objects: Sequence[IndexedObject],
    summary: ImportSummary,
) -> bool:
    """Whether the patient declined or withdrew (then counted as refused)."""
    if decide(opts.consent, session, pseudonym) is not ConsentDecision.REFUSE:
        return False
    summary.refused[REFUSED_REASON] += len(objects)
    return True


def _hold_objects(
    session: Session,
    objects: Iterable[IndexedObject],
    finding: Finding,
    opts: ImportOptions,
    group: str,
) -> int:
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


def run_import(
    factory: sessionmaker[Session],
    paths: Sequence[Path],
    opts: ImportOptions,
    *,
    extra: Sequence[tuple[str, bool]] = (),
) -> ImportSummary:
    """Import every DICOM file under ``paths``; see the module notes.

    Parameters
    ----------
    factory
        Session factory; each dataset is loaded in its own transaction.
    paths
        Files or folders (files with or without a Part-10 header).
    opts
        Centre, key, file store, quarantine folder, hooks and workers.
    """
    started = time.perf_counter()
    summary = ImportSummary()
    with factory.begin() as session:
        if opts.authorise is not None:
            opts.authorise(session, opts.centre)
        ensure_default_rules(session)
        rules = current_rules(session)
        triggers = active_triggers(session)
        held = held_items(session, centre=opts.centre) if opts.retry_held else []
        held_paths = {h.path for h in held}
        gc = collect_garbage(session, opts.store)  # files of a crashed import
        summary.orphans_removed, summary.orphan_bytes = gc.files, gc.bytes
    scan = scan_import_paths(paths)
    for refused in scan.refused:
        _LOG.warning("refused %s: %s", refused.path, refused.reason.value)
        summary.refused[refused.reason.value] += 1
        summary.refused_sources.append(str(refused.path))
    sources = [_Source(str(p)) for p in scan.files]
    sources += [_Source(p, pseudonymised=True) for p in sorted(held_paths)]
    sources += [_Source(p, pseudonymised=done) for p, done in extra]
    summary.files = len(sources)
    keywords = keywords_needed(triggers)
    runner = _Runner(opts.workers)
    try:
        objects: list[IndexedObject] = []
        with factory.begin() as session:
            for n, result in enumerate(
                runner.map(
                    _prepare,
                    sources,
                    opts.key,
                    str(opts.store.root),
                    str(opts.quarantine_dir),
                    keywords,
                ),
                1,
            ):
                assert isinstance(result, _Prepared)
                summary.read_s += result.seconds
                if result.obj is not None:
                    objects.append(result.obj)
                elif result.finding is not None:
                    hold(
                        session,
                        path=result.held_path,
                        source_path=result.source,
                        sha256=result.sha256 or "0" * 64,
                        finding=result.finding,
                        centre=opts.centre,
                        pseudonymised=result.held_path != ""
                        and result.held_path in held_paths,
                    )
                    summary.quarantined[result.finding.reason.value] += 1
                    summary.held_sources.add(result.source)
                if opts.progress:
                    opts.progress("prepare", n, len(sources))
        jobs: list[ResolvedDataset] = []
        with factory.begin() as session:
            catalogue = DbCatalogue(session, opts.store)
            # A changed object (same UID, new content) re-loads the datasets using it.
            for dose in catalogue.doses_using_changed(objects):
                objects.append(dose)
            resolution = resolve(objects, catalogue)
            known = set(
                session.scalars(
                    select(IngestObject.sha256).where(
                        IngestObject.sha256.in_(
                            [o.sha256 for o in resolution.orphans] or [""]
                        )
                    )
                )
            )
            discarded: list[str] = []
            for orphan in resolution.orphans:
                if orphan.sha256 in known:
                    continue  # part of a dataset loaded earlier
                if _refused(session, opts, orphan.patient_id, [orphan], summary):
                    discarded.append(orphan.sha256)
                    continue
                summary.quarantined[Reason.AWAITING_DOSE.value] += _hold_objects(
                    session,
                    [orphan],
                    Finding(
                        Reason.AWAITING_DOSE,
                        f"{orphan.modality}: no RTDOSE uses it yet",
                    ),
                    opts,
                    orphan.study_instance_uid,
                )
            existing = dict(
                session.execute(
                    select(
                        IngestDataset.dose_sop_instance_uid,
                        IngestDataset.content_sha256,
                    )
                ).all()
            )
            for ds in resolution.datasets:
                group = ds.dose.sop_instance_uid
                decision = decide(opts.consent, session, ds.patient_id)
                if decision is ConsentDecision.REFUSE:
                    summary.refused[REFUSED_REASON] += len(ds.members())
                    discarded += [o.sha256 for o in ds.members()]
                    continue
                finding: Finding | None = None
                if ds.structure_set is None:
                    finding = Finding(
                        Reason.NO_STRUCTURE_SET,
                        "no structure set to pair the dose with",
                    )
                elif (
                    ds.structure_set.frame_of_reference_uid
                    != ds.dose.frame_of_reference_uid
                ):
                    finding = Finding(
                        Reason.FRAME_OF_REFERENCE_MISMATCH,
                        "structure set and dose are in different frames of reference",
                    )
                elif study_day(ds) is None:
                    finding = Finding(
                        Reason.NO_STUDY_DATE,
                        "no readable StudyDate in the RTDOSE or RTPLAN: the RT course "
                        "start is unknown; not loaded",
                    )
                elif decision is ConsentDecision.HOLD:
                    finding = _NO_CONSENT
                if finding is not None:
                    summary.quarantined[finding.reason.value] += _hold_objects(
                        session, ds.members(), finding, opts, group
                    )
                    summary.datasets_held += 1
                    continue
                if existing.get(group) == content_hash(ds):
                    summary.unchanged += 1
                    release(session, [o.sha256 for o in ds.members()])
                    continue
                jobs.append(ds)
            discarded = discard(session, discarded)
        delete_files(opts.store, discarded)
        for n, result in enumerate(runner.map(_compute, jobs, opts.dvh_samples), 1):
            assert isinstance(result, _Computed)
            summary.read_s += result.read_s
            summary.dvh_s += result.dvh_s
            t0 = time.perf_counter()
            if result.dataset is None:
                assert result.finding is not None
                with factory.begin() as session:
                    summary.quarantined[result.finding.reason.value] += _hold_objects(
                        session, result.resolved.members(), result.finding, opts,
                        result.resolved.dose.sop_instance_uid,
                    )  # fmt: skip
                summary.datasets_held += 1
            else:
                _load_one(factory, result.dataset, opts, rules, triggers, summary)
            summary.load_s += time.perf_counter() - t0
            if opts.progress:
                opts.progress("load", n, len(jobs))
    finally:
        runner.close()
    summary.wall_s = time.perf_counter() - started
    return summary


def _load_one(  # noqa: PLR0917
    factory: sessionmaker[Session],
    computed: ComputedDataset,
    opts: ImportOptions,
    rules: RuleSet,
    triggers: Sequence[TriggerRule],
    summary: ImportSummary,
) -> None:
    resolved = computed.resolved
    mapped = [
        rules.map(s.roi_name, opts.centre).tg263_name for s in computed.structures
    ]
    dupes = sorted({m for m in mapped if m and mapped.count(m) > 1})
    if dupes:
        computed.findings.append(
            Finding(
                Reason.DUPLICATE_STRUCTURE,
                "several structures map to " + ", ".join(dupes),
            )
        )
    try:
        with factory.begin() as session:
            decision = decide(opts.consent, session, resolved.patient_id)
            if decision is not ConsentDecision.LOAD:  # changed since resolution
                raise ConsentChangedError(decision)
            result = load_dataset(
                session,
                computed,
                centre=opts.centre,
                store=opts.store,
                rules=rules,
                alpha_beta=opts.alpha_beta,
            )
            wanted = projects_for(triggers, resolved, opts.centre)
            if opts.project:
                wanted.append((opts.project, "rtcohort import --project"))
            for project, rule_text in wanted:
                if opts.attach is None:
                    _LOG.warning("no project hook: dataset not attached to %s", project)
                    continue
                try:
                    opts.attach(session, project, result.person_id, rule_text)
                except RTCohortError as exc:  # expired project, no consent: a warning
                    summary.warnings[f"not attached to {project}: {exc}"[:80]] += 1
                    continue
                summary.attached[project] += 1
            release(session, [o.sha256 for o in resolved.members()])
    except ConsentChangedError as changed:
        _consent_changed(factory, resolved, opts, summary, changed.decision)
        return
    except Exception as exc:  # one dataset must not stop the run; nothing is lost
        _LOG.warning("load of dose %s failed: %s", resolved.dose.sop_instance_uid, exc)
        with factory.begin() as session:
            finding = Finding(Reason.LOAD_FAILED, f"{type(exc).__name__}: {exc}"[:500])
            summary.quarantined[finding.reason.value] += _hold_objects(
                session,
                resolved.members(),
                finding,
                opts,
                resolved.dose.sop_instance_uid,
            )
            summary.datasets_held += 1
        return
    summary.loaded += 1
    for name in result.unmapped:
        summary.unmapped[name] += 1
    for f in computed.findings:
        summary.warnings[f.reason.value] += 1


def _consent_changed(
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
            summary.quarantined[Reason.NO_CONSENT.value] += _hold_objects(
                session, members, _NO_CONSENT, opts, group
            )
            summary.datasets_held += 1
            orphans = []
    delete_files(opts.store, orphans)


def retry_held(factory: sessionmaker[Session], opts: ImportOptions) -> ImportSummary:
    """Retry every held item that waits (consent, a missing object); no new files.

    This is what the cohort side calls after recording a consent.
    """
    return run_import(factory, [], opts)


def retry_items(
    factory: sessionmaker[Session], quarantine_ids: Sequence[int], opts: ImportOptions
) -> ImportSummary:
    """Retry chosen quarantine rows (``rtcohort quarantine retry ID``).

    Pseudonymised files go straight to resolution; files held as received are
    pseudonymised again (``opts.key`` needed). A retried row whose file now passes
    is released; the run loads what it can.
    """
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
