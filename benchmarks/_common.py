"""Helpers shared by the benchmarks: work folders, configs, child processes, figures.

Every child process (the three runners, and the raw pyzmq baseline roles) is
started through `Processes`, which kills whatever is still alive when its
``with`` block ends, however it ends (normal exit, exception, Ctrl-C, SIGTERM).
Children run in their own session so a Ctrl-C reaches only this process, and
they also die on their own if this process is killed outright
(``WORKBENCH_PARENT_PID`` for the runners, ``PR_SET_PDEATHSIG`` for the rest).

Run as a script, this module is the trampoline for baseline roles::

    python benchmarks/_common.py --call module:function --kwargs '{"n": 1}'

which imports ``function`` from ``benchmarks/<module>.py``, calls it with the
keyword arguments, and prints its returned dict as a JSON line with
``"event": "result"``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
REPO_DIR = BENCH_DIR.parent
PARENT_PID_ENV = "WORKBENCH_PARENT_PID"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class BenchError(RuntimeError):
    """A benchmark could not produce its figures (a child failed, timed out...)."""


# -- figures ---------------------------------------------------------------------


@dataclass(slots=True)
class Figure:
    """One measured figure."""

    bench: str
    name: str
    value: float | int | str
    unit: str = ""
    note: str = ""

    def as_json(self) -> str:
        """One JSON line."""
        return json.dumps(
            {"bench": self.bench, "figure": self.name, "value": self.value, "unit": self.unit}
            | ({"note": self.note} if self.note else {})
        )


def fmt_value(v: float | int | str) -> str:
    """Human formatting: thousands separators, 3 significant-ish decimals."""
    if isinstance(v, str):
        return v
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1000):
        return f"{int(v):,}"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"


def table(
    rows: Sequence[Sequence[str]], header: Sequence[str], left: Sequence[int] = (0, -1)
) -> str:
    """A plain-text table; columns in ``left`` are left-aligned, the others right-aligned."""
    cols = [list(header), *[list(r) for r in rows]]
    n = len(header)
    widths = [max(len(r[i]) for r in cols) for i in range(n)]
    lefts = {i % n for i in left}

    def line(r: Sequence[str]) -> str:
        cells = [
            c.ljust(w) if i in lefts else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    """Print each figure as a JSON line, then a human table."""
    for f in figures:
        print(f.as_json())
    rows = [(f.name, fmt_value(f.value), f.unit, f.note) for f in figures]
    print()
    print(title)
    print(table(rows, ("figure", "value", "unit", "note")))
    print(flush=True)


def machine() -> str:
    """CPUs and load right now: figures from a busy machine are not comparable."""
    load1, _, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load {load1:.1f}"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


# -- time and logs ---------------------------------------------------------------


def iso_to_ns(ts: str) -> int:
    """A structlog ISO-8601 UTC timestamp as integer ns since the epoch (us precision)."""
    d = dt.datetime.fromisoformat(ts)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return (d - _EPOCH) // dt.timedelta(microseconds=1) * 1_000


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every JSON object line of ``path``; other lines are skipped."""
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return out
    for raw in text.splitlines():
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        with contextlib.suppress(json.JSONDecodeError):
            obj = json.loads(raw)
            if isinstance(obj, dict):
                out.append(obj)
    return out


# -- work folder and config --------------------------------------------------------


