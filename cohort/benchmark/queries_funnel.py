"""Scoped, audited read of the toxicity funnel plot: observed/expected per centre.

One row per consented patient with a first RT course (of ``site``, or of every site):
the outcome is a grade >= ``min_grade`` of ``term`` within ``horizon_days`` of the
course start (assessments after the start only). A patient without the event who
died, or was last seen (last contact or last assessment), before the horizon is
left out: whether the event would have come is unknown.

The case-mix model (:func:`cohort.benchmark.casemix.expected_counts`) is fitted on
the patients of *every* centre, whichever centres the user sees: age at the RT start
(a missing age takes the mean of the others), sex, treatment site, fractionation
(dose per fraction class of the prescription) and the overall stage group recorded
with consent (:func:`cohort.stage.stage_query`; a patient without one is at the level
``missing``; a factor nobody has drops out and the output says so). With ``dose``
given, the dose metric (``(structure, metric)``, physical, latest dataset) is a
factor too and only
patients who have it are counted; the label says that this hides differences in
practice. Centres are placed on the funnel by
:func:`cohort.benchmark.funnel.funnel_points` (exact Poisson 95% and 99.8% limits).
Other centres with fewer than :data:`~cohort.benchmark.view.MIN_COUNT` patients are
left out, and so are other centres with 1-4 events (a point's position gives its
event count: observed = ratio x expected); the user's own centre is named, others
anonymised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cohort.benchmark.casemix import expected_counts
from cohort.benchmark.casemix_read import read_casemix
from cohort.benchmark.funnel import funnel_points
from cohort.benchmark.view import MIN_COUNT, centre_view, record_read
from cohort.consent_states import ConsentState
from cohort.permissions import Scope
from etl.store.metric_reads import metric_values
from omop.cohort_tables import Enrolment
from omop.vocab.standard import FEMALE, MALE

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

__all__ = [
    "CASE_MIX_FACTORS",
    "casemix_table",
    "fractionation_class",
    "toxicity_funnel",
]

#: The patient factors of the case-mix model, in the order of issue 16.
CASE_MIX_FACTORS = ("age_at_rt_start", "sex", "site", "fractionation", "stage")
_HYPO_GY, _EXTREME_GY = 2.5, 5.0


def fractionation_class(total_gy: float | None, fractions: int | None) -> str:
    """Return the class of a prescription by dose per fraction.

    Examples
    --------
    >>> fractionation_class(60.0, 30), fractionation_class(40.05, 15)
    ('conventional', 'hypofractionated')
    >>> fractionation_class(54.0, 3), fractionation_class(None, 5)
    ('stereotactic', 'unknown')
    """
    if total_gy is None or not fractions:
        return "unknown"
    per = total_gy / fractions
    if per < _HYPO_GY:
        return "conventional"
    return "hypofractionated" if per < _EXTREME_GY else "stereotactic"


def _persons(site: str | None) -> Select[Any]:
    query = select(Enrolment.person_id).where(
        Enrolment.state == ConsentState.CONSENTED.value
    )
    return query if site is None else query.where(Enrolment.treatment_site == site)


def casemix_table(
    session: Session,
    *,
    site: str | None,
    term: str,
    min_grade: int = 2,
    horizon_days: int = 365,
    dose: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Return one row per patient of every centre for the case-mix model.

    Patient-level and unscoped: only :func:`toxicity_funnel` (which scopes, audits
    and aggregates) may show anything of it.

    Returns
    -------
    DataFrame
        ``person_id, care_site_id, event`` (0/1), the factors of
        :data:`CASE_MIX_FACTORS` and, with ``dose``, ``dose``. ``attrs`` holds
        ``excluded`` (reason -> patients).
    """
    import pandas as pd

    persons = _persons(site)
    enrolled, sexes, courses, ages, scheme, deaths, seen, hits, staged = read_casemix(
        session, persons, term, min_grade
    )
    doses: dict[int, float] = {}
    if dose is not None:
        latest = sorted(
            metric_values(session, persons=persons, structure=dose[0], metric=dose[1]),
            key=lambda v: v.dataset_id,
        )
        doses = {v.person_id: v.value for v in latest}
    rows: list[dict[str, Any]] = []
    excluded = {"followed_less_than_horizon": 0, "died_before_horizon": 0,
                "no_dose": 0}  # fmt: skip
    sex_names = {MALE: "male", FEMALE: "female"}
    for pid in sorted(courses):
        start, _, ep = courses[pid]
        centre, treated, contact = enrolled[pid]
        first = hits.get(pid)
        event = first is not None and (first - start).days <= horizon_days
        if not event:
            died = deaths.get(pid)
            if died is not None and (died - start).days < horizon_days:
                excluded["died_before_horizon"] += 1
                continue
            ends = [d for d in (contact, seen.get(pid)) if d is not None]
            if not ends or (max(ends) - start).days < horizon_days:
                excluded["followed_less_than_horizon"] += 1
                continue
        if dose is not None and pid not in doses:
            excluded["no_dose"] += 1
            continue
        age = ages.get(ep)
        rows.append({
            "person_id": pid, "care_site_id": centre, "event": int(event),
            "age_at_rt_start": float("nan") if age is None else float(age),
            "sex": sex_names.get(sexes.get(pid) or 0, "unknown"),
            "site": treated or "unknown",
            "fractionation": fractionation_class(*scheme.get(ep, (None, None))),
            "stage": staged.get(pid),
            **({"dose": doses[pid]} if dose is not None else {}),
        })  # fmt: skip
    columns = ["person_id", "care_site_id", "event", *CASE_MIX_FACTORS]
    df = pd.DataFrame(rows, columns=[*columns, *(["dose"] if dose else [])])
    if df["age_at_rt_start"].notna().any():
        df["age_at_rt_start"] = df["age_at_rt_start"].fillna(
            df["age_at_rt_start"].mean()
        )
    df.attrs["excluded"] = excluded
    return df


