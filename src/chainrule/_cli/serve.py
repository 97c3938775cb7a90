"""`chainrule serve`: the derivation and check page in a browser, and a JSON API.

    chainrule serve                      # http://127.0.0.1:8000/
    chainrule serve --port 8080 --workers 4 --timeout 5

Starlette and uvicorn (the ``web`` extra) are imported in :func:`run` only. Ctrl-C stops the
server and its worker processes.
"""

from __future__ import annotations

import errno
import socket
import sys

from chainrule._cli import CommandError, UsageError, add_command

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: Seconds a client has to send the head of a request.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Seconds an idle connection stays open after a response.
KEEP_ALIVE_SECONDS = 5
#: Largest request head, in bytes.
MAX_HEAD_BYTES = 16 * 1024


def register(subparsers) -> None:
    p = add_command(subparsers, "serve")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="address to listen on (default: %(default)s, this computer only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="engine worker processes (default: %(default)s), plus one kept for "
                        "requests that finish within a second, so that runaway formulas on the "
                        "others never hold up an ordinary one")
    # Not "--timeout" as a dest: that name makes chainrule.cli time the whole command.
    p.add_argument("--timeout", dest="request_timeout", type=float, default=10.0,
                   metavar="SECONDS",
                   help="time budget of one request; a formula that takes longer gets an error "
                        "(default: %(default)g)")
    p.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="open connections at most; at the limit a new one closes the oldest "
                        "that has not sent a request (default: 512, or fewer where the "
                        "open-file limit asks)")
    p.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT,
                   metavar="SECONDS",
                   help="seconds a client has to send a request's head before the connection "
                        "is closed (default: %(default)g)")


def _bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be in 0..65535; got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"port {port} on {host} is in use; choose another with --port "
                               "(--port 0 picks a free one)") from None
        raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host "
                           "and --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _check_settings(args) -> None:
    """Refuse settings no server can run with (bad usage, exit status 2)."""
    import math

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1; got {args.workers}")
    if not args.request_timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds; got "
                         f"{args.request_timeout:g}")
    if not (math.isfinite(args.header_timeout) and args.header_timeout > 0):
        raise UsageError(f"--header-timeout must be a positive number of seconds; got "
                         f"{args.header_timeout:g}")
    if args.max_connections is not None and args.max_connections < 1:
        raise UsageError(f"--max-connections must be at least 1; got {args.max_connections}")


def run(args) -> int:
    _check_settings(args)
    try:
        import uvicorn
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        from chainrule.web.app import create_app
        from chainrule.web.connections import (
            ACCEPT_BACKLOG,
            DEFAULT_MAX_CONNECTIONS,
            ConnectionGuard,
            connection_limit,
        )
    except ImportError as exc:
        raise CommandError(f"chainrule serve needs Starlette and uvicorn ({exc}); install "
                           "them with: pip install 'chainrule[web]'") from None

    room = connection_limit()
    if args.max_connections is not None and args.max_connections > room:
        raise UsageError(f"--max-connections {args.max_connections} is more than the open-file "
                         f"limit leaves room for ({room}); give at most {room}, or raise the "
                         "limit (ulimit -n)")
    guard = ConnectionGuard(AutoHTTPProtocol, header_timeout=args.header_timeout,
                            max_connections=args.max_connections
                            or min(DEFAULT_MAX_CONNECTIONS, room))
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    app = create_app(workers=args.workers, timeout=args.request_timeout)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            http=guard.protocol, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
                            backlog=ACCEPT_BACKLOG)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            import asyncio

            asyncio.get_running_loop().set_exception_handler(guard.loop_errors)
            await super().startup(sockets)
            if self.started:
                print(f"chainrule serve: http://{shown}:{port}/  (Ctrl-C to stop)", flush=True)
                if host not in ("127.0.0.1", "::1"):
                    print(f"chainrule serve: listening on {host}: other computers can reach "
                          "this page", flush=True)

    server = Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if not server.started:
        raise CommandError("the server did not start; the lines above say why")
    print("chainrule serve: stopped", file=sys.stderr, flush=True)
    return 0
