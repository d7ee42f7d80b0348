"""
What the tests share, in one place.

``fakes``: in-memory users and members on a fake clock; ``net``: real
loopback clients on the reactor; ``proc``: the real ``twistd`` in a
subprocess and blocking socket users; ``web``: a WebSocket user;
``redisserver``: a real redis-server of a test's own; ``certificates``:
self-signed TLS certificates.
"""

#: No single wait in a test may take longer than this many seconds.
WAIT = 10.0
