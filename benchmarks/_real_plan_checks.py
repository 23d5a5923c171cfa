"""The checks of ``benchmarks/real_plan.py`` (one imported real plan).

The reference values come from :mod:`benchmarks._real_plan_ref` (numpy on the stored
differential DVH), not from the platform's samplers or metric engine.
"""

from __future__ import annotations

import csv
import datetime
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks._real_plan_ref import (
    AB,
    STEP,
    CheckFailedError,
    eqd2,
    eqd2_mean,
    nodes,
    reference_metric,
    resample,
)

FloatArray = NDArray[np.float64]
FIGURES: dict[str, dict[str, Any]] = {}
#: Largest differences accepted: DVH vs CLI must be equal; samples and physical
#: metrics equal to float rounding. EQD2 metrics are read from the EQD2 histogram
#: re-binned at the physical bin width (``etl.dose.radiobiology.dvh_to_eqd2``), the
#: reference here maps the exact nodes: they agree within one bin width (Gy).
TOL = {"a": 1e-9, "b_phys": 1e-9, "b_eqd2": 1e-9, "c_phys": 1e-9}
#: The names the default TG-263 rules must give.
EXPECTED_MAPPING = {"Lt Lung": "Lung_L", "Heart": "Heart", "BODY": "Body"}


def run_cli(args: list[str]) -> tuple[str, float]:
    """Run ``rtcohort ARGS`` in-process; its output and seconds (failing: raise)."""
    from typer.testing import CliRunner

    from rtcohort.cli import app

    t0 = time.perf_counter()
    result = CliRunner().invoke(app, args)
    took = time.perf_counter() - t0
    if result.exit_code != 0:
        raise CheckFailedError(
            f"rtcohort {' '.join(args[:2])} exited {result.exit_code}: "
            f"{result.output[-2000:]} {result.exception!r}"
        )
    return result.output, took


