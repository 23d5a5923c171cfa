"""Follow-up protocols: what is assessed, relative to what, with which windows.

A protocol is a list of :class:`TimepointDef`; :data:`DEFAULT_TIMEPOINTS` is the
default radiotherapy follow-up. Protocols are stored in ``followup_protocol`` and
``followup_timepoint`` (:func:`ensure_protocol`, :func:`protocol_timepoints`);
:mod:`cohort.schedule` turns them into dated assessments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from omop.cohort_tables import FollowupProtocol, FollowupTimepoint

__all__ = [
    "DEFAULT_TIMEPOINTS",
    "Anchor",
    "Kind",
    "TimepointDef",
    "ensure_protocol",
    "protocol_timepoints",
]


class Kind(StrEnum):
    """What is assessed at a timepoint."""

    TOXICITY = "toxicity"
    PROM = "prom"


class Anchor(StrEnum):
    """What a timepoint is relative to."""

    RT_START = "rt_start"
    RT_END = "rt_end"


@dataclass(frozen=True)
class TimepointDef:
    """One timepoint of a protocol."""

    code: str
    anchor: Anchor
    offset_days: int
    window_before_days: int
    window_after_days: int
    toxicity: bool = True
    prom: bool = True


DEFAULT_TIMEPOINTS: tuple[TimepointDef, ...] = (
    TimepointDef("baseline", Anchor.RT_START, 0, 30, 0),
    TimepointDef("eot", Anchor.RT_END, 0, 7, 14),
    TimepointDef("m3", Anchor.RT_END, 91, 30, 30),
    TimepointDef("m6", Anchor.RT_END, 182, 30, 30),
    TimepointDef("m12", Anchor.RT_END, 365, 60, 60),
    TimepointDef("m24", Anchor.RT_END, 730, 60, 60),
    TimepointDef("m36", Anchor.RT_END, 1095, 90, 90),
    TimepointDef("m60", Anchor.RT_END, 1826, 90, 90),
)


def ensure_protocol(
    session: Session,
    code: str = "default",
    timepoints: Sequence[TimepointDef] = DEFAULT_TIMEPOINTS,
    name: str = "Default radiotherapy follow-up",
) -> FollowupProtocol:
    """Return the protocol ``code``, creating it with ``timepoints`` when absent."""
    protocol = session.scalar(
        select(FollowupProtocol).where(FollowupProtocol.code == code)
    )
    if protocol is not None:
        return protocol
    protocol = FollowupProtocol(code=code, name=name)
    session.add(protocol)
    session.flush()
    for tp in timepoints:
        session.add(
            FollowupTimepoint(
                protocol_id=protocol.protocol_id,
                code=tp.code,
                anchor=tp.anchor.value,
                offset_days=tp.offset_days,
                window_before_days=tp.window_before_days,
                window_after_days=tp.window_after_days,
                toxicity=tp.toxicity,
                prom=tp.prom,
            )
        )
    session.flush()
    return protocol


def protocol_timepoints(session: Session, code: str) -> list[TimepointDef]:
    """Return the timepoints of a protocol (the default one is created on demand)."""
    protocol = (
        ensure_protocol(session)
        if code == "default"
        else session.scalar(
            select(FollowupProtocol).where(FollowupProtocol.code == code)
        )
    )
    if protocol is None:
        return []
    rows = session.scalars(
        select(FollowupTimepoint)
        .where(FollowupTimepoint.protocol_id == protocol.protocol_id)
        .order_by(FollowupTimepoint.timepoint_id)
    )
    return [
        TimepointDef(
            r.code,
            Anchor(r.anchor),
            r.offset_days,
            r.window_before_days,
            r.window_after_days,
            r.toxicity,
            r.prom,
        )
        for r in rows
    ]
