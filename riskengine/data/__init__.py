"""Readers for market-data exports (one home per format)."""

from riskengine.data.deribit import (
    DERIBIT_2021_COLUMNS,
    DERIBIT_COLUMNS,
    Chain,
    DeribitMarketConfig,
    chain_market,
    list_snapshots,
    market_from_chain,
    read_chain,
)

__all__ = [
    "DERIBIT_2021_COLUMNS",
    "DERIBIT_COLUMNS",
    "Chain",
    "DeribitMarketConfig",
    "chain_market",
    "list_snapshots",
    "market_from_chain",
    "read_chain",
]
