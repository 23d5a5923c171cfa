"""Load a computed RT dataset into OMOP (ARCHITECTURE.md section 3), idempotently.

One call of :func:`load_dataset` writes, in the caller's transaction:

- PERSON (``person_source_value`` = pseudonym) and CARE_SITE of the centre if missing;
- the RT course: EPISODE (Cancer Radiotherapy) with one PROCEDURE_OCCURRENCE linked
  by EPISODE_EVENT, and the prescription as MEASUREMENTs (total dose, fractions, dose
  per fraction, intent) with ``measurement_event_id`` = the episode and the episode
  field concept;
- one IMAGE_OCCURRENCE per series (CT, RTSTRUCT, RTPLAN, RTDOSE);
- per structure the full differential DVH (platform table ``dvh``) and per metric one
  IMAGE_FEATURE + MEASUREMENT pair (``dvh_metric`` links them), written with the bulk
  loader;
- the object versions (``ingest_object``) and the files' owner in the file store.

A dataset whose content changed (a new version of a member object) replaces its DVHs
and metrics; the course and images are kept. A dataset without a readable study date
is not loaded (:func:`study_day` is None; the import holds it as ``no-study-date``):
the course start is never invented. Units: Gy has no verified concept id, so
``unit_concept_id`` 0 with ``unit_source_value`` ``Gy``; % and cm3 (mL) are the
standard unit concepts of :mod:`omop.vocab.standard`.

Every other module reads these rows through the readers here: :func:`read_dvh_rows`
(DVHs with their dataset and course start), :func:`course_fractions` (prescribed
fractions of many courses) and :func:`read_first_courses` (first RT course per person).
"""

from __future__ import annotations

import datetime
import json
import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import ColumnElement, Select, delete, func, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from etl.dicom.enums import DoseSummationType
from etl.dicom.index import IndexedObject, ResolvedDataset
from etl.dose.coverage import dose_coverage, metric_allowed
from etl.dose.dvh import DVH
from etl.dose.metrics import evaluate
from etl.dose.radiobiology import dvh_to_eqd2
from etl.ingest.qa import Finding
from etl.mapping.naming import RuleSet, is_target, structure_concept_id
from omop.bulk import bulk_insert
from omop.cdm import (
    CareSite,
    Episode,
    EpisodeEvent,
    ImageFeature,
    ImageOccurrence,
    Measurement,
    Person,
    ProcedureOccurrence,
)
from omop.errors import RTCohortError
from omop.filestore import FileStore
from omop.ingest_tables import Dvh, DvhMetric, IngestDataset, IngestObject
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from omop.vocab.standard import (
    CM3_AS_ML,
    EHR,
    PERCENT,
    RT_COURSE_EPISODE,
    STANDARD_ALGORITHM_FROM_EHR,
)

__all__ = [
    "ENGINE_LABEL",
    "AlphaBeta",
    "ComputedDataset",
    "ComputedStructure",
    "FirstCourse",
    "LoadResult",
    "LoadedDvh",
    "NoStudyDateError",
    "content_hash",
    "course_fractions",
    "default_metrics",
    "dvh_from_row",
    "episode_fractions",
    "load_dataset",
    "read_dvh_rows",
    "read_first_courses",
    "remap_loaded",
    "study_day",
]

METRIC_VOCAB = "RTC Dose Metric"
PRESCRIPTION_VOCAB = "RTC Prescription"
ENGINE_LABEL = "rtcohort etl.dose.dvh (end caps half, bin 0.01 Gy)"
VOLUME_METRIC = "Volume[cc]"
_CHUNK = 2000
_BASE = (
    "Mean[Gy]",
    "Min[Gy]",
    "Max[Gy]",
    "D0.03cc[Gy]",
    "D2%[Gy]",
    "D50%[Gy]",
    "D98%[Gy]",
)
_TARGET_EXTRA = ("D95%[Gy]", "D99%[Gy]")
_V_STEPS_GY = tuple(range(5, 75, 5))


