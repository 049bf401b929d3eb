"""Configs with CURVE on: real key pairs in a temp folder, a tcp bus on free ports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from helpers import free_port, make_config

from workbench.config import WorkbenchConfig
from workbench.messaging.curve_keys import generate_keys


def tcp_bus() -> dict[str, str]:
    """Every bus address on a free loopback tcp port."""
    names = ("ticks", "signals", "events", "control", "telemetry", "command")
    ports: set[int] = set()
    while len(ports) < len(names):  # a free port can be handed out twice
        ports.add(free_port())
    pairs = zip(names, sorted(ports), strict=True)
    return {f"{n}_address": f"tcp://127.0.0.1:{p}" for n, p in pairs}


def curve_config(tmp_path: Path, *, strategies: list[dict] | None = None, **sections: Any):
    """A config with CURVE on over tcp, keys for every member and a ``tap``.

    Returns:
        ``(config, keys_dir)``.
    """
    keys_dir = tmp_path / "keys"
    ids = [s["id"] for s in strategies] if strategies else ["sr-1"]
    publics = generate_keys(keys_dir, ["gateway", "executor", *ids, "supervisor", "tap"])
    extra: dict[str, Any] = {"strategies": strategies} if strategies else {}
    cfg = make_config(
        tmp_path,
        bus={**tcp_bus(), "linger_ms": 200},
        security={"curve": True, "keys_dir": str(keys_dir), "public_keys": publics},
        **extra,
        **sections,
    )
    return cfg, keys_dir


def secret_keys(keys_dir: Path) -> list[str]:
    """Every z85 secret key in ``keys_dir`` (to grep logs and saved configs for)."""
    found = []
    for f in keys_dir.glob("*.key_secret"):
        found += re.findall(r'secret-key = "(.{40})"', f.read_text())
    return found


def assert_no_secret_in(folder: Path, secrets: list[str]) -> int:
    """Assert no file under ``folder`` holds any secret; returns how many files were read."""
    n = 0
    for f in folder.rglob("*"):
        if f.is_file() and f.suffix not in (".sqlite", ".key_secret"):
            text = f.read_text(errors="replace")
            for s in secrets:
                assert s not in text, f"a secret key is in {f}"
            n += 1
    return n


__all__ = ["WorkbenchConfig", "curve_config", "free_port", "secret_keys", "tcp_bus"]
