"""NTCP recovery of the simulator's truth through the platform's read path (issue 15).

Not run by ``make test``. On a database built by ``benchmarks/scale.py build`` (the
simulator's ``--into-db`` path), for each LKB truth model of
:data:`cohort.simulate.outcomes.ENDPOINTS` whose organ does not depend on laterality,
extract the NTCP dataset as the admin with :func:`ntcp.dataset.extract_dataset` (the
permission layer, the endpoint grammar, EQD2 with alpha/beta 3 Gy as the truth uses,
audited; the audit records are rolled back), one centre at a time, leaving out the
simulated outlier centre (its odds of grade >= 2 are multiplied by 3, so it is not
drawn from the truth model), and fit :class:`ntcp.lkb.LKBModel` (free n, 95 %
profile-likelihood intervals). The table says whether each true parameter lies inside
its interval::

    python benchmarks/ntcp_recovery.py \\
        --url postgresql+psycopg://rtcohort@127.0.0.1:55440/scale_12x2400 \\
        --data-dir /work/scale-pg2/rtcohort-data --centres 12 --patients 2400 --seed 1

``--centres/--patients/--years/--seed`` must be those of the build (they name the
outlier centre). The endpoint counts grade >= 2 within the truth's peak timepoint
after the end of RT plus 70 days from the start (the longest schedules last ~8 weeks);
patients without an event followed to 70 days before that count as followed.
Laterality-dependent organs (ipsilateral breast, contralateral parotid) are left out:
a dataset is one organ name for every patient.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SLACK_DAYS = 70


def _outlier(args: argparse.Namespace) -> tuple[list[str], str | None]:
    from cohort.simulate.params import SimulationParams
    from cohort.simulate.practice import draw_practices

    params = SimulationParams(centres=args.centres, patients=args.patients,
                              years=args.years, seed=args.seed)  # fmt: skip
    practices = draw_practices(params, np.random.default_rng([args.seed, 0]))
    outlier = [p.code for p in practices if p.toxicity_odds_ratio != 1.0]
    return [p.code for p in practices], (outlier[0] if outlier else None)


def _extract(session: Any, admin: Any, endpoint: Any, centres: list[str]) -> Any:
    """Pooled DVHs (with fractions) and outcomes of ``centres``."""
    from cohort.simulate.outcomes import TIMEPOINT_DAYS
    from ntcp.dataset import DatasetSpec, extract_dataset
    from ntcp.geud import DVHSet
    from omop.errors import RTCohortError

    days = TIMEPOINT_DAYS[endpoint.peak] + SLACK_DAYS
    pairs, fractions, outcome = [], [], []
    for code in centres:
        spec = DatasetSpec(
            organ=endpoint.organ, site=endpoint.site, centre=code,
            endpoint=f"ctcae:{endpoint.term}>=2@{days}d",
            alpha_beta_gy=endpoint.alpha_beta_gy, followup_slack_days=SLACK_DAYS,
        )  # fmt: skip
        try:
            data = extract_dataset(session, admin, spec)
        except RTCohortError as exc:  # a centre without the site
            print(f"  {code}: {exc}")
            continue
        dvhs, y = data.table.dvhs, data.table.outcome
        if y is None or not len(y):
            continue
        for i in range(len(y)):
            pairs.append((dvhs.dose_gy[i], dvhs.volume_fraction[i]))
        fractions.extend(dvhs.n_fractions.tolist())
        outcome.extend(np.asarray(y, dtype=float).tolist())
    return DVHSet.from_dvhs(pairs, fractions), np.array(outcome)


def main() -> None:
    """Extract, fit and print the recovery table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--centres", type=int, default=12)
    parser.add_argument("--patients", type=int, default=2400)
    parser.add_argument("--years", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("RTCOHORT_DATA_DIR", str(args.data_dir))

    from cohort.simulate.outcomes import ENDPOINTS
    from cohort.users import ensure_admin, get_user
    from ntcp.lkb import LKBModel
    from omop.engine import make_engine, session_factory
    from rtcohort.wiring import after_upgrade

    codes, outlier = _outlier(args)
    kept = [c for c in codes if c != outlier]
    print(f"outlier centre {outlier} left out; {len(kept)} centres")
    engine = make_engine(args.url)
    after_upgrade(engine)
    rows = []
    with session_factory(engine)() as session:
        ensure_admin(session, "ntcp-recovery-password")
        admin = get_user(session, "admin")
        for endpoint in ENDPOINTS:
            if "{" in endpoint.organ:
                continue
            started = time.perf_counter()
            dvhs, y = _extract(session, admin, endpoint, kept)
            session.rollback()  # the audit records of this benchmark
            read = time.perf_counter() - started
            model = LKBModel(alpha_beta_gy=endpoint.alpha_beta_gy).fit(dvhs, y)
            fit = time.perf_counter() - started - read
            truth = {"td50_gy": endpoint.td50_gy, "m": endpoint.m, "n": endpoint.n}
            cells = []
            for name, value in truth.items():
                lo, hi = model.ci95_[name] or (None, None)
                est = getattr(model, f"{name}_")
                inside = (lo is None or lo <= value) and (hi is None or value <= hi)
                cells.append(f"{value:g}: {est:.3g} [{_fmt(lo)}, {_fmt(hi)}] "
                             f"{'in' if inside else '**out**'}")  # fmt: skip
            rows.append(
                f"| {endpoint.term} / {endpoint.organ} ({endpoint.site}) | "
                f"{len(y):,} | {int(y.sum()):,} | " + " | ".join(cells) +
                f" | {read:.1f} / {fit:.1f} |"
            )  # fmt: skip
            print(rows[-1], flush=True)
    engine.dispose()
    print("| endpoint | patients | events | TD50 (Gy): truth: fit [95 % profile] | "
          "m | n | read / fit (s) |")  # fmt: skip
    print("|---|---:|---:|---|---|---|---|")
    print("\n".join(rows))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


if __name__ == "__main__":
    main()