@dataclass(frozen=True)
class AlphaBeta:
    """alpha/beta (Gy) used for EQD2 of organs at risk and targets."""

    oar_gy: float = 3.0
    target_gy: float = 10.0

    def for_structure(self, target: bool) -> float:
        """Return the alpha/beta of a structure."""
        return self.target_gy if target else self.oar_gy


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
    prescription_gy: float | None = None
    plan_intent: str = ""
    plan_label: str = ""
    compute_metrics: bool = True


@dataclass
class LoadResult:
    """What one load wrote."""

    dataset_id: int
    person_id: int
    episode_id: int
    version: int
    structures: int
    metrics: int
    unmapped: list[str]


def content_hash(resolved: ResolvedDataset) -> str:
    """Return the SHA-256 over the members' (UID, content hash) pairs."""
    import hashlib

    parts = sorted(f"{o.sop_instance_uid}={o.sha256}" for o in resolved.members())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def default_metrics(target: bool, max_gy: float | None) -> list[str]:
    """Return the default metric set of a structure.

    Every structure: Mean, Min, Max, D0.03cc, D2%, D50%, D98%; targets also D95% and
    D99%; organs at risk also V5Gy[%] ... V70Gy[%] in 5 Gy steps up to the maximum.

    Examples
    --------
    >>> default_metrics(False, 12.0)[-2:]
    ['V5Gy[%]', 'V10Gy[%]']
    """
    metrics = list(_BASE)
    if target:
        metrics += _TARGET_EXTRA
    else:
        top = max_gy if max_gy is not None and math.isfinite(max_gy) else 0.0
        metrics += [f"V{g}Gy[%]" for g in _V_STEPS_GY if g <= top]
    return metrics


def _unit(metric: str) -> tuple[int, str]:
    if metric.endswith("[%]"):
        return PERCENT, "%"
    if metric.endswith("[cc]"):
        return CM3_AS_ML, "cm3"
    return 0, "Gy"


def pack_dvh(dvh: DVH) -> bytes:
    """Compress a differential DVH (little-endian float64, zlib)."""
    return zlib.compress(np.asarray(dvh.differential_cc, dtype="<f8").tobytes(), 6)


def dvh_from_row(row: Dvh) -> DVH:
    """Rebuild the engine's :class:`~etl.dose.dvh.DVH` from a stored row (exactly)."""
    diff = np.frombuffer(zlib.decompress(row.differential_cc), dtype="<f8")
    nan = float("nan")
    return DVH(
        volume_cc=row.volume_cc,
        outside_grid_cc=row.outside_grid_cc,
        min_gy=nan if row.min_gy is None else row.min_gy,
        mean_gy=nan if row.mean_gy is None else row.mean_gy,
        max_gy=nan if row.max_gy is None else row.max_gy,
        bin_width_gy=row.bin_width_gy,
        differential_cc=diff.astype(np.float64),
    )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


class NoStudyDateError(RTCohortError, ValueError):
    """A dataset has no readable study date: its RT course start would be invented."""


def _day(text_date: str) -> datetime.date | None:
    """Return the date of a DICOM DA value (``YYYYMMDD``); None if missing or bad."""
    try:
        return (
            datetime.datetime.strptime(text_date[:8], "%Y%m%d")
            .replace(tzinfo=datetime.UTC)
            .date()
        )
    except ValueError:
        return None


def study_day(resolved: ResolvedDataset) -> datetime.date | None:
    """Return the dataset's study date (the RT course start), None when unknown.

    The RTDOSE's StudyDate, else the first plan's; a missing or unreadable date gives
    None and the import holds the dataset (reason ``no-study-date``).
    """
    return _day(
        resolved.dose.study_date
        or (resolved.plans[0].study_date if resolved.plans else "")
    )


def _care_site(session: Session, centre: str) -> CareSite:
    site = session.scalar(
        select(CareSite).where(CareSite.care_site_source_value == centre)
    )
    if site is None:
        site = CareSite(care_site_source_value=centre, care_site_name=centre)
        session.add(site)
        session.flush()
    return site


