"""Differentiable hedging: train hedging policies by gradient descent through riskengine's
simulated P&L (deep hedging), with transaction costs and risk measures.

```python
import jax, optax
from riskengine.models import GBM
from hedging import (EuropeanOption, HedgingProblem, TransactionCosts, MLPPolicy, Entropic,
                     train, make_optimizer)

problem = HedgingProblem(model=GBM(sigma=0.2), derivative=EuropeanOption(strike=1.0, maturity=20 / 250),
                         spot=1.0, steps=20, costs=TransactionCosts(proportional=(1e-3,)))
policy = MLPPolicy(["log_moneyness", "time_to_maturity", "volatility", "prev_hedge"], key=jax.random.key(0))
result = train(policy, Entropic(1.0), problem, key=jax.random.key(1), num_paths=10_000, epochs=200,
               optimizer=make_optimizer(1e-3))
```
"""

from hedging.costs import TransactionCosts
from hedging.derivatives import EuropeanOption
from hedging.evaluate import evaluate, sample_hedges
from hedging.features import FEATURES, MarketView
from hedging.objectives import OCE, Entropic, ExpectedShortfall, MeanVariance, Objective
from hedging.pnl import terminal_pnl
from hedging.policies import (
    BlackScholesDelta,
    MLPPolicy,
    NoHedge,
    NoTransactionBandPolicy,
    Policy,
    RecurrentPolicy,
    WhalleyWilmott,
    hedge_positions,
)
from hedging.problem import HedgingProblem, MarketPaths, reference_price
from hedging.storage import build_policy, load_policy, save_policy
from hedging.train import TrainResult, make_optimizer, train

__all__ = [
    "FEATURES", "OCE", "BlackScholesDelta", "Entropic", "EuropeanOption", "ExpectedShortfall", "HedgingProblem",
    "MLPPolicy", "MarketPaths", "MarketView", "MeanVariance", "NoHedge", "NoTransactionBandPolicy", "Objective",
    "Policy", "RecurrentPolicy", "TrainResult", "TransactionCosts", "WhalleyWilmott", "evaluate", "hedge_positions",
    "build_policy", "load_policy", "make_optimizer", "reference_price", "sample_hedges", "save_policy",
    "terminal_pnl", "train",
]
