"""Tick-to-executor latency at a live rate, beside a raw three-hop pyzmq pipeline.

The product: the gateway's simulated feed (one symbol, 10k ticks/s, stopping
with end-of-stream after ``--ticks``) -> strategy -> executor, over ipc. The
strategy holds one always-armed support and one always-armed resistance
condition (a BUY triggered at any price, a SELL too) with tight rebound,
take-profit and stop-loss distances, so signals keep coming whatever the walk
does. The simulated feed stamps each tick with the wall clock as it makes it
(microseconds before the batch is sent), and the executor's ``signal_received``
event carries ``received_ns`` (its wall clock when it takes the batch off its
socket, before decoding and the journal, as C below stamps before decoding), so
per signal::

    latency = received_ns - ts_ns     (from an external SUB on events_address)

For a breakdown, the runners' own bucketed histograms from their last
heartbeats are shown too (strategy ``tick_to_signal``, executor
``signal_to_order`` and ``tick_to_order``); their quantiles are bucket upper
bounds, too coarse for comparisons. Each runner's CPU seconds (all threads,
including ZeroMQ's I/O thread) from the gateway's start until the executor
exits are read from ``/proc``.

The baseline: process A publishes (PUB) one msgpack message per tick at the
same rate with the same pacing (tick ``k`` due ``k / rate`` s after start,
sleep until due) stamped with ``time.time_ns()``; B (SUB) decodes each and
PUSHes a small message on; C (PULL) records ``time.time_ns() - origin_ns``.

Two references beside it show what the strategy's pattern costs by itself:
the same A -> B -> C, but B forwards only every N-th message, as a strategy
sends a signal for about 1 tick in N (N measured from the product run); and
that again with B busy for ``REFERENCE_WORK_US`` before each forward, as a
strategy works out a signal and saves it. The target is against the baseline.

    .venv/bin/python benchmarks/latency.py [--rate 10000] [--ticks 50000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    BenchError,
    Child,
    Figure,
    Processes,
    emit,
    ipc_bus,
    machine,
    percentile,
    print_figures,
    result_of,
    script_main,
    work_dir,
    write_config,
)

BENCH = "latency"
SYMBOL = "ABC"
DEFAULT_RATE = 10_000.0
DEFAULT_TICKS = 50_000
DEFAULT_SEED = 7
TARGET_P50_RATIO = 2.0  # the orders issue: p50 <= 2x raw, p99 no worse than before
REFERENCE_WORK_US = 50.0
"""The filtering reference relay's busy time per forwarded message (less than the strategy's)."""
END_TOPIC = b"end/"
DATA_TOPIC = b"tick/"
RUNNERS = ("executor", "strategy", "gateway")
TAPPED_EVENTS = ("signal_received", "eos")
"""The fills count comes from the executor's end-of-stream summary (``eos``), not one event per
fill: the tap wakes once per signal, on the cores the runners share."""
STAGES = ("made_to_sent", "sent_to_received")
"""The split of each signal's latency at the gateway's send (``origin_ns``)."""
CPU_SAMPLE_S = 0.05
"""How often the runners' CPU is read from /proc while the product runs."""


def _us(ns: float) -> float:
    return round(ns / 1_000, 1)


def summarize(latencies_ns: list[int]) -> dict[str, Any]:
    """Count, p50, p90, p99 and max of latencies, in microseconds."""
    xs = sorted(latencies_ns)
    return {
        "n": len(xs),
        "p50_us": _us(percentile(xs, 50)),
        "p90_us": _us(percentile(xs, 90)),
        "p99_us": _us(percentile(xs, 99)),
        "max_us": _us(xs[-1]) if xs else float("nan"),
    }


# -- the product ------------------------------------------------------------------------------


def conditions() -> list[dict[str, Any]]:
    """Two always-armed conditions: they trigger at once and re-arm after every exit.

    A BUY whose trigger is above any price is triggered immediately, then
    trails the lows and enters on a 5-cent rebound; a SELL mirrors it. On the
    default walk (1 tick of volatility) that is about 3 signals per 100 ticks.
    """
    common = {"turning_point": 0.05, "take_profit": 0.10, "stop_loss": 0.10, "qty": 1.0}
    return [
        {
            "id": "buy-any",
            "symbol": SYMBOL,
            "side": "BUY",
            "trigger_price": 1e9,
            "following": True,
            "rearm": True,
            **common,
        },
        {
            "id": "sell-any",
            "symbol": SYMBOL,
            "side": "SELL",
            "trigger_price": 0.01,
            "following": True,
            "rearm": True,
            **common,
        },
    ]