def _person(session: Session, pseudonym: str, care_site_id: int) -> Person:
    person = session.scalar(
        select(Person).where(Person.person_source_value == pseudonym)
    )
    if person is None:
        # Consent registration normally creates the person (with year of birth and sex);
        # without it the birth year is unknown (DICOM de-identification empties it).
        person = Person(
            person_source_value=pseudonym,
            gender_concept_id=0,
            year_of_birth=0,
            race_concept_id=0,
            ethnicity_concept_id=0,
            care_site_id=care_site_id,
        )
        session.add(person)
        session.flush()
    return person


def _pk(model: type[Measurement] | type[ImageFeature]) -> tuple[str, str]:
    column = sa_inspect(model).primary_key[0]  # type: ignore[attr-defined]
    return str(model.__tablename__), str(column.name)


def _allocate_ids(
    session: Session, model: type[Measurement] | type[ImageFeature], n: int
) -> list[int]:
    """Reserve ``n`` primary keys (sequence on PostgreSQL, max + 1 on SQLite)."""
    table, column = _pk(model)
    if session.get_bind().dialect.name == "postgresql":
        ids = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:t, :c)) "
                "FROM generate_series(1, :n)"
            ),
            {"t": table, "c": column, "n": n},
        ).scalars()
        return sorted(int(i) for i in ids)
    start = int(session.scalar(text(f"SELECT MAX({column}) FROM {table}")) or 0) + 1
    return list(range(start, start + n))


@dataclass
class _Ctx:
    person_id: int
    day: datetime.date
    fractions: int | None
    alpha_beta: AlphaBeta
    metric_field: int
    feature_field: int
    now: datetime.datetime


def write_metrics(session: Session, rows: Sequence[tuple[Dvh, DVH]], ctx: _Ctx) -> int:
    """Write IMAGE_FEATURE + MEASUREMENT + dvh_metric rows for stored DVHs."""
    pending: list[tuple[Dvh, str, float | None, float, int]] = []
    for row, dvh in rows:
        target = row.is_target
        specs = default_metrics(target, row.max_gy)
        values: list[tuple[str, float | None, float | None]] = [
            (s, None, evaluate(dvh, s)) for s in specs
        ]
        values.append((VOLUME_METRIC, None, row.volume_cc))
        if ctx.fractions:
            ab = ctx.alpha_beta.for_structure(target)
            eqd2 = dvh_to_eqd2(dvh, ctx.fractions, ab)
            values += [(f"EQD2 {s}", ab, evaluate(eqd2, s)) for s in specs]
        cover = dose_coverage(dvh).pct  # never a metric on dose it does not have
        for spec, ab_gy, value in values:
            if value is None or not math.isfinite(value):
                continue
            if spec != VOLUME_METRIC and not metric_allowed(spec, cover):
                continue
            pending.append(
                (row, spec, ab_gy, float(value), our_concept_id(METRIC_VOCAB, spec))
            )
    if not pending:
        return 0
    feature_ids = _allocate_ids(session, ImageFeature, len(pending))
    measurement_ids = _allocate_ids(session, Measurement, len(pending))
    features, measurements, links = [], [], []
    for (row, spec, ab_gy, value, concept), fid, mid in zip(
        pending, feature_ids, measurement_ids, strict=True
    ):
        unit_id, unit_text = _unit(spec.removeprefix("EQD2 "))
        features.append(
            {
                "image_feature_id": fid,
                "person_id": ctx.person_id,
                "image_occurrence_id": row.image_occurrence_id,
                "image_feature_concept_id": concept,
                "image_feature_type_concept_id": STANDARD_ALGORITHM_FROM_EHR,
                "image_feature_event_field_concept_id": ctx.metric_field,
                "image_feature_event_id": mid,
                "anatomic_site_concept_id": row.structure_concept_id,
                "alg_system": ENGINE_LABEL,
                "alg_datetime": ctx.now.replace(tzinfo=None),
            }
        )
        measurements.append(
            {
                "measurement_id": mid,
                "person_id": ctx.person_id,
                "measurement_concept_id": 0,
                "measurement_date": ctx.day,
                "measurement_type_concept_id": STANDARD_ALGORITHM_FROM_EHR,
                "value_as_number": value,
                "unit_concept_id": unit_id,
                "unit_source_value": unit_text,
                "measurement_source_value": _source_value(row, spec),
                "measurement_source_concept_id": concept,
                "value_source_value": f"alpha/beta {ab_gy:g} Gy" if ab_gy else None,
                "measurement_event_id": fid,
                "meas_event_field_concept_id": ctx.feature_field,
            }
        )
        links.append(
            {
                "image_feature_id": fid,
                "dvh_id": row.dvh_id,
                "measurement_id": mid,
                "metric": spec,
                "alpha_beta_gy": ab_gy,
            }
        )
    bulk_insert(session, Measurement, measurements)
    bulk_insert(session, ImageFeature, features)
    bulk_insert(session, DvhMetric, links)
    return len(pending)


