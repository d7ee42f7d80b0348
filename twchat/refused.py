"""The one way a rule says no to an action that waited on shared state."""

from __future__ import annotations

__all__ = ["TRY_AGAIN", "RefusedError"]

#: How a refusal that passes by itself ends (shared state out of reach): a
#: client back after a lost connection asks for its nickname again.
TRY_AGAIN = "try again shortly"


class RefusedError(Exception):
    """An action that did not happen; the message is what the user reads."""
