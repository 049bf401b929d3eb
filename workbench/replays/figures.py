"""Plotly figures and the standalone HTML page of a replay report."""

from __future__ import annotations

import html
import json

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

MAX_PRICE_PANELS = 8
"""Price panels drawn at most: traded symbols first, then others, by name."""

_MARKERS = (("BUY", "triangle-up", "green"), ("SELL", "triangle-down", "red"))


def price_figure(prices: pd.DataFrame, fills: pd.DataFrame) -> go.Figure:
    """Price per symbol, one panel each, with fills as buy/sell triangles.

    Args:
        prices: down-sampled ticks, columns ``symbol, ts, price``.
        fills: the result's fills frame.
    """
    traded = sorted(set(fills["symbol"]))
    others = sorted(set(prices["symbol"]) - set(traded))
    symbols = (traded + others)[:MAX_PRICE_PANELS]
    rows = max(len(symbols), 1)
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04 if rows > 1 else 0.0,
        subplot_titles=symbols or None,
    )
    for row, symbol in enumerate(symbols, start=1):
        p = prices[prices["symbol"] == symbol]
        fig.add_trace(
            go.Scatter(x=p["ts"], y=p["price"], mode="lines", name=symbol, line={"width": 1}),
            row=row,
            col=1,
        )
        f = fills[fills["symbol"] == symbol]
        for side, marker, color in _MARKERS:
            s = f[f["side"] == side]
            if s.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=s["ts"],
                    y=s["price"],
                    mode="markers",
                    name=f"{symbol} {side.lower()}",
                    marker={"symbol": marker, "color": color, "size": 10},
                    customdata=list(zip(s["fill_id"], s["qty"], strict=True)),
                    hovertemplate="%{customdata[0]}<br>qty %{customdata[1]} @ %{y}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    fig.update_layout(title="Price and fills", height=max(350, 260 * rows), template="plotly_white")
    return fig


def equity_figure(equity: pd.DataFrame) -> go.Figure:
    """Equity (top) and drawdown (bottom) on a shared time axis."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.65, 0.35],
        vertical_spacing=0.06,
        subplot_titles=("Equity", "Drawdown"),
    )
    fig.add_trace(
        go.Scatter(x=equity["ts"], y=equity["equity"], mode="lines", name="equity"), row=1, col=1
    )
    fig.add_trace(
        go.Scatter(
            x=equity["ts"],
            y=equity["drawdown"],
            mode="lines",
            name="drawdown",
            fill="tozeroy",
            line={"color": "firebrick"},
        ),
        row=2,
        col=1,
    )
    fig.update_layout(title="Equity and drawdown", height=550, template="plotly_white")
    return fig


def _table(rows: dict, caption: str) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table class='wb-summary'><caption>{html.escape(caption)}</caption>{cells}</table>"


def _cell(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return "null" if value is None else str(value)


def summary_table(summary: dict, caption: str = "Replay summary") -> str:
    """An HTML key/value table of a summary (or run) dict."""
    return _table(summary, caption)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; }
table.wb-summary { border-collapse: collapse; margin: 0 2em 1em 0; display: inline-table;
  vertical-align: top; font-size: 0.9em; }
table.wb-summary caption { font-weight: bold; text-align: left; padding-bottom: 0.3em; }
table.wb-summary th, table.wb-summary td { border: 1px solid #ddd; padding: 2px 8px;
  text-align: left; }
"""


def report_html(
    summary: dict, run: dict, positions: pd.DataFrame, figures: dict[str, go.Figure]
) -> str:
    """A standalone page: summary, run facts, positions and every figure.

    plotly.js is embedded once, inline, with the first figure, so the file
    opens offline; div ids are fixed so equal inputs give equal pages.
    """
    parts = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'><title>Replay report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Replay report</h1>",
        summary_table(summary),
        summary_table(run, "Run"),
        positions.to_html(index=False, classes="wb-summary", border=0),
    ]
    for k, (name, fig) in enumerate(figures.items()):
        parts.append(
            pio.to_html(
                fig,
                full_html=False,
                include_plotlyjs=(k == 0),
                div_id=f"wb-{name}",
                default_height=f"{fig.layout.height or 500}px",
            )
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)
