"""
Peer: the C limit's design in plain CPython, the floor for any Python server.

bench/peers/climit.c line for line: ``select.epoll``, the first line is the
nickname, then every line goes to everyone else as ``<nick> text``,
formatted once; each receiver gets one ``send`` per loop turn (its lines of
the turn together); buffers are unbounded; no limits, no checks, no
framework. What it costs over the C limit is what CPython itself costs per
receiver, which no Python server can go below.

    python bench/peers/pylimit.py PORT
"""

from __future__ import annotations

import resource
import select
import socket
import sys

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT


class _Client:
    __slots__ = ("closed", "dirty", "inbuf", "name", "out", "sock", "want_out")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.name = b""
        self.inbuf = b""
        self.out: list[bytes] = []
        self.dirty = False
        self.want_out = False
        self.closed = False


def main(port: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    ep = select.epoll()
    ep.register(listener.fileno(), _IN)
    clients: dict[int, _Client] = {}
    named: list[_Client] = []
    dirty: list[_Client] = []

    def queue(c: _Client, data: bytes) -> None:
        c.out.append(data)
        if not c.dirty and not c.want_out:
            c.dirty = True
            dirty.append(c)

    def broadcast(sender: _Client, data: bytes) -> None:
        # queue() inline: a call per receiver is the cost being measured.
        for c in named:
            if c is not sender:
                c.out.append(data)
                if not c.dirty and not c.want_out:
                    c.dirty = True
                    dirty.append(c)

    def close(c: _Client) -> None:
        fd = c.sock.fileno()
        del clients[fd]
        ep.unregister(fd)
        if c.name:
            named.remove(c)
        c.sock.close()
        c.closed = True  # skipped by the flush

    def flush(c: _Client) -> None:
        c.dirty = False
        out = c.out
        if c.closed or not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        try:
            sent = c.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            return
        c.out = [data[sent:]] if sent < len(data) else []
        want = bool(c.out)
        if want != c.want_out:
            ep.modify(c.sock.fileno(), _IN | _OUT if want else _IN)
            c.want_out = want

    def on_line(c: _Client, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not c.name:
            if not line:
                return
            c.name = line[:63]
            named.append(c)
            queue(c, b"Welcome, %s!\r\n" % c.name)
            broadcast(c, b"*** %s joined (%d online)\r\n" % (c.name, len(named)))
            return
        broadcast(c, b"<%s> %s\r\n" % (c.name, line))

    def on_readable(c: _Client) -> None:
        try:
            chunk = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            close(c)
            return
        *lines, c.inbuf = (c.inbuf + chunk).split(b"\n")
        for line in lines:
            on_line(c, line)

    listen_fd = listener.fileno()
    while True:
        for fd, events in ep.poll():
            if fd == listen_fd:
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    new = clients[sock.fileno()] = _Client(sock)
                    ep.register(sock.fileno(), _IN)
                    queue(new, b"What's your name?\r\n")
                continue
            c = clients.get(fd)
            if c is None:
                continue
            if events & _OUT:
                flush(c)
            if events & (_IN | select.EPOLLHUP | select.EPOLLERR) and not c.closed:
                on_readable(c)
        # One send per receiver per turn.
        turn = dirty[:]
        dirty.clear()
        for c in turn:
            flush(c)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: pylimit.py PORT")
    main(int(sys.argv[1]))
