"""The gateway's feeds: a seeded random walk, or the replay of a tick file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from workbench.config_section import Section


class SimulatedFeedConfig(Section):
    """A seeded random-walk live feed: the embedded default, no account needed."""

    symbols: list[str] = Field(default_factory=lambda: ["ABC"], min_length=1)
    rate_per_s: float = Field(50.0, gt=0, description="ticks per second per symbol")
    seed: int = 7
    start_price: float = Field(100.0, gt=0)
    tick_size: float = Field(0.01, gt=0)
    volatility_ticks: float = Field(1.0, gt=0, description="std dev of a step, in ticks")
    max_ticks: int = Field(
        0, ge=0, description="stop with end-of-stream after this many; 0 = run forever"
    )

    @field_validator("symbols")
    @classmethod
    def _named(cls, v: list[str]) -> list[str]:
        blank = [i for i, s in enumerate(v) if not s.strip()]
        if blank:  # "" passed: ticks for a symbol no condition can name
            i = blank[0]
            raise ValueError(f"item {i} ({v[i]!r}) is empty or blank; name each symbol")
        return v


class ReplayFeedConfig(Section):
    """Replay of a tick file (CSV or Parquet) with flow control."""

    path: str = "../data/ticks/synth-ABC-5000.csv"
    format: Literal["auto", "csv", "parquet", "histdata"] = "auto"
    symbol: str | None = None
    price: Literal["mid", "bid", "ask"] = "mid"
    repair: bool = False
    speed: float = Field(0.0, ge=0, description="x real time; 0 = as fast as the pipeline allows")
    batch_size: int = Field(1_000, ge=1, le=100_000)
    window_batches: int = Field(32, ge=1, description="batches in flight before waiting for credit")
    subscribers: list[str] | None = Field(
        None, description="strategy ids that must be ready before replay starts; None = all"
    )
    start_timeout_s: float = Field(30.0, gt=0)

    @field_validator("subscribers")
    @classmethod
    def _someone_to_wait_for(cls, v: list[str] | None) -> list[str] | None:
        # [] waited for no strategy: every tick went out before any subscribed, and hung.
        if v is not None and not v:
            raise ValueError(
                "must not be empty: the gateway would wait for no strategy and send every "
                "tick before one listens; leave it unset to wait for all strategies"
            )
        return v
