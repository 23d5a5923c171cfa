"""The import pipeline: pseudonymise, check, index, resolve, compute DVHs, load.

Stages (``rtcohort import`` drives them):

1. *prepare* each file (workers): integrity check, pseudonymisation (objects already
   pseudonymised with this key pass unchanged), into the file store, header index;
   a blocking problem holds the file as received;
2. *resolve* (main): datasets per RTDOSE, with objects that arrived earlier; held
   objects that wait for something (consent, a structure set, a dose) join every run;
   per-beam dose sets summed or held (:mod:`etl.ingest.beam_stage`);
3. *compute* (workers): dose grid, structures, plan, DVH per structure, warnings;
4. *load* (main, one transaction per dataset, as results arrive).

Re-importing the same files finds every dataset unchanged (by content hash) and
writes nothing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from etl.deid.keys import CentreKey
from etl.dicom.index import IndexedObject
from etl.errors import StageInterruptedError
from etl.ingest.beam_stage import sum_beam_sets
from etl.ingest.catalogue import consent_changed, hold_objects, sort_datasets
from etl.ingest.compute import Computed
from etl.ingest.compute import compute_dataset as _compute
from etl.ingest.consent import (
    ConsentChangedError,
    ConsentCheck,
    ConsentDecision,
    decide,
    delete_files,
    discard,
)
from etl.ingest.course_stage import sum_courses
from etl.ingest.executor import Executor, Lost, open_executor
from etl.ingest.files import collect_files, scan_import_paths
from etl.ingest.prepare import Prepared, Source
from etl.ingest.prepare import prepare_file as _prepare
from etl.ingest.qa import Finding, Reason
from etl.ingest.quarantine import held_items, hold, release
from etl.ingest.triggers import (
    TriggerRule,
    active_triggers,
    keywords_needed,
    projects_for,
)
from etl.mapping.naming import RuleSet, current_rules, ensure_default_rules
from etl.store.computed import ComputedDataset
from etl.store.dvh_rows import AlphaBeta
from etl.store.load import load_dataset
from omop.errors import RTCohortError
from omop.filestore import FileStore
from omop.filestore_gc import collect_garbage

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
    scheduler: str | None = None  # a Dask scheduler, tcp://HOST:PORT (not with workers)
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
    #: Datasets not computed because their Dask workers died (the next run loads them).
    lost: int = 0
    read_s: float = 0.0
    dvh_s: float = 0.0
    load_s: float = 0.0
    wall_s: float = 0.0
    #: Orphan files of crashed imports removed from the store at the start (and bytes).
    orphans_removed: int = 0
    orphan_bytes: int = 0
    courses: int = 0  # courses of several plans summed (:mod:`etl.ingest.course_stage`)
    touched: set[tuple[int, str]] = field(default_factory=set)

    def as_dict(self) -> dict[str, object]:
        """Return the summary as plain data (JSON-serialisable)."""
        return {
            "files": self.files,
            "datasets_loaded": self.loaded,
            "datasets_unchanged": self.unchanged,
            "datasets_held": self.datasets_held,
            "datasets_lost": self.lost,
            "quarantined": dict(self.quarantined),
            "refused": dict(self.refused),
            "unmapped_structures": dict(self.unmapped),
            "warnings": dict(self.warnings),
            "attached": dict(self.attached),
            "courses_summed": self.courses,
            "seconds": {
                "read": round(self.read_s, 3),
                "dvh": round(self.dvh_s, 3),
                "load": round(self.load_s, 3),
                "wall": round(self.wall_s, 3),
            },
        }


# -- the run -------------------------------------------------------------------


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
    extra
        More ``(path, pseudonymised)`` files (quarantine items to retry).
    """
    started = time.perf_counter()
    summary = ImportSummary()
    runner = open_executor(opts.workers, opts.scheduler)
    try:
        _run(factory, paths, opts, extra, runner, summary)
    finally:
        runner.close()
    summary.wall_s = time.perf_counter() - started
    return summary


