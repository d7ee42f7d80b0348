"""
Redis mode: several twchat processes behave as one server.

Turned on with ``--redis``; without it none of this is imported.
"""
