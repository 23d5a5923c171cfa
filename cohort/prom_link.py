"""A patient submits a PROM form through their personal invitation link.

One call does it in the caller's transaction: the answers are validated first (an
invalid form leaves the link usable), then the link is redeemed atomically (a second,
concurrent submission of the same link fails with ``UsedTokenError``), then the
questionnaire is stored (``instruments.store.store_prom``). If storing fails, the
caller's rollback also un-redeems the link, so nothing is half-done.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort.errors import CohortError
from cohort.invitations import open_link, redeem
from instruments.fhir import PSEUDONYM_SYSTEM, PromResponse, SubjectIdentifier
from instruments.qlq_c30 import QLQ_C30, validate_qlq_c30
from instruments.store import Assessment, StoreOutcome, store_prom
from omop.cdm import Person

__all__ = ["InvalidFormError", "SubmittedForm", "submit_prom_by_link"]


class InvalidFormError(CohortError, ValueError):
    """The answers are not a valid QLQ-C30 response set; the link stays usable."""


@dataclass(frozen=True)
class SubmittedForm:
    """What a submission stored."""

    invitation_id: int
    person_id: int
    timepoint: str
    survey_conduct_id: int
    outcome: StoreOutcome


def submit_prom_by_link(
    session: Session,
    signing_key: bytes,
    token: str,
    answers: Mapping[int, int | None],
    *,
    date_offset_days: int = 0,
    now: datetime.datetime | None = None,
) -> SubmittedForm:
    """Validate, redeem the link once, and store the QLQ-C30 answers.

    Parameters
    ----------
    session
        Open session; the caller commits.
    signing_key
        The platform's invitation signing key.
    token
        The token of the patient's link.
    answers
        Item number (1-30) -> answer, ``None`` for unanswered.
    date_offset_days
        The patient's date offset from pseudonymisation (applied to the stored dates).
    now
        The submission time (timezone-aware); default now.

    Raises
    ------
    InvalidFormError
        Answers out of range or not integers (the link is not used up).
    cohort.errors.NoLongerAvailableError
        The patient declined or withdrew consent: "this questionnaire is no longer
        available"; nothing is stored (the current consent is read in this
        transaction, not when the link was issued).
    cohort.errors.ForgedTokenError, ExpiredTokenError, UsedTokenError
        From :func:`cohort.invitations.redeem`.
    """
    moment = now or datetime.datetime.now(datetime.UTC)
    row = np.full((1, len(QLQ_C30.items)), np.nan)
    problem: str | None = None
    for item, value in answers.items():
        if not 1 <= int(item) <= len(QLQ_C30.items):
            problem = f"unknown item q{item}"
        elif value is not None:
            row[0, int(item) - 1] = value
    if problem is None:
        valid, errors = validate_qlq_c30(row)
        problem = None if valid[0] else errors.get(0, "invalid answers")
    if problem is not None:
        open_link(session, signing_key, token, now=moment)  # a closed link says so
        raise InvalidFormError(problem)
    invitation = redeem(session, signing_key, token, now=moment)
    pseudonym = session.scalar(
        select(Person.person_source_value).where(
            Person.person_id == invitation.person_id
        )
    )
    response = PromResponse(
        resource_id=f"invitation-{invitation.invitation_id}",
        instrument=QLQ_C30.code,
        subject=SubjectIdentifier(PSEUDONYM_SYSTEM, str(pseudonym)),
        authored=moment,
        values={i + 1: (None if np.isnan(v) else int(v)) for i, v in enumerate(row[0])},
        timepoint=invitation.timepoint,
    )
    where = Assessment(invitation.person_id, invitation.timepoint, date_offset_days)
    survey_id, outcome = store_prom(
        session, where, response, collection_method="invitation link"
    )
    return SubmittedForm(
        invitation.invitation_id,
        invitation.person_id,
        invitation.timepoint,
        survey_id,
        outcome,
    )
