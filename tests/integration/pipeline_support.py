"""A hand-made tick file whose correct fills are worked out by hand, not by the code.

Conditions (slippage 0.01):
  b  BUY  trigger 100.0, turning 0.5, take-profit 1.0, stop-loss 1.0, qty 2
  s  SELL trigger 110.0, turning 0.5, take-profit 1.0, stop-loss 0.5, qty 1

  row  price   what happens
  1    101.0   -
  2    100.0   b triggers (<= 100.0)
  3    100.2   - (needs >= 100.5)
  4    100.5   b enters: BUY 2, filled at 100.51
  5    101.0   -
  6    101.5   b takes profit (>= 100.5 + 1.0): SELL 2, filled at 101.49; b is done
  ...  105.0   PAD neutral ticks
  +1   110.0   s triggers (>= 110.0)
  +2   109.6   - (needs <= 109.5)
  +3   109.5   s enters: SELL 1, filled at 109.49
  +4   110.0   s stops out (>= 109.5 + 0.5): BUY 1, filled at 110.01; s is done
  +5    99.0   - (b is done)

Realised PnL: (101.49 - 100.51) * 2 + (109.49 - 110.01) * 1 = 1.44; final position 0.
"""

from __future__ import annotations

from pathlib import Path

T0 = 1_700_000_000_000_000_000
SYMBOL = "XYZ"
PAD = 3_000

COND_B = {
    "id": "b",
    "symbol": SYMBOL,
    "side": "BUY",
    "trigger_price": 100.0,
    "turning_point": 0.5,
    "take_profit": 1.0,
    "stop_loss": 1.0,
    "qty": 2.0,
}
COND_S = {
    "id": "s",
    "symbol": SYMBOL,
    "side": "SELL",
    "trigger_price": 110.0,
    "turning_point": 0.5,
    "take_profit": 1.0,
    "stop_loss": 0.5,
    "qty": 1.0,
}


def prices() -> list[float]:
    """The price path of the file, row by row."""
    return (
        [101.0, 100.0, 100.2, 100.5, 101.0, 101.5]
        + [105.0] * PAD
        + [
            110.0,
            109.6,
            109.5,
            110.0,
            99.0,
        ]
    )


def ts(row: int) -> int:
    """Timestamp of 1-based ``row``: one tick per millisecond."""
    return T0 + (row - 1) * 1_000_000


def write_ticks(path: Path) -> Path:
    """Write the file in the workbench CSV format."""
    lines = ["ts_ns,symbol,price,size"]
    lines += [f"{ts(i + 1)},{SYMBOL},{p!r},1.0" for i, p in enumerate(prices())]
    path.write_text("\n".join(lines) + "\n")
    return path


def expected_fills(b_strategy: str, s_strategy: str) -> list[tuple]:
    """(fill id, side, qty, price, ts_ns) per fill, worked out by hand above."""
    r = 6 + PAD
    return [
        (f"F-{b_strategy}:1", "BUY", 2.0, 100.51, ts(4)),
        (f"F-{b_strategy}:2", "SELL", 2.0, 101.49, ts(6)),
        (f"F-{s_strategy}:{1 if s_strategy != b_strategy else 3}", "SELL", 1.0, 109.49, ts(r + 3)),
        (f"F-{s_strategy}:{2 if s_strategy != b_strategy else 4}", "BUY", 1.0, 110.01, ts(r + 4)),
    ]


EXPECTED_PNL = 1.44