@contextlib.contextmanager
def work_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh short folder under /tmp (ipc paths must stay short); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"wbb-{prefix}-", dir="/tmp"))
    try:
        yield path
    finally:
        if keep:
            print(f"# kept work folder {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def ipc_bus(folder: Path) -> dict[str, str]:
    """The bus addresses as ipc endpoints inside ``folder``."""
    from workbench.config import BUS_STREAMS

    names = BUS_STREAMS
    return {f"{n}_address": f"ipc://{folder / 'ipc' / n}" for n in names}


def write_config(folder: Path, data: dict[str, Any], name: str = "bench.toml") -> Path:
    """Validate ``data`` as a workbench config and save it as TOML in ``folder``."""
    from workbench.config import build_config

    (folder / "ipc").mkdir(parents=True, exist_ok=True)
    return build_config(data, base_dir=folder).save(folder / name)


# -- child processes ---------------------------------------------------------------


@dataclass
class Child:
    """One child process and its stdout log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_ns: int = field(default_factory=time.time_ns)

    @property
    def returncode(self) -> int | None:
        """Exit code, or None while running."""
        return self.popen.poll()

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines it logged so far."""
        return read_json_lines(self.log_path)

    def find(self, event: str) -> dict[str, Any] | None:
        """The last logged line with this ``event`` name, if any."""
        found = None
        for e in self.events():
            if e.get("event") == event:
                found = e
        return found

    def wait_event(self, event: str, timeout_s: float) -> dict[str, Any]:
        """Wait until it logs ``event``.

        Raises:
            BenchError: it exited without logging it, or the time ran out.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.find(event)
            if found is not None:
                return found
            if self.returncode is not None:
                raise BenchError(
                    f"{self.name} exited {self.returncode} before {event!r}; {self.tail()}"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no {event!r} within {timeout_s} s; {self.tail()}")
            time.sleep(0.01)

    def tail(self, lines: int = 8) -> str:
        """The end of its log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        return f"log {self.log_path} ends:\n  " + "\n  ".join(text)


class Processes:
    """Starts children and guarantees none outlives the ``with`` block."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.children: list[Child] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, name: str, argv: list[str]) -> Child:
        """Start ``python argv...`` with stdout and stderr in ``<folder>/<name>.log``."""
        log_path = self.folder / f"{name}.log"
        env = os.environ | {PARENT_PID_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_DIR,
                env=env,
                start_new_session=True,
            )
        child = Child(name, popen, log_path)
        self.children.append(child)
        return child

    def start_runner(self, role: str, config: Path, *extra: str) -> Child:
        """``python -m runners.<role> --config FILE``."""
        return self.start(role, ["-m", f"runners.{role}", "--config", str(config), *extra])

    def start_call(self, name: str, target: str, **kwargs: Any) -> Child:
        """Run ``benchmarks/<module>.py:<function>(**kwargs)`` in a child process."""
        argv = [str(BENCH_DIR / "_common.py"), "--call", target, "--kwargs", json.dumps(kwargs)]
        return self.start(name, argv)

    def wait(self, children: Sequence[Child], timeout_s: float) -> None:
        """Wait until all ``children`` exit 0.

        Raises:
            BenchError: one failed or they did not finish in time.
        """
        deadline = time.monotonic() + timeout_s
        for c in children:
            try:
                rc = c.popen.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as e:
                raise BenchError(f"{c.name} still running after {timeout_s} s; {c.tail()}") from e
            if rc != 0:
                raise BenchError(f"{c.name} exited {rc}; {c.tail()}")

    def close(self) -> None:
        """Terminate every child still running, then kill the stubborn ones."""
        alive = [c for c in self.children if c.popen.poll() is None]
        for c in alive:
            with contextlib.suppress(ProcessLookupError):
                c.popen.terminate()
        deadline = time.monotonic() + 3.0
        for c in alive:
            try:
                c.popen.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    c.popen.kill()
                c.popen.wait()


def result_of(child: Child) -> dict[str, Any]:
    """The dict a `start_call` child returned.

    Raises:
        BenchError: it printed no result.
    """
    found = child.find("result")
    if found is None:
        raise BenchError(f"{child.name} printed no result; {child.tail()}")
    return found


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks clean up children."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def script_main(main: Callable[[], int]) -> int:
    """Run a benchmark's ``main``: children cleaned up on SIGTERM and Ctrl-C, short errors.

    Returns:
        ``main``'s exit code; 1 when the benchmark could not run, 130 on Ctrl-C.
    """
    exit_on_sigterm()
    try:
        return main()
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def emit(obj: dict[str, Any]) -> None:
    """Print one JSON line, flushed (children report ``ready`` and results this way)."""
    print(json.dumps(obj), flush=True)


# -- trampoline -------------------------------------------------------------------


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        from workbench.runner.parent_link import die_with_parent

        die_with_parent()


def _call_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run a benchmark role in this process.")
    p.add_argument("--call", required=True, help="module:function inside benchmarks/")
    p.add_argument("--kwargs", default="{}", help="JSON keyword arguments")
    args = p.parse_args(argv)
    _die_with_parent()
    module_name, func_name = args.call.split(":", 1)
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(**json.loads(args.kwargs))
    emit({"event": "result", **(result or {})})
    return 0


if __name__ == "__main__":
    sys.exit(_call_main())
