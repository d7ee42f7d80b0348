"""
Peer: the classic thread-per-client chat server.

One thread per connection, a lock around the client list, sendall() to
every other client under the lock (which keeps one order for everyone).
Asks for a name first and announces joins and leaves, like twchat. No
limits and no checks: this is the design twchat replaces.

    python bench/peers/threaded.py PORT
"""

from __future__ import annotations

import socket
import sys
import threading

clients: dict[socket.socket, str] = {}
lock = threading.Lock()


def broadcast(data: bytes, exclude: socket.socket | None = None) -> None:
    with lock:
        for sock in list(clients):
            if sock is exclude:
                continue
            try:
                sock.sendall(data)
            except OSError:
                clients.pop(sock, None)


def serve(conn: socket.socket) -> None:
    reader = conn.makefile("rb")
    name = ""
    try:
        conn.sendall(b"Name?\r\n")
        name = reader.readline().strip().decode("utf-8", "replace")
        if not name:
            return
        with lock:
            count = len(clients) + 1
            clients[conn] = name
        conn.sendall(f"Welcome, {name}! {count} online\r\n".encode())
        broadcast(f"*** {name} joined ({count} online)\r\n".encode(), conn)
        prefix = f"<{name}> ".encode()
        for line in reader:
            broadcast(prefix + line.rstrip(b"\r\n") + b"\r\n", conn)
    except OSError:
        pass
    finally:
        with lock:
            known = clients.pop(conn, None)
        if known:
            broadcast(f"*** {name} left\r\n".encode())
        conn.close()


def main() -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    listener.listen(4096)
    threading.stack_size(256 * 1024)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
