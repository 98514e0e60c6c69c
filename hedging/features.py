"""What a policy sees at each hedge date.

State-independent features (they do not depend on the hedge) are computed for all dates
at once, ``[dates, paths]``; ``prev_hedge`` is the policy's own previous position and is
fed inside the time loop.

``spot_gamma`` is spot times the Black–Scholes gamma at the path's volatility,
``dDelta / dlog(spot) = phi(d1) / (vol sqrt(tau))``: the same for any unit of spot. The
Whalley–Wilmott no-transaction band's half-width grows as its 2/3 power; a band network
that sees it can learn that shape (benchmarks/RESULTS.md, the cost-scaling reproduction)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from hedging.derivatives import EuropeanOption
from hedging.problem import HedgingProblem, MarketPaths

MARKET_FEATURES = ("log_moneyness", "moneyness", "time_to_maturity", "volatility", "variance", "spot_gamma")
FEATURES = MARKET_FEATURES + ("prev_hedge",)


class MarketView(eqx.Module):
    """The market on the trading dates ``t_0 .. t_{T-1}`` (the last date only settles)."""

    spot: Float[Array, "dates paths"]
    time_to_maturity: Float[Array, "dates paths"]
    variance: Float[Array, "dates paths"]
    derivative: EuropeanOption
    rate: float = eqx.field(static=True)
    num_instruments: int = eqx.field(static=True)

    @classmethod
    def of(cls, problem: HedgingProblem, paths: MarketPaths) -> MarketView:
        spot = paths.spot[:-1]
        tau = jnp.broadcast_to((problem.derivative.maturity - paths.time[:-1])[:, None], spot.shape)
        return cls(
            spot=spot, time_to_maturity=tau, variance=paths.variance[:-1], derivative=problem.derivative,
            rate=problem.rate, num_instruments=problem.num_instruments,
        )

    def feature(self, name: str) -> Float[Array, "dates paths"]:
        if name == "log_moneyness":
            return jnp.log(self.spot / self.derivative.strike)
        if name == "moneyness":
            return self.spot / self.derivative.strike
        if name == "time_to_maturity":
            return self.time_to_maturity
        if name == "volatility":
            return jnp.sqrt(jnp.maximum(self.variance, 0.0))
        if name == "variance":
            return self.variance
        if name == "spot_gamma":
            return self.spot * self.gamma()
        raise ValueError(f"policy.features: unknown feature {name!r}; expected some of {list(FEATURES)}")

    def stack(self, names: tuple[str, ...]) -> Float[Array, "dates paths features"]:
        return jnp.stack([self.feature(n) for n in names], axis=-1)

    def delta(self, vol: float | None = None) -> Float[Array, "dates paths"]:
        """Black–Scholes delta, with the path's current volatility unless ``vol`` is given."""
        v = self.feature("volatility") if vol is None else vol
        return self.derivative.bs_delta(self.spot, tau=self.time_to_maturity, vol=v, rate=self.rate)

    def gamma(self, vol: float | None = None) -> Float[Array, "dates paths"]:
        v = self.feature("volatility") if vol is None else vol
        return self.derivative.bs_gamma(self.spot, tau=self.time_to_maturity, vol=v, rate=self.rate)


def check_features(names: tuple[str, ...]) -> None:
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"policy.features: unknown feature {unknown[0]!r}; expected some of {list(FEATURES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"policy.features: repeated feature in {list(names)}")