def live_config(folder: Path, rate: float, ticks: int, seed: int) -> Path:
    """A simulated-feed config on ipc addresses inside ``folder``."""
    return write_config(
        folder,
        {
            "run_id": "bench-latency",
            # Fast reconnects without backoff: the strategy connects before the live
            # gateway binds, and with the defaults it would miss its first second.
            "bus": ipc_bus(folder) | {"reconnect_interval_ms": 10, "reconnect_interval_max_ms": 0},
            "gateway": {
                "feed": "simulated",
                "simulated": {
                    "symbols": [SYMBOL],
                    "rate_per_s": rate,
                    "max_ticks": ticks,
                    "seed": seed,
                    "start_price": 100.0,
                },
            },
            "strategies": [{"id": "sr-1", "params": {"conditions": conditions()}}],
            "executor": {"risk": {"max_order_qty": 1e6, "max_position_qty": 1e6}},
            "runtime": {"run_dir": str(folder / "runs")},
        },
    )


class Taps:
    """SUB sockets on the executor's events and on everyone's heartbeats."""

    def __init__(self, bus: dict[str, str]) -> None:
        import zmq

        self._zmq = zmq
        self.ctx = zmq.Context()
        self.events = self.ctx.socket(zmq.SUB)
        self.events.setsockopt(zmq.RCVHWM, 0)
        self.events.setsockopt(zmq.RECONNECT_IVL, 10)
        # Only the events measured: the executor's XPUB then encodes and sends no
        # other (as in a headless run), and this process wakes once per signal,
        # not per order event, on cores the runners share.
        for name in TAPPED_EVENTS:
            self.events.setsockopt(zmq.SUBSCRIBE, f"evt/{name}/".encode())
        self.events.connect(bus["events_address"])
        self.telemetry = self.ctx.socket(zmq.SUB)
        self.telemetry.setsockopt(zmq.SUBSCRIBE, b"hb/")
        self.telemetry.bind(bus["telemetry_address"])
        self.poller = zmq.Poller()
        self.poller.register(self.events, zmq.POLLIN)
        self.poller.register(self.telemetry, zmq.POLLIN)
        self.latencies_ns: list[int] = []
        self.made_to_sent_ns: list[int] = []  # per signal: the gateway's part
        self.sent_to_received_ns: list[int] = []  # strategy and both hops
        self.fills = 0  # from the executor's end-of-stream summary
        self.counts: dict[str, int] = {}
        self.histograms: dict[str, dict[str, Any]] = {}  # "role.name" -> last heartbeat's

    def pump(self, timeout_ms: int) -> None:
        """Handle what arrives within ``timeout_ms``."""
        from workbench.exceptions import CodecError
        from workbench.messaging.codec import Event, Heartbeat, decode

        for sock, _ in self.poller.poll(timeout_ms):
            while True:
                try:
                    frames = sock.recv_multipart(self._zmq.NOBLOCK)
                except self._zmq.Again:
                    break
                try:
                    p = decode(frames).payload
                except CodecError:
                    continue
                if isinstance(p, Event):
                    self._on_event(p.name, p.data)
                elif isinstance(p, Heartbeat):
                    for name, hist in p.extra.get("latency", {}).items():
                        self.histograms[f"{p.role}.{name}"] = hist

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        if name == "eos":
            self.fills = int(data.get("fills", 0))
        if name == "signal_received":
            received, made = int(data["received_ns"]), int(data["ts_ns"])
            self.latencies_ns.append(received - made)
            if origin := int(data.get("origin_ns") or 0):  # when the gateway sent the tick
                self.made_to_sent_ns.append(origin - made)
                self.sent_to_received_ns.append(received - origin)

    def close(self) -> None:
        """Close the sockets."""
        self.ctx.destroy(linger=0)


def bucket_quantile_us(hist: dict[str, Any], q: float) -> float:
    """Quantile of a heartbeat latency histogram: the upper bound of its bucket."""
    from workbench.telemetry import LATENCY_BUCKETS_US

    counts, total = hist.get("counts", []), hist.get("total", 0)
    seen = 0
    for i, c in enumerate(counts):
        seen += c
        if c and seen >= q * total:
            return float(LATENCY_BUCKETS_US[i]) if i < len(LATENCY_BUCKETS_US) else float("inf")
    return float("nan")


