"""A sweep on data that holds none of the conditions' symbols is refused before any cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import build_config, load_config
from workbench.exceptions import ConfigurationError
from workbench.marketdata import synth_ticks, write_ticks
from workbench.sweeps.sweep import sweep

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "demo.toml"
# Nothing listens here: a sweep that got past its checks fails to connect, and says so.
NO_SCHEDULER = {"scheduler": "tcp://127.0.0.1:1", "connect_timeout_s": 0.5}


def _sweep(config, data: Path) -> None:
    sweep(config, data, grid={"turning_point": [0.02, 0.05]}, progress=False, **NO_SCHEDULER)


def test_data_without_any_condition_symbol_is_refused_naming_both(tmp_path):
    # It ran every combination, reported success and a "best" of all-zero rows.
    data = write_ticks(synth_ticks("XYZ", 50, 1), tmp_path / "xyz.parquet")
    with pytest.raises(ConfigurationError, match=r"no condition symbol of the config \(ABC\)"):
        _sweep(CONFIG, data)
    with pytest.raises(ConfigurationError, match="its symbols: XYZ"):
        _sweep(CONFIG, data)
    abc = write_ticks(synth_ticks("ABC", 50, 1), tmp_path / "abc.parquet")
    with pytest.raises(ConfigurationError, match="cannot connect"):  # past the check
        _sweep(CONFIG, abc)


def test_a_strategy_without_conditions_has_no_symbol_to_check(tmp_path):
    data = write_ticks(synth_ticks("XYZ", 50, 1), tmp_path / "xyz.parquet")
    doc = load_config(CONFIG).model_dump()
    doc["strategies"][0]["params"] = {}
    cfg = build_config(doc, base_dir=CONFIG.parent, source=str(CONFIG))
    with pytest.raises(ConfigurationError, match="cannot connect"):
        _sweep(cfg, data)


def test_a_replay_of_data_without_any_condition_symbol_is_refused_as_a_sweep_is(tmp_path, capsys):
    # It replayed every tick, found 0 signals and exited 0, silently.
    from workbench.cli import main
    from workbench.replays.session import replay

    data = write_ticks(synth_ticks("XYZ", 50, 1), tmp_path / "xyz.parquet")
    says = r"no condition symbol of the config \(ABC\) is in the data .*its symbols: XYZ"
    with pytest.raises(ConfigurationError, match=says):
        replay(CONFIG, data, mode="fast", progress=False)
    out = tmp_path / "out"
    argv = ["replay", "--config", str(CONFIG), "--data", str(data), "--mode", "fast"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {CONFIG}: no condition symbol of the config (ABC)")
    assert "every replay of it would trade nothing" in err and not out.exists()
