"""Executor runner: ``python -m runners.executor --config FILE``."""

from __future__ import annotations

import sys

from runners._main import run_role


def main(argv: list[str] | None = None) -> int:
    """Turn signals into orders until stopped or every strategy's end-of-stream."""
    return run_role("executor", argv, lambda cfg, _: cfg.executor.id, lambda c: c.executor_runner())


if __name__ == "__main__":
    sys.exit(main())
