"""Building, loading and checking a config: errors name the file and the field."""

from __future__ import annotations

import copy
import os
import tempfile
import tomllib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError
from pydantic_settings import SettingsError

from workbench.config.model import _TOML_FILE, _USE_ENV, PATH_FIELDS, WorkbenchConfig
from workbench.exceptions import ConfigurationError
from workbench.exchanges.config import secrets_in_file

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def exposure_problems(cfg: WorkbenchConfig) -> list[str]:
    """Health and metrics leave loopback only behind a bearer token.

    Checked where the server starts (`workbench up`, `Supervisor`) and by
    `check_config`, not at load: the token is never saved, and runners load
    the saved copy.
    """
    sc = cfg.supervisor
    if sc.http_host in LOOPBACK_HOSTS or sc.http_token is not None:
        return []
    return [
        f"{cfg.source}: supervisor.http_host: {sc.http_host!r} is not a loopback address; "
        "set supervisor.http_token (e.g. WORKBENCH__SUPERVISOR__HTTP_TOKEN) to serve "
        "health and metrics to the network"
    ]


def _format_errors(e: ValidationError, source: str) -> list[str]:
    problems = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        got = err.get("input")
        field = str(err["loc"][-1]) if err["loc"] else ""
        secret = any(w in field for w in ("token", "secret", "key", "pass"))  # never echoed
        # nor an unknown field's: a mistyped secret (API_SECRT) went to stderr, and journald
        unknown = err["type"] == "extra_forbidden"
        hidden = secret or unknown or isinstance(got, dict | list) or got is None
        detail = "" if hidden else f" (got {got!r})"
        problems.append(f"{_origin(err['loc'], source)}: {loc}: {msg}{detail}")
    return problems


def _origin(loc: tuple[Any, ...], source: str, env: bool | None = None) -> str:
    """Where a field's value came from: its environment variable if one is set, else ``source``.

    The variable of a field, of a section above it (``WORKBENCH__A__B`` for
    ``a.b.c``), or of a field below it (``WORKBENCH__A__B__C`` for a check of
    section ``a.b``); a value from the environment must not be blamed on the
    file. ``env``: whether the variables were applied (default: the load's).
    """
    if not (_USE_ENV.get() if env is None else env):
        return source
    for n in range(len(loc), 0, -1):
        name = _env_name(loc[:n])
        if name is not None:
            return f"{source} (environment {name})"
    if loc:
        below = "WORKBENCH__" + "__".join(str(p).upper() for p in loc) + "__"
        names = sorted(k for k in os.environ if k.upper().startswith(below))
        if names:
            return f"{source} (environment {', '.join(names)})"
    return source


def _at(cfg: WorkbenchConfig, field: str) -> str:
    """``"<origin>: <field>"`` for a loaded config's ``field`` (``strategies[0]``): the file,
    or the environment variable that set it (`_origin`)."""
    loc = tuple(field.replace("[", ".").replace("]", "").split("."))
    return f"{_origin(loc, cfg.source, cfg._env)}: {field}"


def _env_name(loc: tuple[Any, ...]) -> str | None:
    """The environment variable set for field ``loc``, as it is spelt, or None.

    pydantic-settings reads the names in any case (``workbench__bus__linger_ms``).
    """
    wanted = "WORKBENCH__" + "__".join(str(p).upper() for p in loc)
    return next((k for k in os.environ if k.upper() == wanted), None)


def _anchor_env_paths(cfg: WorkbenchConfig) -> None:
    """A relative path from an environment variable is relative to where it was set.

    The shell's working folder, not the config file's: ``WORKBENCH__GATEWAY__
    REPLAY__PATH=mine.csv`` names ./mine.csv, as any path typed there would.
    """
    for loc in PATH_FIELDS if _USE_ENV.get() else ():
        name = _env_name(loc)
        if name is None:
            continue
        *sections, field = loc
        section: Any = cfg
        for s in sections:
            section = getattr(section, s)
        value = getattr(section, field)
        if value != os.environ[name]:
            continue  # given in code (`build_config`), which outranks the environment
        if value and not Path(value).expanduser().is_absolute():
            setattr(section, field, str((Path.cwd() / Path(value).expanduser()).resolve()))