def toxicity_funnel(
    session: Session,
    scope: Scope,
    *,
    term: str,
    site: str | None = None,
    min_grade: int = 2,
    horizon_days: int = 365,
    dose: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Return the funnel plot points of grade >= ``min_grade`` ``term`` by centre.

    Parameters
    ----------
    session, scope
        Open session and an aggregate-read scope (refused otherwise, audited).
    term, min_grade, horizon_days
        The endpoint: a grade >= ``min_grade`` of CTCAE ``term`` within
        ``horizon_days`` of the first RT course's start.
    site
        Treatment site (None: every site, with site a case-mix factor).
    dose
        ``(TG-263 structure, metric)`` to adjust for too (hides differences in
        practice; only patients with the metric are counted).

    Returns
    -------
    DataFrame
        One row per visible centre: ``centre``, ``own`` and the columns of
        :func:`~cohort.benchmark.funnel.funnel_points` (``observed``, ``expected``,
        ``ratio``, ``lower_95`` ... ``outside_998``), ``n`` and ``adjustment``.
        ``attrs``: ``hidden_small`` (other centres not drawn: 1-4 events),
        ``factors_used``, ``factors_dropped``, ``excluded``, ``n_patients`` (all
        centres) and ``n_events``.
    """
    import pandas as pd

    view = centre_view(session, scope)
    table = casemix_table(
        session, site=site, term=term, min_grade=min_grade,
        horizon_days=horizon_days, dose=dose,
    )  # fmt: skip
    detail = f"site {site or 'all'}, {term} >= {min_grade} @ {horizon_days}d" + (
        f", adjusted for {dose[0]} {dose[1]}" if dose else ""
    )
    record_read(session, scope, "toxicity_funnel", detail)
    out = pd.DataFrame()
    counts = pd.DataFrame()
    hidden_small = 0
    if len(table):
        factors = [f for f in CASE_MIX_FACTORS if not (site and f == "site")]
        counts = expected_counts(
            table, "event", factors, by="care_site_id",
            dose_column="dose" if dose else None,
        )  # fmt: skip
        own = counts["care_site_id"].isin(view.own) | (not view.shows_others)
        # Another centre's point gives its event count (observed = ratio x
        # expected): one with 1-4 events is a small cell and is not drawn.
        small = ~own & counts["observed"].between(1, MIN_COUNT - 1)
        visible = counts["care_site_id"].isin(view.centre_ids)
        hidden_small = int((visible & small & (counts["n"] >= MIN_COUNT)).sum())
        shown = counts[visible & ~small & (own | (counts["n"] >= MIN_COUNT))]
        if len(shown):
            labels = [view.labels[int(i)] for i in shown["care_site_id"]]
            out = funnel_points(shown["observed"], shown["expected"], labels)
            out = out.rename(columns={"label": "centre"})
            out.insert(1, "own", [int(i) in view.own for i in shown["care_site_id"]])
            out["n"] = shown["n"].to_numpy()
            out["adjustment"] = shown["adjustment"].to_numpy()
            out = out.sort_values("centre").reset_index(drop=True)
    out.attrs.update(
        hidden_small=hidden_small if len(table) else 0,
        factors_used=list(counts.attrs.get("factors_used", [])),
        factors_dropped=list(counts.attrs.get("factors_dropped", [])),
        excluded=dict(table.attrs["excluded"]),
        n_patients=len(table),
        n_events=int(table["event"].sum()) if len(table) else 0,
    )
    return out
