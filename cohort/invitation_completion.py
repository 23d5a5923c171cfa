"""PROM completion per centre and timepoint: invitations against questionnaires.

Re-exported by :mod:`cohort.invitations` (``invitations.completion``). One
statement, counted in SQL: per centre and timepoint the distinct persons invited or
with a questionnaire (``expected``) and the distinct enrolled persons with a
questionnaire (``completed``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from instruments.store.common import timepoint_codes
from omop.cdm import Person, SurveyConduct
from omop.cohort_tables import Enrolment, Invitation

__all__ = ["CompletionRow", "completion"]


@dataclass(frozen=True)
class CompletionRow:
    """PROM completion of one centre at one timepoint."""

    care_site_id: int
    timepoint: str
    expected: int
    completed: int

    @property
    def rate(self) -> float | None:
        """Completed / expected (None when nobody was expected)."""
        return self.completed / self.expected if self.expected else None


def _at_timepoints(known: dict[int, str], codes: list[str]) -> ColumnElement[bool]:
    """Questionnaires at one of ``codes``, in a form the planner can estimate.

    The same rows as ``timepoint_code(timing concept, source value) IN codes``: a
    known timing concept names the timepoint, otherwise the source value does.
    """
    concept = SurveyConduct.timing_concept_id
    wanted = [c for c, code in known.items() if code in codes]
    unknown = or_(concept.is_(None), concept.not_in(list(known))) if known else true()
    return or_(
        concept.in_(wanted), and_(unknown, SurveyConduct.timing_source_value.in_(codes))
    )


def _at_centres(centre_ids: list[int] | None) -> ColumnElement[bool]:
    """Persons whose centre (``care_site_id``, 0 when unknown) is in ``centre_ids``.

    On the column itself, not on ``coalesce``, so the planner estimates it.
    """
    if centre_ids is None:
        return true()
    site = Person.care_site_id
    ids = sorted({int(c) for c in centre_ids})
    return or_(site.in_(ids), site.is_(None)) if 0 in ids else site.in_(ids)


def completion(
    session: Session, centre_ids: list[int] | None = None
) -> list[CompletionRow]:
    """PROM completion per centre and timepoint, counted in SQL.

    ``expected``: persons invited at the timepoint or with a questionnaire at it;
    ``completed``: enrolled persons with a stored questionnaire at the timepoint (its
    timing concept, else its timing source value, as
    :func:`instruments.store.read_survey_timings` reads it).

    One ``GROUP BY`` (centre, timepoint) over the invitations and the
    questionnaires with two ``count(DISTINCT person)``: the timepoint is grouped as
    its integer position among the protocol's codes (an invitation at another code
    keeps the code as text), so the database sorts integers and never builds a row
    per person and timepoint.

    Parameters
    ----------
    session
        Open session.
    centre_ids
        Centres to count (``care_site_id``; 0 is a person with no centre); all when
        None.

    Returns
    -------
    list of CompletionRow
        By centre, then timepoint in protocol order, then other codes by name.
    """
    from cohort.protocol import DEFAULT_TIMEPOINTS

    codes = [tp.code for tp in DEFAULT_TIMEPOINTS]
    position = {code: i for i, code in enumerate(codes)}
    known = timepoint_codes()
    # A questionnaire's timepoint: its known timing concept, else its source value
    # (rows at a known concept outside ``codes`` are left out by _at_timepoints).
    by_concept = {c: position[code] for c, code in known.items() if code in position}
    by_source = case(position, value=SurveyConduct.timing_source_value, else_=null())
    survey_index = (
        case(by_concept, value=func.coalesce(SurveyConduct.timing_concept_id, 0),
             else_=by_source)
        if by_concept
        else by_source
    )  # fmt: skip
    code = Invitation.timepoint_code
    site = func.coalesce(Person.care_site_id, 0)
    invited = (
        select(
            site.label("site"),
            case(position, value=code, else_=null()).label("at"),
            case((code.in_(codes), null()), else_=code).label("other"),
            Invitation.person_id.label("person_id"),
            cast(null(), Integer).label("done"),
        )
        .join(Person, Person.person_id == Invitation.person_id)
        .where(_at_centres(centre_ids))
    )
    done = (
        select(
            site.label("site"),
            survey_index.label("at"),
            cast(null(), String).label("other"),
            SurveyConduct.person_id.label("person_id"),
            SurveyConduct.person_id.label("done"),
        )
        .join(Person, Person.person_id == SurveyConduct.person_id)
        .where(
            SurveyConduct.person_id.in_(select(Enrolment.person_id)),
            _at_timepoints(known, codes),
            _at_centres(centre_ids),
        )
    )
    both = union_all(invited, done).subquery()
    query = select(
        both.c.site,
        both.c.at,
        both.c.other,
        func.count(both.c.person_id.distinct()),
        func.count(both.c.done.distinct()),
    ).group_by(both.c.site, both.c.at, both.c.other)
    rows = [
        CompletionRow(int(s), codes[int(at)] if at is not None else str(other),
                      int(n), int(k))
        for s, at, other, n, k in session.execute(query).all()
    ]  # fmt: skip
    rows.sort(
        key=lambda r: (r.care_site_id, position.get(r.timepoint, 99), r.timepoint)
    )
    return rows
