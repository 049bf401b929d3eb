"""Wire replay details: Parquet files, the speed factor, headless stop by signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT, make_config
from pipeline_support import COND_B, COND_S, PAD, write_ticks

from workbench.replays import replay

pytestmark = pytest.mark.integration


def test_parquet_replay_over_the_wire_matches_the_csv_twin():
    from_csv = replay(
        ROOT / "configs/demo.toml", ROOT / "data/ticks/synth-ABC-5000.csv", mode="fast"
    )
    from_pq = replay(
        ROOT / "configs/demo.toml", ROOT / "data/ticks/synth-ABC-5000.parquet", progress=False
    )
    assert from_pq.summary == from_csv.summary and from_pq.summary["fills"] > 0


def test_speed_factor_paces_the_replay_by_tick_time(tmp_path):
    data = write_ticks(tmp_path / "ticks.csv")  # ticks 1 ms apart: ~3.0 s of market time
    cfg = make_config(
        tmp_path, strategies=[{"id": "sr", "params": {"conditions": [COND_B, COND_S]}}]
    )
    span_s = (PAD + 10) / 1000
    t0 = time.monotonic()
    result = replay(cfg, data, speed=4.0, progress=False)
    assert time.monotonic() - t0 >= span_s / 4.0  # a lower bound: never faster than asked
    assert result.summary["fills"] == 4 and result.run["speed"] == 4.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_stops_everything_on_a_signal(tmp_path, sig):
    cfg = make_config(tmp_path)
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "up",
            "--config",
            str(cfg.save(tmp_path / "c.toml")),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        logs = tmp_path / "runs" / "test" / "logs" / "gateway.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "runner_started" not in (
            logs.read_text() if logs.exists() else ""
        ):
            time.sleep(0.1)
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "runner_stopped" in logs.read_text()


@pytest.mark.parametrize("prefix", ["WORKBENCH__", "workbench__"])  # pydantic reads both
def test_environment_overrides_are_resolved_once_not_again_in_the_runners(
    tmp_path, monkeypatch, prefix
):
    monkeypatch.setenv(f"{prefix}RUN_ID", "someone-elses-run")
    monkeypatch.setenv(f"{prefix}BUS__TELEMETRY_ADDRESS", f"ipc://{tmp_path}/elsewhere")
    result = replay(ROOT / "configs/demo.toml", progress=False, timeout_s=60)
    assert result.summary["fills"] > 0


def test_a_strategy_outside_replay_subscribers_still_trades_in_a_wire_replay(tmp_path):
    # Never echoed, it dropped every tick and the replay hung for want of its
    # end-of-stream. Unpaced, it gets only what comes after it joins: at real
    # time COND_S trades ~3 s after the start (COND_B within 6 ms, too early
    # for a strategy nobody waits for), and it joins within milliseconds.
    data = write_ticks(tmp_path / "ticks.csv")
    cfg = make_config(
        tmp_path,
        gateway={"feed": "replay", "replay": {"subscribers": ["sr-1"]}},
        strategies=[
            {"id": "sr-1", "params": {"conditions": [COND_B, COND_S]}},
            {"id": "sr-2", "params": {"conditions": [COND_S]}},
        ],
    )
    result = replay(cfg, data, speed=1.0, progress=False, timeout_s=60)
    assert result.fills["strategy_id"].value_counts().to_dict() == {"sr-1": 4, "sr-2": 2}


@pytest.mark.parametrize(
    ("sig", "code", "says"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_an_interrupted_wire_replay_leaves_no_temporary_folder(tmp_path, sig, code, says):
    # Interrupted, its run folder and bus folder in the temp dir stayed, unnamed (SIGTERM:
    # without a word); only a failed replay keeps its run folder, named in its error.
    temp = tmp_path / "tmp"
    temp.mkdir()
    p = subprocess.Popen(  # -X faulthandler: if it hangs, SIGABRT prints where (below)
        [sys.executable, "-X", "faulthandler", "-m", "workbench.cli", "replay", "--config",
         str(ROOT / "configs/demo.toml"), "--speed", "1", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(temp)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        logs = []
        while time.monotonic() < deadline and not any(
            "runner_started" in f.read_text() for f in logs
        ):
            time.sleep(0.2)
            logs = list(temp.glob("wb-replay-*/*/logs/gateway.jsonl"))
        assert logs, "the replay never started"
        p.send_signal(sig)
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # every thread's stack, to find what held it
            p.send_signal(signal.SIGABRT)
            _, err = p.communicate(timeout=10)
            pytest.fail(f"still running 60 s after {sig.name}:\n{err}")
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == code and says in err, err
    assert list(temp.iterdir()) == []


def test_a_paced_wire_replay_has_its_pacing_on_top_of_the_timeout(tmp_path, monkeypatch):
    # The 600 s limit counted the pacing: 500 s of data at speed 0.8 needs 625 s by design,
    # and `workbench replay --speed 0.8` always failed "no end-of-stream after 600.0 s".
    from workbench.replays import session

    seen = []

    def run_wire(cfg, total, *, progress, timeout_s):
        seen.append(timeout_s)
        return [], [], 0, {}

    monkeypatch.setattr(session, "run_wire", run_wire)
    data = ROOT / "data/ticks/synth-ABC-5000.csv"  # 499.9 s from first tick to last
    for speed, limit in ((0.8, 600 + 499.9 / 0.8), (0.0, 600)):
        replay(ROOT / "configs/demo.toml", data, speed=speed, progress=False)
        assert seen.pop() == pytest.approx(limit, abs=0.2)
