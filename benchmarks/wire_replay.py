"""Wire replay throughput: gateway -> strategy -> executor over ipc, beside raw pyzmq.

Replays a synthetic tick file (1M ticks by default) through the three real
runner processes, with a `SupportResistance` strategy of ten conditions placed
around the start price so that they trigger, enter, exit and re-arm all along
the run. Throughput is ticks / (gateway's first publish -> executor's
``replay_completed``), both taken from the runners' JSON logs. The signal-heavy
replay (spread 1) runs again with the simulator's latency, fees and slippage
on, and both run as a fast (in-process) replay too, all in the same run.

Baselines, measured in the same run on the same transport (ipc): one process
publishing the same ticks with plain pyzmq + msgpack, one subscriber counting
them until an end marker (HWM 0, nothing dropped): once as one message per
tick, once as columnar messages of ``--batch-size`` ticks (as the gateway
sends them).

    .venv/bin/python benchmarks/wire_replay.py [--ticks N] [--batch-size N]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    OUT_DIR,
    BenchError,
    Figure,
    Processes,
    emit,
    ipc_bus,
    iso_to_ns,
    machine,
    print_figures,
    result_of,
    script_main,
    work_dir,
    write_config,
)

BENCH = "wire_replay"
SYMBOL = "ABC"
START_PRICE = 100.0
DEFAULT_TICKS = 1_000_000
DEFAULT_SEED = 42
DEFAULT_BATCH = 1_000
DEFAULT_SPREADS = (2.0, 1.0)
REALISTIC = {"latency_ms": 5.0, "fee_bps": 2.0, "fee_per_order": 0.01, "slippage": 0.01}
"""The simulator's realism switched on for the extra runs (spread 1: signal-heavy)."""
FLOOR_TICKS_PER_S = 400_000
END_TOPIC = b"end/"
TICK_TOPIC = f"tick/{SYMBOL}/".encode()


# -- data and config ----------------------------------------------------------------


@dataclass(slots=True)
class Options:
    """What to run; the defaults are what ``make bench`` runs."""

    ticks: int = DEFAULT_TICKS
    batch_size: int = DEFAULT_BATCH
    seed: int = DEFAULT_SEED
    window_batches: int = 32
    spreads: tuple[float, ...] = DEFAULT_SPREADS
    timeout_s: float = 300.0
    regen: bool = False
    keep: bool = False
    realistic: bool = True
    """Also replay spread 1 (wire and fast) with `REALISTIC` simulator params."""


