"""`Workbench`: the one object a notebook drives.

    wb = Workbench.from_config("../configs/paper.toml")
    wb.start()                       # returns at once; runners start in the background
    wb.status()                      # a DataFrame, one row per runner
    wb.ticks.frame(last=500)         # taps: ticks, signals, fills, events
    wb.dashboard()                   # live widgets
    wb.config.strategies[0].params["conditions"][0]["take_profit"] = 0.3
    wb.apply()                       # restarts only what changed
    wb.save_config("../configs/promoted.toml")
    wb.stop()

The supervisor runs on a background thread of the kernel, and the runners are
the same processes `workbench up` starts. If the kernel dies, however it dies,
they exit within two seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from workbench.config import WorkbenchConfig, build_config, check_config, load_config
from workbench.domain.condition_spec import plain
from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.messaging.heartbeat_extras import ExecutorExtra
from workbench.notebook.arguments import (
    check_callable,
    check_config_type,
    check_flag,
    check_path,
    check_seconds,
)
from workbench.notebook.kernel import (
    STARTED,
    carry_secrets,
    quiet_logging,
    running,
    started_by_another,
    stop_at_exit,
    wait_restarted,
)
from workbench.notebook.status_rows import STATUS_COLUMNS, condition_levels, status_row
from workbench.supervisor import (
    RunnerState,
    Supervisor,
    SupervisorEvent,
    prepare_run_folder,
)
from workbench.supervisor.run_folder import holds_run, unlock_run
from workbench.taps import Ring, Taps

log = structlog.get_logger()


class Workbench:
    """Start, watch, tune and promote a pipeline from a notebook.

    Args:
        config: The live config; edit it, then `apply` to restart what changed.
            It stays this object: handles taken from it keep working.

    Raises:
        TypeError: ``config`` is not a `WorkbenchConfig` (a path: use `from_config`).
    """

    def __init__(self, config: WorkbenchConfig) -> None:
        check_config_type(config)  # a path string was an AttributeError from deep inside
        self.config = config
        self.supervisor: Supervisor | None = None
        self.taps = Taps(config)
        self._dashboards: list[Any] = []

    @classmethod
    def from_config(cls, path: str | Path) -> Workbench:
        """Load a TOML config (with ``WORKBENCH__...`` environment overrides).

        Raises:
            TypeError: ``path`` is not a str or path (None, say).
            ConfigurationError: the file is missing or invalid.
        """
        check_path(path, "from_config(path)")
        return cls(load_config(path))

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, *, wait: bool = False, timeout: float = 30.0) -> Workbench:
        """Start the taps, the supervisor and the runners; returns at once unless ``wait``.

        Raises:
            TemporaryError: another `Workbench` or process runs this run folder.
            TimeoutError: with ``wait``, not all running within ``timeout``.
            ConfigurationError: ``timeout`` is not a number of seconds > 0.
        """
        check_flag(wait, "wait")
        check_seconds(timeout, "timeout")  # -1 was taken: a wait of nothing
        if self.supervisor is not None and self.supervisor.stopping:
            self.stop()  # a stop cut short (Ctrl-C): finish it, then start anew
        if self.supervisor is not None:  # started already: only the wait is left to do
            if wait:
                self.supervisor.wait_running(timeout)
            return self
        quiet_logging()
        fresh = self._validate(self.config)
        path = fresh.run_path().resolve()
        self.taps.start(fresh)
        held = holds_run(path)  # by another session of this process
        try:
            supervisor = Supervisor(fresh, config_path=prepare_run_folder(fresh))
        except BaseException as e:  # the run folder or the supervisor's set-up: nothing started
            self.taps.stop()
            if not held:
                unlock_run(path)
            if isinstance(e, TemporaryError) and (clash := started_by_another(path, self)):
                raise clash from e
            raise
        self.supervisor, STARTED[path] = supervisor, self  # this session's to stop from now
        stop_at_exit(self)
        try:
            supervisor.start(wait=wait, timeout=timeout)
        except BaseException as e:  # not started (a port taken, Ctrl-C): nothing kept
            if not isinstance(e, TimeoutError):  # (that one started: not all running yet)
                self.stop()  # a second Ctrl-C cuts it short: the next stop or start ends it
            raise
        return self

    @classmethod
    def running(cls, run_id: str) -> Workbench:
        """The started `Workbench` of ``run_id`` in this kernel (one a re-run cell rebound).

        Raises:
            ConfigurationError: none runs it.
        """
        return running(run_id)

    def stop(self) -> None:
        """Stop every runner and the taps (the buffers keep their rows)."""
        for d in self._dashboards:
            d.close()
        self._dashboards.clear()
        try:  # a Ctrl-C in the middle keeps the supervisor: `stop` or `start` ends it
            if self.supervisor is not None:
                path = self.supervisor.run_path.resolve()
                self.supervisor.stop()
                self.supervisor = None
                if STARTED.get(path) is self:
                    del STARTED[path]
        finally:
            self.taps.stop()

    close = stop

    def __enter__(self) -> Workbench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_running(self, timeout: float = 30.0) -> None:
        """Block until every runner is running."""
        self._sup().wait_running(check_seconds(timeout, "timeout"))

    def restart(self, runner: str) -> None:
        """Restart one runner (e.g. ``"sr-1"`` after changing its code)."""
        self._sup().restart_runner(runner)

    def stop_runner(self, runner: str) -> None:
        """Stop one runner on purpose (it stays stopped)."""
        self._sup().stop_runner(runner)

    def start_runner(self, runner: str) -> None:
        """Start a stopped or failed runner."""
        self._sup().start_runner(runner)

    def subscribe(self, callback: Any) -> Any:
        """Call ``callback(SupervisorEvent)`` on every supervisor event; returns an unsubscriber.

        Raises:
            TypeError: ``callback`` cannot be called (it would fail on every event).
        """
        return self._sup().subscribe(check_callable(callback, "callback"))

    # -- looking -----------------------------------------------------------------------

    @property
    def ticks(self) -> Ring:
        """Ticks as the gateway published them (ring buffer; ``.frame(last=N)``)."""
        return self.taps.ticks

    @property
    def signals(self) -> Ring:
        """Signals as the executor received them."""
        return self.taps.signals

    @property
    def fills(self) -> Ring:
        """Fills."""
        return self.taps.fills

    @property
    def events(self) -> Ring:
        """Every executor event (orders, fills, alerts, end-of-stream)."""
        return self.taps.events

    @property
    def supervisor_events(self) -> list[SupervisorEvent]:
        """Recent supervisor events (state changes, restarts, alerts)."""
        return list(self.supervisor.events) if self.supervisor else []

    def status_rows(self) -> list[dict[str, Any]]:
        """`status` as plain dicts (what the dashboard draws)."""
        return [status_row(s) for s in self.supervisor.status()] if self.supervisor else []

    def status(self) -> Any:
        """One row per runner: state, pid, uptime, restarts, heartbeat age, rates, latency."""
        import pandas as pd

        return pd.DataFrame(self.status_rows(), columns=list(STATUS_COLUMNS)).set_index("runner")

    def levels(self) -> list[dict[str, Any]]:
        """Every condition's state and levels, from the heartbeats of running strategies.

        A strategy stopped, failed or (re)starting holds no levels: its last
        heartbeat's are not drawn as if they were watched.
        """
        return condition_levels(self.supervisor.status() if self.supervisor else [])

    def positions(self) -> dict[str, float]:
        """Net position per symbol, from the executor."""
        ex = self._executor_extra()
        return dict(ex.positions) if ex is not None else {}

    def pnl(self) -> float:
        """Realized PnL so far, from the executor."""
        ex = self._executor_extra()
        return ex.realized_pnl if ex is not None else 0.0

    # -- the kill switch -----------------------------------------------------------------

    def halt(self, flatten: bool = False, *, timeout_s: float | None = None) -> dict[str, Any]:
        """Stop every new order now; with ``flatten``, then close every position.

        ``timeout_s`` defaults to 3 s, 10 s with ``flatten``.

        The executor acts before the next signal and journals it, so it stays
        halted across restarts until `resume`. It halts even when it cannot
        close a position (no market price yet, closing orders still open...).

        Returns:
            The executor's answer: ``trading_state``, ``reason``, ``positions``;
            with ``flatten`` also ``not_flattened`` (empty: every position closed).

        Raises:
            FlattenIncomplete: with ``flatten``, a position is still open; it
                names each symbol and why (``.not_flattened``), and carries the
                answer (``.reply``). The executor is HALTED nonetheless.
            TemporaryError: no executor answered, or it refused.
            ConfigurationError: another pipeline's executor answered (its run id).
            TypeError: ``flatten`` is not True or False; nothing was sent.
        """
        from workbench.exceptions import FlattenIncomplete
        from workbench.notebook.control import not_flattened, send_command

        flatten = check_flag(flatten, "flatten")  # "False" flattened every position
        reply = send_command(
            self._live, "halt", {"flatten": True} if flatten else {}, timeout_s=timeout_s
        )
        left = not_flattened(reply) if flatten else {}
        if left:
            log.warning("flatten_incomplete", not_flattened=left)
            raise FlattenIncomplete(left, reply)
        return reply

    def resume(self, *, timeout_s: float | None = None) -> dict[str, Any]:
        """Let orders out again after a halt."""
        from workbench.notebook.control import send_command

        return send_command(self._live, "resume", timeout_s=timeout_s)

    def reduce(self, *, timeout_s: float | None = None) -> dict[str, Any]:
        """Only shrinking orders from now; resting orders that would grow a position cancelled."""
        from workbench.notebook.control import send_command

        return send_command(self._live, "reduce", timeout_s=timeout_s)

    def trading_state(self) -> str:
        """ACTIVE, REDUCING or HALTED as of the executor's last heartbeat.

        '' before one, and while the executor (when this host runs it) is
        stopped or failed: it trades in no state then.
        """
        ex = self._executor_extra()
        if ex is None or self.supervisor is None:
            return ""
        name = self._live.executor.id
        here = {s.runner: s.state for s in self.supervisor.status()}
        if here.get(name) in (RunnerState.STOPPED, RunnerState.FAILED):
            return ""
        return ex.trading_state

    def _executor_extra(self) -> ExecutorExtra | None:
        if self.supervisor is None:
            return None
        hb = self.supervisor.heartbeat(self._live.executor.id)
        return ExecutorExtra.from_wire(hb.extra) if hb else None

    def logs(self, runner: str | None = None, level: str | None = None, last: int = 200) -> Any:
        """Recent runner log lines as a DataFrame, optionally for one runner / level and up.

        Raises:
            ConfigurationError: ``level`` is not one of debug, info, warning,
                error, critical; ``last`` is not a whole number >= 0; or no
                runner is named ``runner``.
        """
        from workbench.notebook.log_frame import log_frame

        sup = self.supervisor
        rows = sup.logs.recent(runner) if sup is not None else []
        known = {s.runner for s in sup.status()} if sup is not None else None
        return log_frame(rows, level=level, last=last, runner=runner, known=known)

    def dashboard(self, **options: Any) -> Any:
        """The live dashboard widget (runner table, price chart, logs).

        The one made before stops redrawing (a re-run cell left its thread
        running, and its CPU).

        Args:
            **options: Passed to `Dashboard` (``refresh_hz``, ``points``, ...).

        Raises:
            ConfigurationError: ``refresh_hz`` is not from 0.0001 to 100.
        """
        from workbench.notebook.dashboard import Dashboard

        d = Dashboard(self, **options)
        for old in self._dashboards:
            old.close()
        self._dashboards[:] = [d]
        return d.widget

    # -- tuning and promotion ----------------------------------------------------------

    def apply(self, *, wait: bool = True, timeout: float = 30.0) -> list[str]:
        """Validate the edited `config` and restart only the runners it changes.

        With ``wait``, returns once the restarted runners are running again.

        Returns:
            The runners restarted or started.

        Raises:
            ConfigurationError: the edited config is invalid; nothing was restarted.
        """
        # `config` stays the user's object: a handle taken from it before
        # (``conds = wb.config.strategies[0].params["conditions"]``) edits
        # what the next `apply` and `save_config` read. The supervisor keeps
        # its own copy of the validated config.
        check_flag(wait, "wait")  # "no" waited; 0 timed out a restart that was done
        check_seconds(timeout, "timeout")
        fresh = self._validate(self.config)
        if self.supervisor is None:
            return []
        sup = self.supervisor
        before = {s.runner: s.pid for s in sup.status()}
        restarted = sup.apply_config(fresh)
        if wait and restarted:
            wait_restarted(sup, restarted, before, timeout)
        return restarted

    def save_config(self, path: str | Path) -> Path:
        """Write the (validated) config as TOML for ``workbench up --config PATH``."""
        return self._validate(self.config).save(path)

    @staticmethod
    def _validate(cfg: WorkbenchConfig) -> WorkbenchConfig:
        """A validated copy of ``cfg``, numpy scalars (a DataFrame's cells) made Python's."""
        data = plain(cfg.model_dump())
        fresh = build_config(data, base_dir=cfg.base_dir, source=cfg.source)
        carry_secrets(cfg, fresh)  # never dumped: one set in code would be lost
        problems = check_config(fresh)
        if problems:
            raise ConfigurationError("\n".join(problems), problems)
        return fresh

    @property
    def _live(self) -> WorkbenchConfig:
        """What runs (`config` may hold edits not applied), or `config` when stopped."""
        return self.supervisor.config if self.supervisor is not None else self.config

    def _sup(self) -> Supervisor:
        if self.supervisor is None:
            raise ConfigurationError("the workbench is not started: call wb.start() first")
        return self.supervisor

    def __repr__(self) -> str:
        state = "stopped" if self.supervisor is None else "started"
        return f"<Workbench run_id={self.config.run_id!r} {state} from {self.config.source}>"
