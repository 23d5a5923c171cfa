"""Tables of ``dvh_accuracy.py``: pass rates by metric, spacing, grid, shape."""

from __future__ import annotations

import itertools

GRADIENTS = ("z", "y")
RELATIVE = (
    "volume",
    "Mean[Gy]",
    "D99%[Gy]",
    "D95%[Gy]",
    "D5%[Gy]",
    "D1%[Gy]",
    "D0.03cc[Gy]",
)
ABSOLUTE = ("Min[Gy]", "Max[Gy]")
TOL_REL = 0.03
TOL_ABS_GY = 0.5


def _rate(rows: list[dict[str, object]]) -> str:
    n = len(rows)
    k = sum(bool(r["pass"]) for r in rows)
    return f"{100.0 * k / n:5.1f}% ({k}/{n})" if n else "-"


def print_report(  # noqa: PLR0917
    rows: list[dict[str, object]],
    n_cases: int,
    wall: float,
    spacings: tuple[float, ...],
    grids: tuple[float, ...],
    n_failures: int,
    planes_fixed: bool,
) -> None:
    """Print the pass-rate tables and the worst failures."""
    rel = [r for r in rows if r["metric"] in RELATIVE]
    absr = [r for r in rows if r["metric"] in ABSOLUTE]
    print(f"DVH accuracy: {n_cases} phantoms, {len(rows)} points, {wall:.0f} s wall")
    if planes_fixed:
        print("contour planes fixed: the half-voxel offset also moves the shape in z")
    else:
        print(
            "contour planes follow the shape; the half-voxel offset is dose-grid only"
        )
    print(
        f"criteria: {100 * TOL_REL:g}% of the analytical value; "
        f"Dmin/Dmax {TOL_ABS_GY} Gy"
    )
    _print_metrics(rows)
    _print_breakdowns(rows, rel, absr, spacings, grids)
    _print_overall(rows, rel, absr)
    _print_failures(rows, n_failures)


def _print_metrics(rows: list[dict[str, object]]) -> None:
    """Pass rate and deviations per metric, against the solid and the stack."""
    print()
    print("vs solid: against the analytical solid (the benchmark figure);")
    print("vs stack: against the exact DVH of the written contours as slabs with")
    print("          half-spacing end caps (isolates the engine's own error)")
    print(
        f"{'metric':<14}{'vs solid':>18}{'max |dev|':>11}{'mean |dev|':>12}"
        f"{'vs stack':>18}{'max |dev|':>11}"
    )
    for name in RELATIVE + ABSOLUTE:
        sel = [r for r in rows if r["metric"] == name]
        devs = [abs(float(r["deviation"])) for r in sel]
        sdevs = [abs(float(r["stack_deviation"])) for r in sel]
        unit = " Gy" if name in ABSOLUTE else "%"
        scale = 1.0 if name in ABSOLUTE else 100.0
        stack_sel = [{"pass": r["stack_pass"]} for r in sel]
        print(
            f"{name:<14}{_rate(sel):>18}{max(devs) * scale:>8.2f}{unit:<3}"
            f"{sum(devs) / len(devs) * scale:>9.2f}{unit:<3}"
            f"{_rate(stack_sel):>18}{max(sdevs) * scale:>8.2f}{unit}"
        )


