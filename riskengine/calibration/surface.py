"""Option surfaces for calibration: loading, validation and model-free static-arbitrage checks.

A surface CSV has one quote per row (``#`` starts a comment line):

| column | meaning |
|---|---|
| ``expiry_days`` *or* ``expiry_years`` (alias ``expiry``) | time to expiry (days are /365) |
| ``strike`` | strike, in the units of the spot |
| ``implied_vol`` *or* ``price`` | the quote: Black–Scholes implied vol (annualised, 0.6 = 60%) or the option's price |
| ``bid``, ``ask`` (optional, both or neither) | the quote's bid and ask, in the units of the quote column |
| ``option`` (optional) | ``call`` or ``put``; default: the out-of-the-money side (call when ``K >= F``) |

Every bad row is reported at once, in one line naming the file line and the field
(:class:`riskengine.config.ConfigError`). Prices and vols are converted into each other with
the market's spot, rate and dividend (``riskengine.analytic``, float64).

The static-arbitrage check (:func:`static_arbitrage_violations`) is model-free, on the quotes
themselves: per expiry the undiscounted call prices (puts through parity) must be
non-increasing and convex in strike; across expiries the total implied variance
``sigma^2 T`` at the same forward log-moneyness ``k = log(K/F)`` must not decrease (later
slice linearly interpolated in ``k``; no extrapolation).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from riskengine.errors import ConfigError

__all__ = [
    "Surface",
    "bs_implied_vol",
    "bs_price",
    "bs_vega",
    "check_static_arbitrage",
    "load_surface",
    "static_arbitrage_violations",
]

DAYS_PER_YEAR = 365.0
_EXPIRY_COLUMNS = {"expiry_days": 1.0 / DAYS_PER_YEAR, "expiry_years": 1.0, "expiry": 1.0}
_QUOTE_COLUMNS = ("implied_vol", "price")
MAX_IMPLIED_VOL = 5.0  # 500%: a larger quote is a vol written in percent
_OPTIONAL_COLUMNS = ("bid", "ask", "option")
_MAX_LISTED = 5  # problems quoted in an error message; the rest are counted


@dataclasses.dataclass(frozen=True)
class Surface:
    """Quotes of European options on one underlying, as float64 NumPy arrays of equal length.

    ``implied_vol`` and ``price`` are both filled (one from the other). ``spread_vol`` and
    ``spread_price`` are the bid–ask spreads in vol and price units (NaN without bid/ask).
    ``label[i]`` names quote ``i`` in messages (``"btc_surface.csv line 7"``).
    """

    spot: float
    rate: float
    dividend: float
    expiry: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    implied_vol: np.ndarray
    price: np.ndarray
    vega: np.ndarray
    spread_vol: np.ndarray
    spread_price: np.ndarray
    label: tuple[str, ...]
    source: str = "surface"
    quote: str = "implied_vol"  # which column was quoted

    def __len__(self) -> int:
        return int(self.strike.size)

    @property
    def forward(self) -> np.ndarray:
        return self.spot * np.exp((self.rate - self.dividend) * self.expiry)

    @property
    def log_moneyness(self) -> np.ndarray:
        """``k = log(K / F)`` per quote."""
        return np.log(self.strike / self.forward)

    @property
    def total_variance(self) -> np.ndarray:
        return self.implied_vol**2 * self.expiry

    @property
    def expiries(self) -> np.ndarray:
        """The distinct expiries, ascending."""
        return np.unique(self.expiry)

    @property
    def has_spread(self) -> bool:
        return bool(np.all(np.isfinite(self.spread_vol)))

    @classmethod
    def from_quotes(
        cls,
        *,
        spot: float,
        rate: float = 0.0,
        dividend: float = 0.0,
        expiry,
        strike,
        implied_vol=None,
        price=None,
        bid=None,
        ask=None,
        is_call=None,
        label=None,
        source: str = "surface",
    ) -> Surface:
        """Build and validate a surface from arrays (years, strikes, vols or prices).

        Raises :class:`ConfigError` naming every bad quote (``label`` or ``"<source> row i"``).
        """
        if (implied_vol is None) == (price is None):
            raise ConfigError(f"{source}: give exactly one of implied_vol or price")
        quote = "implied_vol" if implied_vol is not None else "price"
        values = np.atleast_1d(np.asarray(implied_vol if price is None else price, np.float64))
        expiry = np.atleast_1d(np.asarray(expiry, np.float64))
        strike = np.atleast_1d(np.asarray(strike, np.float64))
        n = values.size
        if expiry.size != n or strike.size != n:
            raise ConfigError(f"{source}: expiry, strike and {quote} must have the same length")
        labels = tuple(label) if label is not None else tuple(f"{source} row {i}" for i in range(n))
        if (bid is None) != (ask is None):
            raise ConfigError(f"{source}: give both bid and ask, or neither")
        bid = np.full(n, np.nan) if bid is None else np.asarray(bid, np.float64).reshape(n)
        ask = np.full(n, np.nan) if ask is None else np.asarray(ask, np.float64).reshape(n)
        forward = spot * np.exp((rate - dividend) * expiry)
        if is_call is None:
            with np.errstate(invalid="ignore"):
                is_call = strike >= forward
        is_call = np.asarray(is_call, bool).reshape(n)
        _check_market(spot, rate, dividend, source)

        problems: list[str] = []
        for i in range(n):
            problems += [f"{labels[i]}: {p}" for p in _row_problems(
                expiry[i], strike[i], values[i], bid[i], ask[i], quote)]
        _raise(source, problems, "bad row(s)")

        args = dict(spot=spot, strike=strike, maturity=expiry, rate=rate, dividend=dividend,
                    is_call=is_call)
        if quote == "implied_vol":
            vol = values
            price_ = bs_price(vol=vol, **args)
        else:
            price_ = values
            vol = bs_implied_vol(price=price_, **args)
            for i in np.flatnonzero(~np.isfinite(vol)):
                problems.append(
                    f"{labels[i]}: price {price_[i]:g} is outside the no-arbitrage bounds "
                    f"of a {'call' if is_call[i] else 'put'} (strike {strike[i]:g}, "
                    f"expiry {expiry[i]:g}y)"
                )
            _raise(source, problems, "bad row(s)")
        vega = bs_vega(vol=vol, **args)
        for i in np.flatnonzero(vega <= 1e-12 * spot):
            problems.append(
                f"{labels[i]}: no sensitivity to volatility (vega {vega[i]:.2g}): strike "
                f"{strike[i]:g} is too far from the money for expiry {expiry[i]:g}y"
            )
        _raise(source, problems, "bad row(s)")

        spread = ask - bid
        if quote == "implied_vol":
            spread_vol, spread_price = spread, spread * vega
        else:
            spread_vol, spread_price = spread / vega, spread
        _check_duplicates(expiry, strike, is_call, labels, source)
        return cls(
            spot=float(spot), rate=float(rate), dividend=float(dividend), expiry=expiry,
            strike=strike, is_call=is_call, implied_vol=np.asarray(vol, np.float64),
            price=np.asarray(price_, np.float64), vega=vega, spread_vol=spread_vol,
            spread_price=spread_price, label=labels, source=source, quote=quote,
        )

    def to_csv(self, path: str | Path, *, comment: str | None = None, digits: int = 12) -> None:
        """Write the surface in the CSV format of :func:`load_surface` (implied vols; bid/ask
        in vol when the surface has spreads; ``expiry_days`` when every expiry is a whole
        number of days)."""
        days = self.expiry * DAYS_PER_YEAR
        whole_days = bool(np.all(np.abs(days - np.round(days)) < 1e-9))
        lines = [f"# {line}" for line in (comment or "").splitlines()]
        header = ["expiry_days" if whole_days else "expiry_years", "strike", "implied_vol",
                  "option"]
        spread = self.has_spread
        if spread:
            header += ["bid", "ask"]
        lines.append(",".join(header))
        mid_vol = self.implied_vol
        for i in range(len(self)):
            expiry = f"{round(days[i])}" if whole_days else f"{self.expiry[i]:.12g}"
            row = [expiry, f"{self.strike[i]:.12g}", f"{mid_vol[i]:.{digits}f}",
                   "call" if self.is_call[i] else "put"]
            if spread:
                half = 0.5 * self.spread_vol[i]
                row += [f"{mid_vol[i] - half:.{digits}f}", f"{mid_vol[i] + half:.{digits}f}"]
            lines.append(",".join(row))
        Path(path).write_text("\n".join(lines) + "\n")

    def slices(self) -> list[np.ndarray]:
        """Indices of the quotes of each expiry (ascending), each sorted by strike."""
        out = []
        for t in self.expiries:
            idx = np.flatnonzero(self.expiry == t)
            out.append(idx[np.argsort(self.strike[idx], kind="stable")])
        return out


def _d1_d2(spot, strike, maturity, rate, dividend, vol):
    std = vol * np.sqrt(maturity)
    d1 = (np.log(spot / strike) + (rate - dividend) * maturity) / std + 0.5 * std
    return d1, d1 - std


def bs_price(*, spot, strike, maturity, rate, dividend, vol, is_call) -> np.ndarray:
    """Black–Scholes price in NumPy (float64; no compilation for each new surface shape)."""
    d1, d2 = _d1_d2(spot, strike, maturity, rate, dividend, vol)
    sign = np.where(is_call, 1.0, -1.0)
    return sign * (spot * np.exp(-dividend * maturity) * ndtr(sign * d1)
                   - strike * np.exp(-rate * maturity) * ndtr(sign * d2))


def bs_vega(*, spot, strike, maturity, rate, dividend, vol, is_call=None) -> np.ndarray:
    """Black–Scholes vega per 1.00 of vol, in NumPy."""
    d1, _ = _d1_d2(spot, strike, maturity, rate, dividend, vol)
    return spot * np.exp(-dividend * maturity) * np.exp(-0.5 * d1 * d1) / np.sqrt(
        2 * np.pi) * np.sqrt(maturity)


def bs_implied_vol(*, price, spot, strike, maturity, rate, dividend, is_call,
                   iterations: int = 100) -> np.ndarray:
    """Black–Scholes implied vol in NumPy (NaN outside the no-arbitrage bounds).

    Safeguarded Newton on the log of the out-of-the-money price (puts through parity) in the
    total standard deviation ``s = vol sqrt(T)``, keeping a bracket ``[0, 40]`` that always
    holds the root: the algorithm of ``riskengine.analytic.implied_vol``, in NumPy so that a
    new surface shape costs no compilation.
    """
    price, strike, maturity, is_call = np.broadcast_arrays(
        np.asarray(price, np.float64), np.asarray(strike, np.float64),
        np.asarray(maturity, np.float64), np.asarray(is_call, bool))
    df = np.exp(-rate * maturity)
    forward = spot * np.exp((rate - dividend) * maturity)
    parity = forward - strike
    call = np.where(is_call, price / df, price / df + parity)  # undiscounted call
    otm_call = strike >= forward
    otm = np.where(otm_call, call, call - parity)
    valid = (call > np.maximum(parity, 0.0)) & (call < forward) & (maturity > 0) & (otm > 0)
    sign = np.where(otm_call, 1.0, -1.0)
    log_m = np.log(forward / strike)
    log_target = np.log(np.where(valid, otm, 1.0))
    lo, hi = np.zeros_like(call), np.full_like(call, 40.0)
    s = np.clip(np.sqrt(2.0 * np.abs(log_m)), 0.1, 1.0)
    tiny = np.finfo(np.float64).tiny
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(iterations):
            d1 = log_m / s + 0.5 * s
            value = sign * (forward * ndtr(sign * d1) - strike * ndtr(sign * (d1 - s)))
            value = np.maximum(value, tiny)
            residual = np.log(value) - log_target  # Newton on the log price
            lo = np.where(residual < 0, s, lo)
            hi = np.where(residual >= 0, s, hi)
            vega = forward * np.exp(-0.5 * d1 * d1) / np.sqrt(2 * np.pi)
            newton = s - residual * value / np.maximum(vega, tiny)
            inside = (newton > lo) & (newton < hi) & np.isfinite(newton)
            s = np.where(residual == 0, s, np.where(inside, newton, 0.5 * (lo + hi)))
    return np.where(valid, s / np.sqrt(np.where(maturity > 0, maturity, 1.0)), np.nan)


def _check_market(spot, rate, dividend, source):
    for name, value in (("spot", spot), ("rate", rate), ("dividend", dividend)):
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"market.{name}: must be a finite number (got {value!r})")
    if spot <= 0:
        raise ConfigError(f"market.spot: must be > 0 (got {spot!r})")


def _row_problems(expiry, strike, value, bid, ask, quote) -> list[str]:
    problems = []
    if not math.isfinite(expiry) or expiry <= 0:
        problems.append(f"expiry must be > 0 (got {expiry:g})")
    if not math.isfinite(strike) or strike <= 0:
        problems.append(f"strike must be > 0 (got {strike:g})")
    if not math.isfinite(value) or value <= 0:
        problems.append(f"{quote} must be > 0 (got {value:g})")
    elif quote == "implied_vol" and value > MAX_IMPLIED_VOL:
        problems.append(f"implied_vol {value:g} is above {MAX_IMPLIED_VOL:g} ({100 * MAX_IMPLIED_VOL:g}%): vols are "
                        f"decimals, not percent ({value / 100:g} for {value:g}%)")
    if math.isfinite(bid) or math.isfinite(ask):
        if not (math.isfinite(bid) and math.isfinite(ask)):
            problems.append(f"bid and ask must both be numbers (got {bid:g}, {ask:g})")
        elif bid < 0 or not bid <= ask:
            problems.append(f"need 0 <= bid <= ask (got bid {bid:g}, ask {ask:g})")
        elif math.isfinite(value) and not bid <= value <= ask:
            problems.append(f"{quote} {value:g} is outside [bid, ask] = [{bid:g}, {ask:g}]")
        elif ask == bid:
            problems.append(f"bid == ask ({bid:g}): a zero spread cannot weight the fit")
    return problems


def _check_duplicates(expiry, strike, is_call, labels, source):
    seen: dict[tuple, int] = {}
    problems = []
    for i, key in enumerate(zip(expiry.tolist(), strike.tolist(), is_call.tolist(), strict=True)):
        if key in seen:
            problems.append(f"{labels[i]}: duplicate of {labels[seen[key]]} "
                            f"(expiry {key[0]:g}y, strike {key[1]:g})")
        else:
            seen[key] = i
    _raise(source, problems, "duplicate quote(s)")


def _raise(source: str, problems: list[str], what: str) -> None:
    if not problems:
        return
    shown = "; ".join(problems[:_MAX_LISTED])
    more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    raise ConfigError(f"{source}: {len(problems)} {what}: {shown}{more}")


def load_surface(
    path: str | Path, *, spot: float, rate: float = 0.0, dividend: float = 0.0
) -> Surface:
    """Read and validate a surface CSV (see the module docstring for the columns)."""
    path = Path(path)
    source = path.name
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"surface: cannot read {str(path)!r}: {err.strerror or err}") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise ConfigError(f"surface {source}: no header and no quotes")
    header_line, header = numbered[0]
    columns = [c.strip().lower() for c in next(csv.reader(io.StringIO(header)))]
    expiry_cols = [c for c in columns if c in _EXPIRY_COLUMNS]
    quote_cols = [c for c in columns if c in _QUOTE_COLUMNS]
    known = set(_EXPIRY_COLUMNS) | set(_QUOTE_COLUMNS) | set(_OPTIONAL_COLUMNS) | {"strike"}
    unknown = [c for c in columns if c not in known]
    where = f"surface {source} line {header_line}"
    if unknown:
        raise ConfigError(f"{where}: unknown column {unknown[0]!r}; expected expiry_days or "
                          "expiry_years, strike, implied_vol or price, optional bid, ask, option")
    if len(set(columns)) != len(columns):
        raise ConfigError(f"{where}: repeated column name in {columns}")
    if len(expiry_cols) != 1:
        raise ConfigError(f"{where}: need exactly one expiry column (expiry_days or "
                          f"expiry_years), got {expiry_cols or 'none'}")
    if len(quote_cols) != 1:
        raise ConfigError(f"{where}: need exactly one quote column (implied_vol or price), "
                          f"got {quote_cols or 'none'}")
    if "strike" not in columns:
        raise ConfigError(f"{where}: missing column 'strike'")
    if ("bid" in columns) != ("ask" in columns):
        raise ConfigError(f"{where}: give both bid and ask columns, or neither")

    rows: dict[str, list] = {c: [] for c in columns}
    labels, problems = [], []
    for n, line in numbered[1:]:
        fields = next(csv.reader(io.StringIO(line)))
        label = f"line {n}"
        if len(fields) != len(columns):
            problems.append(f"{label}: {len(fields)} fields, expected {len(columns)}")
            continue
        ok = True
        parsed = {}
        for name, raw in zip(columns, fields, strict=True):
            raw = raw.strip()
            if name == "option":
                if raw.lower() not in ("call", "put", ""):
                    problems.append(f"{label}: option must be call or put (got {raw!r})")
                    ok = False
                parsed[name] = raw.lower()
                continue
            if raw == "" and name in ("bid", "ask"):
                parsed[name] = math.nan
                continue
            try:
                parsed[name] = float(raw)
            except ValueError:
                problems.append(f"{label}: {name} must be a number (got {raw!r})")
                ok = False
        if ok:
            labels.append(label)
            for name in columns:
                rows[name].append(parsed[name])
    _raise(f"surface {source}", problems, "bad row(s)")
    if not labels:
        raise ConfigError(f"surface {source}: no quotes below the header")

    expiry = np.asarray(rows[expiry_cols[0]], np.float64) * _EXPIRY_COLUMNS[expiry_cols[0]]
    strike = np.asarray(rows["strike"], np.float64)
    is_call = None
    if "option" in columns:
        options = rows["option"]
        forward = spot * np.exp((rate - dividend) * expiry)
        is_call = np.asarray([o == "call" if o else bool(k >= f)
                              for o, k, f in zip(options, strike, forward, strict=True)])
    quote = quote_cols[0]
    return Surface.from_quotes(
        spot=spot, rate=rate, dividend=dividend, expiry=expiry, strike=strike,
        implied_vol=rows[quote] if quote == "implied_vol" else None,
        price=rows[quote] if quote == "price" else None,
        bid=rows.get("bid"), ask=rows.get("ask"), is_call=is_call,
        label=[f"{source} {lab}" for lab in labels], source=f"surface {source}",
    )


def static_arbitrage_violations(
    surface: Surface, *, price_tol: float = 1e-9, variance_tol: float = 1e-9
) -> list[str]:
    """Model-free static-arbitrage violations among the quotes, one string each.

    Per expiry, with ``c(K) = C(K) / (spot · DF_q)`` the undiscounted call price per unit of
    forward (puts through put–call parity): ``c`` non-increasing and convex in ``K``
    (butterfly). Across consecutive expiries: total variance ``sigma^2 T`` non-decreasing at
    each quoted ``k = log(K/F)`` inside the later slice's range (calendar). Tolerances are
    absolute, in those units.
    """
    problems: list[str] = []
    df = np.exp(-surface.rate * surface.expiry)
    forward = surface.forward
    call = bs_price(spot=surface.spot, strike=surface.strike, maturity=surface.expiry,
                    rate=surface.rate, dividend=surface.dividend, vol=surface.implied_vol,
                    is_call=True)
    c = call / (df * forward)  # undiscounted call in units of the forward
    x = surface.strike / forward
    slices = surface.slices()
    for idx in slices:
        if idx.size < 2:
            continue
        slope = np.diff(c[idx]) / np.diff(x[idx])
        for j in np.flatnonzero(slope < -1.0 - price_tol):
            a, b = idx[j], idx[j + 1]
            problems.append(
                f"call spread at expiry {surface.expiry[a]:g}y: price falls faster than the "
                f"strike rises from {surface.strike[a]:g} to {surface.strike[b]:g} "
                f"({surface.label[a]}, {surface.label[b]})"
            )
        for j in np.flatnonzero(slope > price_tol):
            a, b = idx[j], idx[j + 1]
            problems.append(
                f"butterfly/monotonicity at expiry {surface.expiry[a]:g}y: call price rises from "
                f"strike {surface.strike[a]:g} to {surface.strike[b]:g} "
                f"({surface.label[a]}, {surface.label[b]})"
            )
        for j in np.flatnonzero(np.diff(slope) < -price_tol):
            a, b, d = idx[j], idx[j + 1], idx[j + 2]
            problems.append(
                f"butterfly at expiry {surface.expiry[b]:g}y: call prices not convex in strike "
                f"around {surface.strike[b]:g} ({surface.label[a]}, {surface.label[b]}, "
                f"{surface.label[d]})"
            )
    k = surface.log_moneyness
    w = surface.total_variance
    for earlier, later in zip(slices[:-1], slices[1:], strict=True):
        k_late, w_late = k[later], w[later]
        for i in earlier:
            if not k_late[0] <= k[i] <= k_late[-1]:
                continue
            w_interp = float(np.interp(k[i], k_late, w_late))
            if w_interp < w[i] - variance_tol:
                j = later[np.argmin(np.abs(k_late - k[i]))]
                problems.append(
                    f"calendar: total variance falls from {w[i]:.6g} at expiry "
                    f"{surface.expiry[i]:g}y to {w_interp:.6g} at {surface.expiry[j]:g}y, "
                    f"k={k[i]:.4f} ({surface.label[i]}, near {surface.label[j]})"
                )
    return problems


def check_static_arbitrage(surface: Surface, **tolerances) -> None:
    """Raise :class:`ConfigError` listing the static-arbitrage violations, if any."""
    _raise(surface.source, static_arbitrage_violations(surface, **tolerances),
           "static-arbitrage violation(s)")