def _source_value(row: Dvh, spec: str) -> str:
    return f"{(row.tg263_name or row.roi_name)[:20]} {spec}"[:50]


def _delete_metrics(session: Session, dvh_ids: Sequence[int]) -> None:
    if not dvh_ids:
        return
    ids = list(dvh_ids)
    links = session.execute(
        select(DvhMetric.image_feature_id, DvhMetric.measurement_id).where(
            DvhMetric.dvh_id.in_(ids)
        )
    ).all()
    session.execute(delete(DvhMetric).where(DvhMetric.dvh_id.in_(ids)))
    features = [f for f, _ in links]
    measurements = [m for _, m in links]
    for start in range(0, len(features), 1000):
        session.execute(
            delete(ImageFeature).where(
                ImageFeature.image_feature_id.in_(features[start : start + 1000])
            )
        )
        session.execute(
            delete(Measurement).where(
                Measurement.measurement_id.in_(measurements[start : start + 1000])
            )
        )


def _course(
    session: Session, person_id: int, computed: ComputedDataset, day: datetime.date
) -> tuple[int, int]:
    """Return (episode_id, procedure_occurrence_id) of the dataset's RT course."""
    key = computed.resolved.course_key
    found = session.execute(
        select(IngestDataset.episode_id)
        .where(
            IngestDataset.person_id == person_id,
            IngestDataset.plan_sop_instance_uid == key,
            IngestDataset.episode_id.is_not(None),
        )
        .limit(1)
    ).scalar()
    procedure_field = field_concept_id(
        session, "procedure_occurrence.procedure_occurrence_id"
    )
    if found is not None:
        procedure = session.scalar(
            select(EpisodeEvent.event_id).where(
                EpisodeEvent.episode_id == found,
                EpisodeEvent.episode_event_field_concept_id == procedure_field,
            )
        )
        if procedure is not None:
            return int(found), int(procedure)
    course = our_concept_id("RTC Course", "rt_course")
    episode = Episode(
        person_id=person_id,
        episode_concept_id=RT_COURSE_EPISODE,
        episode_start_date=day,
        episode_object_concept_id=0,
        episode_type_concept_id=EHR,
        episode_source_value=(computed.plan_label or "RT course")[:50],
        episode_source_concept_id=course,
    )
    session.add(episode)
    procedure_row = ProcedureOccurrence(
        person_id=person_id,
        procedure_concept_id=0,
        procedure_date=day,
        procedure_type_concept_id=EHR,
        procedure_source_value="radiotherapy course",
        procedure_source_concept_id=course,
        quantity=computed.n_fractions,
    )
    session.add(procedure_row)
    session.flush()
    session.add(
        EpisodeEvent(
            episode_id=episode.episode_id,
            event_id=procedure_row.procedure_occurrence_id,
            episode_event_field_concept_id=procedure_field,
        )
    )
    session.flush()
    return episode.episode_id, procedure_row.procedure_occurrence_id


