"""Throughput of vectorised QLQ-C30 scoring (target: 1,000,000 response sets < 3 s).

Run: ``.venv/bin/python benchmarks/qlq_c30_scoring.py [N]``. Prints a table of figures.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from instruments.qlq_c30 import score_qlq_c30, validate_qlq_c30


def make_responses(n: int, rng: np.random.Generator) -> np.ndarray:
    x = np.empty((n, 30))
    x[:, :28] = rng.integers(1, 5, size=(n, 28))
    x[:, 28:] = rng.integers(1, 8, size=(n, 2))
    x[rng.random((n, 30)) < 0.05] = np.nan  # 5 % missing answers
    bad = rng.random(n) < 0.001  # 0.1 % invalid sets
    x[bad, 0] = 9
    return x


def best_of(repeats: int, func, *args) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    x = make_responses(n, np.random.default_rng(0))
    t_validate = best_of(3, validate_qlq_c30, x)
    t_score = best_of(3, score_qlq_c30, x)
    result = score_qlq_c30(x)
    print(f"{'figure':<40} {'value':>14}")
    print(f"{'response sets':<40} {n:>14,}")
    print(f"{'rejected (invalid) sets':<40} {len(result.errors):>14,}")
    print(f"{'validation only, best of 3 (s)':<40} {t_validate:>14.3f}")
    print(f"{'validate + 15 scales + summary (s)':<40} {t_score:>14.3f}")
    print(f"{'throughput (sets/s)':<40} {n / t_score:>14,.0f}")
    verdict = "met" if n / t_score >= 1e6 / 3 else "NOT met"
    print(f"{'target: 1,000,000 sets in < 3 s':<40} {verdict:>14}")


if __name__ == "__main__":
    main()
