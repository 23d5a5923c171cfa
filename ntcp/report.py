"""Model reports (JSON, HTML, Markdown) following the TRIPOD+AI items we can fill.

The report holds the population, endpoint, predictors, events, the fitted model, its
apparent and (with bootstrap) optimism-corrected performance, a calibration plot, a
dose-response curve with observed rates in dose bins, and provenance (data snapshot
hash, code version, parameters). Figures are PNG embedded as base64 in the HTML.

References
----------
Collins GS et al. TRIPOD+AI statement: updated guidance for reporting clinical
prediction models that use regression or machine learning methods. BMJ 2024;385:e078378.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import beta as beta_dist

from ntcp.validation import calibration_curve

__all__ = [
    "binned_rates",
    "build_report",
    "parameter_intervals",
    "render_html",
    "render_markdown",
]

FloatArray = NDArray[np.float64]


def binned_rates(
    dose: ArrayLike, y: ArrayLike, p: ArrayLike, n_bins: int = 8
) -> list[dict[str, float]]:
    """Observed rates (Clopper-Pearson 95%) and mean NTCP in dose quantile bins."""
    x = np.asarray(dose, dtype=float)
    yy = np.asarray(y, dtype=float)
    pp = np.asarray(p, dtype=float)
    order = np.argsort(x, kind="stable")
    out = []
    for group in np.array_split(order, min(n_bins, max(1, x.size // 5))):
        k, n = int(yy[group].sum()), int(group.size)
        lo = float(beta_dist.ppf(0.025, k, n - k + 1)) if k > 0 else 0.0
        hi = float(beta_dist.ppf(0.975, k + 1, n - k)) if k < n else 1.0
        out.append(
            {
                "dose_mean": float(x[group].mean()),
                "dose_min": float(x[group].min()),
                "dose_max": float(x[group].max()),
                "n": n,
                "events": k,
                "observed": k / n,
                "observed_lo": lo,
                "observed_hi": hi,
                "predicted": float(pp[group].mean()),
            }
        )
    return out


def parameter_intervals(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per parameter: estimate, Wald and profile-likelihood 95% intervals.

    Parameters
    ----------
    parameters : dict
        The ``parameters`` of a fit result (:func:`ntcp.workflow.fit_cohort`);
        ``ci95_wald`` and ``ci95_profile`` are read when present (an LKB fit has
        profile intervals only; a fixed parameter has neither).

    Returns
    -------
    list of dict
        ``parameter``, ``estimate``, ``wald_95`` and ``profile_95`` (``[lower,
        upper]`` with ``None`` for an open end, or ``None``), ``fixed``.

    Examples
    --------
    >>> parameter_intervals({"b": {"estimate": 1.0, "ci95": [0.1, 1.9],
    ...     "ci95_wald": [0.1, 1.9], "ci95_profile": [0.2, 2.1]}})[0]["profile_95"]
    [0.2, 2.1]
    """
    return [
        {
            "parameter": name,
            "estimate": par["estimate"],
            "wald_95": par.get("ci95_wald"),
            "profile_95": par.get("ci95_profile"),
            "fixed": bool(par.get("fixed", False)),
        }
        for name, par in parameters.items()
    ]