def _prescription(
    session: Session,
    person_id: int,
    episode_id: int,
    computed: ComputedDataset,
    day: datetime.date,
) -> None:
    field_id = field_concept_id(session, "episode.episode_id")
    codes = ("total_dose", "fractions", "dose_per_fraction", "intent")
    concepts = [our_concept_id(PRESCRIPTION_VOCAB, c) for c in codes]
    session.execute(
        delete(Measurement).where(
            Measurement.measurement_event_id == episode_id,
            Measurement.meas_event_field_concept_id == field_id,
            Measurement.measurement_source_concept_id.in_(concepts),
        )
    )
    total, n = computed.prescription_gy, computed.n_fractions
    values: list[tuple[str, float | None, int, str | None, str | None]] = [
        ("total_dose", total, 0, "Gy", None),
        ("fractions", float(n) if n else None, 0, None, None),
        ("dose_per_fraction", total / n if total and n else None, 0, "Gy", None),
        ("intent", None, 0, None, computed.plan_intent or None),
    ]
    for (code, value, unit_id, unit_text, value_text), concept in zip(
        values, concepts, strict=True
    ):
        if value is None and value_text is None:
            continue
        session.add(
            Measurement(
                person_id=person_id,
                measurement_concept_id=0,
                measurement_date=day,
                measurement_type_concept_id=EHR,
                value_as_number=value,
                unit_concept_id=unit_id if unit_text else None,
                unit_source_value=unit_text,
                measurement_source_value=f"prescription {code}",
                measurement_source_concept_id=concept,
                value_source_value=value_text,
                measurement_event_id=episode_id,
                meas_event_field_concept_id=field_id,
            )
        )


def _images(  # noqa: PLR0917
    session: Session,
    person_id: int,
    procedure_id: int,
    resolved: ResolvedDataset,
    store: FileStore,
    day: datetime.date,
) -> dict[str, int]:
    """Return {series uid: image_occurrence_id}, creating the missing ones."""
    series: dict[str, IndexedObject] = {}
    for obj in resolved.members():
        series.setdefault(obj.series_instance_uid, obj)
    found = dict(
        session.execute(
            select(
                ImageOccurrence.image_series_uid, ImageOccurrence.image_occurrence_id
            ).where(
                ImageOccurrence.person_id == person_id,
                ImageOccurrence.image_series_uid.in_(list(series)),
            )
        ).all()
    )
    for uid, obj in series.items():
        if uid in found:
            continue
        row = ImageOccurrence(
            person_id=person_id,
            procedure_occurrence_id=procedure_id,
            local_path=str(store.path(obj.sha256)),
            image_occurrence_date=_day(obj.study_date) or day,
            image_study_uid=obj.study_instance_uid,
            image_series_uid=uid,
            modality_concept_id=0,
        )
        session.add(row)
        session.flush()
        found[uid] = row.image_occurrence_id
    return found


def _objects(
    session: Session,
    person_id: int,
    resolved: ResolvedDataset,
    store: FileStore,
    now: datetime.datetime,
) -> None:
    members = {o.sop_instance_uid: o for o in resolved.members()}
    existing: dict[str, list[IngestObject]] = {}
    uids = list(members)
    for start in range(0, len(uids), 500):
        for row in session.scalars(
            select(IngestObject).where(
                IngestObject.sop_instance_uid.in_(uids[start : start + 500])
            )
        ):
            existing.setdefault(row.sop_instance_uid, []).append(row)
    new_files: list[tuple[str, int | None]] = []
    for uid, obj in members.items():
        versions = existing.get(uid, [])
        if any(v.sha256 == obj.sha256 for v in versions):
            for v in versions:
                v.current = v.sha256 == obj.sha256
            continue
        for v in versions:
            v.current = False
        new_files.append((obj.sha256, person_id))
        session.add(
            IngestObject(
                sop_instance_uid=uid,
                version=1 + max((v.version for v in versions), default=0),
                sha256=obj.sha256,
                sop_class_uid=obj.sop_class_uid,
                modality=obj.modality,
                study_instance_uid=obj.study_instance_uid,
                series_instance_uid=obj.series_instance_uid,
                person_id=person_id,
                current=True,
                received_at=now,
            )
        )
    store.register_many(session, new_files)
    session.flush()


