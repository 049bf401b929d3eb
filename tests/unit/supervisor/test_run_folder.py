"""The run-folder step: archive an earlier replay, write config.toml, leave live runs be."""

from __future__ import annotations

import pytest

from workbench.config import build_config, load_config
from workbench.supervisor import Supervisor
from workbench.supervisor.run_folder import prepare_run_folder


def config(tmp_path, feed: str = "simulated"):
    data = {"runtime": {"run_dir": str(tmp_path / "runs")}, "gateway": {"feed": feed}}
    if feed == "replay":
        (tmp_path / "t.csv").write_text("ts,symbol,price,size\n")
        data["gateway"] = {"feed": "replay", "replay": {"path": str(tmp_path / "t.csv")}}
    return build_config(data, base_dir=tmp_path)


def test_writes_the_config_every_runner_reads(tmp_path):
    cfg = config(tmp_path)
    path = prepare_run_folder(cfg)
    assert path == cfg.run_path() / "config.toml"
    assert load_config(path).run_id == cfg.run_id


def test_a_replay_archives_the_previous_run_folder(tmp_path):
    cfg = config(tmp_path, "replay")
    cfg.run_path().mkdir(parents=True)
    (cfg.run_path() / "journal.sqlite").write_text("old")
    prepare_run_folder(cfg)
    others = cfg.run_path().parent.iterdir()
    archived = [p for p in others if p != cfg.run_path() and p.suffix != ".lock"]
    assert len(archived) == 1 and (archived[0] / "journal.sqlite").read_text() == "old"
    assert sorted(p.name for p in cfg.run_path().iterdir()) == ["config.toml"]


def test_a_live_run_resumes_from_its_folder(tmp_path):
    cfg = config(tmp_path)
    cfg.run_path().mkdir(parents=True)
    (cfg.run_path() / "journal.sqlite").write_text("keep")
    prepare_run_folder(cfg)
    assert (cfg.run_path() / "journal.sqlite").read_text() == "keep"
    assert [p.name for p in cfg.run_path().parent.iterdir() if p.suffix != ".lock"] == [
        cfg.run_path().name
    ]


def test_a_supervisor_given_the_path_does_not_touch_the_folder(tmp_path):
    cfg = config(tmp_path, "replay")
    path = prepare_run_folder(cfg)
    (cfg.run_path() / "marker").write_text("x")
    sup = Supervisor(cfg, config_path=path)
    assert sup.config_path == path and (cfg.run_path() / "marker").exists()
    Supervisor(cfg)  # without it: the supervisor runs the step itself
    assert not (cfg.run_path() / "marker").exists()


def test_a_live_run_on_a_replays_folder_moves_it_aside_and_starts_fresh(tmp_path):
    # A promoted config keeps the replay's run_id: going live must not resume
    # the replay's journal (its end-of-stream ended the live executor at once).
    replay = config(tmp_path, "replay")
    prepare_run_folder(replay)
    (replay.run_path() / "journal.sqlite").write_text("the replay's")
    live = config(tmp_path)
    assert live.run_path() == replay.run_path()
    prepare_run_folder(live)
    assert sorted(p.name for p in live.run_path().iterdir()) == ["config.toml"]
    others = live.run_path().parent.iterdir()
    archived = [p for p in others if p != live.run_path() and p.suffix != ".lock"]
    assert len(archived) == 1 and (archived[0] / "journal.sqlite").read_text() == "the replay's"
    (live.run_path() / "journal.sqlite").write_text("live")
    prepare_run_folder(live)  # a live run's own folder is resumed
    assert (live.run_path() / "journal.sqlite").read_text() == "live"


def test_a_supervisor_whose_start_failed_leaves_the_run_free(tmp_path):
    # Its claim stayed: the run could not be prepared again in this process.
    import socket

    from workbench.exceptions import TemporaryError
    from workbench.supervisor.run_folder import holds_run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg = config(tmp_path)
        cfg.supervisor.http_port = taken.getsockname()[1]
        sup = Supervisor(cfg, config_path=prepare_run_folder(cfg))
        with pytest.raises(TemporaryError, match="http_port"):
            sup.start()
    assert not holds_run(cfg.run_path())
    prepare_run_folder(cfg)  # free again
    assert holds_run(cfg.run_path())


def test_a_second_stop_of_an_old_supervisor_keeps_a_newer_ones_lock(tmp_path):
    from workbench.supervisor.run_folder import holds_run

    cfg = config(tmp_path)
    old = Supervisor(cfg)
    old.stop()
    assert not holds_run(cfg.run_path())
    new = Supervisor(cfg)
    old.stop()
    assert holds_run(cfg.run_path())  # still the new one's
    new.stop()
    assert not holds_run(cfg.run_path())


def test_a_run_after_a_simulated_run_that_ended_starts_fresh(tmp_path):
    """A max_ticks run's journal holds its end-of-stream: the next live run's executor
    read it, finished at once, and left the gateway and strategies running without it."""
    ended = config(tmp_path)
    ended.gateway.simulated.max_ticks = 100
    prepare_run_folder(ended)
    (ended.run_path() / "journal.sqlite").write_text("the ended run's")
    live = config(tmp_path)
    prepare_run_folder(live)
    assert sorted(p.name for p in live.run_path().iterdir()) == ["config.toml"]
    others = live.run_path().parent.iterdir()
    archived = [p for p in others if p != live.run_path() and p.suffix != ".lock"]
    assert len(archived) == 1 and (archived[0] / "journal.sqlite").read_text() == "the ended run's"


def test_a_run_folder_whose_config_cannot_be_written_names_run_dir_and_frees_the_run(tmp_path):
    """A folder named config.toml there: the error skipped the unlock, and this process
    held the run (a notebook kernel blocked every later `up` of it)."""
    from workbench.exceptions import ConfigurationError
    from workbench.supervisor.run_folder import holds_run

    cfg = config(tmp_path)
    (cfg.run_path() / "config.toml").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match=r"runtime\.run_dir: cannot prepare the run"):
        prepare_run_folder(cfg)
    assert not holds_run(cfg.run_path())
