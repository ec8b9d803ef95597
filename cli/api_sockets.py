"""The API's listening sockets: bound by `optio up`, handed to its API processes.

One socket per API process, all bound to the same address. With more than one they set
SO_REUSEPORT, and the kernel spreads new connections over those that listen by a hash
of the connection's addresses. One socket shared by every process would leave it to
the processes to race in accept(): uvloop accepts all it can at each wake, so a burst of
connections (a page's, a client pool's) can all land on one process while another idles.
A process that dies closes its socket, and the kernel stops sending connections to it.

A socket starts to listen when its process has started the app (uvicorn calls listen()
after the lifespan's startup): `listening` is how `optio up` knows every process is up,
because the socket it holds is the very one the process listens on.
"""

from __future__ import annotations

import socket


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to host:port, not yet listening. Raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if count > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
    except OSError:
        close(sockets)
        raise
    return sockets


def listening(sock: socket.socket) -> bool:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()
    sockets.clear()
