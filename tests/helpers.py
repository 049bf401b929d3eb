"""Helpers every test folder shares: configs on private buses, ports, waiting, processes.

A plain module, not a ``conftest.py``: pytest puts ``tests/`` on ``sys.path``
(for ``tests/conftest.py``), so ``from helpers import make_config`` works in
every folder, while importing from a ``conftest`` or another test file would
depend on which of them pytest loaded first.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.config import BUS_STREAMS, WorkbenchConfig, build_config

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
BUS_NAMES = BUS_STREAMS
POLL_INTERVAL_S = 0.02
# Linux hands out ephemeral ports from 32768 up; `free_port` stays below them.
FREE_PORT_RANGE = (20_000, 32_000)


def ipc_bus(folder: Path) -> dict[str, str]:
    """Bus addresses as ipc paths under ``folder`` (no ports to collide on)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {f"{n}_address": f"ipc://{folder}/{n}" for n in BUS_NAMES}


def tcp_bus() -> dict[str, str]:
    """Bus addresses on free localhost tcp ports, all different (drawn at random, two may meet)."""
    ports: set[int] = set()
    while len(ports) < len(BUS_NAMES):
        ports.add(free_port())
    return {f"{n}_address": f"tcp://127.0.0.1:{p}" for n, p in zip(BUS_NAMES, ports, strict=True)}