def load_dataset(
    session: Session,
    computed: ComputedDataset,
    *,
    centre: str,
    store: FileStore,
    rules: RuleSet,
    alpha_beta: AlphaBeta | None = None,
) -> LoadResult:
    """Load (or re-load) one computed dataset; the caller owns the transaction.

    Raises
    ------
    NoStudyDateError
        The dataset has no readable study date (nothing is written).
    """
    resolved = computed.resolved
    now = datetime.datetime.now(datetime.UTC)
    day = study_day(resolved)
    if day is None:
        raise NoStudyDateError(
            f"RTDOSE {resolved.dose.sop_instance_uid}: no readable StudyDate "
            "(dose or plan); the RT course start would be unknown"
        )
    site = _care_site(session, centre)
    person = _person(session, resolved.patient_id, site.care_site_id)
    dataset = session.scalar(
        select(IngestDataset).where(
            IngestDataset.dose_sop_instance_uid == resolved.dose.sop_instance_uid
        )
    )
    if dataset is not None:
        old = list(
            session.scalars(
                select(Dvh.dvh_id).where(Dvh.dataset_id == dataset.dataset_id)
            )
        )
        _delete_metrics(session, old)
        session.execute(delete(Dvh).where(Dvh.dataset_id == dataset.dataset_id))
    episode_id, procedure_id = _course(session, person.person_id, computed, day)
    _prescription(session, person.person_id, episode_id, computed, day)
    images = _images(session, person.person_id, procedure_id, resolved, store, day)
    _objects(session, person.person_id, resolved, store, now)
    assert resolved.structure_set is not None
    warnings = json.dumps([f.as_dict() for f in computed.findings], ensure_ascii=False)
    if dataset is None:
        dataset = IngestDataset(
            dose_sop_instance_uid=resolved.dose.sop_instance_uid, version=0
        )
        session.add(dataset)
    dataset.person_id = person.person_id
    dataset.care_site_id = site.care_site_id
    dataset.centre = centre
    dataset.study_instance_uid = resolved.dose.study_instance_uid
    dataset.frame_of_reference_uid = resolved.dose.frame_of_reference_uid
    dataset.plan_sop_instance_uid = resolved.course_key
    dataset.structure_set_sop_instance_uid = resolved.structure_set.sop_instance_uid
    dataset.ct_series_instance_uid = (
        resolved.ct[0].series_instance_uid if resolved.ct else None
    )
    dataset.dose_summation_type = (
        resolved.dose.dose_summation_type[:16] or DoseSummationType.PLAN
    )
    dataset.episode_id = episode_id
    dataset.version = dataset.version + 1
    dataset.content_sha256 = content_hash(resolved)
    dataset.warnings = warnings
    dataset.loaded_at = now
    session.flush()

    dose_io = images[resolved.dose.series_instance_uid]
    stored: list[tuple[Dvh, DVH]] = []
    unmapped: list[str] = []
    for s in computed.structures:
        mapped = rules.map(s.roi_name, centre)
        if mapped.tg263_name is None:
            unmapped.append(s.roi_name)
        d = s.dvh
        row = Dvh(
            dataset_id=dataset.dataset_id,
            person_id=person.person_id,
            image_occurrence_id=dose_io,
            roi_number=s.roi_number,
            roi_name=s.roi_name[:64],
            interpreted_type=(s.interpreted_type or None)
            and str(s.interpreted_type)[:16],
            tg263_name=mapped.tg263_name,
            structure_concept_id=structure_concept_id(mapped.tg263_name),
            mapping_rule_id=mapped.rule.rule_id if mapped.rule else None,
            is_target=is_target(mapped.tg263_name, s.interpreted_type),
            volume_cc=float(d.volume_cc),
            outside_grid_cc=float(d.outside_grid_cc),
            min_gy=_finite(d.min_gy),
            mean_gy=_finite(d.mean_gy),
            max_gy=_finite(d.max_gy),
            bin_width_gy=float(d.bin_width_gy),
            n_bins=len(d.differential_cc),
            differential_cc=pack_dvh(d),
            engine=ENGINE_LABEL,
        )
        session.add(row)
        stored.append((row, d))
    session.flush()
    ctx = _Ctx(
        person_id=person.person_id,
        day=day,
        fractions=computed.n_fractions,
        alpha_beta=alpha_beta or AlphaBeta(),
        metric_field=field_concept_id(session, "measurement.measurement_id"),
        feature_field=field_concept_id(session, "image_feature.image_feature_id"),
        now=now,
    )
    n_metrics = write_metrics(session, stored if computed.compute_metrics else [], ctx)
    return LoadResult(
        dataset_id=dataset.dataset_id,
        person_id=person.person_id,
        episode_id=episode_id,
        version=dataset.version,
        structures=len(stored),
        metrics=n_metrics,
        unmapped=unmapped,
    )


