"""Strategy runner: ``python -m runners.strategy --config FILE [--id ID]``."""

from __future__ import annotations

import sys

from runners._main import run_role


def main(argv: list[str] | None = None) -> int:
    """Run one configured strategy on the tick stream."""
    return run_role(
        "strategy", argv, lambda cfg, a: cfg.strategy(a.id).id, lambda c: c.strategy_runner()
    )


if __name__ == "__main__":
    sys.exit(main())
