"""Instruments of a crypto desk's book, valued by pure, vectorised, differentiable JAX
functions: spot, dated futures, perpetual swaps, European options (linear and inverse)
and venue margin (isolated and cross). Values are in USD; coin amounts are converted at
the coin's spot (index) price."""

from riskengine.instruments.futures import (
    futures_pnl,
    futures_price,
    inverse_futures_pnl_coin,
    linear_futures_pnl,
)
from riskengine.instruments.margin import (
    CrossAccount,
    LiquidationMove,
    cross_account,
    cross_liquidation_move,
    equity,
    isolated_liquidation_price,
    margin_ratio,
    margin_requirement,
    position_notional,
    solve_liquidation_move,
    tiered_maintenance,
    venue_sum,
)
from riskengine.instruments.options import (
    inverse_option_delta,
    inverse_option_delta_pa,
    inverse_option_price_coin,
    inverse_option_value,
    linear_option_delta,
    linear_option_value,
    option_value,
)
from riskengine.instruments.perpetual import (
    DEFAULT_FUNDING_CLAMP,
    DEFAULT_FUNDING_INTEREST,
    FUNDING_PERIODS_PER_DAY,
    funding_periods,
    funding_rate,
    inverse_perpetual_funding_coin,
    linear_perpetual_funding,
    perpetual_funding,
    perpetual_value,
)
from riskengine.instruments.spot import spot_pnl, spot_value

__all__ = [
    "DEFAULT_FUNDING_CLAMP",
    "DEFAULT_FUNDING_INTEREST",
    "FUNDING_PERIODS_PER_DAY",
    "CrossAccount",
    "LiquidationMove",
    "cross_account",
    "cross_liquidation_move",
    "equity",
    "funding_periods",
    "funding_rate",
    "futures_pnl",
    "futures_price",
    "inverse_futures_pnl_coin",
    "inverse_option_delta",
    "inverse_option_delta_pa",
    "inverse_option_price_coin",
    "inverse_option_value",
    "inverse_perpetual_funding_coin",
    "isolated_liquidation_price",
    "linear_futures_pnl",
    "linear_option_delta",
    "linear_option_value",
    "linear_perpetual_funding",
    "margin_ratio",
    "margin_requirement",
    "option_value",
    "perpetual_funding",
    "perpetual_value",
    "position_notional",
    "solve_liquidation_move",
    "tiered_maintenance",
    "spot_pnl",
    "spot_value",
    "venue_sum",
]