def make_config(tmp_path: Path, **sections: Any) -> WorkbenchConfig:
    """A config on an ipc bus under ``tmp_path`` with ``sections`` merged in."""
    data: dict[str, Any] = {
        "run_id": "test",
        # A stopping runner waits up to linger_ms for peers that are going too;
        # delivery never depends on it (SIGKILL tests lose every queue).
        "bus": {**ipc_bus(tmp_path / "ipc"), "linger_ms": 50},
        "runtime": {"run_dir": str(tmp_path / "runs"), "heartbeat_interval_s": 0.2},
        # A live feed must have limits; wide enough that no test's orders meet them.
        "executor": {"risk": {"max_order_qty": 1e6, "max_position_qty": 1e6}},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return build_config(data, base_dir=tmp_path)


def port_slice(worker: str | None = None, workers: str | None = None) -> tuple[int, int]:
    """This test process's own part of ``FREE_PORT_RANGE``: xdist workers never draw the same port.

    Between ``free_port``'s check and the bind that uses the port, a parallel
    worker drawing from the same range could bind it first (a test once got a
    ZeroMQ greeting from its health port). ``worker``/``workers`` default to
    xdist's ``PYTEST_XDIST_WORKER`` ("gw3") and ``PYTEST_XDIST_WORKER_COUNT``.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "") if worker is None else worker
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "") if workers is None else workers
    lo, hi = FREE_PORT_RANGE
    if not (worker.startswith("gw") and worker[2:].isdigit() and workers.isdigit()):
        return lo, hi
    n, i = max(1, int(workers)), int(worker[2:])
    width = (hi - lo) // n
    return lo + (i % n) * width, lo + (i % n + 1) * width


_next_port: list[int] = []


def free_port() -> int:
    """A free port below the ephemeral range (32768+ on Linux), from this worker's slice.

    Ports from ``bind(0)`` are ephemeral ones, which outgoing connections of
    other processes (a kernel client, say) may take at any moment; that would
    make "the port binds again" fail for reasons that are not ours. Ports are
    drawn in turn from a random start, so one process does not draw a port it
    handed out moments ago either.
    """
    lo, hi = port_slice()
    if not _next_port:
        _next_port.append(random.randrange(lo, hi))
    for _ in range(hi - lo):
        port = _next_port[0]
        _next_port[0] = lo + (port + 1 - lo) % (hi - lo)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def assert_binds(address: str, deadline: float) -> None:
    """The tcp address binds by ``deadline`` (monotonic); if not, say what holds it.

    A dead process's TCP sockets are closed by the kernel, which may take some
    milliseconds of FIN/ACK exchange after the process is gone: hence retries.
    """
    host, port_s = address.removeprefix("tcp://").split(":")
    while True:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, int(port_s)))
                return
            except OSError as e:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                held = subprocess.run(["ss", "-tanp"], capture_output=True, text=True).stdout
                lines = [x for x in held.splitlines() if f":{port_s} " in x]
                raise AssertionError(f"{address} still in use: {lines}") from e


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)


def pid_exists(pid: int) -> bool:
    """``kill(pid, 0)`` succeeds: the process runs, or is a zombie nobody reaped yet."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pid_alive(pid: int) -> bool:
    """The process runs; a zombie is dead for our purposes (init will reap it)."""
    if not pid_exists(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:  # reaped between the two checks
        return False


def logged_signal_ids(log_file: Path) -> set[str]:
    """Every signal id a strategy logged as sent (or re-sent) in its log file."""
    ids: set[str] = set()
    if not log_file.exists():
        return ids
    for line in log_file.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") in ("signals_sent", "signals_resent"):
            ids.update(entry["signal_ids"])
    return ids


def journal_rows(path: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the journal at ``path``, read now (the executor may be running)."""
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def logged_all_journaled(log_file: Path, journal: Path) -> bool:
    """Every signal id the strategy logged as sent is in the journal (and it logged some)."""
    logged = logged_signal_ids(log_file)
    journaled = {r[0] for r in journal_rows(journal, "SELECT signal_id FROM signals")}
    return bool(logged) and logged <= journaled


def journal_orders(cfg: WorkbenchConfig) -> dict[str, dict[str, Any]]:
    """The orders in ``cfg``'s journal by signal id, read now (the executor may be running).

    Read-only, as any reader beside the running executor must (a `Journal` is
    the one writer's: a second one is refused while the executor holds it).
    """
    import contextlib
    import sqlite3

    uri = cfg.journal_path().resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM orders ORDER BY rowid").fetchall()
    return {r["signal_id"]: dict(r) for r in rows}


class SignalPusher:
    """Pushes hand-made signals into a running executor's signals socket, as a strategy would."""

    def __init__(self, address: str, strategy_id: str) -> None:
        import zmq

        self._ctx = zmq.Context()
        self._push = self._ctx.socket(zmq.PUSH)
        self._push.setsockopt(zmq.LINGER, 1000)
        self._push.connect(address)
        self._strategy = strategy_id
        self._epoch = time.time_ns()

    def send(self, seq: int, symbol: str, price: float, qty: float = 1.0) -> str:
        """A BUY of ``qty`` at ``price`` with id ``<strategy>:<seq>``; returns the id."""
        from workbench.domain.model import Side, Signal
        from workbench.messaging import codec

        sid = self._strategy
        s = Signal(f"{sid}:{seq}", sid, seq, symbol, Side.BUY, qty, price, 1, "t", "c")
        self._push.send_multipart(codec.encode(s, sid, self._epoch, seq, time.time_ns()))
        return s.id

    def close(self) -> None:
        """Close the socket now (unsent signals are dropped)."""
        self._ctx.destroy(linger=0)


def run_cli(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess:
    """``workbench <args>`` in a process of its own, from the repository root."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
    )


def ccxt_binance(
    symbol: str,
    amount_step: float | None,
    least: float | None = None,
    max_qty: float | None = None,
    base_quote: tuple[str, str] | None = None,
) -> Any:
    """A real ccxt Binance with one spot market loaded by hand, offline (no network).

    ``amount_step`` is its LOT_SIZE step (ccxt's amount precision), ``least``
    its minQty; base and quote come from ``BASE/QUOTE`` unless given.
    """
    import ccxt

    base, _, quote = symbol.partition("/")
    base, quote = base_quote or (base, quote)
    ex = ccxt.binance()
    ex.set_markets([{
        "id": symbol.replace("/", ""), "symbol": symbol, "base": base, "quote": quote,
        "baseId": base, "quoteId": quote, "type": "spot", "spot": True, "active": True,
        "precision": {"amount": amount_step, "price": 0.0001},
        "limits": {"amount": {"min": least, "max": max_qty}},
    }])  # fmt: skip
    return ex