def cli_dvh(folder: Path) -> tuple[dict[int, dict[str, str]], float]:
    """Run ``rtcohort dvh --rtstruct --rtdose`` with D95% and V20Gy; rows by ROI."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dvh.csv"
        _, took = run_cli([
            "dvh", "--rtstruct", str(folder / "rtss.dcm"), "--rtdose",
            str(folder / "rtdose.dcm"), "--metric", "D95%[Gy]", "--metric",
            "V20Gy[%]", "--metric", "V10Gy[%]", "--csv", str(out)])  # fmt: skip
        lines = [x for x in out.read_text().splitlines() if not x.startswith("#")]
    rows = {int(r["roi_number"]): r for r in csv.DictReader(lines)}
    return rows, took


# -- the checks ---------------------------------------------------------------------


def _dvh_rows(ctx: dict[str, Any]) -> list[Any]:
    from sqlalchemy import select

    from cohort.consent import find_person
    from omop.ingest_tables import Dvh

    with ctx["factory"]() as s:
        person = find_person(s, ctx["pseudonym"])
        if person is None:
            raise CheckFailedError("the patient has no PERSON row after the import")
        ctx["person_id"] = person.person_id
        rows = list(s.scalars(select(Dvh).where(Dvh.person_id == person.person_id)))
    if not rows:
        raise CheckFailedError("no DVH stored for the patient")
    return sorted(rows, key=lambda r: r.roi_number)


def _put(label: str, key: str, value: Any) -> None:
    FIGURES.setdefault(label, {})[key] = value


def check_a(ctx: dict[str, Any], cli: dict[int, dict[str, str]], label: str) -> None:
    """Stored DVHs against ``rtcohort dvh`` on the same files."""
    from etl.dose.metrics import evaluate
    from etl.store.dvh_rows import dvh_from_row

    rows = _dvh_rows(ctx)
    ctx["dvh_rows"] = rows
    print("\n(a) stored DVH vs `rtcohort dvh`   (largest |difference| per column)")
    print(f"{'ROI':16} {'TG-263':10} {'type':5} {'vol cc':>9} {'mean Gy':>8} "
          f"{'max Gy':>8} {'D95% Gy':>8} {'V20Gy %':>8} {'V10Gy %':>8}")  # fmt: skip
    worst = 0.0
    missing = sorted(set(cli) - {r.roi_number for r in rows})
    for r in rows:
        dvh = dvh_from_row(r)
        ours = [r.volume_cc, r.mean_gy, r.max_gy, evaluate(dvh, "D95%[Gy]"),
                evaluate(dvh, "V20Gy[%]"), evaluate(dvh, "V10Gy[%]")]  # fmt: skip
        c = cli.get(r.roi_number)
        if c is None:
            raise CheckFailedError(
                f"ROI {r.roi_number} {r.roi_name!r} not in rtcohort dvh"
            )
        theirs = [c["volume_cc"], c["mean_gy"], c["max_gy"], c["D95%[Gy]"],
                  c["V20Gy[%]"], c["V10Gy[%]"]]  # fmt: skip
        for o, t in zip(ours, theirs, strict=True):
            if (o is None) != (t == ""):
                raise CheckFailedError(f"{r.roi_name}: stored {o} vs CLI {t!r}")
            if o is not None:
                worst = max(worst, abs(float(o) - float(t)))
        kind = ("T " if r.is_target else "") + str(r.interpreted_type or "")[:3]
        print(
            f"{r.roi_name[:16]:16} {str(r.tg263_name)[:10]:10} {kind:5} "
            + " ".join(f"{'-' if v is None else f'{v:.3f}':>8}" for v in ours)
        )
    print(f"largest difference: {worst:.3g} (over {len(rows)} structures)")
    _put(label, "a_max_diff", worst)
    _put(label, "structures", len(rows))
    _put(label, "mapping", {r.roi_name: r.tg263_name for r in rows})
    if missing:
        raise CheckFailedError(f"ROIs of rtcohort dvh not stored: {missing}")
    mapped = {r.roi_name: r.tg263_name for r in rows}
    wrong = {
        k: mapped.get(k) for k, v in EXPECTED_MAPPING.items() if mapped.get(k) != v
    }
    if wrong:
        raise CheckFailedError(f"TG-263 mapping: {wrong}, expected {EXPECTED_MAPPING}")
    if worst > TOL["a"]:
        raise CheckFailedError(f"stored DVH differs from rtcohort dvh by {worst:.3g}")


def check_b(ctx: dict[str, Any], label: str) -> None:
    """``dvh_sampled`` against np.interp of the stored cumulative curve."""
    from sqlalchemy import select

    from omop.summary_tables import DvhSampled

    n = ctx["fractions"]
    ids = {r.dvh_id: r for r in ctx["dvh_rows"]}
    with ctx["factory"]() as s:
        stored = list(s.scalars(select(DvhSampled).where(
            DvhSampled.dvh_id.in_(ids))))  # fmt: skip
    seen: dict[str, set[int]] = {}
    worst = {"physical": 0.0, "eqd2_ab3": 0.0}
    ref_curves: dict[tuple[int, str], FloatArray] = {}
    for row in stored:
        rep = row.representation
        seen.setdefault(rep, set()).add(row.dvh_id)
        got = np.frombuffer(row.samples, dtype="<f8")
        if len(got) != row.n_samples:
            raise CheckFailedError(f"dvh_sampled {row.dvh_id} {rep}: length mismatch")
        dose, vol, _ = nodes(ids[row.dvh_id])
        if rep == "eqd2_ab3":
            if row.fractions != n:
                raise CheckFailedError(
                    f"dvh_sampled fractions {row.fractions}, plan {n}"
                )
            dose = eqd2(dose, n)
        elif rep != "physical":
            continue
        want = resample(dose, vol, len(got))
        if len(got) != math.floor(dose[-1] / STEP) + 2:
            raise CheckFailedError(
                f"dvh_sampled {row.dvh_id} {rep}: {len(got)} samples "
                f"for a curve to {dose[-1]:.3f} Gy"
            )
        ref_curves[(row.dvh_id, rep)] = want
        worst[rep] = max(worst[rep], float(np.max(np.abs(got - want))))
    ctx["ref_curves"] = ref_curves
    print(f"\n(b) dvh_sampled vs np.interp every {STEP:g} Gy "
          f"(EQD2 a/b {AB:g}, n={n}): largest |difference| (volume %)")  # fmt: skip
    for rep, w in worst.items():
        print(f"  {rep:10} {w:.3g} %   ({len(seen.get(rep, ()))} curves)")
    _put(label, "b_phys", worst["physical"])
    _put(label, "b_eqd2", worst["eqd2_ab3"])
    for rep in ("physical", "eqd2_ab3"):
        if seen.get(rep, set()) != set(ids):
            n_seen = len(seen.get(rep, ()))
            raise CheckFailedError(
                f"dvh_sampled {rep}: rows for {n_seen} of {len(ids)} DVHs"
            )
    if worst["physical"] > TOL["b_phys"] or worst["eqd2_ab3"] > TOL["b_eqd2"]:
        raise CheckFailedError(f"dvh_sampled differs: {worst}")


def check_c(ctx: dict[str, Any], label: str) -> None:
    """dvh_metric / MEASUREMENT rows against values computed from the DVH."""
    from sqlalchemy import select

    from omop.cdm import Measurement
    from omop.ingest_tables import DvhMetric

    ids = {r.dvh_id: r for r in ctx["dvh_rows"]}
    with ctx["factory"]() as s:
        links = s.execute(
            select(DvhMetric.dvh_id, DvhMetric.metric, DvhMetric.alpha_beta_gy,
                   Measurement.value_as_number)
            .join(Measurement, Measurement.measurement_id == DvhMetric.measurement_id)
            .where(DvhMetric.dvh_id.in_(ids))
        ).all()  # fmt: skip
    worst: dict[str, tuple[float, str]] = {"phys": (0.0, ""), "eqd2": (0.0, "")}
    for dvh_id, metric, ab, value in links:
        is_eqd2 = metric.startswith("EQD2 ")
        spec = metric.removeprefix("EQD2 ")
        want = reference_metric(
            ids[dvh_id], spec, ctx["fractions"] if is_eqd2 else None, ab or AB
        )
        if want is None:
            raise CheckFailedError(f"{metric} stored for dvh {dvh_id}, undefined here")
        key = "eqd2" if is_eqd2 else "phys"
        diff = abs(float(value) - want)
        if diff > worst[key][0]:
            worst[key] = (diff, f"{ids[dvh_id].roi_name} {metric}")
    n_eqd2 = sum(1 for x in links if x[1].startswith("EQD2 "))
    abs_ = sorted({x[2] for x in links if x[2] is not None})
    print(f"\n(c) {len(links)} dvh_metric/MEASUREMENT rows ({n_eqd2} EQD2, a/b {abs_}) "
          "vs values "
          "computed from the DVH: largest |difference|")  # fmt: skip
    for key, (w, where) in worst.items():
        print(f"  {key:5} {w:.3g}   ({where or '-'})")
    _put(label, "c_rows", len(links))
    _put(label, "c_phys", worst["phys"][0])
    _put(label, "c_eqd2", worst["eqd2"][0])
    if not links:
        raise CheckFailedError("no dose metric stored")
    width = max(float(r.bin_width_gy) for r in ids.values())
    print(f"  (EQD2 accepted within one bin width, {width:g} Gy)")
    _put(label, "bin_width", width)
    if worst["phys"][0] > TOL["c_phys"] or worst["eqd2"][0] > width:
        raise CheckFailedError(f"dose metrics differ: {worst}")


def _read(
    ctx: dict[str, Any], user: str, eq: bool
) -> tuple[dict[str, Any] | None, Any]:
    """One user's distribution row (or None) and band of breast Heart."""
    from cohort.benchmark import queries_dose
    from cohort.permissions import Action, scope_for
    from cohort.users import get_user

    with ctx["factory"].begin() as s:
        scope = scope_for(s, get_user(s, user), Action.READ_AGGREGATES)
        df = queries_dose.dose_distribution(
            s, scope, site="breast", structure="Heart", metric="Mean[Gy]", eqd2=eq
        )
        band = queries_dose.dvh_band(
            s, scope, site="breast", structure="Heart", eqd2=eq
        )
    rec = df.to_dict("records")
    return (rec[0] if rec else None), band


