"""Field types the scenarios' pydantic models share, whose errors name the field and its value."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ValidationInfo


def _positive(value: float, info: ValidationInfo) -> float:
    if not value > 0:  # NaN fails too
        raise ValueError(f"{info.field_name} {value} must be a positive number")
    return value


PositiveNumber = Annotated[float, AfterValidator(_positive)]
