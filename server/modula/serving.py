"""How `modula serve` listens and runs: one bound socket with TCP_NODELAY on every accepted
connection, served by one uvicorn process or by N forked workers that share it."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from modula.errors import CommandError

log = logging.getLogger("modula.serve")

HOST_FIX = "give an address of this machine with --host or MODULA_HOST (127.0.0.1, or 0.0.0.0 for every interface)"


def listen(host: str, port: int) -> socket.socket:
    """Bind the server's socket before anything else, so that a port in use is one clear line and
    not a log record from uvicorn after the migrations.

    The socket is made with proto IPPROTO_TCP: accepted connections inherit the listening socket's
    proto, and asyncio sets TCP_NODELAY on a connection only when its proto says TCP. Without it
    every answer on a kept-alive connection waited ~40 ms for the client's delayed ACK (Nagle).
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host!r}: {exc.strerror}", HOST_FIX) from exc
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart needs no wait
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"port {port} on {host} is already in use",
                               f"stop the program that uses it (`ss -ltnp 'sport = :{port}'` names it) "
                               "or choose another port with --port or MODULA_PORT") from exc
        if exc.errno == errno.EACCES:
            raise CommandError(f"no permission to listen on port {port}",
                               "choose a port above 1023 with --port or MODULA_PORT") from exc
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}", HOST_FIX) from exc
    listening.set_inheritable(True)
    return listening


def run_workers(count: int, serve: Callable[[], None]) -> int:
    """Fork `count` processes that each call `serve()` (a whole server on the inherited socket) and
    supervise them: a worker that dies is started again; SIGTERM or SIGINT stops them all.

    Returns the exit status: 0 after a requested stop. Forking (rather than spawning) hands every
    worker the settings and the bound socket as they are; it happens before any event loop runs.
    """
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False

    def start(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            status = 0
            try:
                serve()
            except BaseException:  # noqa: BLE001 - a worker reports and ends; the supervisor restarts it
                log.exception("worker %d failed", number)
                status = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        children[pid] = number

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for number in range(1, count + 1):
            start(number)
        recent_deaths: list[float] = []
        while children:
            try:
                pid, _status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            number = children.pop(pid, None)
            if number is None or stopping:
                continue
            now = time.monotonic()
            recent_deaths = [t for t in recent_deaths if now - t < 10] + [now]
            if len(recent_deaths) > 2 * count:  # dying as fast as they start: the cause is not transient
                log.error("workers keep failing; stopping")
                stop(None, None)
                return 1
            log.warning("worker %d (pid %d) ended; starting it again", number, pid)
            start(number)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

