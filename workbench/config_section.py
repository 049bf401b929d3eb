"""The base of every config section (outside `workbench.config`: the exchange config uses it)."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class Section(BaseModel):
    """A config section: unknown keys, infinity, NaN and true/false for a number refused.

    A NaN limit compares False and limits nothing, and ``max_daily_loss =
    false`` would read as 0 (no limit) where pydantic's lax mode turns a bool
    into a number.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=False,
        validate_assignment=True,
        allow_inf_nan=False,
        ser_json_inf_nan="constants",  # a strategy's params may hold inf: TOML writes it, null not
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_true_or_false_for_a_number(cls, v: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return v
        ann = field.annotation
        if isinstance(v, bool) and _numeric(ann):
            raise ValueError("must be a number, not true or false")
        if isinstance(v, dict) and get_origin(ann) is dict and _numeric(get_args(ann)[1]):
            flags = sorted(str(k) for k, x in v.items() if isinstance(x, bool))
            if flags:
                raise ValueError(f"must be numbers, not true or false (at {', '.join(flags)})")
        return v


def _numeric(ann: Any) -> bool:
    """Whether a field of this type takes a number (and so must not take a bool)."""
    if get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    if ann in (int, float):
        return True
    if get_origin(ann) in (Union, UnionType):
        args = get_args(ann)
        return bool not in args and any(_numeric(a) for a in args)
    return False
