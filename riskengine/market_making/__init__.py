"""Market making: Avellaneda–Stoikov, GLFT and symmetric quoting on a simulated mid price."""

from riskengine.market_making.dynamics import ArithmeticMid, LogModelMid, price_volatility
from riskengine.market_making.simulator import FillModel, MarketMakingResult, simulate_market_making
from riskengine.market_making.strategies import (
    GLFT,
    AvellanedaStoikov,
    Strategy,
    Symmetric,
    as_reservation_offset,
    as_spread,
    glft_offsets,
    glft_skew,
)

__all__ = [
    "GLFT",
    "ArithmeticMid",
    "AvellanedaStoikov",
    "FillModel",
    "LogModelMid",
    "MarketMakingResult",
    "Strategy",
    "Symmetric",
    "as_reservation_offset",
    "as_spread",
    "glft_offsets",
    "glft_skew",
    "price_volatility",
    "simulate_market_making",
]
