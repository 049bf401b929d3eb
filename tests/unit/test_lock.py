"""constraints.txt keeps up with pyproject.toml (``make lock`` regenerates it)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import lock  # noqa: E402  (tools/ is not a package)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += extra
    names = {_norm(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in reqs}
    return names - {"workbench"}


def test_every_declared_dependency_is_pinned():
    missing = _declared() - set(_pinned())
    assert not missing, f"run `make lock`: {sorted(missing)} not in constraints.txt"


def test_constraints_pin_exact_versions_only():
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in _pinned().values())


def test_render_sorts_by_name_ignoring_case_and_underscores():
    text = lock.render({"tomli_w": "1.2", "Jinja2": "3.1", "pyzmq": "27"})
    pins = [line for line in text.splitlines() if not line.startswith("#")]
    assert pins == ["Jinja2==3.1", "pyzmq==27", "tomli_w==1.2"]


def test_render_leaves_out_nothing_it_was_given():
    pins = {"a": "1", "b": "2"}
    text = lock.render(pins)
    assert text.startswith("# ")
    assert text.count("==") == len(pins)
