"""CURVE on the bus: key pairs, a ZAP handler per binding process, refused handshakes counted.

With ``[security] curve = true`` every tcp socket of the bus is encrypted and
authenticated with ZeroMQ's CURVE. Each member of the pipeline (every runner
id, ``supervisor``, and read-only taps named ``tap...``) has a key pair; the
config lists the public keys, the secret keys stay in files (mode 0600) or the
environment (``WORKBENCH_SECRET_KEY_<NAME>``) and are never logged or saved.

Who may connect to what (the binder checks the client's key in its ZAP handler):

    ticks      (gateway binds)     strategies, taps, executor (market snapshots)
    control    (gateway binds)     strategies
    signals    (executor binds)    strategies
    events     (executor binds)    supervisor, taps
    telemetry  (supervisor binds)  gateway, executor, strategies
    command    (executor binds)    supervisor (the kill switch: `workbench halt`,
                                   a notebook's ``wb.halt()`` use its key pair)

A peer with an unlisted key (or no CURVE at all) never completes the
handshake, so it receives nothing and sends nothing. Each refused handshake
counts ``curve_handshakes_refused`` in the binder's telemetry and is logged
once per burst. The refused side never connects again by itself (libzmq), so
a runner refused fails (`check_peers`, exit 75) and its restart connects anew.
ipc endpoints are not encrypted; they must live in a folder only the owner
can open (0700).

A process installs its `BusSecurity` on its `zmq.Context` once (`install`);
the socket adapters then call `secure` for every socket they make.
"""

from __future__ import annotations

import os
import re
import stat
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import zmq

from workbench.config.sections import BUS_BINDERS
from workbench.exceptions import ConfigurationError, TemporaryError
from workbench.messaging.handshakes import (
    REFUSED_COUNTER,
    HandshakeMonitor,
    KeyList,
)
from workbench.telemetry import BurstLog, Telemetry

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

    from workbench.config import WorkbenchConfig

log = structlog.get_logger()

SUPERVISOR = "supervisor"
TAP_PREFIX = "tap"
SECRET_ENV_PREFIX = "WORKBENCH_SECRET_KEY_"
DOMAINS = ("ticks", "control", "signals", "events", "telemetry", "command")


def secret_env_name(name: str) -> str:
    """The environment variable that may hold ``name``'s z85 secret key."""
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def is_tap(name: str) -> bool:
    """True for the key names of read-only taps (``tap``, ``tap-notebook``...)."""
    return name.startswith(TAP_PREFIX)


def pipeline_members(config: WorkbenchConfig) -> list[str]:
    """Every name that needs a key pair in ``config`` (taps aside)."""
    return [config.gateway.id, config.executor.id, *(s.id for s in config.strategies), SUPERVISOR]


@dataclass(frozen=True)
class Identity:
    """One member's key pair (the secret is kept out of repr, logs and dumps)."""

    name: str
    public: bytes
    secret: bytes = field(repr=False)


def load_identity(config: WorkbenchConfig, name: str) -> Identity:
    """``name``'s key pair: the secret from the environment or ``keys_dir``.

    Raises:
        ConfigurationError: no public key listed, no secret found, or a secret
            that does not match the listed public key.
    """
    sec = config.security
    src = config.source
    public = sec.public_keys.get(name)
    if public is None:
        raise ConfigurationError(f"{src}: security.public_keys.{name}: missing (curve is on)")
    env = secret_env_name(name)
    raw = os.environ.get(env)
    if raw:
        secret, origin = raw.strip().encode(), f"environment variable {env}"
    else:
        if not sec.keys_dir:
            raise ConfigurationError(
                f"{src}: security.keys_dir: not set and {env} is empty; "
                f"cannot find the secret key of {name!r}"
            )
        path = config.resolve(sec.keys_dir) / f"{name}.key_secret"
        try:
            _check_private(path)
            from zmq.auth import load_certificate  # CURVE only: no zmq.auth in a plain runner

            _, secret_or_none = load_certificate(path)
        except (OSError, ValueError) as e:
            raise ConfigurationError(
                f"{src}: security.keys_dir: cannot read the secret key of {name!r} from {path}: {e}"
            ) from e
        if secret_or_none is None:
            raise ConfigurationError(f"{src}: security.keys_dir: {path} holds no secret key")
        secret, origin = secret_or_none, str(path)
    try:
        derived = zmq.curve_public(secret)
    except (zmq.ZMQError, ValueError) as e:
        raise ConfigurationError(f"{src}: the secret key of {name!r} ({origin}) is not z85") from e
    if derived.decode() != public:
        raise ConfigurationError(
            f"{src}: security.public_keys.{name}: does not match the secret key in {origin}"
        )
    return Identity(name, public.encode(), secret)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise OSError(f"mode {stat.filemode(mode)}; a secret key file must be 0600")


