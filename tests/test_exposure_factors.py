"""The factor panel: publication lags, bounded forward fill, past-only standardisation, and
no look-ahead (the panel of truncated data equals the first rows of the full panel, bitwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskengine.allocation.factors import (
    FactorInput,
    PriceFactors,
    align,
    build_panel,
    read_series,
    standardise,
)
from riskengine.config import ConfigError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _closes(days=400, seed=0):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-01", periods=days, freq="D")
    r = rng.normal(0.0, 0.03, size=(days, 2))
    closes = pd.DataFrame(100 * np.exp(np.cumsum(r, axis=0)), index=dates, columns=["BTC", "ETH"])
    closes.iloc[:50, 1] = np.nan  # ETH starts later
    return closes


def _factor(dates, seed=1, gaps=True):
    rng = np.random.default_rng(seed)
    s = pd.Series(rng.normal(size=len(dates)).cumsum(), index=dates)
    if gaps:
        s = s.drop(dates[[30, 31, 32, 33, 34, 35, 100]])
    return s


def test_lag_shifts_the_value_by_its_publication_delay():
    dates = pd.date_range("2021-01-01", periods=10, freq="D")
    s = pd.Series(np.arange(10.0), index=dates)
    assert np.isnan(align(s, dates, lag_days=2, max_ffill_days=0)[:2]).all()
    np.testing.assert_array_equal(align(s, dates, lag_days=2, max_ffill_days=0)[2:], np.arange(8.0))
    np.testing.assert_array_equal(align(s, dates, lag_days=0, max_ffill_days=0), np.arange(10.0))


def test_forward_fill_is_bounded_and_never_backward():
    dates = pd.date_range("2021-01-01", periods=10, freq="D")
    s = pd.Series([1.0, 2.0], index=dates[[2, 4]])  # known on day 2 and 4 only
    got = align(s, dates, lag_days=0, max_ffill_days=2)
    want = [np.nan, np.nan, 1.0, 1.0, 2.0, 2.0, 2.0, np.nan, np.nan, np.nan]
    np.testing.assert_array_equal(got, want)


def test_standardise_uses_the_past_only():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    z = standardise(x, min_days=20, clip=100.0)
    t = 120
    past = x[: t + 1, 0]
    assert z[t, 0] == pytest.approx((x[t, 0] - past.mean()) / past.std(ddof=1), rel=1e-10)
    assert (z[:19] == 0).all()
    x2 = x.copy()
    x2[t + 1:] += 1000.0  # changing the future leaves the past untouched
    np.testing.assert_array_equal(standardise(x2, min_days=20, clip=100.0)[: t + 1], z[: t + 1])


@pytest.mark.parametrize("cut", [80, 151, 299])
def test_panel_has_no_look_ahead(cut):
    closes = _closes()
    dates = closes.index
    factors = [
        FactorInput("funding_z", _factor(dates, 1), lag_days=1, transform="zscore", window_days=20),
        FactorInput("oi_change", _factor(dates, 2).abs() + 1.0, lag_days=2, transform="log_change", window_days=7),
        FactorInput("iv_minus_rv", _factor(dates, 3).abs() * 0.01 + 0.5, lag_days=0,
                    transform="minus_realised_vol", window_days=30),
        FactorInput("fng", _factor(dates, 4), lag_days=1),
    ]
    kw = dict(price_factors=PriceFactors(momentum_days=(7, 30), drawdown_days=60, vol_days=20),
              standardise_min_days=30)
    full = build_panel(closes, factors, **kw)
    cut_date = dates[cut]
    short = build_panel(closes.loc[:cut_date],
                        [FactorInput(**{**f.__dict__, "series": f.series.loc[:cut_date]}) for f in factors], **kw)
    assert full.names == short.names
    np.testing.assert_array_equal(short.values, full.values[: cut + 1])
    np.testing.assert_array_equal(short.raw, full.raw[: cut + 1])
    # and data after the cut in the full panel does change later values (the test can fail)
    assert not np.array_equal(full.values[cut + 1:], np.zeros_like(full.values[cut + 1:]))


def test_read_series_formats_and_errors(tmp_path):
    p = tmp_path / "onchain.csv"
    p.write_bytes("\ufeffDate,Data\n2021.1.2,3.5\n2021.1.3,4\n".encode())
    s = read_series(p)
    assert list(s.index) == [pd.Timestamp("2021-01-02"), pd.Timestamp("2021-01-03")]
    np.testing.assert_array_equal(s.to_numpy(), [3.5, 4.0])
    hourly = tmp_path / "hourly.csv"
    hourly.write_text("datetime_utc,v\n2021-01-01 00:00:00 UTC,1\n2021-01-01 23:00:00 UTC,2\n"
                      "2021-01-02 05:00:00 UTC,3\n")
    np.testing.assert_array_equal(read_series(hourly).to_numpy(), [2.0, 3.0])
    nodate = tmp_path / "nodate.csv"
    nodate.write_text("x,y\n1,2\n")
    with pytest.raises(ConfigError, match="no date column"):
        read_series(nodate, field="factors[0]")
    dup = tmp_path / "dup.csv"
    dup.write_text("date,v\n2021-01-01,1\n2021-01-01,2\n")
    with pytest.raises(ConfigError, match=r"factors\[1\].path: .* duplicated dates"):
        read_series(dup, field="factors[1]")


def test_real_factor_files_load():
    if not DATA.exists():
        pytest.skip(f"real data not found at {DATA} (the sibling shared/data of the repository)")
    oi = read_series(DATA / "onchain" / "open_interest.csv")
    assert oi.index[0] == pd.Timestamp("2019-03-30") and oi.index.is_monotonic_increasing
    dvol = read_series(DATA / "btc_factors" / "dvol_hourly.csv.gz", column="dvol_close",
                       date_column="datetime_utc")
    assert dvol.index[0] == pd.Timestamp("2021-03-24") and not dvol.index.duplicated().any()
    funding = read_series(DATA / "btc_factors" / "funding_rates.csv", column="funding_mean")
    assert abs(funding.median()) < 1e-3


def test_real_panel_has_no_look_ahead():
    if not DATA.exists():
        pytest.skip(f"real data not found at {DATA} (the sibling shared/data of the repository)")
    from riskengine.history import load_history

    closes = pd.concat([load_history(DATA / "daily_ohlcv" / f"{a}-USD.csv", [a]).closes for a in ("BTC", "SOL")],
                       axis=1).loc["2019-01-01":"2022-12-31"]
    specs = [
        FactorInput("funding_z", read_series(DATA / "btc_factors" / "funding_rates.csv", column="funding_mean"),
                    transform="zscore"),
        FactorInput("dvol_rv", read_series(DATA / "btc_factors" / "dvol_hourly.csv.gz", column="dvol_close",
                                           date_column="datetime_utc"), scale=0.01, transform="minus_realised_vol"),
        FactorInput("oi", read_series(DATA / "onchain" / "open_interest.csv"), transform="log_change", window_days=7),
    ]
    full = build_panel(closes, specs)
    cut = pd.Timestamp("2021-06-15")
    short = build_panel(closes.loc[:cut], [FactorInput(**{**f.__dict__, "series": f.series.loc[:cut]}) for f in specs])
    n = len(short.dates)
    np.testing.assert_array_equal(short.values, full.values[:n])
    assert np.isnan(full.raw[: full.dates.searchsorted(pd.Timestamp("2020-04-10")), 1, -1]).all()  # SOL not yet
    assert (full.values[n:] != 0).any()
