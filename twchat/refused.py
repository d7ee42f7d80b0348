"""The one way a rule says no to an action that waited on shared state."""

from __future__ import annotations

__all__ = ["RefusedError"]


class RefusedError(Exception):
    """An action that did not happen; the message is what the user reads."""
