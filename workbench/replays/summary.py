"""The deterministic replay summary (``summary.json``): counts, PnL, fees, drawdown, Sharpe."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.replays.equity import EquityCurve
from workbench.replays.stats import is_noise, rounded, unbounded

SHARPE_BASIS = (
    "mean / sample stdev (ddof=1) of per-trade PnL after fees over the FIFO round trips (an "
    "entry order and an exit order; each fill's fee shared by quantity), not annualised; "
    "null with fewer than 2 trades; a stdev within 1e-9 x the largest trade notional "
    "(entry price x qty) is float "
    "noise on equal trades, so zero: then +inf (-inf) for a positive (negative) mean, "
    'written as "+inf" ("-inf") in JSON, and null for a zero mean'
)


def sharpe(pnl: np.ndarray, notional: np.ndarray | None = None) -> float | None:
    """See `SHARPE_BASIS`. Float noise is judged against the trades' ``notional`` (entry price x
    qty: a PnL's noise comes from its prices), or without it against the largest ``|pnl|``."""
    if len(pnl) < 2:
        return None
    mean, sd = float(np.mean(pnl)), float(np.std(pnl, ddof=1))
    scale = float(np.max(np.abs(notional if notional is not None else pnl)))
    return unbounded(mean, scale) if is_noise(sd, scale) else mean / sd


def summarise(
    *,
    ticks: int,
    symbols: int,
    signals: int,
    orders: pd.DataFrame,
    fills: pd.DataFrame,
    trades: pd.DataFrame,
    positions: pd.DataFrame,
    curve: EquityCurve,
    fills_sha256: str,
    capital: float,
) -> dict:
    """The deterministic summary: counts, PnL, fees, drawdown, Sharpe, positions, fills hash.

    ``net_pnl`` is before fees (realized + unrealized at the last prices);
    ``net_pnl_after_fees`` subtracts every fill's fee; ``return_on_capital``
    is that over ``capital`` (the config's ``report.capital``). ``trades`` counts
    round trips (`workbench.replays.trades`); ``wins``, ``losses``,
    ``win_rate`` and ``sharpe`` take each one's PnL after its share of fees.
    """
    pnl = trades["pnl_after_fees"].to_numpy()  # wins, losses and Sharpe: as the account sees them
    wins, losses = int((pnl > 0).sum()), int((pnl < 0).sum())
    realized = float(positions["realized_pnl"].sum())
    unrealized = float(positions["unrealized_pnl"].sum())
    fees = float(fills["fee"].sum()) if len(fills) else 0.0
    return {
        "ticks": int(ticks),
        "symbols": int(symbols),
        "signals": int(signals),
        "orders": len(orders),
        "fills": len(fills),
        "rejected": int((orders["status"] == "REJECTED").sum()),
        "trades": len(trades),
        "wins": wins,
        "losses": losses,
        "win_rate": rounded(wins / len(trades) if len(trades) else 0.0),
        "net_pnl": rounded(realized + unrealized),
        "realized_pnl": rounded(realized),
        "unrealized_pnl": rounded(unrealized),
        "fees": rounded(fees),
        "net_pnl_after_fees": rounded(realized + unrealized - fees),
        "capital": rounded(capital),
        "return_on_capital": rounded((realized + unrealized - fees) / capital),
        "max_drawdown": rounded(float(curve.drawdown.min()) if len(curve.drawdown) else 0.0),
        "sharpe": rounded(sharpe(pnl, (trades["entry_price"] * trades["qty"]).to_numpy())),
        "sharpe_basis": SHARPE_BASIS,
        "final_positions": {
            str(s): rounded(q) for s, q in zip(positions["symbol"], positions["qty"], strict=True)
        },
        "fills_sha256": fills_sha256,
    }
