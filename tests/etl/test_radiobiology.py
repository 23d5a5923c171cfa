from __future__ import annotations

import numpy as np
import pytest

from etl.dose.dvh import DVH
from etl.dose.metrics import evaluate
from etl.dose.radiobiology import bed_gy, dvh_to_eqd2, eqd2_gy, geud_gy


def test_lq_formulas_by_hand():
    # 25 x 2 Gy is its own EQD2; 5 x 8 Gy at a/b 3: 40 * (8 + 3) / 5 = 88
    assert eqd2_gy(50.0, 25, 3.0) == pytest.approx(50.0)
    assert eqd2_gy(40.0, 5, 3.0) == pytest.approx(88.0)
    assert bed_gy(60.0, 30, 10.0) == pytest.approx(72.0)
    np.testing.assert_allclose(eqd2_gy(np.array([0.0, 20.0]), 10, 2.0), [0.0, 20.0])
    # BED and EQD2 are consistent: EQD2 = BED / (1 + 2 / (a/b))
    assert eqd2_gy(36.0, 4, 3.0) == pytest.approx(bed_gy(36.0, 4, 3.0) / (1 + 2 / 3))
    with pytest.raises(ValueError, match="n_fractions"):
        eqd2_gy(10.0, 0, 3.0)


def test_geud_limits():
    d, v = [10.0, 30.0], [3.0, 1.0]
    assert geud_gy(d, v, a=1) == pytest.approx(15.0)  # mean
    assert geud_gy(d, v, a=200) == pytest.approx(30.0, rel=0.01)  # -> max
    assert geud_gy(d, v, n=0.5) == pytest.approx(np.sqrt(0.75 * 100 + 0.25 * 900))
    with pytest.raises(ValueError, match="exactly one"):
        geud_gy(d, v, a=1, n=1)


def test_dvh_to_eqd2_maps_quantiles():
    # uniform on [10, 20) Gy, 4 cc; 5 fractions, a/b 3: quantiles map through EQD2
    n = 2000
    diff = np.zeros(n)
    diff[1000:] = 4.0 / 1000
    d = DVH(4.0, 0.0, 10.0, 15.0, 20.0, 0.01, diff)
    e = dvh_to_eqd2(d, 5, 3.0)
    assert e.inside_grid_cc == pytest.approx(4.0)
    assert e.min_gy == pytest.approx(float(eqd2_gy(10.0, 5, 3.0)))
    assert e.max_gy == pytest.approx(float(eqd2_gy(20.0, 5, 3.0)))
    for pct, dose in [(95, 10.5), (50, 15.0), (10, 19.0)]:
        assert evaluate(e, f"D{pct}%[Gy]") == pytest.approx(
            float(eqd2_gy(dose, 5, 3.0)), abs=0.02
        )
    # mean of EQD2 over U(10, 20): (E[D^2]/n + ab E[D]) / (2 + ab)
    e_d2 = (20**3 - 10**3) / 3 / 10
    assert e.mean_gy == pytest.approx((e_d2 / 5 + 3 * 15) / 5, rel=1e-4)
