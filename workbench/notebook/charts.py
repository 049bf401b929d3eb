"""The dashboard's price charts: last ticks, condition levels, signals and fills per symbol."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

LEVEL_STYLES = {  # level key in `Workbench.levels()` -> (label, colour, dash)
    "trigger": ("trigger", "#6e7781", "dot"),
    "entry_level": ("entry", "#0969da", "dash"),
    "tp_level": ("take-profit", "#1a7f37", "dash"),
    "sl_level": ("stop-loss", "#cf222e", "dash"),
}


class PriceChart:
    """One symbol: last ticks, condition levels, buy/sell signals and fills.

    Levels are line traces (one per kind, a segment per condition) rather than
    layout shapes: trailing conditions move them on most redraws, and
    replacing a trace's arrays costs far less than rebuilding shapes.
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        levels = [
            go.Scatter(
                name=label,
                mode="lines",
                line={"color": colour, "width": 1, "dash": dash},
                hovertemplate="%{text}<extra></extra>",
                connectgaps=False,
            )
            for label, colour, dash in LEVEL_STYLES.values()
        ]
        self.fig = go.FigureWidget(
            data=[
                go.Scatter(name="price", mode="lines", line={"width": 1.2, "color": "#24292f"}),
                *levels,
                _markers("buy signal", "triangle-up", "#1a7f37"),
                _markers("sell signal", "triangle-down", "#cf222e"),
                _markers("fill", "circle-open", "#8250df", size=12),
            ],
            layout=go.Layout(
                title={"text": symbol, "font": {"size": 14}, "x": 0.01, "y": 0.97},
                height=320,
                autosize=True,
                margin={"l": 50, "r": 20, "t": 56, "b": 30},
                xaxis={"type": "date", "title": None},
                # Ticks as plain decimals, as many as their spacing needs: a
                # fixed ".2f" showed every tick of a sub-cent price as 0.00.
                yaxis={"title": None, "exponentformat": "none"},
                legend={
                    "orientation": "h",
                    "x": 1,
                    "xanchor": "right",
                    "y": 1.0,
                    "yanchor": "bottom",
                },  # above the plot area, right of the title
                uirevision=symbol,  # keep the user's zoom across redraws
                template="plotly_white",
            ),
        )
        self.fig.add_class("wb-price-chart")
        self.fig.add_class(f"wb-price-chart-{symbol}")

    def update(
        self,
        ticks: list[tuple],
        signals: list[tuple],
        fills: list[tuple],
        levels: list[dict[str, Any]],
        position: float,
    ) -> None:
        """Redraw from tap rows (``taps.TICK_COLUMNS`` etc.) in one batch."""
        ts = _dates([t[0] for t in ticks])
        price = np.fromiter((t[2] for t in ticks), np.float64, len(ticks))
        start_ns = ticks[0][0] if ticks else 0
        sig = [s for s in signals if s[0] is not None and s[0] >= start_ns]
        fl = [f for f in fills if f[0] is not None and f[0] >= start_ns]
        span = [str(ts[0]), str(ts[-1])] if len(ts) else []
        last = f" last {price_text(price[-1])}" if len(price) else ""
        data = self.fig.data
        with self.fig.batch_update():
            data[0].x, data[0].y = ts, price
            for trace, key in zip(data[1:5], LEVEL_STYLES, strict=True):
                trace.x, trace.y, trace.text = _level_segments(levels, key, span)
            for trace, side in ((data[5], "BUY"), (data[6], "SELL")):
                rows = [s for s in sig if s[4] == side]
                trace.x = _dates([s[0] for s in rows])
                trace.y = [s[6] for s in rows]
                trace.text = [f"{s[1]} {s[7]} ({s[8]})" for s in rows]
            data[7].x = _dates([f[0] for f in fl])
            data[7].y = [f[6] for f in fl]
            data[7].text = [f"{f[1]} {f[4]} {f[5]:g} @ {price_text(f[6])}" for f in fl]
            self.fig.layout.title.text = f"<b>{self.symbol}</b>{last} · position {position:+g}"


def price_text(price: float) -> str:
    """``price`` to 6 significant digits, at least 2 decimals: 100.15, 43210.55, 0.00001244."""
    places = 2
    if math.isfinite(price) and price != 0:
        places = max(2, 5 - math.floor(math.log10(abs(price))))
        if places > 12:
            return f"{price:.6g}"
    text = f"{price:.{places}f}"
    if "." not in text:  # inf, nan
        return text
    whole, frac = text.split(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def _dates(ns: list[int]) -> np.ndarray:
    """Epoch nanoseconds as datetimes (UTC) to the microsecond, which plotly draws as dates."""
    return np.array(ns, dtype="datetime64[ns]").astype("datetime64[us]")


def _markers(name: str, symbol: str, colour: str, size: int = 10) -> go.Scatter:
    return go.Scatter(
        name=name,
        mode="markers",
        marker={"symbol": symbol, "size": size, "color": colour, "line": {"width": 1.5}},
        hovertemplate="%{text}<extra></extra>",
    )


def _level_segments(
    levels: list[dict[str, Any]], key: str, span: list[str]
) -> tuple[list, list, list]:
    """x, y and hover text of one horizontal segment per condition across ``span``."""
    xs: list[str | None] = []
    ys: list[float | None] = []
    texts: list[str] = []
    label = LEVEL_STYLES[key][0]
    for d in levels:
        y = d.get(key)
        if y is None or not span:
            continue
        text = f"{d['id']} {label} {price_text(y)} ({d.get('state', '')})"
        xs += [span[0], span[1], None]
        ys += [y, y, None]
        texts += [text, text, ""]
    return xs, ys, texts
