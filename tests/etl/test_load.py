"""The whole import path on SQLite and PostgreSQL: OMOP rows, idempotence, versions,
the broken corpus, a crash midway, consent holds, re-mapping from stored DVHs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etl.deid.pseudonymise import pseudonym
from etl.ingest.catalogue import retry_held
from etl.ingest.run import run_import
from etl.ingest.triggers import TriggerKind, add_trigger
from etl.mapping.naming import current_rules, import_rules, parse_rules_csv
from etl.store import dvh_rows
from etl.store.dvh_rows import dvh_from_row
from etl.store.load import remap_loaded
from omop.cdm import (
    Episode,
    EpisodeEvent,
    ImageFeature,
    ImageOccurrence,
    Measurement,
    Person,
    ProcedureOccurrence,
)
from omop.ingest_tables import (
    Dvh,
    DvhMetric,
    IngestDataset,
    IngestObject,
    ProjectTrigger,
    QuarantineItem,
)
from omop.vocab.lookup import field_concept_id
from omop.vocab.registry import our_concept_id
from tests.etl.ingest_corpus import (
    Case,
    build_broken_corpus,
    edit,
    table_checksums,
    write_patient,
)
from tests.etl.ingest_db import KEY, Db, make_db


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    yield from make_db(request, tmp_path_factory.mktemp("load"))


def _person_id(db: Db, patient_id: str) -> int | None:
    with db.factory() as s:
        return s.scalar(
            select(Person.person_id).where(
                Person.person_source_value == pseudonym(KEY, patient_id)
            )
        )


def _count(db: Db, model: type, person_id: int) -> int:
    with db.factory() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(model)
                .where(model.person_id == person_id)
            )
            or 0
        )


def _assert_heart_metrics(s: Session, heart: Dvh) -> None:
    """The heart's DVH metrics: linked feature/measurement pairs, units, EQD2."""
    links = s.execute(
        select(DvhMetric, ImageFeature, Measurement)
        .join(
            ImageFeature,
            ImageFeature.image_feature_id == DvhMetric.image_feature_id,
        )
        .join(Measurement, Measurement.measurement_id == DvhMetric.measurement_id)
        .where(DvhMetric.dvh_id == heart.dvh_id)
    ).all()
    by_metric = {link.metric: (f, m) for link, f, m in links}
    # OAR: 7 base + volume + V5..V(max) in 5 Gy steps, each (but volume) also EQD2
    steps = [g for g in range(5, 75, 5) if g <= heart.max_gy]
    assert len(by_metric) == 8 + len(steps) + 7 + len(steps)
    assert "D95%[Gy]" not in by_metric and "V5Gy[%]" in by_metric
    f, m = by_metric["Max[Gy]"]
    assert f.image_feature_event_id == m.measurement_id
    assert m.measurement_event_id == f.image_feature_id
    assert f.anatomic_site_concept_id == our_concept_id("TG263", "Heart")
    assert m.measurement_source_concept_id == our_concept_id(
        "RTC Dose Metric", "Max[Gy]"
    )
    assert (m.unit_concept_id, m.unit_source_value) == (0, "Gy")
    assert m.value_as_number == pytest.approx(heart.max_gy)
    assert by_metric["V20Gy[%]"][1].unit_concept_id == 8554
    assert by_metric["Volume[cc]"][1].unit_concept_id == 8587
    # EQD2 by hand: D (d + ab) / (2 + ab), d = D / n, ab = 3 for organs at risk
    d_max = heart.max_gy
    expected = d_max * (d_max / 30 + 3.0) / (2.0 + 3.0)
    assert by_metric["EQD2 Max[Gy]"][1].value_as_number == pytest.approx(
        expected, rel=1e-9
    )


