"""
Redis mode: several twchat processes behave as one server.

Turned on with ``--redis``; without it none of this is imported. The
backend (``backend``) follows the room streams through one link
(``link``: pipelined writes, one XREAD), changes shared state through the
store (``store``: key names and Lua scripts as typed methods), turns
stream entries into events with one codec (``codec``), and keeps the
node known to the others with its liveness service (``liveness``).
"""
