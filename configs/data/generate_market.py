"""Regenerate the implied-vol surfaces of ``market.yaml`` (run from the repo root).

No public option-chain data is available offline, so the bundled surfaces are built from a
stated model: Heston prices (riskengine's characteristic-function pricer) turned into
Black–Scholes implied vols on a grid of expiries x strikes, with crypto-like levels. The
output is ILLUSTRATIVE, not market data.

    .venv/bin/python configs/data/generate_market.py > /tmp/surfaces.yaml
"""

from __future__ import annotations

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from riskengine.analytic import heston_price, implied_vol  # noqa: E402

EXPIRIES_DAYS = [7, 14, 30, 60, 90, 180, 365]
MONEYNESS = [0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 1.8]
UNDERLYINGS = {
    # spot, basis, Heston (v0, kappa, theta, sigma, rho): ATM vols ~55% / 65% / 80%
    "BTC": (95000.0, 0.07, dict(v0=0.30, kappa=2.0, theta=0.34, sigma=1.0, rho=-0.20)),
    "ETH": (3400.0, 0.08, dict(v0=0.42, kappa=2.0, theta=0.45, sigma=1.2, rho=-0.25)),
    "SOL": (220.0, 0.09, dict(v0=0.64, kappa=2.0, theta=0.64, sigma=1.4, rho=-0.20)),
}


def surface(spot: float, basis: float, params: dict) -> tuple[list[float], list[list[float]]]:
    strikes = [round(spot * m, -1 if spot > 1000 else 0) for m in MONEYNESS]
    rows = []
    for days in EXPIRIES_DAYS:
        t = days / 365.0
        k = np.asarray(strikes)
        is_call = k >= spot
        price = heston_price(spot=spot, strike=k, maturity=t, rate=basis, dividend=0.0, is_call=is_call, **params)
        vol = implied_vol(price=price, spot=spot, strike=k, maturity=t, rate=basis, dividend=0.0, is_call=is_call)
        rows.append([round(float(v), 4) for v in np.asarray(vol)])
    return strikes, rows


if __name__ == "__main__":
    for name, (spot, basis, params) in UNDERLYINGS.items():
        strikes, rows = surface(spot, basis, params)
        print(f"  {name}:")
        print(f"    spot: {spot}\n    basis: {basis}\n    funding_premium_8h: 0.0001")
        print(f"    vol_surface:  # Heston {params}")
        print(f"      expiries_days: {EXPIRIES_DAYS}")
        print(f"      strikes: {strikes}")
        print("      vols:")
        for row in rows:
            print(f"        - {row}")