def test_load_follows_the_omop_conventions(db: Db, tmp_path: Path) -> None:
    truth = write_patient(tmp_path, "LD-1", 201)
    summary = run_import(db.factory, [tmp_path], db.options())
    assert summary.loaded == 1 and not summary.quarantined and not summary.unmapped
    pid = _person_id(db, "LD-1")
    assert pid is not None
    with db.factory() as s:
        episode = s.scalars(
            select(Episode).where(
                Episode.person_id == pid, Episode.episode_concept_id == 32940
            )
        ).one()
        disease = s.get(Episode, episode.episode_parent_id)
        assert disease is not None and disease.episode_concept_id == 32533
        assert disease.episode_start_date == episode.episode_start_date
        proc = s.scalars(
            select(ProcedureOccurrence).where(ProcedureOccurrence.person_id == pid)
        ).one()
        event = s.scalars(
            select(EpisodeEvent).where(EpisodeEvent.episode_id == episode.episode_id)
        ).one()
        assert event.event_id == proc.procedure_occurrence_id
        assert event.episode_event_field_concept_id == field_concept_id(
            s, "procedure_occurrence.procedure_occurrence_id"
        )
        rx = {
            m.measurement_source_value: m
            for m in s.scalars(
                select(Measurement).where(
                    Measurement.measurement_event_id == episode.episode_id,
                    Measurement.meas_event_field_concept_id
                    == field_concept_id(s, "episode.episode_id"),
                )
            )
        }
        assert rx["prescription total_dose"].value_as_number == 60.0
        assert rx["prescription fractions"].value_as_number == 30.0
        assert rx["prescription dose_per_fraction"].value_as_number == pytest.approx(
            2.0
        )
        assert rx["prescription total_dose"].unit_concept_id == 0
        assert rx["prescription total_dose"].unit_source_value == "Gy"
        images = s.scalars(
            select(ImageOccurrence).where(ImageOccurrence.person_id == pid)
        ).all()
        assert len(images) == 4  # CT, RTSTRUCT, RTPLAN, RTDOSE series
        assert {i.procedure_occurrence_id for i in images} == {
            proc.procedure_occurrence_id
        }

        dvhs = {
            d.roi_name: d for d in s.scalars(select(Dvh).where(Dvh.person_id == pid))
        }
        assert {n: d.tg263_name for n, d in dvhs.items()} == {
            "BODY": "Body", "Sydän": "Heart", "Lunga vä": "Lung_L", "PTV": "PTV"
        }  # fmt: skip
        heart = dvhs["Sydän"]
        assert heart.structure_concept_id == our_concept_id("TG263", "Heart")
        roi_truth = {r["name"]: r for r in truth["rois"]}
        # against the analytic truth of the phantom (independent of the engine)
        assert heart.mean_gy == pytest.approx(roi_truth["Sydän"]["mean_gy"], rel=0.01)
        assert heart.volume_cc == pytest.approx(
            roi_truth["Sydän"]["volume_cc"], rel=0.05
        )
        rebuilt = dvh_from_row(heart)
        assert rebuilt.inside_grid_cc == pytest.approx(
            heart.volume_cc - heart.outside_grid_cc
        )

        _assert_heart_metrics(s, heart)
        ptv = {link.metric for link, _, _ in s.execute(
            select(DvhMetric, ImageFeature, Measurement)
            .join(ImageFeature, ImageFeature.image_feature_id == DvhMetric.image_feature_id)
            .join(Measurement, Measurement.measurement_id == DvhMetric.measurement_id)
            .where(DvhMetric.dvh_id == dvhs["PTV"].dvh_id)
        ).all()}  # fmt: skip
        assert {"D95%[Gy]", "D99%[Gy]", "EQD2 D95%[Gy]"} <= ptv
        assert not any(x.startswith("V") and x != "Volume[cc]" for x in ptv)
        objects = s.scalars(
            select(IngestObject).where(IngestObject.person_id == pid)
        ).all()
        assert len(objects) == 3 + len(truth["files"]["ct"])
        assert all(db.options().store.exists(o.sha256) for o in objects)


def test_reimport_changes_no_row(db: Db, tmp_path: Path) -> None:
    write_patient(tmp_path / "p", "LD-2", 202)
    run_import(db.factory, [tmp_path], db.options())
    with db.engine.connect() as c:
        before = table_checksums(c)
    again = run_import(db.factory, [tmp_path], db.options())
    assert (again.loaded, again.unchanged) == (0, 1)
    with db.engine.connect() as c:
        assert table_checksums(c) == before


def test_same_plan_sent_twice_in_one_run(db: Db, tmp_path: Path) -> None:
    write_patient(tmp_path / "a", "LD-3", 203)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    summary = run_import(db.factory, [tmp_path], db.options())
    assert summary.loaded == 1
    pid = _person_id(db, "LD-3")
    assert (
        pid is not None and _count(db, Episode, pid) == 2
    )  # the course and its disease episode