def _print_breakdowns(
    rows: list[dict[str, object]],
    rel: list[dict[str, object]],
    absr: list[dict[str, object]],
    spacings: tuple[float, ...],
    grids: tuple[float, ...],
) -> None:
    """Pass rates by contour spacing, dose grid and placement/shape/gradient."""
    print()
    print(f"{'contour spacing':<18}{'3% points':>20}{'Dmin/Dmax 0.5 Gy':>22}")
    for s in spacings:
        print(
            f"{s:<18g}{_rate([r for r in rel if r['spacing_mm'] == s]):>20}"
            f"{_rate([r for r in absr if r['spacing_mm'] == s]):>22}"
        )
    print()
    print(f"{'dose grid':<18}{'3% points':>20}{'Dmin/Dmax 0.5 Gy':>22}")
    for g in grids:
        print(
            f"{g:<18g}{_rate([r for r in rel if r['grid_mm'] == g]):>20}"
            f"{_rate([r for r in absr if r['grid_mm'] == g]):>22}"
        )
    print()
    print(
        f"{'placement shape / gradient':<28}{'3% points':>20}{'Dmin/Dmax 0.5 Gy':>22}"
    )
    groups = sorted({(str(r["placement"]), str(r["shape"])) for r in rows})
    for (place, label), grad in itertools.product(groups, GRADIENTS):
        sel = [
            r
            for r in rows
            if (r["placement"], r["shape"], r["gradient"]) == (place, label, grad)
        ]
        print(
            f"{place + ' ' + label + ' / ' + grad:<28}"
            f"{_rate([r for r in sel if r['metric'] in RELATIVE]):>20}"
            f"{_rate([r for r in sel if r['metric'] in ABSOLUTE]):>22}"
        )


def _print_overall(
    rows: list[dict[str, object]],
    rel: list[dict[str, object]],
    absr: list[dict[str, object]],
) -> None:
    """Goal metrics, overall pass rates and engine time."""
    one_to_three = [r for r in rel if float(r["spacing_mm"]) >= 1.0]
    goal = [r for r in rel if r["metric"] != "Mean[Gy]"]
    print()
    print("goal metrics (volume, D99, D95, D5, D1, D0.03cc) at 1-3 mm spacing:")
    for few in (False, True):
        sel = [
            r
            for r in goal
            if float(r["spacing_mm"]) >= 1.0 and (int(r["planes"]) < 4) == few
        ]
        print(f"  {'< 4' if few else '>= 4'} contour planes:{_rate(sel):>22}")
    print()
    print(f"overall 3% pass rate:           {_rate(rel)}")
    print(f"  at 1-3 mm contour spacing:    {_rate(one_to_three)}")
    fine = [r for r in rel if r["spacing_mm"] == 0.2]
    print(f"  at 0.2 mm contour spacing:    {_rate(fine)}")
    print(f"Dmin/Dmax within 0.5 Gy:        {_rate(absr)}")
    print(
        "vs contour-stack truth:         "
        f"{_rate([{'pass': r['stack_pass']} for r in rel])} (3%), "
        f"{_rate([{'pass': r['stack_pass']} for r in absr])} (0.5 Gy)"
    )
    engine = sorted(
        {
            (
                r["placement"],
                r["shape"],
                r["gradient"],
                r["spacing_mm"],
                r["grid_mm"],
                r["offset"],
            ): float(r["engine_s"])
            for r in rows
        }.values()
    )
    print(
        "engine time per structure:      "
        f"median {engine[len(engine) // 2] * 1000:.0f} ms, "
        f"max {engine[-1] * 1000:.0f} ms"
    )


def _print_failures(rows: list[dict[str, object]], n_failures: int) -> None:
    """The worst failures, largest deviation first."""
    failures = sorted(
        (r for r in rows if not r["pass"]),
        key=lambda r: (
            -abs(float(r["deviation"]))
            * (100.0 if r["metric"] in RELATIVE else 1.0 / TOL_ABS_GY * 3.0)
        ),
    )
    if failures:
        print()
        print(f"worst {min(n_failures, len(failures))} of {len(failures)} failures:")
        for r in failures[:n_failures]:
            dev = float(r["deviation"])
            shown = (
                f"{dev:+.3f} Gy" if r["metric"] in ABSOLUTE else f"{100 * dev:+.2f}%"
            )
            sdev = float(r["stack_deviation"])
            stack = (
                f"{sdev:+.3f} Gy" if r["metric"] in ABSOLUTE else f"{100 * sdev:+.2f}%"
            )
            print(
                f"  {r['placement']:<6} {r['shape']:<11} grad {r['gradient']} "
                f"spacing {r['spacing_mm']:<4g} "
                f"grid {r['grid_mm']:g} {r['offset']:<10} {r['metric']:<12} "
                f"solid {float(r['expected']):8.4f} computed "
                f"{float(r['computed']):8.4f} ({shown}; vs stack {stack})"
            )