def run_product(rate: float, ticks: int, seed: int, timeout_s: float, keep: bool) -> dict[str, Any]:
    """Run the three runners on the simulated feed; latencies from the events tap."""
    with work_dir("lat", keep) as folder, Processes(folder) as procs:
        config = live_config(folder, rate, ticks, seed)
        taps = Taps(ipc_bus(folder))
        try:
            executor = procs.start_runner("executor", config)
            executor.wait_event("runner_started", timeout_s)
            strategy = procs.start_runner("strategy", config)
            strategy.wait_event("runner_started", timeout_s)
            time.sleep(0.3)  # the events tap connects (it retries every 10 ms)
            gateway = procs.start_runner("gateway", config)
            cpu = _pump_until_exit(taps, executor, timeout_s, [executor, strategy, gateway])
            procs.wait([executor, strategy, gateway], timeout_s)
        finally:
            taps.close()
        gw = gateway.find("end_of_stream_sent") or {}
        st = strategy.find("end_of_stream_forwarded") or {}
    if not taps.latencies_ns:
        raise BenchError("no signal_received events arrived; nothing to measure")
    return {
        **summarize(taps.latencies_ns),
        "stages": {
            "made_to_sent": summarize(taps.made_to_sent_ns),
            "sent_to_received": summarize(taps.sent_to_received_ns),
        },
        "signals_sent": int(st.get("signals", 0)),
        "strategy_ticks": int(st.get("ticks", 0)),
        "fills": taps.fills,
        "gateway_ticks_per_s": float(gw.get("ticks_per_s", 0)),
        "histograms": taps.histograms,
        "cpu_s": cpu,
    }


def _pump_until_exit(
    taps: Taps, executor: Child, timeout_s: float, runners: list[Child]
) -> dict[str, float]:
    """Pump the taps until the executor exits; each runner's CPU seconds meanwhile."""
    deadline = time.monotonic() + timeout_s
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    next_sample = 0.0
    while executor.returncode is None:
        now = time.monotonic()
        if now > deadline:
            raise BenchError(f"executor still running after {timeout_s} s; {executor.tail()}")
        if now >= next_sample:  # the last sample is <= 50 ms before exit
            next_sample = now + CPU_SAMPLE_S
            for c in runners:
                t = cpu_seconds(c.popen.pid)
                if t is not None:
                    first.setdefault(c.name, t)
                    last[c.name] = t
        taps.pump(50)
    drain_until = time.monotonic() + 0.5
    while time.monotonic() < drain_until:
        taps.pump(50)
    return {name: round(last[name] - first[name], 2) for name in last}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (all its threads), from /proc; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the raw baseline (runs in child processes) ----------------------------------------------


def raw_source(address: str, rate: float, ticks: int) -> dict[str, Any]:
    """A: publish ``ticks`` messages at ``rate`` per second, paced like the simulated feed."""
    import msgpack
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.LINGER, 10_000)
    sock.bind(address)
    emit({"event": "ready"})
    if not sock.poll(30_000):
        raise TimeoutError("no subscriber within 30 s")
    sock.recv()  # the subscription
    send, packb, now_ns, mono = sock.send_multipart, msgpack.packb, time.time_ns, time.monotonic
    interval = 1.0 / rate
    price = 100.0
    k = 0
    t0 = mono()
    while k < ticks:
        due = min(int((mono() - t0) / interval) + 1, ticks) - k
        if due <= 0:
            time.sleep(max(0.0, t0 + k * interval - mono()))
            continue
        for _ in range(due):
            k += 1
            send([DATA_TOPIC, packb([k, now_ns(), price])])
    elapsed = mono() - t0
    send([END_TOPIC, b""])
    sock.close()
    ctx.term()
    return {"sent": k, "rate_per_s": k / elapsed}


def raw_relay(
    sub_address: str, push_address: str, every: int = 1, work_us: float = 0.0
) -> dict[str, Any]:
    """B: SUB, decode, PUSH a small message carrying the origin timestamp on.

    With ``every`` > 1 only messages whose number is a multiple of it go on,
    each after ``work_us`` of busy work (a strategy's pattern: most ticks make
    no signal, and a signal takes work before it leaves).
    """
    import msgpack
    import zmq

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(sub_address)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 10_000)
    push.connect(push_address)
    emit({"event": "ready"})
    packb, unpackb = msgpack.packb, msgpack.unpackb
    perf_ns, work_ns = time.perf_counter_ns, int(work_us * 1000)
    n = 0
    while True:
        topic, body = sub.recv_multipart()
        if topic == END_TOPIC:
            push.send(b"")
            break
        k, origin_ns, _price = unpackb(body)
        if every > 1:
            if k % every:
                continue
            until = perf_ns() + work_ns
            while perf_ns() < until:
                pass
        push.send(packb([k, origin_ns]))
        n += 1
    sub.close()
    push.close()
    ctx.term()
    return {"relayed": n}


