"""
What ``/help`` says: the commands, as a user reads them.

Apart from the command handlers so that the terminal client can complete
command names from the same list without importing the server.
"""

from __future__ import annotations

import re

__all__ = ["COMMAND_NAMES", "HELP", "OPERATOR_HELP", "SERVER_OPERATOR_HELP"]

HELP = (
    "Commands:",
    "  /who [ROOM]       who is in your room (or in ROOM)",
    "  /join ROOM        go to ROOM, creating it if it does not exist",
    "  /part             back to the default room",
    "  /rooms            every room, with its users and topic",
    "  /topic [TEXT]     show or set your room's topic",
    "  /history [N]      the last N lines of your room (default 20)",
    "  /msg NICK TEXT    a private message only NICK sees",
    "  /me ACTION        tell the room what you do: * you ACTION",
    "  /nick NEW         change your nickname (a registered one asks its password)",
    "  /register PASSWORD  make your nickname an account with this password",
    "  /password OLD NEW   change your account's password",
    "  /mode             your room's modes",
    "  /whois NICK       who NICK is: room, account, since, idle, away",
    "  /away [TEXT]      mark yourself away (private messages are told); alone: back",
    "  /ignore [NICK]    stop seeing NICK's lines and messages; alone: the list",
    "  /unignore NICK    see NICK again",
    "  /motd             the server's message of the day",
    "  /quit [REASON]    leave the chat",
    "  /help             this list",
    "  //text            send a line that starts with /",
)

#: Shown by /help to the operators of the room they are in.
OPERATOR_HELP = (
    "Operator commands (in your room):",
    "  /op NICK, /deop NICK      give or take operator status (logged-in users)",
    "  /voice NICK, /devoice NICK  who may speak while the room is +m",
    "  /kick NICK [REASON]       send NICK out of the room",
    "  /ban MASK [DURATION] [REASON]  MASK: NICK, account:NAME, an address or",
    "                            a CIDR block; DURATION: 30s, 10m, 2h, 7d, 2w",
    "  /unban MASK, /bans        lift a ban; list the bans",
    "  /mute NICK [DURATION] [REASON]  refuse NICK's lines in the room",
    "  /unmute NICK, /mutes      lift a mute; list the mutes",
    "  /mode +i|-i|+t|-t|+m|-m   i invite-only, t only operators set the topic,",
    "                            m only operators and voiced users speak",
    "  /invite NICK              let NICK into an invite-only room",
    "  /modlog [N]               the last N moderation actions here",
)

#: Shown by /help to server operators.
SERVER_OPERATOR_HELP = (
    "Server operator commands:",
    "  /kill NICK [REASON]       disconnect NICK",
    "  /gban MASK [DURATION] [REASON]  ban from the whole server",
    "  /ungban MASK, /gbans      lift a server ban; list them",
    "  /wall TEXT                a notice to everyone in every room",
    "  (and every operator command, in every room)",
)

#: Every command the help names, without its slash, in the help's order.
COMMAND_NAMES = tuple(
    dict.fromkeys(
        name
        for line in HELP + OPERATOR_HELP + SERVER_OPERATOR_HELP
        for name in re.findall(r"(?<![/\w])/([a-z]+)", line)
    )
)
