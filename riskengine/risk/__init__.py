"""Risk measures on P&L: Monte Carlo / historical / parametric VaR and ES, their confidence
intervals, Euler allocation to positions, and VaR backtests.

Conventions: P&L arrays are gains (negative = loss); ``level`` is the confidence (e.g.
0.99); VaR and ES are returned as positive numbers meaning losses. See
:mod:`riskengine.risk.measures` for the quantile convention.
"""

from riskengine.risk.backtest import (
    LRTest,
    christoffersen_coverage_test,
    christoffersen_independence_test,
    coverage_tests,
    exceedances,
    kupiec_test,
    transition_counts,
)
from riskengine.risk.contributions import (
    default_bandwidth,
    es_contributions,
    group_contributions,
    var_contributions,
)
from riskengine.risk.filtered_historical import (
    FilteredHistory,
    filter_history,
    simulate_filtered_history,
)
from riskengine.risk.historical import (
    historical_es,
    historical_pnl,
    historical_var,
    overlapping_returns,
)
from riskengine.risk.intervals import (
    Interval,
    es_interval,
    es_standard_error,
    order_statistic_ranks,
    var_interval,
)
from riskengine.risk.measures import (
    expected_shortfall,
    level_key,
    tail_weights,
    value_at_risk,
    var_and_es,
    var_and_es_by_level,
)
from riskengine.risk.parametric import (
    Moments,
    cornish_fisher_es,
    cornish_fisher_var,
    cornish_fisher_z,
    delta_normal_es,
    delta_normal_var,
    normal_es,
    normal_var,
    pnl_moments,
)

__all__ = [
    "FilteredHistory",
    "Interval",
    "LRTest",
    "Moments",
    "christoffersen_coverage_test",
    "christoffersen_independence_test",
    "cornish_fisher_es",
    "cornish_fisher_var",
    "cornish_fisher_z",
    "coverage_tests",
    "default_bandwidth",
    "delta_normal_es",
    "delta_normal_var",
    "es_contributions",
    "es_interval",
    "es_standard_error",
    "exceedances",
    "expected_shortfall",
    "filter_history",
    "group_contributions",
    "historical_es",
    "historical_pnl",
    "historical_var",
    "kupiec_test",
    "level_key",
    "normal_es",
    "normal_var",
    "order_statistic_ranks",
    "overlapping_returns",
    "pnl_moments",
    "simulate_filtered_history",
    "tail_weights",
    "transition_counts",
    "value_at_risk",
    "var_and_es",
    "var_and_es_by_level",
    "var_contributions",
    "var_interval",
]
