"""
Moderation: who may act on whom in a room and on the server, and what
is stored of it. The rules themselves are the hub's moderator
(``twchat.moderator``); this package holds the state and its stores.
"""