def test_changed_plan_with_the_same_uid_is_a_new_version(
    db: Db, tmp_path: Path
) -> None:
    write_patient(tmp_path / "p", "LD-4", 204)
    run_import(db.factory, [tmp_path / "p"], db.options())
    pid = _person_id(db, "LD-4")
    assert pid is not None
    plan = tmp_path / "p" / "RTPLAN.dcm"
    ds = pydicom.dcmread(plan)
    ds.FractionGroupSequence[0].NumberOfFractionsPlanned = 20
    ds.save_as(tmp_path / "changed_plan.dcm", enforce_file_format=True)
    summary = run_import(db.factory, [tmp_path / "changed_plan.dcm"], db.options())
    assert summary.loaded == 1
    with db.factory() as s:
        versions = s.scalars(
            select(IngestObject).where(IngestObject.person_id == pid, IngestObject.modality == "RTPLAN")
            .order_by(IngestObject.version)
        ).all()  # fmt: skip
        assert [(v.version, v.current) for v in versions] == [(1, False), (2, True)]
        assert all(
            db.options().store.exists(v.sha256) for v in versions
        )  # nothing lost
        dataset = s.scalars(
            select(IngestDataset).where(IngestDataset.person_id == pid)
        ).one()
        assert dataset.version == 2
        fractions = s.scalar(
            select(Measurement.value_as_number).where(
                Measurement.measurement_event_id == dataset.episode_id,
                Measurement.measurement_source_value == "prescription fractions",
            )
        )
        assert fractions == 20.0
        heart = s.scalars(
            select(Dvh).where(Dvh.person_id == pid, Dvh.tg263_name == "Heart")
        ).one()
        value = s.scalar(
            select(Measurement.value_as_number)
            .join(DvhMetric, DvhMetric.measurement_id == Measurement.measurement_id)
            .where(DvhMetric.dvh_id == heart.dvh_id, DvhMetric.metric == "EQD2 Max[Gy]")
        )
        d = heart.max_gy
        assert value == pytest.approx(d * (d / 20 + 3.0) / 5.0, rel=1e-9)
        assert _count(db, Episode, pid) == 2  # the course and its disease episode


def test_changed_ct_slice_alone_is_a_new_version(db: Db, tmp_path: Path) -> None:
    truth = write_patient(tmp_path / "p", "LD-10", 210)
    run_import(db.factory, [tmp_path / "p"], db.options())
    pid = _person_id(db, "LD-10")
    ds = pydicom.dcmread(tmp_path / "p" / "CT_0003.dcm")
    ds.SeriesDescription = "re-sent with a fix"
    ds.save_as(tmp_path / "resent.dcm", enforce_file_format=True)
    summary = run_import(db.factory, [tmp_path / "resent.dcm"], db.options())
    assert summary.loaded == 1 and not summary.quarantined
    with db.factory() as s:
        dataset = s.scalars(
            select(IngestDataset).where(IngestDataset.person_id == pid)
        ).one()
        assert dataset.version == 2
        assert json.loads(dataset.warnings) == []  # every slice still there
        current = s.scalar(
            select(func.count()).select_from(IngestObject).where(
                IngestObject.person_id == pid, IngestObject.modality == "CT",
                IngestObject.current.is_(True),
            )
        )  # fmt: skip
        assert current == len(truth["files"]["ct"])
        assert (
            s.scalar(
                select(func.max(IngestObject.version)).where(
                    IngestObject.person_id == pid
                )
            )
            == 2
        )


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    root = tmp_path_factory.mktemp("broken")
    return root, build_broken_corpus(root)


def test_broken_corpus(db: Db, broken: tuple[Path, list[Case]]) -> None:
    tmp_path, cases = broken
    summary = run_import(db.factory, [tmp_path], db.options())
    assert summary.quarantined["not-dicom"] == 2  # notes.txt and the empty file
    assert summary.quarantined["unreadable"] == 1  # the truncated structure set
    with db.factory() as s:
        held = s.scalars(
            select(QuarantineItem).where(QuarantineItem.status == "held")
        ).all()
        reasons = {(i.reason_code, Path(i.source_path).parent.name) for i in held}
        datasets = {
            d.dose_sop_instance_uid: d for d in s.scalars(select(IngestDataset))
        }
        for case in cases:
            kind, _, what = case.expect.partition(":")
            if kind in ("held", "object"):
                for code in what.split(","):
                    assert any(r == code for r, _ in reasons), case.name
        # every held raw file is kept as received
        for item in held:
            assert Path(item.path).exists(), item
        by_name: dict[str, list[dict[str, str]]] = {}
        for case in cases:
            ids = {str(pydicom.dcmread(p, stop_before_pixels=True).PatientID)
                   for p in case.folder.rglob("RTDOSE.dcm")}  # fmt: skip
            persons = {pseudonym(KEY, i) for i in ids if i}
            found = [
                d for d in datasets.values()
                if s.scalar(select(Person.person_source_value).where(Person.person_id == d.person_id)) in persons
            ]  # fmt: skip
            by_name[case.name] = [w for d in found for w in json.loads(d.warnings)]
            kind, _, what = case.expect.partition(":")
            if kind == "warning":
                assert len(found) == 1, case.name
                assert what in {w["code"] for w in by_name[case.name]}, case.name
            elif kind == "loaded":
                assert len(found) == int(what), case.name
            elif kind == "object":  # the slice is held, the dataset loads without it
                assert len(found) == 1, case.name
                assert "ct-incomplete" in {w["code"] for w in by_name[case.name]}
            else:
                assert found == [], case.name
    assert (
        summary.loaded == 7
    )  # no plan, no CT, CT gap, two patients, outside grid, burned-in slice


