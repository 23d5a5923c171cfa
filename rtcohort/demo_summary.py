"""The demo's report, read back from the database (:func:`summarise`)."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from rtcohort.demo import DemoReport

__all__ = ["summarise"]


def summarise(
    session: Session, report: DemoReport, codes: list[str], username: str
) -> None:
    """Fill ``report`` from the database: centres, persons, mapping, toxicity."""
    from cohort.consent import person_count
    from cohort.service import acting_user, recruitment_report
    from etl.ingest.quarantine import held_items
    from etl.store.report import datasets_by_centre, mapping_counts
    from instruments.counts import prom_counts
    from instruments.store import read_toxicity
    from rtcohort.demo import CentreRow

    rec = {
        r.centre: r
        for r in recruitment_report(
            session,
            acting_user(session, username),
            start=datetime.date(1900, 1, 1),
            end=datetime.date(2100, 1, 1),
        )
    }
    loaded = datasets_by_centre(session)
    held_by_centre: Counter[str] = Counter()
    for item in held_items(session):
        held_by_centre[item.centre] += 1
        report.held[item.reason_code] += 1
    proms = prom_counts(session)
    for code in codes:
        r = rec.get(code)
        row = CentreRow(code, loaded=loaded.get(code, 0),
                        held_files=held_by_centre[code])  # fmt: skip
        if r is not None:
            row.enrolled, row.consented, row.declined, row.rate = (
                r.eligible, r.consented, r.declined, r.rate
            )  # fmt: skip
        row.proms = {tp: n for (c, tp), n in proms.items() if c == code}
        report.centres.append(row)
    report.persons = person_count(session)
    report.mapped, report.unmapped = mapping_counts(session)
    tox = read_toxicity(session)
    if not tox.empty:  # the worst grade of each person per term
        worst = tox.groupby(["person_id", "term"])["grade"].max()
        for (_, term), grade in worst.items():
            report.toxicity[(str(term), int(grade))] += 1
