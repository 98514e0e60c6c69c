"""Allocation: how much exposure each asset or strategy gets within the desk's limits.

- :mod:`riskengine.allocation.problem`: objectives and constraints;
- :mod:`riskengine.allocation.solver`: the JAX solver (smoothed Rockafellar–Uryasev CVaR,
  accelerated projected gradient, augmented Lagrangian) and exact portfolio figures;
- :mod:`riskengine.allocation.inputs`: scenario tables, job output directories, simulation;
- :mod:`riskengine.allocation.lp`: the exact linear program (HiGHS) the solver is checked
  against.

The exposure job's walk-forward machinery: ``exposure_config`` (its config sections),
``exposure_inputs`` (its files), ``factors``, ``signals``, ``policy``, ``walk_forward``,
``baselines``, ``exposure`` (budgets, limits, P&L), ``risk_forecast``, ``evaluation`` and
``attribution``.
"""

from riskengine.allocation.problem import OBJECTIVES, Constraints, Objective, check_returns
from riskengine.allocation.solver import (
    Allocation,
    SolverSettings,
    allocate,
    check_feasible,
    portfolio_risk,
    project_box_budget,
    risk_contributions,
)

__all__ = [
    "OBJECTIVES",
    "Allocation",
    "Constraints",
    "Objective",
    "SolverSettings",
    "allocate",
    "check_feasible",
    "check_returns",
    "portfolio_risk",
    "project_box_budget",
    "risk_contributions",
]
