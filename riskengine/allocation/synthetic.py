"""Synthetic markets with a planted signal, for tests, benchmarks and the bundled config.

Factor ``signal`` dated ``d`` (i.i.d. standard normal) is published with a one-day lag, so it
is usable at the close of ``d + 1``, and it predicts the log return of every asset over
``(d + 1, d + 2]``: ``r = vol (ic * x_d + sqrt(1 - ic^2) e)``, ``e`` i.i.d. standard normal,
independent across assets. The other factors (``noise_1``, ...) are i.i.d. standard normal and
predict nothing. With ``ic = 0`` every factor is noise. The theoretical daily Sharpe of
holding ``x_d`` units of risk in each of ``n`` assets is ``sqrt(n) ic / sqrt(1 + (2n - 1) ic^2)``
(for normal ``x`` and ``e``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def planted_signal(*, days: int, assets: tuple[str, ...] = ("AAA", "BBB"), noise_factors: int = 3,
                   ic: float = 0.08, vol: float = 0.03, start: str = "2018-01-01",
                   seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(closes, factors)``: closes ``[days, assets]`` indexed by date (named ``date``), and a
    factor table with a ``date`` column, ``signal`` and ``noise_1..``."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D", name="date")
    x = rng.standard_normal(days)
    noise = rng.standard_normal((days, noise_factors))
    eps = rng.standard_normal((days, len(assets)))
    logret = np.zeros((days, len(assets)))
    # the return over (t - 1, t] is predicted by x dated t - 2 (usable at t - 1)
    logret[2:] = vol * (ic * x[:-2, None] + math.sqrt(1.0 - ic * ic) * eps[2:])
    closes = pd.DataFrame(100.0 * np.exp(np.cumsum(logret, axis=0)), index=dates, columns=list(assets))
    factors = pd.DataFrame({"date": dates, "signal": x,
                            **{f"noise_{k + 1}": noise[:, k] for k in range(noise_factors)}})
    return closes, factors


def theoretical_sharpe(*, ic: float, assets: int) -> float:
    """Annualised (365 days) Sharpe of ``w = x`` in each of ``assets`` assets (see above)."""
    return math.sqrt(assets) * ic / math.sqrt(1.0 + (2 * assets - 1) * ic * ic) * math.sqrt(365.0)
