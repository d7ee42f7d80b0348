"""
``@immutable``: a value class that costs no more to make than a
plain one.

A ``dataclass(frozen=True, slots=True)`` sets each field through
``object.__setattr__`` when it is made: four times the cost of a plain
slotted dataclass. Events are made for every line said, and a handful of
values for every arrival; their frozen ``__init__`` was 6 % of a busy
room's instructions and 9 % of a registration's (``bench/micro.py``
under callgrind). So the type checker sees them frozen (``mypy --strict``
on every change refuses an assignment to a field), and at run time they
are plain slotted dataclasses, equal and hashed by value as before.

Values made once (configuration, listeners) keep
``dataclass(frozen=True)``: there the run-time check costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

__all__ = ["immutable"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def immutable(cls: type[_T]) -> type[_T]:
    """Make ``cls`` a slotted dataclass, frozen to the type checker."""
    return dataclass(slots=True, unsafe_hash=True)(cls)
