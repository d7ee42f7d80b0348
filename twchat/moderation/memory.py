"""Moderation state in memory: a server without a state file, and tests."""

from __future__ import annotations

from collections import deque

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from .state import Change
from .store import LOG_KEEP, IModerationStore

__all__ = ["MemoryModeration"]


@implementer(IModerationStore)
class MemoryModeration:
    def __init__(self) -> None:
        self._scopes: dict[str, dict[str, str]] = {}
        self._log: deque[str] = deque(maxlen=LOG_KEEP)

    def fields(self, scope: str) -> Deferred[dict[str, str]]:
        return succeed(dict(self._scopes.get(scope, {})))

    def change(self, scope: str, changes: list[Change]) -> Deferred[None]:
        fields = self._scopes.setdefault(scope, {})
        for name, value in changes:
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        if not fields:
            del self._scopes[scope]
        return succeed(None)

    def add_new(self, scope: str, field: str, value: str) -> Deferred[bool]:
        fields = self._scopes.setdefault(scope, {})
        if field in fields:
            return succeed(False)
        fields[field] = value
        return succeed(True)

    def record(self, entry: str) -> Deferred[None]:
        self._log.append(entry)
        return succeed(None)

    def records(self, count: int) -> Deferred[list[str]]:
        return succeed(list(self._log)[-count:] if count > 0 else [])
