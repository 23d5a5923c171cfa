r"""Aalen-Johansen and Kaplan-Meier estimates with intervals, vectorised in numpy.

These reproduce :class:`lifelines.AalenJohansenFitter` and
:class:`lifelines.KaplanMeierFitter` (lifelines 0.30) step for step, with running
sums in place of lifelines' row-by-row loop over the event table (which made the
variance of the Aalen-Johansen estimate the slowest part of a benchmark page).

Aalen-Johansen, for the event of interest :math:`k` at distinct times :math:`t_i`
with :math:`n_i` at risk, :math:`d_i` events of any type and :math:`d_{ki}` of type
:math:`k`:

.. math::

    \hat F(t) = \sum_{t_i \le t} \hat S(t_{i-1}) \frac{d_{ki}}{n_i}

and the variance of Collett (2015, p. 411), the formula lifelines uses:

.. math::

    \widehat{Var} \hat F(t) = \sum_{t_i \le t} (\hat F(t) - \hat F(t_i))^2
        \frac{d_i}{n_i (n_i - d_i)}
      + \sum_{t_i \le t} \hat S(t_{i-1})^2 \frac{d_{ki} (n_i - d_{ki})}{n_i^3}
      - 2 \sum_{t_i \le t} (\hat F(t) - \hat F(t_i)) \hat S(t_{i-1})
        \frac{d_{ki}}{n_i^2}

with the interval :math:`\exp(-\exp(\log(-\log \hat F) \pm z\,se))`,
:math:`se = \sqrt{Var} / (\hat F |\log \hat F|)`. The first and third sums are
expanded into running sums of :math:`a_i`, :math:`a_i \hat F(t_i)` and
:math:`a_i \hat F(t_i)^2`, in the order lifelines adds them.

Ties between event times of different types are broken as lifelines does: every
event time moves by ``uniform(-1, 1) * jitter`` drawn from
``numpy.random.RandomState(seed)`` (lifelines seeds the global state with the same
seed; the draws are the same, the global state is left alone here).

Kaplan-Meier: :math:`\hat S(t) = \prod (1 - d_i / n_i)` with the exponential
Greenwood interval, NaN bounds replaced by 1 (as lifelines does).

References
----------
Collett D. Modelling Survival Data in Medical Research, 3rd ed. CRC Press 2015.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

__all__ = ["aalen_johansen", "kaplan_meier"]

FloatArray = NDArray[np.float64]


def _event_table(
    t: FloatArray, counted: NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.intp]]:
    """Distinct times (with 0) and, at each, those at risk, removed and counted."""
    times, inverse = np.unique(t, return_inverse=True)
    if times.size == 0 or times[0] != 0:
        times = np.concatenate(([0.0], times))
        inverse = inverse + 1
    removed = np.bincount(inverse, minlength=times.size).astype(float)
    at_risk = t.size - np.concatenate(([0.0], np.cumsum(removed)[:-1]))
    return times, at_risk, removed, inverse


def _count(inverse: NDArray[np.intp], mask: NDArray[np.bool_], size: int) -> FloatArray:
    return np.bincount(inverse[mask], minlength=size).astype(float)


def _mixed_ties(t: FloatArray, e: NDArray[np.int64]) -> bool:
    """Tie test of lifelines: an event type met once at a time shared by others.

    (Two types met twice each at one time do not count, as in lifelines 0.30.)
    """
    ev = e != 0
    pairs, once = np.unique(np.column_stack((t[ev], e[ev])), axis=0, return_counts=True)
    times, inverse = np.unique(pairs[:, 0], return_inverse=True)
    shared = np.bincount(inverse, weights=once, minlength=times.size)[inverse] > 1
    return bool(np.any((once == 1) & shared))


def _jitter(t: FloatArray, e: NDArray[np.int64], level: float, seed: int) -> FloatArray:
    out = t.copy()
    ev = e != 0
    shift = np.random.RandomState(seed).uniform(low=-1, high=1, size=int(ev.sum()))
    shift = shift * level
    while _mixed_ties(out, e):  # lifelines reseeds: the same draws each time
        out[ev] = out[ev] + shift
    return out


def _survival(at_risk: FloatArray, deaths: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(
            np.exp(np.cumsum(np.log(at_risk - deaths) - np.log(at_risk))), dtype=float
        )


def aalen_johansen(
    t: FloatArray,
    e: NDArray[np.int64],
    event_of_interest: int,
    *,
    jitter: float,
    seed: int,
    alpha: float = 0.05,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Cumulative incidence of one event type with its log(-log) interval.

    Parameters
    ----------
    t : ndarray of float
        Durations (positive).
    e : ndarray of int
        0 censored, else the event type.
    event_of_interest : int
        The event type whose incidence is estimated; other types compete.
    jitter : float
        Half-width of the random shift that breaks ties of different types.
    seed : int
        Seed of that shift.
    alpha : float
        1 - coverage of the interval.

    Returns
    -------
    times, estimate, bound_a, bound_b : ndarray
        Distinct (jittered) times with 0 first, the estimate just after each and the
        two interval bounds (``bound_a`` from ``+ z se``, the lower one; NaN where
        the variance is undefined, e.g. while the estimate is 0).
    """
    if _mixed_ties(t, e):
        t = _jitter(t, e, jitter, seed)
    times, n, _, inverse = _event_table(t, e != 0)
    d = _count(inverse, e != 0, times.size)
    dk = _count(inverse, e == event_of_interest, times.size)
    s = _survival(n, d)
    lag = np.concatenate(([np.nan], s[:-1]))
    f = np.concatenate(([0.0], np.cumsum((dk / n * lag)[1:])))
    lag = np.concatenate(([1.0], s[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = d / n / (n - d)
        const_q = np.cumsum(a * f**2)
        lin_q = np.cumsum(-(2 * a * f))
        quad_q = np.cumsum(a)
        second = np.cumsum(lag**2 * dk * (n - dk) / n**3)
        c = lag * dk / n**2
        const_l = np.cumsum(-(c * f))
        lin_l = np.cumsum(c)
        var = (const_q + lin_q * f + quad_q * f**2) + second - 2 * (const_l + lin_l * f)
        f_t = np.log(-np.log(f))
        se = np.sqrt(var) / (f * np.absolute(np.log(f)))
        z = float(norm.ppf(1 - alpha / 2))
        bound_a = np.exp(-np.exp(f_t + z * se))
        bound_b = np.exp(-np.exp(f_t - z * se))
    return times, f, bound_a, bound_b


def kaplan_meier(
    t: FloatArray, observed: NDArray[np.bool_], alpha: float = 0.05
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Kaplan-Meier survival with the exponential Greenwood interval.

    Parameters
    ----------
    t : ndarray of float
        Durations (non-negative).
    observed : ndarray of bool
        Whether the event was observed (else censored).
    alpha : float
        1 - coverage of the interval.

    Returns
    -------
    times, survival, lower, upper : ndarray
        Distinct times with 0 first, the survival just after each and its bounds
        (1 where undefined, as lifelines reports them).
    """
    times, n, _, inverse = _event_table(t, observed)
    d = _count(inverse, observed, times.size)
    s = _survival(n, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = d / (n * (n - d))
        cum_sq = np.cumsum(np.where(np.isposinf(step), 0.0, step))
        v = np.log(s)
        z = float(norm.ppf(1 - alpha / 2))
        lower = np.exp(-np.exp(np.log(-v) - z * np.sqrt(cum_sq) / v))
        upper = np.exp(-np.exp(np.log(-v) + z * np.sqrt(cum_sq) / v))
    return (
        times,
        s,
        np.where(np.isnan(lower), 1.0, lower),
        np.where(np.isnan(upper), 1.0, upper),
    )
