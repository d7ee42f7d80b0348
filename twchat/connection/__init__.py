"""
The one connection layer under every transport: bounds, deadlines,
admission and the outbox, whatever the wire.
"""
