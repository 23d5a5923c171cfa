from __future__ import annotations

import datetime
import threading
from pathlib import Path

import pytest
from cohort_helpers import D, centre, enrol, prom
from sqlalchemy import select
from sqlalchemy.orm import Session

from cohort import invitations
from cohort.errors import ExpiredTokenError, ForgedTokenError, UsedTokenError
from omop.cohort_tables import Invitation

KEY = bytes(range(32))
NOW = datetime.datetime(2025, 5, 1, 9, tzinfo=datetime.UTC)


@pytest.fixture
def person(session: Session) -> int:
    return enrol(session, centre(session, "I1"), "I1-P")


def test_token_is_single_use_and_only_its_hash_is_stored(
    session: Session, person: int
) -> None:
    inv = invitations.issue(session, KEY, person, "m3", now=NOW)
    stored = session.scalars(select(Invitation.token_hash)).all()
    assert inv.token not in stored
    assert invitations.token_hash(inv.token) in stored
    redeemed = invitations.redeem(session, KEY, inv.token, now=NOW)
    assert (redeemed.person_id, redeemed.timepoint) == (person, "m3")
    with pytest.raises(UsedTokenError):
        invitations.redeem(session, KEY, inv.token, now=NOW)


@pytest.mark.parametrize("where", ["payload", "signature"])
def test_tampered_token_is_rejected(session: Session, person: int, where: str) -> None:
    inv = invitations.issue(session, KEY, person, "m3", now=NOW)
    head, tail = inv.token.split(".")
    part = head if where == "payload" else tail
    flipped = ("A" if part[3] != "A" else "B").join([part[:3], part[4:]])
    token = f"{flipped}.{tail}" if where == "payload" else f"{head}.{flipped}"
    with pytest.raises(ForgedTokenError):
        invitations.redeem(session, KEY, token, now=NOW)
    with pytest.raises(ForgedTokenError):
        invitations.redeem(session, bytes(32), inv.token, now=NOW)  # other key
    with pytest.raises(ForgedTokenError):
        invitations.redeem(session, KEY, "garbage", now=NOW)
    assert session.get(Invitation, inv.invitation_id).used_at is None  # type: ignore[union-attr]


def test_expired_token_is_rejected(session: Session, person: int) -> None:
    inv = invitations.issue(
        session, KEY, person, "m3", valid_for=datetime.timedelta(days=2), now=NOW
    )
    later = NOW + datetime.timedelta(days=2, seconds=1)
    with pytest.raises(ExpiredTokenError):
        invitations.redeem(session, KEY, inv.token, now=later)
    assert invitations.redeem(session, KEY, inv.token, now=NOW).person_id == person


def test_resigned_token_supersedes_the_old_one(session: Session, person: int) -> None:
    inv = invitations.issue(session, KEY, person, "m3", now=NOW)
    fresh = invitations.resign(session, KEY, inv.invitation_id)
    with pytest.raises(ForgedTokenError):
        invitations.redeem(session, KEY, inv.token, now=NOW)
    assert invitations.redeem(session, KEY, fresh, now=NOW).timepoint == "m3"


def test_completion_rate(session: Session) -> None:
    site = centre(session, "I2")
    people = [enrol(session, site, f"I2-{i}") for i in range(4)]
    for p in people:
        invitations.issue(session, KEY, p, "m3", now=NOW)
    prom(session, people[0], "m3", D(2025, 5, 3))
    prom(session, people[1], "m3", D(2025, 5, 4))
    prom(session, people[1], "m6", D(2025, 8, 4))  # other timepoint, not invited
    rows = {
        r.timepoint: r for r in invitations.completion(session, [site.care_site_id])
    }
    assert (rows["m3"].expected, rows["m3"].completed) == (4, 2)
    assert rows["m3"].rate == pytest.approx(0.5)
    assert (rows["m6"].expected, rows["m6"].completed) == (1, 1)


def test_concurrent_double_redemption(fresh_url: str, tmp_path: Path) -> None:
    from omop.database import upgrade
    from omop.engine import make_engine, session_factory

    engine = (
        make_engine(fresh_url, pool_size=12, max_overflow=0)
        if fresh_url.startswith("postgresql")
        else make_engine(fresh_url)
    )
    try:
        upgrade(engine)
        factory = session_factory(engine)
        with factory.begin() as session:
            pid = enrol(session, centre(session, "CC"), "CC-P")
            tokens = [
                invitations.issue(session, KEY, pid, f"t{i}", now=NOW).token
                for i in range(5)
            ]
        attempts = [t for t in tokens for _ in range(4)]  # four requests per link
        barrier = threading.Barrier(len(attempts))
        outcomes: list[tuple[str, str]] = []
        lock = threading.Lock()

        def worker(token: str) -> None:
            barrier.wait()
            try:
                with factory.begin() as s:
                    invitations.redeem(s, KEY, token, now=NOW)
                result = "ok"
            except UsedTokenError:
                result = "used"
            with lock:
                outcomes.append((token, result))

        threads = [threading.Thread(target=worker, args=(t,)) for t in attempts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for token in tokens:
            mine = [r for tok, r in outcomes if tok == token]
            assert sorted(mine) == ["ok", "used", "used", "used"]
        with factory() as s:
            assert all(
                u is not None for u in s.scalars(select(Invitation.used_at)).all()
            )
    finally:
        engine.dispose()