def _validated(make: Callable[[], WorkbenchConfig], source: str) -> WorkbenchConfig:
    """``make()``, its errors as one `ConfigurationError` naming fields and variables."""
    problems = _unknown_env_sections(source) + _env_dict_keys(source) if _USE_ENV.get() else []
    if not problems:
        try:
            return make()
        except ValidationError as e:
            problems = _format_errors(e, source)
            cause: Exception = e
        except SettingsError as e:  # a variable holding a list or a section is not JSON
            field = str(e).partition('field "')[2].partition('"')[0]
            names = sorted(k for k in os.environ if _env_key(k)[:1] == [field])
            problems = [
                f"{source} (environment {', '.join(names) or 'WORKBENCH__' + field.upper()}): "
                f"{field}: cannot read it: a list or a section given in one variable must be "
                f"JSON (e.g. '[\"ABC\"]'): {e.__cause__ or e}"
            ]
            cause = e
        raise ConfigurationError("\n".join(problems), problems) from cause
    raise ConfigurationError("\n".join(problems), problems)


def _env_key(name: str) -> list[str]:
    """The field path a ``WORKBENCH__A__B`` variable sets (``[]`` for other variables)."""
    head, _, rest = name.partition("__")
    return rest.lower().split("__") if head.upper() == "WORKBENCH" and rest else []


def _unknown_env_sections(source: str) -> list[str]:
    """``WORKBENCH__`` variables that set no field: a typo must not drop a limit unseen.

    pydantic-settings ignores a variable whose first part names no field
    (``WORKBENCH__EXECUTOR_RISK__MAX_ORDER_QTY``); one inside a section is an
    unknown field like any other.
    """
    fields = set(WorkbenchConfig.model_fields)
    return [
        f"{source} (environment {name}): {key[0]!r} is no config section or field "
        f"(they are: {', '.join(sorted(fields))}; parts are separated by '__')"
        for name in sorted(os.environ)
        if (key := _env_key(name)) and key[0] not in fields
    ]


def _env_dict_keys(source: str) -> list[str]:
    """Variables naming one key of a table field (``..._BY_SYMBOL__ABC``): refused.

    A variable's name is read in lower case, keys too: ``ABC`` became ``abc``, and its
    position limit applied to no symbol, unseen (``recvWindow`` in exchange options,
    alike). One variable holding the table as JSON keeps the keys' case.
    """
    out = []
    for name in sorted(os.environ):
        model: Any = WorkbenchConfig
        key = _env_key(name)
        for i, part in enumerate(key[:-1]):
            if (field := getattr(model, "model_fields", {}).get(part)) is None:
                break
            # A broker's params are keyword names, lower case (PARAMS__FEE_BPS is fee_bps);
            # a table inside one (PARAMS__OPTIONS__recvWindow) loses its keys' case too.
            keyword = part == "params" and len(key) <= i + 2
            if typing.get_origin(field.annotation) is dict and not keyword:
                table = "__".join(name.split("__")[: i + 2])
                out.append(
                    f"{source} (environment {name}): {'.'.join(key[: i + 1])}: a table's keys "
                    "lose their case in a variable's name; set the whole table as JSON: "
                    f"{table}='{{\"{name.split('__')[i + 2]}\": ...}}'"
                )
                break
            model = field.annotation
    return out


def build_config(
    data: dict[str, Any] | None = None,
    *,
    base_dir: Path | None = None,
    source: str = "<code>",
    environment: bool = True,
) -> WorkbenchConfig:
    """A config from a dict (environment overrides still apply).

    Args:
        environment: Apply the ``WORKBENCH__`` variables; False builds ``data``
            alone: a copy of a config whose environment was applied where it
            was made (a sweep's config, rebuilt on a Dask worker with other
            variables).

    Raises:
        ConfigurationError: with one problem per invalid field.
    """
    # Deep copy: pydantic keeps `Any` values (strategy params) by reference, and
    # editing a config must never reach back into the caller's dicts.
    token = _USE_ENV.set(environment and _USE_ENV.get())
    try:
        cfg = _validated(lambda: WorkbenchConfig(**copy.deepcopy(data or {})), source)
        _anchor_env_paths(cfg)
        cfg._env = _USE_ENV.get()
    finally:
        _USE_ENV.reset(token)
    cfg._base_dir = (base_dir or Path.cwd()).resolve()
    cfg._source = source
    return cfg


def read_toml(p: Path) -> dict[str, Any]:
    """The TOML document in ``p``.

    Raises:
        ConfigurationError: missing or unreadable file, not UTF-8, or bad TOML,
            naming the file (and the line and column, or the byte).
    """
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as e:
        raise ConfigurationError(f"{p}: config file not found") from e
    except OSError as e:
        raise ConfigurationError(f"{p}: cannot read config file: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ConfigurationError(
            f"{p}: not UTF-8 text (byte {e.start}: {e.object[e.start : e.start + 1]!r});"
            " TOML files are UTF-8"
        ) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"{p}: invalid TOML: {e}") from e