def _shown(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def check_d(ctx: dict[str, Any], label: str) -> None:
    """The dashboards' dose reads of breast Heart (admin and the centre's clinician).

    The admin sees every centre as another centre's: with one patient (fewer than
    5) the distribution row is suppressed and the band left out, by design. The
    centre's clinician sees the own centre in full: the values must be this
    patient's (EQD2 mean within one bin width, see :data:`TOL`).
    """
    heart = [r for r in ctx["dvh_rows"] if r.tg263_name == "Heart"]
    if len(heart) != 1:
        raise CheckFailedError(f"{len(heart)} DVHs mapped to Heart")
    h = heart[0]
    want = {False: float(h.mean_gy), True: eqd2_mean(h, ctx["fractions"])}
    tol = {False: 1e-9, True: float(h.bin_width_gy)}
    print("\n(d) dashboards' dose reads, breast Heart Mean[Gy] and the DVH band")
    problems: list[str] = []
    worst = {False: 0.0, True: 0.0}
    for user in ("admin", "clin-real"):
        for eq in (False, True):
            row, band = _read(ctx, user, eq)
            what = f"{user} {'EQD2' if eq else 'physical'}"
            median = row["median"] if row else None
            band_diff = None
            if not band.empty:
                got = band["median"].to_numpy(dtype=float)
                ref = ctx["ref_curves"][(h.dvh_id, "eqd2_ab3" if eq else "physical")]
                ref = np.pad(ref, (0, max(0, len(got) - len(ref))))
                band_diff = float(np.max(np.abs(got - ref[: len(got)])))
            print(f"  {what:20} patients {row['patients'] if row else '-'}  mean "
                  f"{f'{median:.6f}' if _shown(median) else 'suppressed'} "
                  f"(from the DVH {want[eq]:.6f})  band "
                  f"{'left out' if band_diff is None else f'|diff| {band_diff:.3g}'}"
                  )  # fmt: skip
            if row is None:
                problems.append(f"{what}: no row for the patient's centre")
            elif user == "admin":
                if _shown(median) or band_diff is not None:
                    problems.append(f"{what}: one patient shown to the admin")
            elif not _shown(median) or band_diff is None or row["patients"] != 1:
                problems.append(f"{what}: own centre's values not shown")
            else:
                d = abs(float(median or 0.0) - want[eq])
                worst[eq] = max(worst[eq], d, band_diff)
                if d > tol[eq] or band_diff > TOL["b_phys"]:
                    problems.append(f"{what}: mean {median} vs {want[eq]}, band "
                                    f"{band_diff:.3g} %")  # fmt: skip
    _put(label, "d_phys", worst[False])
    _put(label, "d_eqd2", worst[True])
    if problems:
        raise CheckFailedError("; ".join(problems))


def check_e(ctx: dict[str, Any], label: str) -> None:
    """Withdrawal with erasure leaves no row of the person in the dose tables."""
    from sqlalchemy import func, select

    from cohort import erasure_files, service
    from cohort.users import get_user
    from omop.cdm import ImageFeature, ImageOccurrence, Measurement
    from omop.ingest_tables import Dvh, DvhMetric
    from omop.summary_tables import DvhSampled
    from rtcohort.settings import get_settings

    pid = ctx["person_id"]
    dvh_ids = [r.dvh_id for r in ctx["dvh_rows"]]
    data_dir = get_settings().data_dir
    t0 = time.perf_counter()
    with ctx["factory"].begin() as s:
        result = service.withdraw(
            s, get_user(s, "admin"), centre_code="REAL01", pseudonym=ctx["pseudonym"],
            event_date=ctx["day"] + datetime.timedelta(days=30), erase=True,
            data_dir=data_dir)  # fmt: skip
    with ctx["factory"].begin() as s:
        erasure_files.finish_erasure(s, data_dir)
    took = time.perf_counter() - t0
    counts = {}
    with ctx["factory"]() as s:
        for model in (Dvh, DvhSampled, Measurement, ImageOccurrence, ImageFeature):
            counts[model.__tablename__] = s.scalar(
                select(func.count()).select_from(model).where(
                    model.person_id == pid))  # fmt: skip
        counts["dvh_metric"] = s.scalar(select(func.count()).select_from(
            DvhMetric).where(DvhMetric.dvh_id.in_(dvh_ids)))  # fmt: skip
    rows = result.report.rows if result.report else 0
    print(
        f"\n(e) withdrawal with erasure: {rows} rows erased in {took:.2f} s; "
        f"left: {counts}"
    )
    _put(label, "erase_s", took)
    _put(label, "erased_rows", rows)
    left = {k: v for k, v in counts.items() if v}
    if not result.erased or left:
        raise CheckFailedError(f"erasure left rows: {left}")


def steps(
    ctx: dict[str, Any], cli: dict[int, dict[str, str]]
) -> list[tuple[str, Callable[[str], None]]]:
    """The checks in order (each later one uses what the earlier ones read)."""
    return [
        ("(a) DVH vs CLI", lambda label: check_a(ctx, cli, label)),
        ("(b) dvh_sampled", lambda label: check_b(ctx, label)),
        ("(c) dose metrics", lambda label: check_c(ctx, label)),
        ("(d) dashboards", lambda label: check_d(ctx, label)),
        ("(e) erasure", lambda label: check_e(ctx, label)),
    ]


def print_summary() -> None:
    """The figures of every backend in one table."""
    keys = [("import_s", "import (s)"), ("cli_dvh_s", "rtcohort dvh (s)"),
            ("structures", "DVHs stored"), ("a_max_diff", "(a) DVH vs CLI"),
            ("b_phys", "(b) samples phys %"), ("b_eqd2", "(b) samples EQD2 %"),
            ("c_rows", "(c) metric rows"), ("c_phys", "(c) metrics phys"),
            ("c_eqd2", "(c) metrics EQD2 Gy"), ("bin_width", "bin width Gy"),
            ("d_phys", "(d) Heart phys"), ("d_eqd2", "(d) Heart EQD2"),
            ("erased_rows", "(e) rows erased"), ("erase_s", "(e) erasure (s)"),
            ]  # fmt: skip
    labels = list(FIGURES)
    print("\n| figure | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for k, name in keys:
        cells = []
        for lab in labels:
            v = FIGURES[lab].get(k)
            cells.append("-" if v is None else f"{v:.3g}" if isinstance(v, float)
                         else str(v))  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + " |")
    for lab in labels:
        if "mapping" in FIGURES[lab]:
            print(f"TG-263 mapping ({lab}): {FIGURES[lab]['mapping']}")
            break
