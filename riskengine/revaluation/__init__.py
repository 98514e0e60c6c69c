"""The book revalued: on simulated paths (Monte Carlo P&L, Euler contributions, stressed
VaR), under historical and filtered-historical moves, under named scenarios; its Greeks by
automatic differentiation of the full revaluation; and its VaR and ES by the methods beside
Monte Carlo."""

from riskengine.revaluation.greeks import book_greeks, theta_by_underlying
from riskengine.revaluation.historical import filtered_historical_pnl, historical_pnl
from riskengine.revaluation.liquidation import liquidate_along_paths, liquidation_summary
from riskengine.revaluation.paths import PathRevaluation, kernel_weights, vol_adjustment
from riskengine.revaluation.scenarios import scenario_pnl
from riskengine.revaluation.var_methods import (
    filtered_historical_var,
    historical_var,
    monte_carlo_var,
    parametric_var,
)

__all__ = [
    "PathRevaluation",
    "book_greeks",
    "filtered_historical_pnl",
    "filtered_historical_var",
    "historical_pnl",
    "historical_var",
    "kernel_weights",
    "liquidate_along_paths",
    "liquidation_summary",
    "monte_carlo_var",
    "parametric_var",
    "scenario_pnl",
    "theta_by_underlying",
    "vol_adjustment",
]
