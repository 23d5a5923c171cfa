"""One metric engine: ntcp's metrics are etl's, on analytic phantom DVHs."""

from __future__ import annotations

import numpy as np
import pytest

from etl.dose.dvh import DVH, cumulative_nodes
from etl.dose.metrics import evaluate, evaluate_nodes
from etl.phantom.geometry import Solid
from etl.phantom.truth import LinearDoseField, cumulative_volume_mm3, roi_truth
from ntcp.dose_metrics import dose_metric, is_supported_metric
from ntcp.errors import ModelSpecError

WIDTH_GY = 0.1
PHANTOMS = [
    ("sphere", "z", (0.0, 0.0, 1.0), 16.0),
    ("cylinder", "y", (0.0, 0.0, 1.0), 30.0),
    ("cone", (1.0, 2.0, 3.0), (0.3, -0.5, 1.0), 45.0),
]
DOSES_GY = [0.0, 5.0, 14.0, 16.0, 20.0, 31.0, 44.95, 80.0]
NAMES = [
    "Mean[Gy]",
    "Min[Gy]",
    "Max[Gy]",
    "Mean[cGy]",
    "D99%[Gy]",
    "D95%[Gy]",
    "D50%[Gy]",
    "D5%[Gy]",
    "D1%[Gy]",
    "D0%[Gy]",
    "D100%[Gy]",
    "D2%[cGy]",
    *[f"V{x:g}Gy[%]" for x in DOSES_GY],
    *[f"V{100 * x:g}cGy[%]" for x in DOSES_GY],
]


def _phantom(kind, axis, gradient, centre_gy):
    """Exact differential DVH (0.1-Gy bins) of a solid in a linear field."""
    solid = Solid.make(kind, 24.0, axis=axis, centre_mm=(1.0, -2.0, 3.0))
    fld = LinearDoseField.from_point(centre_gy, solid.centre_mm, gradient)
    truth = roi_truth(solid, fld)
    n = int(np.ceil(truth.max_gy / WIDTH_GY)) + 1
    cum_cc = np.array(
        [cumulative_volume_mm3(solid, fld, b * WIDTH_GY) for b in range(n + 1)]
    )
    cum_cc = cum_cc / 1000.0
    diff = np.maximum(cum_cc[:-1] - cum_cc[1:], 0.0)
    dvh = DVH(
        truth.volume_cc,
        0.0,
        truth.min_gy,
        truth.mean_gy,
        truth.max_gy,
        WIDTH_GY,
        diff,
    )
    return solid, fld, truth, dvh


def _bin_centre_rows(dvhs):
    """The ntcp form: occupied bin centres and volume fractions, padded."""
    rows = []
    for dvh in dvhs:
        centres = (np.arange(dvh.differential_cc.size) + 0.5) * dvh.bin_width_gy
        keep = dvh.differential_cc > 0
        rows.append((centres[keep], dvh.differential_cc[keep] / dvh.inside_grid_cc))
    width = max(d.size for d, _ in rows)
    dose = np.zeros((len(rows), width))
    vol = np.zeros((len(rows), width))
    for i, (d, v) in enumerate(rows):
        dose[i, : d.size] = d
        vol[i, : v.size] = v
    return dose, vol


@pytest.fixture(scope="module")
def phantoms():
    return [_phantom(*p) for p in PHANTOMS]


@pytest.mark.parametrize("name", NAMES)
def test_ntcp_and_etl_give_identical_values(phantoms, name):
    dose, vol = _bin_centre_rows([p[3] for p in phantoms])
    ntcp_values = dose_metric(dose, vol, name)
    for i in range(len(phantoms)):
        nodes = cumulative_nodes(dose[i], vol[i])
        mean = float(np.sum(dose[i] * vol[i]) / np.sum(vol[i]))
        etl_value = evaluate_nodes(*nodes, name, mean_gy=mean)
        assert ntcp_values[i] == etl_value


@pytest.mark.parametrize("name", NAMES)
def test_ntcp_values_match_the_analytic_truth(phantoms, name):
    """Independent truth: bin-centre point masses are within half a bin of it."""
    dose, vol = _bin_centre_rows([p[3] for p in phantoms])
    ntcp_values = dose_metric(dose, vol, name)
    scale = 100.0 if "cGy]" in name else 1.0
    for (solid, fld, truth, dvh), value in zip(phantoms, ntcp_values, strict=True):
        omop_value = evaluate(dvh, name)
        assert omop_value is not None
        if name.startswith("V"):
            x = float(name[1:].split("Gy")[0].removesuffix("c"))
            x = x / 100.0 if "cGy[" in name else x
            total = solid.volume_mm3()

            def v_pct(d, solid=solid, fld=fld, total=total):
                return 100.0 * cumulative_volume_mm3(solid, fld, d) / total

            # A bin counts when its centre is at least x: between V(x+w/2), V(x-w/2).
            lo, hi = v_pct(x + WIDTH_GY / 2), v_pct(x - WIDTH_GY / 2)
            assert lo - 1e-9 <= value <= hi + 1e-9
            assert lo - 1e-9 <= omop_value <= hi + 1e-9
            continue
        if name.startswith("D"):
            exact = truth.metrics.get(name.replace("[cGy]", "[Gy]"))
            if exact is None:
                pct = float(name[1:].split("%")[0])
                exact = {0.0: truth.max_gy, 100.0: truth.min_gy}.get(pct)
        else:
            exact = {"Mean": truth.mean_gy, "Min": truth.min_gy, "Max": truth.max_gy}[
                name.split("[")[0]
            ]
        if exact is None:  # D50%, D2%: against the DVH engine itself
            exact = omop_value / scale
        assert value == pytest.approx(exact * scale, abs=WIDTH_GY * scale)
        assert omop_value == pytest.approx(exact * scale, abs=WIDTH_GY * scale)


def test_cc_metrics_and_malformed_names_are_refused():
    assert is_supported_metric("V20Gy[%]")
    assert is_supported_metric("D2%[cGy]")
    assert not is_supported_metric("V20Gy[cc]")
    assert not is_supported_metric("D0.03cc[Gy]")
    assert not is_supported_metric("V20[%]")
    with pytest.raises(ModelSpecError, match="cm3"):
        dose_metric(np.ones((1, 1)), np.ones((1, 1)), "V20Gy[cc]")