def _run(  # noqa: PLR0917
    factory: sessionmaker[Session],
    paths: Sequence[Path],
    opts: ImportOptions,
    extra: Sequence[tuple[str, bool]],
    runner: Executor,
    summary: ImportSummary,
) -> None:
    """Run the stages of :func:`run_import` with ``runner``."""
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
    sources = _sources(paths, held_paths, extra, summary)
    words = keywords_needed(triggers)
    objects = _prepare_all(factory, runner, sources, opts, words, held_paths, summary)
    opts.store.sync()  # the prepared files are durable before any row names them
    with factory.begin() as session:
        jobs, discarded = sort_datasets(session, objects, opts, summary)
        jobs = sum_beam_sets(session, jobs, opts, summary, words)
        discarded = discard(session, discarded)
    delete_files(opts.store, discarded)
    results = runner.map(_compute, jobs, opts.dvh_samples, stage="compute")
    for n, result in enumerate(results, 1):
        if isinstance(result, Lost):  # its worker died: nothing written, next run
            _LOG.warning("dataset not computed (%s): a re-run loads it", result.reason)
            summary.lost += 1
        else:
            assert isinstance(result, Computed)
            summary.read_s += result.read_s
            summary.dvh_s += result.dvh_s
            t0 = time.perf_counter()
            _load_or_hold(factory, result, opts, rules, triggers, summary)
            summary.load_s += time.perf_counter() - t0
        if opts.progress:
            opts.progress("load", n, len(jobs))
    summary.courses = sum_courses(factory, summary.touched, opts, summary)


def _sources(
    paths: Sequence[Path],
    held_paths: set[str],
    extra: Sequence[tuple[str, bool]],
    summary: ImportSummary,
) -> list[Source]:
    """Return the files to prepare: new, held (to retry) and extra ones."""
    scan = scan_import_paths(paths)
    for refused in scan.refused:
        _LOG.warning("refused %s: %s", refused.path, refused.reason.value)
        summary.refused[refused.reason.value] += 1
        summary.refused_sources.append(str(refused.path))
    sources = [Source(str(p)) for p in scan.files]
    sources += [Source(p, pseudonymised=True) for p in sorted(held_paths)]
    sources += [Source(p, pseudonymised=done) for p, done in extra]
    summary.files = len(sources)
    return sources


def _prepare_all(  # noqa: PLR0917
    factory: sessionmaker[Session],
    runner: Executor,
    sources: Sequence[Source],
    opts: ImportOptions,
    keywords: tuple[str, ...],
    held_paths: set[str],
    summary: ImportSummary,
) -> list[IndexedObject]:
    """Prepare every file (stage 1); hold those that fail, return the others."""
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
                stage="prepare",
            ),
            1,
        ):
            if isinstance(result, Lost):  # the transaction rolls back: nothing held
                raise StageInterruptedError(
                    f"a Dask worker died preparing {getattr(result.item, 'path', '?')};"
                    " nothing was loaded: run the import again"
                )
            assert isinstance(result, Prepared)
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
                    person_source_value=result.pseudonym,
                )
                summary.quarantined[result.finding.reason.value] += 1
                summary.held_sources.add(result.source)
            if opts.progress:
                opts.progress("prepare", n, len(sources))
    return objects


def _load_or_hold(  # noqa: PLR0917
    factory: sessionmaker[Session],
    result: Computed,
    opts: ImportOptions,
    rules: RuleSet,
    triggers: Sequence[TriggerRule],
    summary: ImportSummary,
) -> None:
    """Load a computed dataset, or hold it with the finding that stopped it."""
    if result.dataset is not None:
        _load_one(factory, result.dataset, opts, rules, triggers, summary)
        return
    assert result.finding is not None
    with factory.begin() as session:
        summary.quarantined[result.finding.reason.value] += hold_objects(
            session, result.resolved.members(), result.finding, opts,
            result.resolved.dose.sop_instance_uid,
        )  # fmt: skip
    summary.datasets_held += 1


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
        consent_changed(factory, resolved, opts, summary, changed.decision)
        return
    except Exception as exc:  # one dataset must not stop the run; nothing is lost
        _LOG.warning("load of dose %s failed: %s", resolved.dose.sop_instance_uid, exc)
        with factory.begin() as session:
            finding = Finding(Reason.LOAD_FAILED, f"{type(exc).__name__}: {exc}"[:500])
            summary.quarantined[finding.reason.value] += hold_objects(
                session,
                resolved.members(),
                finding,
                opts,
                resolved.dose.sop_instance_uid,
            )
            summary.datasets_held += 1
        return
    summary.loaded += 1
    summary.touched.add((result.person_id, resolved.dose.frame_of_reference_uid))
    for name in result.unmapped:
        summary.unmapped[name] += 1
    for f in computed.findings:
        summary.warnings[f.reason.value] += 1