# -- per-process security ---------------------------------------------------------------


class BusSecurity:
    """CURVE keys, the ZAP handler and handshake monitoring of one process's context.

    Args:
        config: The run's config (its ``security`` and ``bus`` sections).
        name: Whose key pair this process uses (a runner id, ``supervisor``, ``tap...``).
        telemetry: Where refused handshakes are counted.
    """

    def __init__(self, config: WorkbenchConfig, name: str, telemetry: Telemetry) -> None:
        self.enabled = config.security.curve
        self.name = name
        self._source = config.source
        self._telemetry = telemetry
        self._log_interval_s = config.runtime.bad_frame_log_interval_s
        bus = config.bus
        self._domains = {
            bus.ticks_address: "ticks",
            bus.control_address: "control",
            bus.signals_address: "signals",
            bus.events_address: "events",
            bus.telemetry_address: "telemetry",
            bus.command_address: "command",
        }
        self._auth: ThreadAuthenticator | None = None
        self._monitor: HandshakeMonitor | None = None
        if not self.enabled:
            return
        self.identity = load_identity(config, name)
        keys = self._public_keys = config.security.public_keys
        gw, ex = config.gateway.id, config.executor.id
        strategies = {keys[s.id] for s in config.strategies if s.id in keys}
        taps = {k for n, k in keys.items() if is_tap(n)}
        self._allowed: dict[str, set[str]] = {
            # The executor reads the gateway's market snapshots (collar, staleness, flatten).
            "ticks": strategies | taps | {keys[ex]},
            "control": set(strategies),
            "signals": set(strategies),
            # Strategies read their acks, end-of-stream echo and order outcomes here.
            "events": {keys[SUPERVISOR]} | strategies | taps,
            "telemetry": {keys[gw], keys[ex]} | strategies,
            "command": {keys[SUPERVISOR]},  # the operator's kill switch, not a tap's
        }
        ids = {"gateway": gw, "executor": ex, "supervisor": SUPERVISOR}
        self._server_keys = {d: keys[ids[role]].encode() for d, role in BUS_BINDERS.items()}
        telemetry.inc(REFUSED_COUNTER, 0)  # exported as 0 from the start: alerts use increase()

    def secure(self, sock: zmq.Socket, address: str, *, server: bool) -> None:
        """Set ``sock`` up for ``address`` before it binds (``server``) or connects.

        Raises:
            ConfigurationError: an ipc folder others can open, with CURVE on.
        """
        if address.startswith("ipc://"):
            private_ipc_dir(address, strict=self.enabled, source=self._source)
            return
        if not self.enabled or not address.startswith("tcp://"):
            return
        domain = self._domains.get(address)
        if domain is None:
            raise ConfigurationError(f"{self._source}: {address} is not a bus address")
        sock.curve_secretkey = self.identity.secret
        sock.curve_publickey = self.identity.public
        if server:
            self._start_auth(sock.context)
            sock.zap_domain = domain.encode()
            sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # fail closed without a handler
            sock.curve_server = True
            assert self._monitor is not None
            self._monitor.add(sock, domain)
        else:
            sock.curve_serverkey = self._server_keys[domain]
            self._monitor_of().add(sock, domain, client=True)

    def _monitor_of(self) -> HandshakeMonitor:
        if self._monitor is None:
            self._monitor = HandshakeMonitor(
                self._telemetry, BurstLog("curve_handshake_refused", self._log_interval_s)
            )
        return self._monitor

    def refused_by_peer(self, domain: str | None = None) -> str | None:
        """Why a binder refused one of our connections (of ``domain``), or None.

        libzmq does not connect again after such a refusal: the caller must
        make the connection anew (a runner restarts, see `check_peers`).
        """
        mon = self._monitor
        found = list(mon.refused_by_peer) if mon is not None else []
        for d, endpoint in found:
            if domain is None or d == domain:
                return (
                    f"{d} at {endpoint} refused the CURVE handshake: it does not list "
                    f"{self.name}'s public key {self.identity.public.decode()} "
                    f"(security.public_keys.{self.name} in its config)"
                )
        return None

    def _start_auth(self, ctx: zmq.Context) -> None:
        if self._auth is not None:
            return
        from zmq.auth.thread import ThreadAuthenticator

        self._auth = ThreadAuthenticator(ctx)
        self._auth.start()
        names = {key: name for name, key in self._public_keys.items()}
        for domain in DOMAINS:
            burst = BurstLog("curve_key_refused", self._log_interval_s)
            keys = KeyList(domain, self._allowed[domain], names, burst)
            self._auth.configure_curve_callback(domain, keys)
        self._monitor_of()

    def close(self) -> None:
        """Stop the ZAP handler and the monitor (before the context is destroyed)."""
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None