def build_report(
    result: dict[str, Any], y: ArrayLike, p: ArrayLike, dose: ArrayLike, dose_label: str
) -> dict[str, Any]:
    """Assemble the report content (plain data) from a fit result and predictions."""
    curve = calibration_curve(y, p)
    n_par = sum(1 for v in result["parameters"].values() if not v.get("fixed"))
    minority = min(result["n_events"], result["n_patients"] - result["n_events"])
    return {
        "title": f"NTCP model ({result['model']}) - development report",
        "tripod_ai": {
            "source_of_data": {
                "data_sha256": result["provenance"]["data_sha256"],
                "source": result["provenance"].get("source", "cohort CSV"),
            },
            "participants": {"n_patients": result["n_patients"]},
            "outcome": {
                "definition": result.get("endpoint") or "binary 'outcome' column (0/1)",
                "n_events": result["n_events"],
            },
            "predictors": result.get("predictors", []),
            "sample_size": {
                "estimated_parameters": n_par,
                "events_per_parameter": minority / max(n_par, 1),
            },
            "missing_data": "rows with missing or invalid fields are rejected",
            "analysis": result.get("methods", ""),
            "model_specification": result["parameters"],
            "parameter_intervals": parameter_intervals(result["parameters"]),
            "performance": {
                "apparent": {
                    "auc": result["auc"],
                    "calibration_slope": result["calibration"]["slope"],
                    "calibration_intercept": result["calibration"]["intercept"],
                    "brier": result.get("brier"),
                },
                "validation": result.get("validation"),
            },
            "limitations": [
                "internal validation only (no external cohort)"
                if result.get("validation")
                else "apparent performance only: optimistic (use --bootstrap)",
            ],
        },
        "calibration_curve": {
            "predicted": curve.predicted.tolist(),
            "observed": [
                None if not np.isfinite(v) else float(v) for v in curve.observed
            ],
            "group_predicted": curve.group_predicted.tolist(),
            "group_observed": curve.group_observed.tolist(),
            "group_size": curve.group_size.tolist(),
        },
        "dose_response": {"dose_label": dose_label, "bins": binned_rates(dose, y, p)},
        "provenance": result["provenance"],
        "warnings": result.get("warnings", []),
    }


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(
    report: dict[str, Any], curve_x: FloatArray | None, curve_p: FloatArray | None
) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cal = report["calibration_curve"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="ideal")
    obs = np.array([np.nan if v is None else v for v in cal["observed"]], dtype=float)
    ax.plot(cal["predicted"], obs, label="flexible (spline-logistic)")
    ax.scatter(cal["group_predicted"], cal["group_observed"], s=18, label="groups")
    ax.set(xlabel="predicted NTCP", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    cal_png = _png(fig)
    plt.close(fig)
    dr = report["dose_response"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    bins = dr["bins"]
    x = [b["dose_mean"] for b in bins]
    obs_b = np.array([b["observed"] for b in bins])
    err = np.array(
        [
            obs_b - [b["observed_lo"] for b in bins],
            [b["observed_hi"] for b in bins] - obs_b,
        ]
    )
    ax.errorbar(x, obs_b, yerr=err, fmt="o", capsize=3, label="observed (95% CI)")
    if curve_x is not None and curve_p is not None:
        ax.plot(curve_x, curve_p, label="model")
    else:
        ax.plot(x, [b["predicted"] for b in bins], "s--", label="mean predicted")
    ax.set(xlabel=dr["dose_label"], ylabel="NTCP", ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    dr_png = _png(fig)
    plt.close(fig)
    return cal_png, dr_png


def render_html(
    report: dict[str, Any],
    curve_x: FloatArray | None = None,
    curve_p: FloatArray | None = None,
) -> str:
    """Self-contained HTML report (figures embedded as base64 PNG)."""
    cal_png, dr_png = _figures(report, curve_x, curve_p)
    t = report["tripod_ai"]
    esc = html.escape

    def table(rows: dict[str, Any]) -> str:
        body = "".join(
            f"<tr><th>{esc(str(k))}</th><td>{esc(_fmt(v))}</td></tr>"
            for k, v in rows.items()
        )
        return f"<table>{body}</table>"

    sections = [
        f"<h1>{esc(report['title'])}</h1>",
        "<h2>Source of data and participants (TRIPOD+AI 5, 8)</h2>",
        table({**t["source_of_data"], **t["participants"]}),
        "<h2>Outcome (TRIPOD+AI 9)</h2>",
        table(t["outcome"]),
        "<h2>Predictors (TRIPOD+AI 10)</h2>",
        f"<p>{esc(', '.join(map(str, t['predictors'])))}</p>",
        "<h2>Sample size and missing data (TRIPOD+AI 11, 12)</h2>",
        table({**t["sample_size"], "missing data": t["missing_data"]}),
        "<h2>Statistical analysis (TRIPOD+AI 13)</h2>",
        f"<p>{esc(str(t['analysis']))}</p>",
        "<h2>Model specification (TRIPOD+AI 22)</h2>",
        table(t["model_specification"]),
        "<h3>Parameter intervals: Wald and profile likelihood (95%)</h3>",
        _interval_table(t.get("parameter_intervals", [])),
        "<h2>Performance (TRIPOD+AI 23)</h2>",
        table(t["performance"]["apparent"]),
    ]
    if t["performance"]["validation"]:
        sections += [
            "<h3>Bootstrap optimism-corrected</h3>",
            table(t["performance"]["validation"]),
        ]
    sections += [
        "<h2>Calibration plot</h2>",
        f'<img alt="calibration plot" src="data:image/png;base64,{cal_png}">',
        "<h2>Dose-response with observed rates in dose bins</h2>",
        f'<img alt="dose-response" src="data:image/png;base64,{dr_png}">',
        "<h2>Limitations (TRIPOD+AI 27)</h2>",
        "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in t["limitations"]) + "</ul>",
        "<h2>Warnings</h2>",
        "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in report["warnings"]) + "</ul>",
        "<h2>Provenance</h2>",
        table(report["provenance"]),
    ]
    style = (
        "body{font-family:sans-serif;max-width:60em}"
        "th{text-align:left;padding-right:1em}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(report['title'])}</title><style>{style}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def render_markdown(report: dict[str, Any]) -> str:
    """Markdown report (no figures; the numbers behind them are listed)."""
    t = report["tripod_ai"]
    lines = [f"# {report['title']}", ""]
    for title, rows in (
        (
            "Source of data and participants",
            {**t["source_of_data"], **t["participants"]},
        ),
        ("Outcome", t["outcome"]),
        ("Sample size", t["sample_size"]),
        ("Model specification", t["model_specification"]),
        ("Apparent performance", t["performance"]["apparent"]),
        ("Optimism-corrected performance", t["performance"]["validation"] or {}),
        ("Provenance", report["provenance"]),
    ):
        lines += [f"## {title}", "", "| item | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in rows.items()]
        lines.append("")
    lines += [
        "## Parameter intervals (95%)",
        "",
        "| parameter | estimate | Wald | profile likelihood |",
        "|---|---|---|---|",
    ]
    for row in t.get("parameter_intervals", []):
        lines.append(
            f"| {row['parameter']} | {_fmt(row['estimate'])} | "
            f"{_interval(row['wald_95'], row['fixed'])} | "
            f"{_interval(row['profile_95'], row['fixed'])} |"
        )
    lines.append("")
    lines += ["## Dose-response (observed rates in dose bins)", ""]
    lines += ["| dose | n | events | observed | predicted |", "|---|---|---|---|---|"]
    for b in report["dose_response"]["bins"]:
        lines.append(
            f"| {b['dose_mean']:.1f} | {b['n']} | {b['events']} | "
            f"{b['observed']:.3f} | {b['predicted']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _interval(ci: list[float | None] | None, fixed: bool) -> str:
    if fixed:
        return "fixed"
    if ci is None:
        return "-"
    lo, hi = ("open" if v is None else f"{v:.4g}" for v in ci)
    return f"{lo} .. {hi}"


def _interval_table(rows: list[dict[str, Any]]) -> str:
    esc = html.escape
    head = (
        "<tr><th>parameter</th><th>estimate</th><th>Wald 95%</th>"
        "<th>profile-likelihood 95%</th></tr>"
    )
    body = "".join(
        f"<tr><td>{esc(str(r['parameter']))}</td><td>{esc(_fmt(r['estimate']))}</td>"
        f"<td>{esc(_interval(r['wald_95'], r['fixed']))}</td>"
        f"<td>{esc(_interval(r['profile_95'], r['fixed']))}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)