def load_config(path: str | Path, *, environment: bool = True) -> WorkbenchConfig:
    """Load and validate a TOML config file, with environment overrides.

    Args:
        environment: Apply the ``WORKBENCH__`` variables; False reads the file
            alone (a run's saved config, as it ran).

    Raises:
        ConfigurationError: unreadable file, bad TOML, or invalid fields; each
            problem names the file and the field.
    """
    p = Path(path).expanduser()
    raw = read_toml(p)  # syntax first, for an error with line and column
    leaked = secrets_in_file(raw, str(p))
    if leaked:
        raise ConfigurationError("\n".join(leaked), leaked)
    token, env = _TOML_FILE.set(p), _USE_ENV.set(environment)
    try:
        cfg = _validated(WorkbenchConfig, str(p))
        _anchor_env_paths(cfg)
    finally:
        _TOML_FILE.reset(token)
        _USE_ENV.reset(env)
    cfg._base_dir = p.resolve().parent
    cfg._source = str(p)
    cfg._env = environment
    return cfg


def live_risk_problems(cfg: WorkbenchConfig) -> list[str]:
    """A pipeline on a live feed must have order and position limits.

    Returns:
        One message per missing limit, naming the file and the field.
    """
    if cfg.gateway.feed == "replay":
        return []
    risk = cfg.executor.risk
    return [
        f"{_at(cfg, f'executor.risk.{name}')}: must be set (> 0) when "
        f"gateway.feed is {cfg.gateway.feed!r}, not a replay"
        for name in ("max_order_qty", "max_position_qty")
        if not getattr(risk, name)
    ] + [
        f"{_at(cfg, f'executor.risk.max_position_qty_by_symbol.{sym}')}: 0 turns the position "
        f"limit off for {sym}; when gateway.feed is {cfg.gateway.feed!r} every symbol needs one"
        for sym, limit in risk.max_position_qty_by_symbol.items()
        if not limit
    ]


COMMAND_FIELDS = ("run_id", "bus", "security")
"""What ``halt``, ``resume`` and ``state`` need of a config: whom to ask, where, with which keys
(and the runners' ids, which the keys are checked against)."""


_ID_FIELDS = (["gateway", "id"], ["executor", "id"])


def load_command_config(path: str | Path) -> WorkbenchConfig:
    """``path``'s `COMMAND_FIELDS` alone (and their environment overrides), the rest at defaults.

    For the kill switch when the whole config does not load: a typo in a
    section it does not use must never stop a halt. The executor refuses a
    command for another run, so nothing else is needed to reach the right one.

    Raises:
        ConfigurationError: unreadable file, bad TOML, or one of those fields invalid.
    """
    p = Path(path).expanduser()
    raw = read_toml(p)
    kept: dict[str, Any] = {k: v for k, v in raw.items() if k in COMMAND_FIELDS}
    # The runners' ids too (their CURVE keys are checked against them), nothing else of them.
    for role in ("gateway", "executor"):
        if isinstance(raw.get(role), dict) and "id" in raw[role]:
            kept[role] = {"id": raw[role]["id"]}
    if isinstance(raw.get("strategies"), list):
        strategies = [s for s in raw["strategies"] if isinstance(s, dict) and "id" in s]
        kept["strategies"] = [{"id": s["id"]} for s in strategies]
    hidden = {
        k: v
        for k, v in os.environ.items()
        if (key := _env_key(k)) and key[0] not in COMMAND_FIELDS and key[:2] not in _ID_FIELDS
    }
    for k in hidden:
        del os.environ[k]
    source = f"{p} ({', '.join(COMMAND_FIELDS)} only)"
    # Read as a file, as `load_config` reads one: the variables then win field by field
    # (given as fields, the file's values won; a section's JSON variable lost the rest).
    fd, kept_file = tempfile.mkstemp(suffix=".toml")
    token, env = _TOML_FILE.set(Path(kept_file)), _USE_ENV.set(True)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(tomli_w.dumps(kept))
        cfg = _validated(WorkbenchConfig, source)
        _anchor_env_paths(cfg)
    finally:
        _TOML_FILE.reset(token)
        _USE_ENV.reset(env)
        os.unlink(kept_file)
        os.environ.update(hidden)
    cfg._base_dir = p.resolve().parent
    cfg._source = source
    return cfg
