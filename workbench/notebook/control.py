"""The kill switch as a function: halt, resume or ask the state of a running executor.

`workbench halt|resume|state`, `Workbench.halt()` and the dashboard's button all
send one `Command` to the executor's command socket (``bus.command_address``)
and get its trading state back. The executor acts on it before the next
signal and journals it, so a restarted executor is still halted. A ``halt``
with ``flatten`` is answered with what it could not close too
(`not_flattened`): the CLI exits 1 naming it, `Workbench.halt` raises
`FlattenIncomplete`.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from workbench.config import WorkbenchConfig
from workbench.exceptions import ConfigurationError, TemporaryError

COMMANDS = ("halt", "resume", "reduce", "state")
TIMEOUT_S = 3.0
"""How long a command waits for the executor's answer by default."""
FLATTEN_TIMEOUT_S = 10.0
"""The same for ``halt --flatten``: cancels, closing orders and their fills (up to 1 s) first."""
MAX_TIMEOUT_S = 86_400.0
"""The longest wait for an answer (a day; ZeroMQ's poll takes at most an int of ms)."""


def send_command(
    cfg: WorkbenchConfig,
    name: str,
    args: dict[str, Any] | None = None,
    *,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Send ``name`` to the executor of ``cfg``'s pipeline and return its answer.

    ``timeout_s`` defaults to `TIMEOUT_S`, `FLATTEN_TIMEOUT_S` for a flatten.

    Returns:
        ``run_id``, ``trading_state``, ``reason``, ``positions`` and ``realized_pnl``;
        for a ``halt`` with ``flatten``, ``not_flattened`` too (see `not_flattened`).

    Raises:
        TemporaryError: no executor answered within ``timeout_s`` (a ``halt`` may
            still take effect; a ``resume`` or ``reduce`` then never does), or it refused.
        ConfigurationError: ``timeout_s`` is not a number of seconds > 0, or the
            executor that answered runs another run (a shared command address).
    """
    import zmq

    from workbench.messaging import security
    from workbench.messaging.codec import Command, Event
    from workbench.messaging.zmq_adapters import request
    from workbench.telemetry import Telemetry

    if name not in COMMANDS:
        raise TemporaryError(f"No command named {name!r}; use one of {', '.join(COMMANDS)}")
    # The run id goes along: an executor of another run (another config on the
    # same command address) refuses, rather than act on the wrong pipeline.
    payload = Command(name, {**(args or {}), "run_id": cfg.run_id})
    if timeout_s is None:
        timeout_s = FLATTEN_TIMEOUT_S if payload.args.get("flatten") else TIMEOUT_S
    number = isinstance(timeout_s, Real) and not isinstance(timeout_s, bool)
    # A negative one waited forever with the executor down; a string raised a TypeError.
    if not number or not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ConfigurationError(
            f"timeout_s must be a number of seconds > 0 and <= {MAX_TIMEOUT_S:g}, got {timeout_s!r}"
        )
    timeout_ms = math.ceil(timeout_s * 1000)
    # Delivered but served after we gave up (the executor in a slow venue call): the
    # executor refuses a resume or reduce by then; a halt still holds (`killswitch.obey`).
    payload.args["expires_in_ms"] = timeout_ms
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:  # with CURVE on, as the supervisor: the only key the command socket takes
        security.install(ctx, cfg, security.SUPERVISOR, Telemetry())
        env = request(cfg.bus.command_address, payload, timeout_ms=timeout_ms, ctx=ctx)
    finally:
        security.uninstall(ctx)
        ctx.destroy(linger=0)
    reply = env.payload
    if not isinstance(reply, Event) or reply.name != "state":
        detail = reply.data.get("error") if isinstance(reply, Event) else type(reply).__name__
        if isinstance(reply, Event) and reply.data.get("run_id", cfg.run_id) != cfg.run_id:
            raise ConfigurationError(  # a retry reaches the same executor: not temporary
                f"the executor refused {name!r}: {detail}; another pipeline answers this "
                f"config's bus.command_address ({cfg.bus.command_address}): give each "
                "pipeline its own bus addresses"
            )
        raise TemporaryError(f"the executor refused {name!r}: {detail}")
    return dict(reply.data)


def not_flattened(reply: dict[str, Any]) -> dict[str, str]:
    """What a ``halt --flatten`` answer says is still open: symbol -> why (empty: all flat).

    An executor older than the ``not_flattened`` field (one still running
    after an upgrade) does not say: then every position its answer shows
    open is named, the reason unknown.
    """
    if "not_flattened" in reply:
        return {str(s): str(why) for s, why in reply["not_flattened"].items()}
    return {
        s: "still open (this executor's answer does not say why)"
        for s, qty in reply.get("positions", {}).items()
        if qty
    }
