"""
The twchat terminal client: ``python -m twchat.client``.

Nothing here imports the reactor at import time: the TTY front end runs on
Twisted's asyncio reactor, which ``__main__`` installs first.
"""

__all__: list[str] = []