def tick_file(ticks: int, seed: int, regen: bool = False) -> Path:
    """The synthetic Parquet file, generated once and cached under ``benchmarks/out``.

    The cache is keyed by size and seed only; ``regen`` rebuilds it (after the
    generator changed, say).
    """
    from workbench.marketdata.synth import synth_ticks
    from workbench.marketdata.writers import write_ticks

    path = OUT_DIR / f"synth-{SYMBOL}-{ticks}-s{seed}.parquet"
    if regen or not path.is_file():
        started = time.perf_counter()
        table = synth_ticks(SYMBOL, ticks, seed, start_price=START_PRICE)
        tmp = path.with_name(path.name + ".tmp.parquet")
        write_ticks(table, tmp)
        tmp.replace(path)
        print(f"# generated {path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def conditions(spread: float = 1.0, start_price: float = START_PRICE) -> list[dict[str, Any]]:
    """Five support and five resistance levels, 5..25 cents (x ``spread``) around the start.

    Rebound 3 cents, take-profit 15, stop-loss 10 (all x ``spread``). On the
    default synthetic walk (mean-reverting around the start price) spread 1
    gives about 7 signals per 1,000 ticks; spread 2 about a fifth of that.
    """

    def cents(x: float) -> float:
        return round(x * spread, 2)

    out = []
    for k in range(1, 6):
        for side, sign in (("BUY", -1), ("SELL", 1)):
            out.append(
                {
                    "id": f"{side.lower()}-{k}",
                    "symbol": SYMBOL,
                    "side": side,
                    "trigger_price": round(start_price + sign * cents(0.05 * k), 2),
                    "turning_point": cents(0.03),
                    "take_profit": cents(0.15),
                    "stop_loss": cents(0.10),
                    "qty": 1.0,
                    "following": True,
                    "rearm": True,
                }
            )
    return out


def replay_config(
    folder: Path,
    data: Path,
    batch_size: int,
    window_batches: int,
    spread: float = 1.0,
    broker: dict[str, Any] | None = None,
) -> Path:
    """A replay config on ipc addresses inside ``folder``."""
    return write_config(
        folder,
        {
            "run_id": "bench-wire",
            "bus": ipc_bus(folder),
            "gateway": {
                "feed": "replay",
                "replay": {
                    "path": str(data),
                    "speed": 0.0,
                    "batch_size": batch_size,
                    "window_batches": window_batches,
                },
            },
            "strategies": [{"id": "sr-1", "params": {"conditions": conditions(spread)}}],
            "executor": {"broker": {"params": dict(broker or {})}},
            "runtime": {"run_dir": str(folder / "runs")},
        },
    )


# -- the product ----------------------------------------------------------------------


def run_wire(
    data: Path, o: Options, spread: float, broker: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Replay ``data`` through the three runners; figures from their logs."""
    with work_dir("wire", o.keep) as folder, Processes(folder) as procs:
        config = replay_config(folder, data, o.batch_size, o.window_batches, spread, broker)
        started_ns = time.time_ns()
        executor = procs.start_runner("executor", config)
        strategy = procs.start_runner("strategy", config)
        gateway = procs.start_runner("gateway", config)
        procs.wait([executor, strategy, gateway], o.timeout_s)
        gw_eos = _need(gateway.find("end_of_stream_sent"), gateway.name, "end_of_stream_sent")
        done = _need(executor.find("replay_completed"), executor.name, "replay_completed")
        st_eos = _need(strategy.find("end_of_stream_forwarded"), strategy.name, "eos forwarded")
        gw_stop = gateway.find("runner_stopped") or {}
    eos_ns = iso_to_ns(gw_eos["timestamp"])
    first_ns = eos_ns - round(gw_eos["elapsed_s"] * 1e9)
    done_ns = iso_to_ns(done["timestamp"])
    ticks = int(gw_eos["ticks"])
    return {
        "ticks": ticks,
        "strategy_ticks": int(st_eos["ticks"]),
        "elapsed_s": (done_ns - first_ns) / 1e9,
        "wall_s": (done_ns - started_ns) / 1e9,
        "publish_ticks_per_s": float(gw_eos["ticks_per_s"]),
        "signals": int(done["signals"]),
        "orders": int(done["orders"]),
        "fills": int(done["fills"]),
        "realized_pnl": float(done["realized_pnl"]),
        "credit_waits": int(gw_stop.get("counters", {}).get("credit_waits", 0)),
    }


def run_fast(data: Path, o: Options, spread: float, broker: dict[str, Any] | None = None):
    """The same replay in one process (`workbench.replays.session.run_fast`), load excluded."""
    from workbench.config import load_config
    from workbench.replays.session import load_replay_ticks, run_fast

    with work_dir("fast", o.keep) as folder:
        cfg = load_config(
            replay_config(folder, data, o.batch_size, o.window_batches, spread, broker)
        )
        table = load_replay_ticks(cfg)
        started = time.perf_counter()
        fills, _, signals = run_fast(cfg, table)
        elapsed = time.perf_counter() - started
    return {
        "ticks": len(table),
        "elapsed_s": elapsed,
        "signals": signals,
        "fills": len(fills),
        "fees": sum(f.fee for f in fills),
    }


def _need(event: dict[str, Any] | None, who: str, what: str) -> dict[str, Any]:
    if event is None:
        raise BenchError(f"{who} did not log {what}")
    return event


# -- the raw baseline (runs in child processes) -------------------------------------------


def raw_publish(address: str, path: str, batch_size: int) -> dict[str, Any]:
    """Publish every tick of ``path`` with plain pyzmq + msgpack, then an end marker.

    ``batch_size`` 1 sends ``[seq, ts_ns, price, size]`` per tick; more sends
    columnar ``[symbol, first_seq, [ts...], [price...], [size...]]`` messages.
    Waits (XPUB) until a subscriber has subscribed before the first tick.
    """
    import msgpack
    import zmq

    from workbench.marketdata.loaders import load_ticks

    table = load_ticks(path)
    # Python lists, as the gateway sends them (the table holds numpy columns).
    ts, price, size = table.ts_ns.tolist(), table.price.tolist(), table.size.tolist()
    n = len(ts)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.LINGER, 30_000)
    sock.bind(address)
    emit({"event": "ready"})
    if not sock.poll(30_000):
        raise TimeoutError("no subscriber within 30 s")
    sock.recv()  # the subscription
    send = sock.send_multipart
    packb = msgpack.packb
    first_ns = time.time_ns()
    if batch_size == 1:
        for i in range(n):
            send([TICK_TOPIC, packb([i + 1, ts[i], price[i], size[i]])])
    else:
        for i in range(0, n, batch_size):
            j = min(n, i + batch_size)
            body = packb([SYMBOL, i + 1, ts[i:j], price[i:j], size[i:j]])
            send([TICK_TOPIC, body])
    last_ns = time.time_ns()
    send([END_TOPIC, packb(n)])
    sock.close()
    ctx.term()
    return {"first_send_ns": first_ns, "last_send_ns": last_ns, "ticks": n}


def raw_subscribe(address: str, batched: bool) -> dict[str, Any]:
    """Count ticks until the end marker; report when it arrived."""
    import msgpack
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(address)
    emit({"event": "ready"})
    recv = sock.recv_multipart
    unpackb = msgpack.unpackb
    count = 0
    while True:
        topic, body = recv()
        if topic == END_TOPIC:
            break
        msg = unpackb(body)
        count += len(msg[2]) if batched else 1
    end_ns = time.time_ns()
    sock.close()
    ctx.term()
    return {"end_ns": end_ns, "ticks": count}


def run_raw(data: Path, batch_size: int, timeout_s: float, keep: bool) -> dict[str, Any]:
    """One raw PUB process, one SUB process; ticks/s from first send to end marker."""
    with work_dir("raw", keep) as folder, Processes(folder) as procs:
        address = f"ipc://{folder / 'raw'}"
        sub = procs.start_call(
            "raw-sub", "wire_replay:raw_subscribe", address=address, batched=batch_size > 1
        )
        pub = procs.start_call(
            "raw-pub",
            "wire_replay:raw_publish",
            address=address,
            path=str(data),
            batch_size=batch_size,
        )
        procs.wait([pub, sub], timeout_s)
        sent, got = result_of(pub), result_of(sub)
    if got["ticks"] != sent["ticks"]:
        raise BenchError(f"raw baseline lost ticks: sent {sent['ticks']}, got {got['ticks']}")
    elapsed = (got["end_ns"] - sent["first_send_ns"]) / 1e9
    return {"ticks": got["ticks"], "elapsed_s": elapsed, "ticks_per_s": got["ticks"] / elapsed}


# -- figures --------------------------------------------------------------------------------


def run(o: Options | None = None) -> list[Figure]:
    """Run the wire replay (once per spread) and both raw baselines; return the figures."""
    o = o or Options()
    data = tick_file(o.ticks, o.seed, o.regen)
    wires = [run_wire(data, o, spread) for spread in o.spreads]
    runs = [(f"spread {spread:g}", w) for spread, w in zip(o.spreads, wires, strict=True)]
    run_fast(data, o, 1.0)  # warm-up: imports and caches, not the replay, would be timed
    fasts = [("spread 1", run_fast(data, o, 1.0))]
    if o.realistic:
        label = "spread 1, latency 5 ms, fee 2 bps"
        runs.append((label, run_wire(data, o, 1.0, REALISTIC)))
        fasts.append((label, run_fast(data, o, 1.0, REALISTIC)))
    raw_msg = run_raw(data, 1, o.timeout_s, o.keep)
    raw_batch = run_raw(data, o.batch_size, o.timeout_s, o.keep)
    out = [
        Figure(
            BENCH,
            "data",
            o.ticks,
            "ticks",
            f"synthetic, seed {o.seed}, batch {o.batch_size}; {machine()}",
        ),
        Figure(
            BENCH,
            "raw pyzmq, 1 tick/msg",
            round(raw_msg["ticks_per_s"]),
            "ticks/s",
            f"first send -> end marker {raw_msg['elapsed_s']:.3f} s",
        ),
        Figure(
            BENCH,
            f"raw pyzmq, {o.batch_size} ticks/msg",
            round(raw_batch["ticks_per_s"]),
            "ticks/s",
            f"first send -> end marker {raw_batch['elapsed_s']:.3f} s",
        ),
    ]
    for label, wire in runs:
        out += wire_figures(wire, label, raw_msg, raw_batch, o.batch_size)
    base_wire = dict(runs)["spread 1"]
    base_tps = base_wire["ticks"] / base_wire["elapsed_s"]
    if o.realistic:
        real = runs[-1][1]
        out.append(
            Figure(
                BENCH,
                "wire replay, latency + fees: ratio to spread 1 defaults",
                round(real["ticks"] / real["elapsed_s"] / base_tps, 3),
                "x",
                "same run, same data; the simulator matches each order on the recorded ticks",
            )
        )
    fast_base = fasts[0][1]["ticks"] / fasts[0][1]["elapsed_s"]
    for label, fast in fasts:
        tps = fast["ticks"] / fast["elapsed_s"]
        out += [
            Figure(
                BENCH,
                f"fast replay, {label}",
                round(tps),
                "ticks/s",
                f"{fast['signals']:,} signals, {fast['fills']:,} fills, fees {fast['fees']:.2f}; "
                f"{tps / fast_base:.3f}x the defaults, {tps / base_tps:.3f}x wire spread 1",
            )
        ]
    return out


def wire_figures(
    wire: dict[str, Any],
    label: str,
    raw_msg: dict[str, Any],
    raw_batch: dict[str, Any],
    batch_size: int,
) -> list[Figure]:
    """The figures of one wire replay, with its ratios to the baselines."""
    tps = wire["ticks"] / wire["elapsed_s"]
    floor = "ok" if tps >= FLOOR_TICKS_PER_S else "BELOW"
    name = f"wire replay, {label}"
    return [
        Figure(
            BENCH,
            name,
            round(tps),
            "ticks/s",
            f"{floor} vs floor {FLOOR_TICKS_PER_S:,}; first publish -> replay_completed "
            f"{wire['elapsed_s']:.3f} s",
        ),
        Figure(
            BENCH,
            f"{name}: signals / fills",
            f"{wire['signals']:,} / {wire['fills']:,}",
            "",
            f"strategy saw {wire['strategy_ticks']:,} ticks; "
            f"realized pnl {wire['realized_pnl']:.2f}",
        ),
        Figure(
            BENCH,
            f"{name}: incl. start-up",
            round(wire["ticks"] / wire["wall_s"]),
            "ticks/s",
            f"process start -> replay_completed {wire['wall_s']:.2f} s",
        ),
        Figure(
            BENCH,
            f"{name}: gateway publish",
            round(wire["publish_ticks_per_s"]),
            "ticks/s",
            f"first -> last publish; credit waits {wire['credit_waits']:,}",
        ),
        Figure(
            BENCH, f"{name}: ratio to raw 1 tick/msg", round(tps / raw_msg["ticks_per_s"], 3), "x"
        ),
        Figure(
            BENCH,
            f"{name}: ratio to raw {batch_size} ticks/msg",
            round(tps / raw_batch["ticks_per_s"], 3),
            "x",
        ),
    ]


def parse_args(argv: list[str] | None) -> Options:
    """Command-line flags."""
    d = Options()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ticks", type=int, default=d.ticks, help="ticks to replay")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="ticks per wire message")
    p.add_argument(
        "--window-batches",
        type=int,
        default=d.window_batches,
        help="replay flow-control window (batches in flight)",
    )
    p.add_argument(
        "--spreads",
        default=",".join(f"{x:g}" for x in d.spreads),
        help="comma-separated scales of the condition distances, one replay each; "
        "larger = fewer signals",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="synthetic data seed")
    p.add_argument("--timeout", type=float, default=d.timeout_s, help="seconds per phase")
    p.add_argument("--regen", action="store_true", help="regenerate the cached tick file")
    p.add_argument("--keep", action="store_true", help="keep work folders (logs, configs)")
    p.add_argument(
        "--no-realistic",
        action="store_true",
        help="skip the runs with simulator latency and fees",
    )
    a = p.parse_args(argv)
    spreads = tuple(float(x) for x in a.spreads.split(",") if x.strip())
    return Options(
        a.ticks,
        a.batch_size,
        a.seed,
        a.window_batches,
        spreads,
        a.timeout,
        a.regen,
        a.keep,
        not a.no_realistic,
    )


def main(argv: list[str] | None = None) -> int:
    """Run and print the figures."""
    o = parse_args(argv)
    print_figures(f"wire replay: {o.ticks:,} ticks, batch {o.batch_size}", run(o))
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
