"""Promotion: a replay that passes named thresholds becomes a config for headless runs."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import PromotionRecord, load_config
from workbench.exceptions import ConfigurationError, WorkbenchError
from workbench.replays.stats import from_json


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold: ``name`` of the summary held against ``limit``."""

    name: str
    limit: float
    value: float | None
    ok: bool
    of: str = ""
    """The figure held, when its name is not the threshold's (``oos_net_pnl_after_fees``)."""

    def __post_init__(self) -> None:
        # An infinite PnL (a qty of 1e308) is no result: it passes no threshold.
        if self.ok and not _finite(self.value):
            object.__setattr__(self, "ok", False)

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        of = f" ({self.of})" if self.of else ""
        return f"{self.name}{of}: {self.value} vs limit {self.limit} ({verdict})"


def _reader(data: dict, source: str) -> Callable[[str], float | None]:
    """Reads a figure of ``data`` (from file ``source``): a number, or None when null.

    Raises:
        ConfigurationError: the figure is neither (the file was edited or damaged).
    """

    def read(key: str) -> float | None:
        raw = data.get(key)
        v = from_json(raw)  # "+inf"/"-inf" back to floats
        if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
            return v
        raise ConfigurationError(f"{source}: {key}: not a number (got {raw!r})")

    return read


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class PromotionRefused(WorkbenchError):
    """The replay did not meet every threshold; nothing was written."""

    def __init__(self, checks: list[Check]) -> None:
        failed = [c for c in checks if not c.ok]
        super().__init__("not promoted: " + "; ".join(str(c) for c in failed))
        self.checks = checks


def evaluate(
    summary: dict,
    *,
    max_drawdown: float | None = None,
    min_trades: int | None = None,
    min_net_pnl: float | None = None,
    min_win_rate: float | None = None,
    min_sharpe: float | None = None,
    min_oos_net_pnl: float | None = None,
    min_oos_positive_windows: float | None = None,
    oos: dict | None = None,
) -> list[Check]:
    """Hold a replay summary against the thresholds given (None = not checked).

    ``max_drawdown`` is a magnitude in price units (the summary's drawdown is <= 0).
    Without ``min_trades`` the replay must have closed at least one trade: one
    that never traded has no drawdown and no loss, and would pass those gates
    with nothing judged (``min_trades=0`` allows it).
    The ``min_oos_*`` thresholds hold the walk-forward report ``oos`` (what a
    sweep writes to ``walk_forward.json``), both after fees: the out-of-sample
    net PnL after fees summed over the test windows
    (``oos_net_pnl_after_fees``), and the share of test windows whose PnL
    after fees is positive (``oos_positive_windows_after_fees``). With either,
    every test window must have run (``failed_windows`` 0): a failed or
    skipped window adds nothing to the sum.

    Raises:
        ConfigurationError: no threshold given, an out-of-sample threshold
            without a walk-forward report, or a PnL threshold on a summary or
            report written before the after-fees figures.
    """
    checks = []
    figure, reported = _reader(summary, "summary.json"), _reader(oos or {}, "walk_forward.json")
    if max_drawdown is not None:  # null: not finite (a qty of 1e308), which passes nothing
        v = figure("max_drawdown")
        v = None if v is None else abs(v)
        checks.append(Check("max_drawdown", max_drawdown, v, v is not None and v <= max_drawdown))
    if min_trades is not None:
        v = figure("trades")
        checks.append(Check("min_trades", min_trades, v, v is not None and v >= min_trades))
    if min_net_pnl is not None:  # after fees, as the account sees it (and the OOS gate)
        v = figure("net_pnl_after_fees")
        if v is None:
            raise ConfigurationError(
                "min_net_pnl holds the replay's net_pnl_after_fees, which its summary "
                "(written before that figure) lacks: run the replay again"
            )
        checks.append(Check("min_net_pnl", min_net_pnl, v, v >= min_net_pnl, "net_pnl_after_fees"))
    if min_win_rate is not None:
        v = figure("win_rate")
        checks.append(Check("min_win_rate", min_win_rate, v, v is not None and v >= min_win_rate))
    if min_sharpe is not None:
        v = figure("sharpe")  # "+inf": equal winning trades, zero spread
        checks.append(Check("min_sharpe", min_sharpe, v, v is not None and v >= min_sharpe))
    oos_limits = {  # threshold -> the report's figure (after fees) it holds
        "min_oos_net_pnl": ("oos_net_pnl_after_fees", min_oos_net_pnl),
        "min_oos_positive_windows": ("oos_positive_windows_after_fees", min_oos_positive_windows),
    }
    for name, (key, limit) in oos_limits.items():
        if limit is None:
            continue
        if not oos:
            raise ConfigurationError(
                f"{name} needs a walk-forward report (walk_forward.json); run "
                "`workbench sweep --walk-forward ... --out DIR` and promote DIR/best"
            )
        if key not in oos:
            raise ConfigurationError(
                f"{name} holds {key}, which this walk_forward.json has not (written "
                "before PnL after fees was reported); run the sweep again"
            )
        v = reported(key)
        checks.append(Check(name, limit, v, v is not None and v >= limit, of=key))
    if oos and any(limit is not None for _, limit in oos_limits.values()):
        # A window that failed or was skipped adds nothing to the sums: it must not pass.
        failed = reported("failed_windows")
        if failed is None:
            raise ConfigurationError(
                "this walk_forward.json does not count its failed windows (written before "
                "they were counted); run the sweep again"
            )
        checks.append(Check("max_oos_failed_windows", 0, failed, failed == 0, "failed_windows"))
    if not checks:
        raise ConfigurationError("give at least one threshold to promote against")
    if min_trades is None:  # no trade: no drawdown, no loss, nothing judged (0 allows it)
        v = figure("trades")
        checks.append(Check("min_trades", 1, v, v is not None and v >= 1, "trades, by default"))
    return checks


