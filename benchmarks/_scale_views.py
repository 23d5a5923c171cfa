"""The read queries ``benchmarks/scale.py`` times: the dashboards' own data functions.

:data:`VIEW_QUERIES` maps a label to ``callable(session)``: one entry per query a
benchmark page (:mod:`dashboards.pages`) reads through
:data:`dashboards.ui.cached.QUERIES`, called as the page's cache miss calls it (the
viewer's scope from :func:`cohort.permissions.scope_for`, the package function, its
audit record) with the page's default choices, as the admin (who, like a viewer,
sees every centre, the others anonymised and suppressed). Labels are
``page/query``. The two reports of :mod:`cohort.reports` come too. :func:`heavy_queries`
adds the NTCP dataset extraction behind the NTCP explorer
(:func:`ntcp.dataset.extract_dataset`) and ``db quality``
(:func:`omop.quality.run_quality`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

__all__ = ["VIEW_QUERIES", "heavy_queries"]

Query = Callable[[Session], Any]

#: The pages' choices: a site, its first benchmark organ and metric, a term.
SITE, ORGAN, METRIC, TERM = "lung", "Lungs", "V20Gy[%]", "Pneumonitis"
#: The largest site of the simulated cohort, for the dose reads too.
BIG_SITE, BIG_ORGAN, BIG_METRIC = "breast", "Heart", "Mean[Gy]"
TODAY = datetime.datetime.now(datetime.UTC).date()


def _admin(session: Session) -> Any:
    from cohort.users import ensure_admin, get_user

    ensure_admin(session, "scale-benchmark-password")
    return get_user(session, "admin")


def _page(name: str, **params: Any) -> Query:
    """The read behind ``dashboards.ui.cached.read(name, identity, **params)``."""

    def run(session: Session) -> Any:
        from cohort.permissions import scope_for
        from dashboards.ui.cached import QUERIES

        function, action = QUERIES[name]
        scope = scope_for(session, _admin(session), action)
        return function(session, scope, **params)

    run.__name__ = name
    return run


def recruitment(session: Session) -> Any:
    """Recruitment per centre over all years (``cohort.reports``)."""
    from cohort.reports import recruitment_report

    return recruitment_report(
        session, _admin(session),
        start=datetime.date(1900, 1, 1), end=datetime.date(2100, 1, 1),
    )  # fmt: skip


def completion(session: Session) -> Any:
    """PROM completion per centre and timepoint (``cohort.reports``)."""
    from cohort.reports import completion_report

    return completion_report(session, _admin(session))


def _dose(site: str, organ: str, metric: str) -> dict[str, Query]:
    chosen = {"site": site, "structure": organ, "metric": metric, "eqd2": False,
              "scheme": None}  # fmt: skip
    band = {k: v for k, v in chosen.items() if k != "metric"}
    tag = "" if site == SITE else f"[{site}]"
    return {
        f"dose/dose_organs{tag}": _page("dose_organs", site=site),
        f"dose/dose_schemes{tag}": _page(
            "dose_schemes", site=site, structure=organ, metric=metric
        ),
        f"dose/dose_distribution{tag}": _page("dose_distribution", **chosen),
        f"dose/dvh_band{tag}": _page("dvh_band", **band),
        f"dose/dvh_band_eqd2{tag}": _page("dvh_band", **(band | {"eqd2": True})),
        f"dose/dose_over_time{tag}": _page("dose_over_time", **chosen),
    }


_START = datetime.date(TODAY.year - 5, 1, 1)

VIEW_QUERIES: dict[str, Query] = {
    "reports/recruitment_report": recruitment,
    "reports/completion_report": completion,
    "overview/recruitment_funnel": _page("recruitment_funnel", start=_START, end=TODAY),
    "overview/recruitment_over_time": _page(
        "recruitment_over_time", start=_START, end=TODAY
    ),
    "overview/completion": _page("completion"),
    "overview/followup": _page("followup", today=TODAY),
    "completeness/sites": _page("sites"),
    "completeness/structures": _page("structures", site=SITE),
    "completeness/structure_matrix": _page("structure_matrix", site=SITE),
    "completeness/unmapped": _page("unmapped"),
    "completeness/qa_warnings": _page("qa_warnings"),
    "completeness/quarantine": _page("quarantine"),
    **_dose(SITE, ORGAN, METRIC),
    **_dose(BIG_SITE, BIG_ORGAN, BIG_METRIC),
    "outcomes/toxicity_incidence": _page("toxicity_incidence", site=SITE, term=TERM),
    "outcomes/toxicity_funnel": _page(
        "toxicity_funnel", site=SITE, term=TERM, dose=None
    ),
    "outcomes/prom_trajectory": _page("prom_trajectory", site=SITE),
    "outcomes/prom_deterioration": _page("prom_deterioration", site=SITE),
}


def ntcp_extraction(session: Session) -> Any:
    """NTCP dataset of Lungs / Pneumonitis grade >= 2 within 180 days, lung patients."""
    from ntcp.dataset import DatasetSpec, extract_dataset

    spec = DatasetSpec(organ=ORGAN, endpoint=f"ctcae:{TERM}>=2@180d", site=SITE)
    data = extract_dataset(session, _admin(session), spec)
    session.rollback()  # the audit record
    return data


def db_quality(session: Session) -> Any:
    """``rtcohort db quality`` (every check; never commits)."""
    from omop.quality import run_quality

    report = run_quality(session)
    session.rollback()
    return report


def heavy_queries() -> dict[str, Query]:
    """The slower reads, timed over fewer runs."""
    return {"ntcp_extraction": ntcp_extraction, "db_quality": db_quality}
