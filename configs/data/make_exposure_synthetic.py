"""Writes the bundled synthetic inputs of configs/exposure.yaml (run from the repository root):

    .venv/bin/python configs/data/make_exposure_synthetic.py

A planted-signal market (riskengine.allocation.synthetic.planted_signal): factor ``signal``
predicts every asset's next-day return with information coefficient 0.08 (one-day
publication lag), ``noise_1..3`` predict nothing; two assets with 3% daily volatility.
"""

from pathlib import Path

from riskengine.allocation.synthetic import planted_signal

here = Path(__file__).parent
closes, factors = planted_signal(days=1000, assets=("AAA", "BBB"), noise_factors=3, ic=0.08, seed=2024)
closes.round(6).to_csv(here / "exposure_prices.csv")
factors.set_index("date").round(6).to_csv(here / "exposure_factors.csv")
print(f"wrote {here / 'exposure_prices.csv'} and {here / 'exposure_factors.csv'}")