def promote(replay_dir: str | Path, out: str | Path, **thresholds: Any) -> Path:
    """Write ``out`` from a saved replay if it passes ``thresholds``.

    The written config is the one the replay ran, with a ``[promotion]``
    section recording the replay, its fills hash and the checks it met. A
    sweep's ``best/`` folder also holds ``walk_forward.json``, which the
    ``min_oos_*`` thresholds read.

    Raises:
        ConfigurationError: the folder is not a saved replay.
        PromotionRefused: a threshold failed; nothing was written.
    """
    folder = Path(replay_dir)
    try:
        summary = json.loads((folder / "summary.json").read_text())
        fills_sha = (folder / "fills.sha256").read_text().strip()
    except FileNotFoundError as e:
        raise ConfigurationError(f"{folder}: not a saved replay ({e.filename} missing)") from e
    except json.JSONDecodeError as e:
        raise ConfigurationError(f"{folder / 'summary.json'}: not valid JSON: {e}") from e
    if not isinstance(summary, dict):
        raise ConfigurationError(
            f"{folder / 'summary.json'}: not a replay summary (a JSON object), "
            f"got {type(summary).__name__}"
        )
    if summary.get("fills_sha256") not in (None, fills_sha):
        raise ConfigurationError(f"{folder}: fills.sha256 does not match summary.json")
    oos = None
    if (folder / "walk_forward.json").exists():
        try:
            oos = json.loads((folder / "walk_forward.json").read_text())
        except json.JSONDecodeError as e:
            raise ConfigurationError(f"{folder / 'walk_forward.json'}: not valid JSON: {e}") from e
        if not isinstance(oos, dict) or oos.get("fills_sha256") != fills_sha:
            # A replay saved over a sweep's best/ since: the report judged other parameters.
            raise ConfigurationError(
                f"{folder / 'walk_forward.json'} is not this replay's walk-forward report "
                "(its fills differ, or it predates the check); run the sweep again"
            )
    checks = evaluate(summary, oos=oos, **thresholds)
    if not all(c.ok for c in checks):
        raise PromotionRefused(checks)
    _check_unchanged(folder)
    # As the replay ran: this shell's WORKBENCH__ variables are not the replay's.
    cfg = load_config(folder / "config.toml", environment=False)
    cfg.promotion = PromotionRecord(
        replay=str(folder.resolve()),
        fills_sha256=fills_sha,
        promoted_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        checks={c.name: float(c.limit) for c in checks},
        summary={
            k: summary[k]
            for k in ("trades", "net_pnl", "max_drawdown", "win_rate")
            if _finite(summary.get(k))  # TOML has no null
        },
    )
    return cfg.save(out)


def _check_unchanged(folder: Path) -> None:
    """The replay's data and config are still what ran (its figures hold for them).

    Raises:
        ConfigurationError: either changed since (or the replay predates the
            hashes): replay again.
    """
    from workbench.replays.session import content_sha256

    try:
        run = json.loads((folder / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigurationError(f"{folder / 'run.json'}: cannot read it: {e}") from e
    if "data_sha256" not in run or "config_sha256" not in run:
        raise ConfigurationError(
            f"{folder}: the replay does not record what its data and config were "
            "(saved before they were hashed); replay again"
        )
    data = Path(run.get("data_path", ""))
    for what, path, want in (
        ("config", folder / "config.toml", run["config_sha256"]),
        ("data", data, run["data_sha256"]),
    ):
        try:
            same = content_sha256(path) == want
        except OSError as e:
            raise ConfigurationError(f"{folder}: its {what} {path}: {e.strerror or e}") from e
        if not same:
            raise ConfigurationError(
                f"{folder}: its {what} {path} changed since the replay: its figures are "
                "not this one's; replay again (or sweep again) and promote that"
            )