def test_crash_midway_leaves_no_partial_rows_and_loses_nothing(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_patient(tmp_path, "LD-5", 205)
    real = dvh_rows.bulk_insert
    calls = {"n": 0}

    def failing(session, target, rows, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # measurements are written, image features are next
            raise RuntimeError("injected crash")
        return real(session, target, rows, **kw)

    monkeypatch.setattr(dvh_rows, "bulk_insert", failing)
    summary = run_import(db.factory, [tmp_path], db.options())
    assert summary.loaded == 0 and summary.quarantined["load-failed"] > 0
    pid = _person_id(db, "LD-5")
    if pid is not None:  # the person row itself must not survive either
        for model in (
            Episode,
            Measurement,
            ImageOccurrence,
            ImageFeature,
            Dvh,
            IngestObject,
        ):
            assert _count(db, model, pid) == 0
    assert pid is None
    with db.factory() as s:
        held = s.scalars(
            select(QuarantineItem).where(QuarantineItem.reason_code == "load-failed",
                                         QuarantineItem.status == "held")
        ).all()  # fmt: skip
        assert held and all(db.options().store.path(i.sha256).exists() for i in held)

    # a hard crash (not an ordinary error) propagates and also leaves nothing
    def interrupted(*_a, **_k):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(dvh_rows, "bulk_insert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_import(db.factory, [tmp_path], db.options())
    assert _person_id(db, "LD-5") is None

    monkeypatch.setattr(dvh_rows, "bulk_insert", real)
    again = run_import(db.factory, [tmp_path], db.options())
    assert again.loaded == 1
    with db.factory() as s:
        assert not s.scalars(
            select(QuarantineItem).where(QuarantineItem.reason_code == "load-failed",
                                         QuarantineItem.status == "held")
        ).all()  # fmt: skip


def test_no_consent_is_held_then_loaded_once_consent_is_recorded(
    db: Db, tmp_path: Path
) -> None:
    write_patient(tmp_path, "LD-6", 206)
    consenting: set[str] = set()
    opts = db.options(consent=lambda _s, p: p in consenting)
    first = run_import(db.factory, [tmp_path], opts)
    n_files = len(list(tmp_path.glob("*.dcm")))
    assert first.loaded == 0 and first.quarantined["no-consent"] == n_files
    assert _person_id(db, "LD-6") is None
    consenting.add(pseudonym(KEY, "LD-6"))
    later = retry_held(
        db.factory, db.options(consent=lambda _s, p: p in consenting, key=None)
    )
    assert later.loaded == 1
    with db.factory() as s:
        assert not s.scalars(
            select(QuarantineItem).where(QuarantineItem.reason_code == "no-consent",
                                         QuarantineItem.status == "held")
        ).all()  # fmt: skip


def test_dose_before_structure_set_resolves_when_it_arrives(
    db: Db, tmp_path: Path
) -> None:
    write_patient(tmp_path / "all", "LD-7", 207)
    first = tmp_path / "first"
    first.mkdir()
    shutil.move(tmp_path / "all" / "RTDOSE.dcm", first / "RTDOSE.dcm")
    shutil.move(tmp_path / "all" / "RTPLAN.dcm", first / "RTPLAN.dcm")
    s1 = run_import(db.factory, [first], db.options())
    assert s1.loaded == 0 and s1.quarantined["no-structure-set"] == 2
    s2 = run_import(db.factory, [tmp_path / "all"], db.options())
    assert s2.loaded == 1


def test_mapping_change_remaps_from_stored_dvhs_without_dicom(
    db: Db, tmp_path: Path
) -> None:
    write_patient(tmp_path, "LD-8", 208)
    run_import(db.factory, [tmp_path], db.options())
    pid = _person_id(db, "LD-8")
    with db.factory() as s:
        lung = s.scalars(
            select(Dvh).where(Dvh.person_id == pid, Dvh.roi_name == "Lunga vä")
        ).one()
        before = dict(
            s.execute(
                select(DvhMetric.metric, Measurement.value_as_number)
                .join(
                    Measurement, Measurement.measurement_id == DvhMetric.measurement_id
                )
                .where(DvhMetric.dvh_id == lung.dvh_id)
            ).all()
        )
    shutil.rmtree(db.root / "files_moved", ignore_errors=True)
    shutil.move(db.root / "files", db.root / "files_moved")  # no DICOM can be read now
    try:
        with db.factory.begin() as s:
            import_rules(
                s, parse_rules_csv("centre,pattern,kind,tg263_name\nTST01,lunga vä,exact,CTV\n"),
                source="t.csv", actor="test",
            )  # fmt: skip
            report = remap_loaded(s, current_rules(s))
            assert report.structures_changed >= 1
    finally:
        shutil.move(db.root / "files_moved", db.root / "files")
    with db.factory() as s:
        lung = s.scalars(
            select(Dvh).where(Dvh.person_id == pid, Dvh.roi_name == "Lunga vä")
        ).one()
        assert (lung.tg263_name, lung.is_target) == ("CTV", True)
        after = dict(
            s.execute(
                select(DvhMetric.metric, Measurement.value_as_number)
                .join(
                    Measurement, Measurement.measurement_id == DvhMetric.measurement_id
                )
                .where(DvhMetric.dvh_id == lung.dvh_id)
            ).all()
        )
        sites = set(s.scalars(
            select(ImageFeature.anatomic_site_concept_id)
            .join(DvhMetric, DvhMetric.image_feature_id == ImageFeature.image_feature_id)
            .where(DvhMetric.dvh_id == lung.dvh_id)
        ))  # fmt: skip
    assert sites == {our_concept_id("TG263", "CTV")}
    assert "D95%[Gy]" in after
    assert not any(k.startswith("V") and k != "Volume[cc]" for k in after)
    assert after["Mean[Gy]"] == before["Mean[Gy]"]  # same stored DVH
    assert after["EQD2 Mean[Gy]"] != before["EQD2 Mean[Gy]"]  # alpha/beta 10, not 3
    with db.factory.begin() as s:  # put the global rules back for the other tests
        import_rules(
            s, parse_rules_csv("centre,pattern,kind,tg263_name\nTST01,lunga vä,exact,\n"),
            source="t2.csv", actor="test",
        )  # fmt: skip
        remap_loaded(s, current_rules(s))


def test_trigger_attaches_arriving_dataset_to_project(db: Db, tmp_path: Path) -> None:
    write_patient(tmp_path, "LD-9", 209)
    with db.factory.begin() as s:
        add_trigger(s, "LUNGSTUDY", TriggerKind.ROI, "lunga*")
        add_trigger(
            s, "OTHER", TriggerKind.TAG, "elsewhere*", keyword="InstitutionName"
        )
    calls: list[tuple[str, int, str]] = []
    opts = db.options(
        attach=lambda _s, code, person, rule: calls.append((code, person, rule))
    )
    summary = run_import(db.factory, [tmp_path], opts)
    assert summary.attached["LUNGSTUDY"] == 1
    assert [c[0] for c in calls] == ["LUNGSTUDY"]
    assert calls[0][1] == _person_id(db, "LD-9")
    with db.factory.begin() as s:
        for row in s.scalars(select(ProjectTrigger)):
            row.active = False


def test_no_partial_person_for_unreadable_files_only(db: Db, tmp_path: Path) -> None:
    (tmp_path / "x.dcm").write_bytes(b"DICM" * 10)
    summary = run_import(db.factory, [tmp_path], db.options())
    assert summary.loaded == 0
    assert sum(summary.quarantined.values()) == 1


def test_missing_study_date_is_held_not_loaded_with_an_invented_date(
    db: Db, tmp_path: Path
) -> None:
    write_patient(tmp_path, "LD-NSD", 230)
    files = sorted(tmp_path.glob("*.dcm"))
    for path in files:
        edit(path, StudyDate=None)
    summary = run_import(db.factory, [tmp_path], db.options())
    assert summary.loaded == 0
    assert summary.datasets_held == 1
    assert summary.quarantined["no-study-date"] == len(files)
    assert _person_id(db, "LD-NSD") is None  # no person, course or DVH written
    with db.factory() as s:
        held = s.scalars(
            select(QuarantineItem).where(
                QuarantineItem.reason_code == "no-study-date",
                QuarantineItem.status == "held",
            )
        ).all()
    assert len(held) == len(files)
    assert all("StudyDate" in item.reason for item in held)
