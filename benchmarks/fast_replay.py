"""Fast in-process replay throughput beside a plain Python loop of the same logic.

1M synthetic ticks, SupportResistance over 10 conditions. The baseline is what
a quant would write by hand: one loop over ticks, each condition's state
machine inline, fills appended to a list. Both are measured in the same run,
and both must give the same number of fills.

    python benchmarks/fast_replay.py [--ticks 1000000]
"""

from __future__ import annotations

import argparse
import time

from workbench.config import build_config
from workbench.marketdata import synth_ticks
from workbench.replays.session import run_fast

WAITING, TRIGGERED, ENTERED, DONE = range(4)


def conditions(start: float = 100.0) -> list[dict]:
    """10 rearming conditions spread around the start price."""
    out = []
    for i in range(5):
        off = 0.05 + 0.05 * i
        common = {
            "symbol": "SYN",
            "turning_point": 0.03,
            "take_profit": 0.12,
            "stop_loss": 0.1,
            "following": True,
            "rearm": True,
        }
        out.append({"id": f"b{i}", "side": "BUY", "trigger_price": round(start - off, 2), **common})
        out.append(
            {"id": f"s{i}", "side": "SELL", "trigger_price": round(start + off, 2), **common}
        )
    return out


def plain_loop(prices: list[float], conds: list[dict]) -> int:
    """The same rules, written the obvious way: per tick, per condition."""
    st = []
    for c in conds:
        sign = 1 if c["side"] == "BUY" else -1
        st.append(
            [
                WAITING,
                c["trigger_price"],
                sign,
                c["turning_point"],
                c["take_profit"],
                c["stop_loss"],
                c["trigger_price"],
                0.0,
                0.0,
                0.0,
            ]
        )
    fills = []
    for p in prices:
        for s in st:
            state, trig, sign, tp, take, stop, orig = s[0], s[1], s[2], s[3], s[4], s[5], s[6]
            if state == WAITING:
                if (p - trig) * sign <= 0:
                    s[0] = TRIGGERED
            elif state == TRIGGERED:
                if (p - trig) * sign < 0:  # trailing: a new extreme beyond the trigger
                    s[1] = p
                elif (p - (trig + sign * tp)) * sign >= 0:
                    s[0], s[7] = ENTERED, p
                    s[8], s[9] = p + sign * take, p - sign * stop
                    fills.append((p, sign))
            elif state == ENTERED and ((p - s[8]) * sign >= 0 or (p - s[9]) * sign <= 0):
                fills.append((p, -sign))
                s[0], s[1] = WAITING, orig
    return len(fills)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Measure and print; returns the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ticks", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    table = synth_ticks("SYN", args.ticks, seed=11)
    conds = conditions()
    cfg = build_config(
        {
            "gateway": {"feed": "replay"},
            "strategies": [{"id": "sr", "params": {"conditions": conds}}],
        }
    )
    t0 = time.perf_counter()
    fills, _, signals = run_fast(cfg, table)
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain_fills = plain_loop(table.price.tolist(), conds)
    plain_s = time.perf_counter() - t0
    fast_rate, plain_rate = args.ticks / fast_s, args.ticks / plain_s
    print(f"fast replay ({args.ticks:,} ticks, 10 conditions)")
    print(f"  plain python loop   {plain_rate:12,.0f} ticks/s  {plain_fills} fills  (baseline)")
    print(
        f"  workbench fast      {fast_rate:12,.0f} ticks/s  {len(fills)} fills, {signals} signals"
        f"  = {fast_rate / plain_rate:.2f}x baseline   target >= 0.7x"
    )
    if plain_fills != len(fills):
        print("  WARNING: fill counts differ; the baseline does not implement the same rules")
    return {
        "fast_ticks_per_s": fast_rate,
        "plain_ticks_per_s": plain_rate,
        "ratio": fast_rate / plain_rate,
    }


if __name__ == "__main__":
    main()