def episode_fractions(session: Session, episode_id: int) -> int | None:
    """Return the prescribed number of fractions of a course (None if unknown)."""
    return course_fractions(session, [episode_id]).get(episode_id)


def course_fractions(session: Session, episode_ids: Iterable[int]) -> dict[int, int]:
    """Return ``{episode_id: prescribed fractions}`` of RT courses (unknown: absent).

    One query per 2,000 courses (the prescription MEASUREMENT ``fractions``).
    """
    episodes = sorted(set(episode_ids))
    if not episodes:
        return {}
    field_id = field_concept_id(session, "episode.episode_id")
    concept = our_concept_id(PRESCRIPTION_VOCAB, "fractions")
    out: dict[int, int] = {}
    for start in range(0, len(episodes), _CHUNK):
        for episode, value in session.execute(
            select(Measurement.measurement_event_id, Measurement.value_as_number).where(
                Measurement.measurement_event_id.in_(episodes[start : start + _CHUNK]),
                Measurement.meas_event_field_concept_id == field_id,
                Measurement.measurement_source_concept_id == concept,
            )
        ):
            if value and episode is not None:
                out[int(episode)] = int(value)
    return out


class LoadedDvh(NamedTuple):
    """A stored DVH row with its dataset, the patient's pseudonym and RT course."""

    dvh: Dvh
    dataset: IngestDataset
    pseudonym: str | None
    course_start: datetime.date | None  # None: the dataset has no RT course episode
    course_episode_id: int | None


def read_dvh_rows(
    session: Session,
    *,
    person_filter: Callable[[ColumnElement[int]], ColumnElement[bool]] | None = None,
    persons: Select[Any] | None = None,
    centres: Sequence[str] = (),
    structures: Sequence[str] = (),
) -> list[LoadedDvh]:
    """Return stored DVHs, ordered by pseudonym, course, dataset and ROI number.

    Parameters
    ----------
    person_filter
        Turns the person id column into a condition (the permission layer's filter).
    persons
        A SQL selection of person ids to keep.
    centres
        Centre codes of the datasets to keep (any case).
    structures
        TG-263 names to keep.
    """
    query = (
        select(
            Dvh,
            IngestDataset,
            Person.person_source_value,
            Episode.episode_start_date,
            Episode.episode_id,
        )
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .join(Person, Person.person_id == Dvh.person_id)
        .outerjoin(
            Episode,
            (Episode.episode_id == IngestDataset.episode_id)
            & (Episode.episode_concept_id == RT_COURSE_EPISODE),
        )
    )
    if person_filter is not None:
        query = query.where(person_filter(Dvh.person_id))  # type: ignore[arg-type]
    if persons is not None:
        query = query.where(Dvh.person_id.in_(persons))
    if centres:
        query = query.where(IngestDataset.centre.in_([c.upper() for c in centres]))
    if structures:
        query = query.where(Dvh.tg263_name.in_(list(structures)))
    query = query.order_by(
        Person.person_source_value,
        IngestDataset.episode_id,
        Dvh.dataset_id,
        Dvh.roi_number,
    )
    return [LoadedDvh(*row) for row in session.execute(query).all()]


