"""riskengine: a Monte Carlo risk engine in JAX for crypto derivatives.

The pieces, in the order data flows through them:

- :mod:`riskengine.models` — simulator models (GBM, Heston, Merton, Bates, SVCJ, correlated assets)
- :mod:`riskengine.simulate` — the one streaming simulation driver every job reuses
- :mod:`riskengine.pricing` — Monte Carlo European prices with AD Greeks
- :mod:`riskengine.analytic` — closed-form and characteristic-function references
- :mod:`riskengine.jobs` — the job kinds behind ``riskengine run``
"""

from riskengine.models import GBM, SVCJ, Bates, CorrelatedAssets, Heston, Merton, Model, build_model
from riskengine.pricing import EuropeanEstimates, price_europeans
from riskengine.simulate import Estimate, Observations, monte_carlo, simulate_paths, time_grid

__version__ = "0.1.0"

__all__ = [
    "Bates",
    "CorrelatedAssets",
    "Estimate",
    "EuropeanEstimates",
    "GBM",
    "Heston",
    "Merton",
    "Model",
    "Observations",
    "SVCJ",
    "build_model",
    "monte_carlo",
    "price_europeans",
    "simulate_paths",
    "time_grid",
]
