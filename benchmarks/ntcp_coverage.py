"""LKB profile-interval coverage, grid-search agreement, EQD2 versus physical dose.

1. ``R`` replicates (default 200) of N = 1000 patients simulated from LKB with known
   parameters acting on per-bin EQD2 (alpha/beta 3 Gy, mixed fractionation 5-35
   fractions): how often each true parameter lies inside its 95% profile interval,
   with a Clopper-Pearson 95% interval of that rate.
2. The same data fitted on physical dose: coverage and log-likelihood loss (the wrong
   dose model must be detectably worse).
3. MLE versus a brute-force grid search of the likelihood on small cohorts.

Run: ``.venv/bin/python benchmarks/ntcp_coverage.py [R] [N]`` (takes a few minutes).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from scipy.special import log_ndtr
from scipy.stats import beta as beta_dist

from ntcp.errors import NtcpError, NtcpWarning
from ntcp.lkb import LKBModel
from ntcp.simulate import simulate_lkb_cohort

TRUE = {"td50_gy": 30.0, "m": 0.25, "n": 0.5}
ALPHA_BETA = 3.0


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    lo = float(beta_dist.ppf(0.025, k, n - k + 1)) if k > 0 else 0.0
    hi = float(beta_dist.ppf(0.975, k + 1, n - k)) if k < n else 1.0
    return lo, hi


def inside(ci, truth) -> bool:
    lo, hi = ci
    return (lo is None or lo <= truth) and (hi is None or truth <= hi)


def coverage_study(replicates: int, n_patients: int) -> None:
    hits = {"eqd2": dict.fromkeys(TRUE, 0), "physical": dict.fromkeys(TRUE, 0)}
    gaps, failures, times = [], 0, []
    for r in range(replicates):
        c = simulate_lkb_cohort(
            n_patients, **TRUE, alpha_beta_gy=ALPHA_BETA, seed=10_000 + r
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NtcpWarning)
                t0 = time.perf_counter()
                right = LKBModel(alpha_beta_gy=ALPHA_BETA).fit(c.dvhs, c.outcome)
                times.append(time.perf_counter() - t0)
                wrong = LKBModel().fit(c.dvhs, c.outcome)
        except NtcpError as exc:
            failures += 1
            print(f"replicate {r}: {exc}")
            continue
        for name, truth in TRUE.items():
            hits["eqd2"][name] += inside(right.ci95_[name], truth)
            hits["physical"][name] += inside(wrong.ci95_[name], truth)
        gaps.append(right.loglik_ - wrong.loglik_)
    done = replicates - failures
    print(
        f"\n1-2. Coverage of 95% profile intervals: {done} replicates x "
        f"N = {n_patients}, "
        f"truth TD50 {TRUE['td50_gy']} Gy, m {TRUE['m']}, n {TRUE['n']} on EQD2 "
        f"(alpha/beta {ALPHA_BETA}); {failures} failed fits"
    )
    print(f"{'fit':10}{'parameter':>10}{'covered':>9}{'rate':>8}{'95% CI of rate':>20}")
    for fit in ("eqd2", "physical"):
        for name in TRUE:
            k = hits[fit][name]
            lo, hi = clopper_pearson(k, done)
            print(f"{fit:10}{name:>10}{k:>9}{k / done:8.3f}   [{lo:.3f}, {hi:.3f}]")
    g = np.array(gaps)
    print(
        f"log-likelihood EQD2 fit minus physical fit: median {np.median(g):.1f}, "
        f"min {g.min():.1f}, replicates with gap > 0: {(g > 0).sum()}/{g.size}, "
        f"gap > 3: {(g > 3).sum()}/{g.size}"
    )
    print(
        f"fit time with 3 profile intervals at N = {n_patients}: "
        f"median {np.median(times) * 1000:.0f} ms"
    )


def grid_study(cases: int = 5, n_patients: int = 300) -> None:
    print(
        f"\n3. MLE vs brute-force grid search ({cases} cohorts, N = {n_patients}, "
        "physical dose)"
    )
    print(
        f"{'seed':>5}{'TD50 mle':>10}{'grid':>8}{'m mle':>8}{'grid':>8}{'n mle':>8}"
        f"{'grid':>8}{'LL mle':>11}{'LL grid':>11}"
    )
    for s in range(cases):
        c = simulate_lkb_cohort(n_patients, **TRUE, seed=500 + s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NtcpWarning)
            model = LKBModel(profile_ci=False).fit(c.dvhs, c.outcome)
        dose, vol = c.dvhs.dose_gy, c.dvhs.volume_fraction
        sign = 2.0 * c.outcome - 1.0
        ms = np.linspace(0.05, 0.8, 151)[:, None]
        best = (-np.inf, (0.0, 0.0, 0.0))
        for n in np.exp(np.linspace(np.log(0.1), np.log(3.0), 121)):
            g = np.sum(vol * dose ** (1 / n), axis=1) ** n
            for t in np.linspace(15.0, 50.0, 141):
                ll = log_ndtr(sign * (g - t) / (ms * t)).sum(axis=1)
                k = int(np.argmax(ll))
                if ll[k] > best[0]:
                    best = (float(ll[k]), (float(t), float(ms[k, 0]), float(n)))
        t_g, m_g, n_g = best[1]
        print(
            f"{s:>5}{model.td50_gy_:10.2f}{t_g:8.2f}{model.m_:8.3f}{m_g:8.3f}"
            f"{model.n_:8.3f}{n_g:8.3f}{model.loglik_:11.3f}{best[0]:11.3f}"
        )


def main() -> None:
    replicates = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_patients = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    t0 = time.perf_counter()
    coverage_study(replicates, n_patients)
    grid_study()
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