def private_ipc_dir(address: str, *, strict: bool, source: str = "<config>") -> Path:
    """Make sure the folder of an ipc endpoint is open to its owner only (0700).

    A folder we own is created or narrowed to 0700. A shared one (``/tmp``)
    cannot be: that is an error with CURVE on (``strict``), a warning otherwise.

    Raises:
        ConfigurationError: ``strict`` and the folder stays open to others.
    """
    folder = Path(address[len("ipc://") :]).parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_mode & 0o077:
        if st.st_uid == os.getuid() and not st.st_mode & stat.S_ISVTX:
            os.chmod(folder, 0o700)
            return folder
        if strict:
            raise ConfigurationError(
                f"{source}: bus: ipc endpoint {address} lives in {folder}, which others can "
                "open; use a folder of its own (it is made 0700)"
            )
        log.warning("ipc_dir_not_private", address=address, folder=str(folder))
    return folder


# -- the registry the socket adapters use -------------------------------------------------

_installed: weakref.WeakKeyDictionary[zmq.Context, BusSecurity] = weakref.WeakKeyDictionary()


def install(
    ctx: zmq.Context, config: WorkbenchConfig, name: str, telemetry: Telemetry
) -> BusSecurity:
    """Give every socket of ``ctx`` ``name``'s identity from now on.

    Raises:
        ConfigurationError: CURVE is on and ``name``'s keys cannot be loaded.
    """
    sec = BusSecurity(config, name, telemetry)
    _installed[ctx] = sec
    if sec.enabled:
        log.info("curve_enabled", identity=name, public_key=sec.identity.public.decode())
    return sec


def uninstall(ctx: zmq.Context) -> None:
    """Stop ``ctx``'s ZAP handler and monitor; call before destroying the context."""
    sec = _installed.pop(ctx, None)
    if sec is not None:
        sec.close()


class RefusedByPeer(TemporaryError):
    """A binder refused this process's CURVE key: libzmq will not connect again by itself."""

    log_event = "curve_refused_by_peer"


def check_peers() -> None:
    """Raise if a binder refused a connection of this process (a runner then restarts).

    Raises:
        RefusedByPeer: naming the socket, the endpoint and our key.
    """
    for sec in list(_installed.values()):
        if sec.enabled and (why := sec.refused_by_peer()) is not None:
            raise RefusedByPeer(why)


def refusal(ctx: zmq.Context, domain: str) -> str | None:
    """Why the binder of ``domain`` refused ``ctx``'s key, if it did."""
    sec = _installed.get(ctx)
    return sec.refused_by_peer(domain) if sec is not None and sec.enabled else None


def secure(sock: zmq.Socket, address: str, *, server: bool) -> None:
    """Apply the security installed on ``sock``'s context (none installed: ipc folder only)."""
    sec = _installed.get(sock.context)
    if sec is not None:
        sec.secure(sock, address, server=server)
    elif address.startswith("ipc://"):
        private_ipc_dir(address, strict=False)
