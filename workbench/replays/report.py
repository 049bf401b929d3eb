"""`ReplayResult`: what a replay produced, as frames, figures and files.

`build_result` turns a replay's fills, journaled orders and ticks into a
`ReplayResult`; `ReplayResult.save` writes it next to the executed notebook.
Everything but ``run`` depends only on those inputs, so two replays of the
same data and config give byte-identical ``summary.json`` and equal
``fills_sha256``: the proof of parity between replay modes. How the numbers
are computed (average cost for positions, FIFO for trades) is in
`workbench.replays.stats`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.domain.model import Fill
from workbench.marketdata.table import TickTable
from workbench.replays import equity as _equity
from workbench.replays import figures as _figures
from workbench.replays import stats

if TYPE_CHECKING:
    from workbench.config import WorkbenchConfig
from workbench.replays.performance import performance as _performance
from workbench.replays.summary import summarise
from workbench.replays.trades import fifo_trades

DEFAULT_CAPITAL = 10_000.0
"""The capital base when none is given; the default of ``report.capital`` in the config."""


def fills_hash(fills: list[Fill]) -> str:
    """SHA-256 hex of the fills in a canonical text, independent of input order.

    The fills are sorted by ``(ts_ns, id)``; each becomes the line
    ``id,order_id,signal_id,symbol,side,qty!r,price!r,ts_ns`` ended by a
    newline, with ``qty`` and ``price`` as Python floats (so ``1`` and ``1.0``
    agree) and ``side`` as ``BUY``/``SELL``; a fill with a fee appends
    ``,fee!r`` (so hashes of fee-free fills are those of before fees existed),
    and one with a fee out of the asset or in a third one ``,fee_qty!r,fee_asset``.
    No fills hash the empty text.
    """
    digest = hashlib.sha256()
    side_text = stats.side_text
    for f in sorted(fills, key=lambda f: (f.ts_ns, f.id)):
        line = (
            f"{f.id},{f.order_id},{f.signal_id},{f.symbol},{side_text(f.side)},"
            f"{float(f.qty)!r},{float(f.price)!r},{int(f.ts_ns)}"
            + (f",{float(f.fee)!r}" if f.fee else "")
            + (f",{float(f.fee_qty)!r},{f.fee_asset}" if f.fee_qty or f.fee_asset else "")
            + "\n"
        )
        digest.update(line.encode())
    return digest.hexdigest()


def _empty_prices() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series([], dtype=str),
            "ts": stats.utc([]),
            "price": pd.Series([], dtype=np.float64),
        }
    )


@dataclass(eq=False)
class ReplayResult:
    """Frames, summary and run facts of one replay.

    Attributes:
        fills: one row per fill, sorted by ``(ts_ns, fill_id)``.
        orders: journaled orders, sorted by ``(ts_ns, order_id)``.
        trades: FIFO round trips, in the order they closed.
        positions: final position per traded symbol (average cost).
        equity: ``ts, equity, drawdown``, down-sampled (see `build_result`).
        summary: deterministic statistics in price units; what ``summary.json`` holds.
        performance: return statistics on the capital base (Sharpe, Sortino,
            Calmar, drawdown %, exposure, turnover, with their basis); what
            ``performance.json`` holds. See `workbench.replays.performance`.
        run: non-deterministic facts (mode, timings, paths) as passed in.
        price_samples: ``symbol, ts, price``, down-sampled ticks for the
            price figure; not saved.
        config: the config that ran, when `replay` built the result.
    """

    fills: pd.DataFrame
    orders: pd.DataFrame
    trades: pd.DataFrame
    positions: pd.DataFrame
    equity: pd.DataFrame
    summary: dict
    run: dict
    price_samples: pd.DataFrame = field(default_factory=_empty_prices, repr=False)
    config: WorkbenchConfig | None = field(default=None, repr=False)
    performance: dict = field(default_factory=dict)

    def figures(self) -> dict[str, go.Figure]:
        """``"price"``: prices with fill markers; ``"equity"``: equity over drawdown."""
        return {
            "price": _figures.price_figure(self.price_samples, self.fills),
            "equity": _figures.equity_figure(self.equity),
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write the result into ``out_dir`` (created if missing).

        Returns:
            File name -> path for ``fills.parquet``, ``orders.parquet``,
            ``trades.parquet``, ``positions.parquet``, ``equity.parquet``,
            ``summary.json``, ``performance.json``, ``fills.sha256``, ``run.json`` and
            ``report.html`` (standalone, plotly.js inline).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for name in ("fills", "orders", "trades", "positions", "equity"):
            path = paths[f"{name}.parquet"] = out / f"{name}.parquet"
            getattr(self, name).to_parquet(path, index=False)
        texts = {
            "summary.json": _json(self.summary),
            "performance.json": _json(self.performance),
            "fills.sha256": f"{self.summary['fills_sha256']}\n",
            "run.json": _json(self.run),
            "report.html": _figures.report_html(
                self.summary, self.run, self.positions, self.figures()
            ),
        }
        for name, text in texts.items():
            path = paths[name] = out / name
            path.write_text(text, encoding="utf-8")
        return paths

    def _repr_html_(self) -> str:
        return _figures.summary_table(self.summary)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"ReplayResult(ticks={s.get('ticks')}, fills={s.get('fills')}, "
            f"trades={s.get('trades')}, net_pnl={s.get('net_pnl')}, "
            f"max_drawdown={s.get('max_drawdown')}, fills_sha256={s.get('fills_sha256')})"
        )


def _json(obj: dict) -> str:
    # default=str: run facts may hold Paths or datetimes; the summary never does.
    # Strict JSON: an infinite ratio is "+inf"/"-inf" (`stats.json_ready`).
    text = json.dumps(stats.json_ready(obj), sort_keys=True, indent=2, default=str, allow_nan=False)
    return text + "\n"


def build_result(
    fills: list[Fill],
    orders: list[dict],
    ticks: TickTable,
    *,
    signals: int,
    run: dict | None = None,
    max_points: int = 5_000,
    capital: float = DEFAULT_CAPITAL,
) -> ReplayResult:
    """Build the report of one replay.

    Args:
        fills: every fill, in any order.
        orders: order dicts as `Journal.orders` returns them.
        ticks: the ticks replayed.
        signals: how many signals the strategies emitted.
        run: non-deterministic facts to keep beside the result.
        max_points: cap on stored equity rows and on plotted prices per
            symbol. Equity is computed at every distinct tick timestamp; the
            stored rows always include the first, the last, the max-drawdown
            trough (and its peak) and every fill timestamp, then per-bucket
            extremes up to the cap.
        capital: the capital base of `ReplayResult.performance`.

    Raises:
        ValueError: ``max_points`` is below 4, or ``capital`` is not positive.
    """
    if max_points < 4:
        raise ValueError(f"max_points must be >= 4, got {max_points}")
    ordered = sorted(fills, key=stats.booking_order)
    fills_df = stats.fills_frame(ordered)
    orders_df = stats.orders_frame(orders)
    tick_groups = stats.SymbolTicks.from_table(ticks)
    portfolio, history = stats.replay_books(ordered)
    positions = stats.positions_frame(portfolio, history, tick_groups)
    trades = fifo_trades(fills_df)
    curve = _equity.equity_curve(tick_groups, history)
    keep = _equity.equity_sample(curve, fills_df["ts_ns"].to_numpy(), max_points)
    equity = pd.DataFrame(
        {
            "ts": stats.utc(curve.ts_ns[keep]),
            "equity": curve.equity[keep],
            "drawdown": curve.drawdown[keep],
        }
    )
    summary = summarise(
        ticks=len(ticks),
        symbols=len(tick_groups.symbols),
        signals=signals,
        orders=orders_df,
        fills=fills_df,
        trades=trades,
        positions=positions,
        curve=curve,
        fills_sha256=fills_hash(ordered),
        capital=capital,
    )
    return ReplayResult(
        fills=fills_df,
        orders=orders_df,
        trades=trades,
        positions=positions,
        equity=equity,
        summary=summary,
        run=dict(run or {}),
        price_samples=_price_samples(tick_groups, fills_df, max_points),
        performance=_performance(curve, fills_df, capital),
    )


def _price_samples(ticks: stats.SymbolTicks, fills: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Down-sampled ticks of the symbols the price figure draws."""
    traded = sorted(set(fills["symbol"].tolist()) & set(ticks.symbols))
    others = [s for s in ticks.symbols if s not in traded]
    frames = []
    for symbol in (traded + others)[: _figures.MAX_PRICE_PANELS]:
        ts, price = ticks.group(symbol)
        keep = _equity.extrema_sample(price, budget)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": pd.Series([symbol] * len(keep), dtype=str),
                    "ts": stats.utc(ts[keep]),
                    "price": price[keep],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else _empty_prices()
