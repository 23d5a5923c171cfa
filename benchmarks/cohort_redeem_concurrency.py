"""200 concurrent redemptions of 100 invitation links (two per link), PostgreSQL.

Each request runs in its own thread on its own connection; all start together at a
barrier. Exactly 100 must succeed, each link once. Prints redemptions per second.

Run: .venv/bin/python benchmarks/cohort_redeem_concurrency.py
"""

from __future__ import annotations

import datetime
import importlib.util
import sys
import threading
import time
from pathlib import Path

from sqlalchemy.pool import NullPool

from cohort import invitations
from cohort.centres import add_centre
from cohort.consent import record_consent
from cohort.errors import UsedTokenError
from omop.database import upgrade
from omop.engine import make_engine, session_factory

LINKS = 100
PER_LINK = 2
KEY = bytes(range(32))


def _start_postgres():  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parents[1] / "tests" / "pgserver.py"
    spec = importlib.util.spec_from_file_location("rtcohort_pgserver", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rtcohort_pgserver"] = module
    spec.loader.exec_module(module)
    return module.start_postgres()


def _issue_links(url: str) -> list[str]:
    """Consent LINKS patients at a new centre and issue each an invitation link."""
    setup = make_engine(url)
    upgrade(setup)
    with session_factory(setup).begin() as session:
        site = add_centre(session, "RDM")
        tokens = []
        for i in range(LINKS):
            event = record_consent(
                session,
                centre=site,
                pseudonym=f"RDM-{i:04d}",
                state="consented",
                event_date=datetime.date(2025, 1, 1),
                actor="bench",
                year_of_birth=1960,
                sex="F",
            )
            tokens.append(invitations.issue(session, KEY, event.person_id, "m3").token)
    setup.dispose()
    return tokens


def _redeem_all(url: str, requests: list[str]) -> tuple[list[tuple[str, str]], float]:
    """Redeem every request in its own thread at once; return outcomes and seconds."""
    engine = make_engine(url, poolclass=NullPool)  # one new connection per request
    factory = session_factory(engine)
    barrier = threading.Barrier(len(requests) + 1)
    results: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(token: str) -> None:
        session = factory()
        session.connection()  # connect before the start signal
        barrier.wait()
        try:
            invitations.redeem(session, KEY, token)
            session.commit()
            outcome = "ok"
        except UsedTokenError:
            session.rollback()
            outcome = "used"
        finally:
            session.close()
        with lock:
            results.append((token, outcome))

    threads = [threading.Thread(target=worker, args=(t,)) for t in requests]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return results, elapsed


def main() -> None:
    server = _start_postgres()
    try:
        url = server.create_database("bench_redeem")
        tokens = _issue_links(url)
        requests = [t for t in tokens for _ in range(PER_LINK)]
        results, elapsed = _redeem_all(url, requests)
        ok = [tok for tok, r in results if r == "ok"]
        per_link_ok = {t: ok.count(t) for t in tokens}
        print(
            f"cohort invitation redemption, PostgreSQL, {len(requests)} concurrent "
            f"requests on {LINKS} links ({PER_LINK} per link), one connection each"
        )
        print(f"{'succeeded':<28} {len(ok)}")
        print(f"{'refused as used':<28} {sum(1 for _, r in results if r == 'used')}")
        once = sum(1 for n in per_link_ok.values() if n == 1)
        print(f"{'links redeemed exactly once':<28} {once}")
        print(f"{'wall time (s)':<28} {elapsed:.3f}")
        print(f"{'requests per second':<28} {len(requests) / elapsed:.0f}")
        assert len(ok) == LINKS
        assert all(n == 1 for n in per_link_ok.values())
    finally:
        server.stop()


if __name__ == "__main__":
    main()