class FirstCourse(NamedTuple):
    """The first RT course of a person (by start date, then episode id)."""

    person_id: int
    start: datetime.date
    end: datetime.date | None


def read_first_courses(session: Session, persons: Select[Any]) -> list[FirstCourse]:
    """Return the first RT course EPISODE of each person in ``persons`` (one query)."""
    first = (
        select(
            Episode.person_id,
            Episode.episode_start_date,
            Episode.episode_end_date,
            func.row_number()
            .over(
                partition_by=Episode.person_id,
                order_by=(Episode.episode_start_date, Episode.episode_id),
            )
            .label("n"),
        )
        .where(
            Episode.episode_concept_id == RT_COURSE_EPISODE,
            Episode.person_id.in_(persons),
        )
        .subquery()
    )
    rows = session.execute(
        select(
            first.c.person_id, first.c.episode_start_date, first.c.episode_end_date
        ).where(first.c.n == 1)
    ).all()
    return [FirstCourse(int(p), s, e) for p, s, e in rows]


@dataclass
class RemapReport:
    """What re-mapping loaded structures changed."""

    structures_checked: int = 0
    structures_changed: int = 0
    metrics_rewritten: int = 0


def remap_loaded(
    session: Session, rules: RuleSet, *, alpha_beta: AlphaBeta | None = None
) -> RemapReport:
    """Re-map loaded structures with ``rules``; recompute changed ones from the DVH.

    No DICOM is read: metrics of a structure whose TG-263 name changed are rewritten
    from its stored differential DVH.
    """
    report = RemapReport()
    metric_field = field_concept_id(session, "measurement.measurement_id")
    feature_field = field_concept_id(session, "image_feature.image_feature_id")
    now = datetime.datetime.now(datetime.UTC)
    rows = session.execute(
        select(
            Dvh,
            IngestDataset.centre,
            IngestDataset.episode_id,
            IngestDataset.dose_summation_type,
        )
        .join(IngestDataset, IngestDataset.dataset_id == Dvh.dataset_id)
        .order_by(Dvh.dataset_id, Dvh.roi_number)
    ).all()
    changed: dict[int, list[tuple[Dvh, DVH]]] = {}
    episodes: dict[int, int | None] = {}
    for row, centre, episode_id, _summation in rows:
        report.structures_checked += 1
        mapped = rules.map(row.roi_name, centre)
        new_target = is_target(mapped.tg263_name, row.interpreted_type)
        rule_id = mapped.rule.rule_id if mapped.rule else None
        if (mapped.tg263_name, new_target) == (row.tg263_name, row.is_target):
            if row.mapping_rule_id != rule_id:
                row.mapping_rule_id = rule_id
            continue
        report.structures_changed += 1
        row.tg263_name = mapped.tg263_name
        row.structure_concept_id = structure_concept_id(mapped.tg263_name)
        row.mapping_rule_id = rule_id
        row.is_target = new_target
        episodes[row.dataset_id] = episode_id
        changed.setdefault(row.dataset_id, []).append((row, dvh_from_row(row)))
    session.flush()
    for dataset_id, items in changed.items():
        has_metrics = session.scalar(
            select(func.count())
            .select_from(DvhMetric)
            .join(Dvh, Dvh.dvh_id == DvhMetric.dvh_id)
            .where(Dvh.dataset_id == dataset_id)
        )
        _delete_metrics(session, [r.dvh_id for r, _ in items])
        if not has_metrics:
            continue
        episode_id = episodes[dataset_id]
        first = items[0][0]
        day = (
            session.scalar(
                select(Episode.episode_start_date).where(
                    Episode.episode_id == episode_id
                )
            )
            or now.date()
        )
        ctx = _Ctx(
            person_id=first.person_id,
            day=day,
            fractions=episode_fractions(session, episode_id) if episode_id else None,
            alpha_beta=alpha_beta or AlphaBeta(),
            metric_field=metric_field,
            feature_field=feature_field,
            now=now,
        )
        report.metrics_rewritten += write_metrics(session, items, ctx)
    return report