def raw_sink(address: str) -> dict[str, Any]:
    """C: PULL, record now - origin_ns per message until the end marker."""
    import msgpack
    import zmq

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 0)
    pull.bind(address)
    emit({"event": "ready"})
    unpackb, now_ns = msgpack.unpackb, time.time_ns
    latencies: list[int] = []
    while True:
        body = pull.recv()
        if not body:
            break
        t = now_ns()
        latencies.append(t - unpackb(body)[1])
    pull.close()
    ctx.term()
    return summarize(latencies)


def run_raw(
    rate: float, ticks: int, timeout_s: float, keep: bool, every: int = 1, work_us: float = 0.0
) -> dict[str, Any]:
    """A -> B -> C over ipc; p50/p99 of the end-to-end latencies C recorded.

    ``every`` and ``work_us``: B forwards only every ``every``-th message, after
    ``work_us`` of busy work (`raw_relay`).
    """
    with work_dir("rawlat", keep) as folder, Processes(folder) as procs:
        a_addr, c_addr = f"ipc://{folder / 'a'}", f"ipc://{folder / 'c'}"
        sink = procs.start_call("raw-c", "latency:raw_sink", address=c_addr)
        sink.wait_event("ready", timeout_s)
        relay = procs.start_call(
            "raw-b",
            "latency:raw_relay",
            sub_address=a_addr,
            push_address=c_addr,
            every=every,
            work_us=work_us,
        )
        relay.wait_event("ready", timeout_s)
        source = procs.start_call(
            "raw-a", "latency:raw_source", address=a_addr, rate=rate, ticks=ticks
        )
        procs.wait([source, relay, sink], timeout_s)
        return {**result_of(sink), "rate_per_s": result_of(source)["rate_per_s"]}


# -- figures ---------------------------------------------------------------------------------


HISTOGRAMS = (
    ("strategy.tick_to_signal", "strategy: gateway send -> signals sent"),
    ("executor.signal_to_order", "executor: strategy send -> order done"),
    ("executor.tick_to_order", "executor: gateway send -> order done"),
)
"""Runner-side histograms shown for the breakdown (bucket upper bounds, coarse)."""


