"""Gateway runner: ``python -m runners.gateway --config FILE``."""

from __future__ import annotations

import sys

from runners._main import run_role


def main(argv: list[str] | None = None) -> int:
    """Publish the configured feed's ticks until stopped or end-of-stream."""
    return run_role("gateway", argv, lambda cfg, _: cfg.gateway.id, lambda c: c.gateway())


if __name__ == "__main__":
    sys.exit(main())
