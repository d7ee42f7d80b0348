"""Makes ``twistd chat`` run the twchat server."""

from twisted.application.service import ServiceMaker

chat = ServiceMaker(
    "twchat",
    "twchat.tap",
    "A multi-user chat server for nc, terminal and browser users.",
    "chat",
)