def run(
    rate: float = DEFAULT_RATE,
    ticks: int = DEFAULT_TICKS,
    seed: int = DEFAULT_SEED,
    timeout_s: float = 120.0,
    keep: bool = False,
    rounds: int = 1,
) -> list[Figure]:
    """Run the product and the raw baseline (``rounds`` times, alternated); the figures.

    With several rounds the table shows the round whose p50 ratio is the
    median, and a figure gives every round's ratios: on a shared machine one
    run can be off by a third either way.
    """
    pairs = []
    for i in range(rounds):  # alternated, so a drift in load hits both alike
        if i % 2:
            raw = run_raw(rate, ticks, timeout_s, keep)
            product = run_product(rate, ticks, seed, timeout_s, keep)
        else:
            product = run_product(rate, ticks, seed, timeout_s, keep)
            raw = run_raw(rate, ticks, timeout_s, keep)
        pairs.append((product["p50_us"] / raw["p50_us"], product, raw))
    ordered = sorted(pairs, key=lambda p: p[0])
    _, product, raw = ordered[(len(ordered) - 1) // 2]
    every = max(2, round(product["strategy_ticks"] / max(1, product["n"])))
    filtered = run_raw(rate, ticks, timeout_s, keep, every=every)
    worked = run_raw(rate, ticks, timeout_s, keep, every=every, work_us=REFERENCE_WORK_US)
    r50 = product["p50_us"] / raw["p50_us"]
    r99 = product["p99_us"] / raw["p99_us"]
    target = "ok" if r50 <= TARGET_P50_RATIO else "ABOVE"
    rates = f"{product['gateway_ticks_per_s']:,.0f} / {raw['rate_per_s']:,.0f}"
    return [
        Figure(
            BENCH,
            "feed rate (gateway / raw A)",
            rates,
            "ticks/s",
            f"{ticks:,} ticks; strategy saw {product['strategy_ticks']:,}; {machine()}",
        ),
        Figure(
            BENCH,
            "signals measured",
            product["n"],
            "signals",
            f"strategy sent {product['signals_sent']:,}; fills {product['fills']:,}",
        ),
        Figure(
            BENCH,
            "wire tick->executor p50",
            product["p50_us"],
            "us",
            "signal_received.received_ns - tick ts_ns",
        ),
        Figure(
            BENCH,
            "wire tick->executor p99",
            product["p99_us"],
            "us",
            f"p90 {product['p90_us']:,.0f}, max {product['max_us']:,.0f}",
        ),
        Figure(
            BENCH,
            "split: tick made->gateway sent / ->executor p50",
            " / ".join(f"{product['stages'][k]['p50_us']:,.0f}" for k in STAGES),
            "us",
            "the gateway's part / the strategy's and both hops (the tick's origin_ns)",
        ),
        Figure(BENCH, "raw 3-hop p50", raw["p50_us"], "us", f"n={raw['n']:,}"),
        Figure(
            BENCH,
            "raw 3-hop p99",
            raw["p99_us"],
            "us",
            f"p90 {raw['p90_us']:,.0f}, max {raw['max_us']:,.0f}",
        ),
        Figure(
            BENCH,
            "ratio wire / raw p50",
            round(r50, 2),
            "x",
            f"{target} vs target <= {TARGET_P50_RATIO}",
        ),
        Figure(BENCH, "ratio wire / raw p99", round(r99, 2), "x"),
        *rounds_figures(pairs),
        Figure(
            BENCH,
            f"raw, B forwards 1 in {every} p50",
            filtered["p50_us"],
            "us",
            f"{filtered['p50_us'] / raw['p50_us']:.2f}x raw; n={filtered['n']:,}",
        ),
        Figure(
            BENCH,
            f"raw, 1 in {every} after {REFERENCE_WORK_US:.0f} us of work p50",
            worked["p50_us"],
            "us",
            f"{worked['p50_us'] / raw['p50_us']:.2f}x raw; n={worked['n']:,}",
        ),
        Figure(
            BENCH,
            "runner CPU executor / strategy / gateway",
            " / ".join(f"{product['cpu_s'].get(n, float('nan')):.2f}" for n in RUNNERS),
            "s",
            "from the gateway's start until the executor exits (/proc, all threads)",
        ),
        *histogram_figures(product["histograms"]),
    ]


def rounds_figures(pairs: list[tuple[float, dict[str, Any], dict[str, Any]]]) -> list[Figure]:
    """Every round's p50 and p99 ratios: median, range, rounds at or under the target."""
    if len(pairs) < 2:
        return []
    r50 = sorted(r for r, _, _ in pairs)
    r99 = sorted(p["p99_us"] / raw["p99_us"] for _, p, raw in pairs)
    under = sum(r <= TARGET_P50_RATIO for r in r50)
    return [
        Figure(
            BENCH,
            f"ratio p50 over {len(pairs)} rounds",
            round(r50[(len(r50) - 1) // 2], 2),  # the table's round (lower middle if even)
            "x",
            f"median; {r50[0]:.2f}-{r50[-1]:.2f}; {under} of {len(pairs)} <= {TARGET_P50_RATIO}",
        ),
        Figure(
            BENCH,
            f"ratio p99 over {len(pairs)} rounds",
            round(r99[(len(r99) - 1) // 2], 2),
            "x",
            f"median; {r99[0]:.2f}-{r99[-1]:.2f}",
        ),
    ]


def histogram_figures(histograms: dict[str, dict[str, Any]]) -> list[Figure]:
    """p50 / p99 bucket bounds of the runners' own latency histograms."""
    out = []
    for key, what in HISTOGRAMS:
        hist = histograms.get(key)
        if not hist or not hist.get("total"):
            continue
        p50, p99 = bucket_quantile_us(hist, 0.50), bucket_quantile_us(hist, 0.99)
        out.append(
            Figure(
                BENCH,
                f"hist {key} p50 / p99",
                f"<={p50:,.0f} / <={p99:,.0f}",
                "us",
                f"{what}; n={hist['total']:,}",
            )
        )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=DEFAULT_RATE, help="ticks per second")
    p.add_argument("--ticks", type=int, default=DEFAULT_TICKS, help="ticks before end-of-stream")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="simulated feed seed")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per phase")
    p.add_argument("--keep", action="store_true", help="keep work folders (logs, configs)")
    p.add_argument(
        "--rounds", type=int, default=1, help="product and raw runs, alternated (median shown)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run and print the figures."""
    a = parse_args(argv)
    if a.rounds < 1:
        raise BenchError(f"--rounds: at least 1, got {a.rounds}")
    figures = run(a.rate, a.ticks, a.seed, a.timeout, a.keep, a.rounds)
    rounds = f", {a.rounds} rounds" if a.rounds > 1 else ""
    print_figures(f"latency: {a.ticks:,} ticks at {a.rate:,.0f}/s{rounds}", figures)
    return 0


if __name__ == "__main__":
    sys.exit(script_main(main))
