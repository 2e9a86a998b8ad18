"""The listening socket: a threading HTTP server that can be stopped cleanly."""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger("django_mmc.sandbox")


class ConnectionServer(ThreadingHTTPServer):
    """A threading server that can close its kept-alive connections.

    ``ThreadingHTTPServer`` alone leaves connection threads blocked on idle
    keep-alive sockets after ``shutdown()``; :meth:`close_connections` shuts
    those sockets so every thread ends and can be joined.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="mmc-sandbox-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer is normal, not worth a traceback.
        logger.debug("MMC sandbox: connection from %s failed", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> None:
        with self._connections_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in connections:
            if thread is not threading.current_thread():
                thread.join(timeout)


class ConnectionServer6(ConnectionServer):
    address_family = socket.AF_INET6


def server_for(host: str) -> type[ConnectionServer]:
    """The server class for ``host``: IPv6 if it is an IPv6 address."""
    return ConnectionServer6 if ":" in host else ConnectionServer
