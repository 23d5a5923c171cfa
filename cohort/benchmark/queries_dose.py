"""Scoped, audited reads of dose benchmarking: distributions, DVH bands, I-chart.

Per treatment site, fractionation scheme (``60 Gy/30``), organ (TG-263) and metric
(TG-263 metric string), physical or EQD2 (the EQD2 metrics stored at load, with the
organ-at-risk alpha/beta, 3 Gy unless the site set another). One value per patient:
the latest loaded dataset. Other centres show only summaries, and nothing for a
centre with fewer than :data:`cohort.benchmark.view.MIN_COUNT` patients.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cohort.benchmark.control_chart import individuals_chart
from cohort.benchmark.dose_curves import band_curves, episodes_of, scheme_label
from cohort.benchmark.view import MIN_COUNT, CentreView, centre_view, record_read
from cohort.consent_states import ConsentState
from cohort.permissions import Scope
from etl.store.metric_reads import metric_values, prescriptions
from etl.store.report import structure_counts
from omop.cohort_tables import Enrolment

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]


__all__ = [
    "BENCHMARK_METRICS",
    "DEFAULT_ALPHA_BETA_GY",
    "dose_distribution",
    "dose_schemes",
    "dvh_band",
    "metric_over_time",
    "scheme_label",
    "site_organs",
]

DEFAULT_ALPHA_BETA_GY = 3.0

#: The organ metrics each site's page offers first (issue 16's examples).
BENCHMARK_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "breast": (("Heart", "Mean[Gy]"), ("Lung_L", "V20Gy[%]"), ("A_LAD", "Max[Gy]")),
    "prostate": (("Rectum", "V70Gy[%]"), ("Bladder", "V65Gy[%]")),
    "head_neck": (
        ("Parotid_L", "Mean[Gy]"),
        ("Parotid_R", "Mean[Gy]"),
        ("SpinalCord", "D0.03cc[Gy]"),
    ),
    "lung": (
        ("Lungs", "V20Gy[%]"),
        ("Lungs", "Mean[Gy]"),
        ("Heart", "Mean[Gy]"),
        ("Esophagus", "Mean[Gy]"),
    ),
}


_QUANTILES = np.array([0.1, 0.25, 0.75, 0.9])


def _persons(view: CentreView, site: str) -> Select[Any]:
    return select(Enrolment.person_id).where(
        Enrolment.state == ConsentState.CONSENTED.value,
        Enrolment.treatment_site == site,
        Enrolment.care_site_id.in_(view.centre_ids),
    )


def _values(
    session: Session,
    view: CentreView,
    *,
    site: str,
    structure: str,
    metric: str,
    eqd2: bool,
    alpha_beta_gy: float,
    schemes: bool = True,
) -> pd.DataFrame:
    """One row per patient: ``care_site_id, course_start, scheme, value``.

    ``schemes`` False skips reading the prescriptions (``scheme`` is ``unknown``).
    """
    import pandas as pd

    persons = _persons(view, site)
    rows = metric_values(
        session, persons=persons, structure=structure, metric=metric,
        alpha_beta_gy=alpha_beta_gy if eqd2 else None,
    )  # fmt: skip
    scheme = prescriptions(session, episodes_of(persons)) if rows and schemes else {}
    columns = ["person_id", "care_site_id", "dataset_id", "course_start", "scheme"]
    records = [
        (r.person_id, r.care_site_id, r.dataset_id, r.course_start,
         scheme_label(*scheme.get(r.episode_id or -1, (None, None))), r.value)
        for r in rows
    ]  # fmt: skip
    df = pd.DataFrame(records, columns=[*columns, "value"])
    df = df.sort_values("dataset_id").groupby("person_id", as_index=False).last()
    return df


def site_organs(session: Session, scope: Scope, *, site: str) -> pd.DataFrame:
    """Return the organs of a site's patients, most patients first.

    The site's benchmark organs come first among equals; counts are across the
    visible centres (below 5 hidden when other centres are included).

    Returns
    -------
    DataFrame
        ``structure, patients``.
    """
    import pandas as pd

    view = centre_view(session, scope)
    found = structure_counts(session, _persons(view, site))
    preferred = [o for o, _ in BENCHMARK_METRICS.get(site, ())]
    names = list(dict.fromkeys([*preferred, *sorted(found)]))
    df = pd.DataFrame(
        [{"structure": n, "patients": found.get(n, 0)} for n in names],
        columns=["structure", "patients"],
    ).sort_values("patients", ascending=False, kind="stable")
    record_read(session, scope, "dose_organs", f"site {site}: {len(found)} organs")
    if view.shows_others:
        df["patients"] = df["patients"].where(
            (df["patients"] >= MIN_COUNT) | (df["patients"] == 0)
        )
    return df.reset_index(drop=True)


def dose_schemes(
    session: Session, scope: Scope, *, site: str, structure: str, metric: str
) -> pd.DataFrame:
    """Return the fractionation schemes with patients (``scheme, patients``)."""
    view = centre_view(session, scope)
    df = _values(session, view, site=site, structure=structure, metric=metric,
                 eqd2=False, alpha_beta_gy=DEFAULT_ALPHA_BETA_GY)  # fmt: skip
    out = df.groupby("scheme", as_index=False).agg(patients=("person_id", "count"))
    out = out.sort_values("patients", ascending=False).reset_index(drop=True)
    record_read(session, scope, "dose_schemes", f"site {site}: {len(out)} schemes")
    if view.shows_others:
        out["patients"] = out["patients"].where(out["patients"] >= MIN_COUNT)
    return out


def _scheme(df: pd.DataFrame, scheme: str | None) -> pd.DataFrame:
    return df if scheme is None else df[df["scheme"] == scheme]


def dose_distribution(
    session: Session,
    scope: Scope,
    *,
    site: str,
    structure: str,
    metric: str,
    scheme: str | None = None,
    eqd2: bool = False,
    alpha_beta_gy: float = DEFAULT_ALPHA_BETA_GY,
) -> pd.DataFrame:
    """Return the distribution of the metric per centre.

    Returns
    -------
    DataFrame
        ``centre, patients, p10, q1, median, q3, p90`` (other centres with fewer
        than 5 patients: every column but ``centre`` empty).
    """
    import pandas as pd

    view = centre_view(session, scope)
    df = _scheme(
        _values(session, view, site=site, structure=structure, metric=metric,
                eqd2=eqd2, alpha_beta_gy=alpha_beta_gy, schemes=scheme is not None),
        scheme,
    )  # fmt: skip
    rows = []
    for site_id, group in df.groupby("care_site_id"):
        v = group["value"].to_numpy(dtype=float)
        # As Series.quantile and .median compute them (NaN skipped, linear).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: NaN
            p10, q1, q3, p90 = np.nanpercentile(v, _QUANTILES * 100.0)
            median = np.nanmedian(v)
        row: dict[str, Any] = {
            "centre": view.labels[int(site_id)], "patients": len(v),
            "p10": float(p10), "q1": float(q1), "median": float(median),
            "q3": float(q3), "p90": float(p90),
        }  # fmt: skip
        if int(site_id) not in view.own and view.shows_others and len(v) < MIN_COUNT:
            row = {"centre": row["centre"]} | dict.fromkeys(list(row)[1:])
        rows.append(row)
    columns = ["centre", "patients", "p10", "q1", "median", "q3", "p90"]
    out = pd.DataFrame(rows, columns=columns).sort_values("centre")
    record_read(
        session, scope, "dose_distribution",
        f"site {site}, {structure} {metric}{' EQD2' if eqd2 else ''}: {len(out)}",
    )  # fmt: skip
    return out.reset_index(drop=True)


def metric_over_time(
    session: Session,
    scope: Scope,
    *,
    site: str,
    structure: str,
    metric: str,
    scheme: str | None = None,
    eqd2: bool = False,
    alpha_beta_gy: float = DEFAULT_ALPHA_BETA_GY,
) -> pd.DataFrame:
    """Return the individuals chart of the metric over time at the user's centres.

    Returns
    -------
    DataFrame
        ``date, value, centre_line, ucl, lcl, out_of_limits`` (empty when fewer
        than two patients of the user's own centres have the metric).
    """
    import pandas as pd

    view = centre_view(session, scope)
    df = _scheme(
        _values(session, view, site=site, structure=structure, metric=metric,
                eqd2=eqd2, alpha_beta_gy=alpha_beta_gy, schemes=scheme is not None),
        scheme,
    )  # fmt: skip
    own = df[df["care_site_id"].isin(view.own) & df["course_start"].notna()]
    record_read(session, scope, "dose_over_time", f"{structure} {metric}: {len(own)}")
    if len(own) < 2:  # noqa: PLR2004
        columns = ["date", "value", "centre_line", "ucl", "lcl", "out_of_limits"]
        return pd.DataFrame(columns=columns)
    return individuals_chart(list(own["value"]), list(own["course_start"]))


def dvh_band(
    session: Session,
    scope: Scope,
    *,
    site: str,
    structure: str,
    scheme: str | None = None,
    eqd2: bool = False,
    alpha_beta_gy: float = DEFAULT_ALPHA_BETA_GY,
    step_gy: float = 1.0,
) -> pd.DataFrame:
    """Return the population DVH band: median and IQR of the volume % per centre.

    The cumulative DVH of each patient (latest dataset; EQD2 with the course's
    fractions when asked) is sampled every ``step_gy``; other centres with fewer
    than 5 patients are left out. At the default step and alpha/beta the samples
    stored with the DVHs are read (:mod:`etl.store.dvh_samples`), else every curve
    is sampled here.

    Returns
    -------
    DataFrame
        ``centre, dose_gy, q1, median, q3, patients``.
    """
    import pandas as pd

    view = centre_view(session, scope)
    persons = _persons(view, site)
    grid, sampled, centres = band_curves(
        session, persons, structure, scheme=scheme, eqd2=eqd2,
        alpha_beta_gy=alpha_beta_gy, step_gy=step_gy,
    )  # fmt: skip
    rows = []
    for site_id in dict.fromkeys(centres.tolist()):
        if site_id not in view.labels:
            continue
        mine = sampled[centres == site_id]
        if site_id not in view.own and view.shows_others and len(mine) < MIN_COUNT:
            continue
        q1, med, q3 = np.percentile(mine, [25, 50, 75], axis=0)
        rows += [
            {"centre": view.labels[site_id], "dose_gy": g, "q1": a, "median": b,
             "q3": c, "patients": len(mine)}
            for g, a, b, c in zip(grid, q1, med, q3, strict=True)
        ]  # fmt: skip
    out = pd.DataFrame(rows, columns=["centre", "dose_gy", "q1", "median", "q3",
                                      "patients"])  # fmt: skip
    n_centres = len(set(centres.tolist()))
    record_read(session, scope, "dvh_band", f"site {site}, {structure}: {n_centres}")
    return out
