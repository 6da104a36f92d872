"""The ``aiortmp`` command: ``aiortmp serve`` (and the client commands).

``aiortmp serve [--listen HOST:PORT]... [--config FILE.toml] [--record-dir DIR]
[--log-level L]``: the flags override the configuration file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from .server.config import ConfigError, load_config

__all__ = ["main", "run"]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on uvloop when installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from .server.app import RTMPServer

    overrides: dict[str, object] = {
        "listen": args.listen or None,
        "record_dir": args.record_dir,
        "log_level": args.log_level,
        "http.listen": args.http_listen,
        "tls.listen": args.tls_listen or None,
        "tls.cert": args.tls_cert,
        "tls.key": args.tls_key,
    }
    if args.no_http:
        overrides["http.listen"] = []
    try:
        config = load_config(args.config, **overrides)
    except ConfigError as exc:
        print(f"aiortmp: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level)
    server = RTMPServer(config, config_path=args.config, config_overrides=overrides)
    try:
        run(server.serve_forever())
    except (OSError, ConfigError) as exc:
        logging.getLogger("aiortmp").error("cannot start: %s", exc)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aiortmp`` command."""
    parser = argparse.ArgumentParser(
        prog="aiortmp", description="Live-streaming RTMP server and client."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the RTMP server")
    serve.add_argument(
        "--listen",
        action="append",
        metavar="HOST:PORT",
        help="address to accept RTMP on (repeatable; default 0.0.0.0:1935)",
    )
    serve.add_argument("--config", metavar="FILE.toml", help="configuration file")
    serve.add_argument("--record-dir", metavar="DIR", help="record every stream to DIR as FLV")
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default: info"
    )
    serve.add_argument(
        "--http-listen",
        action="append",
        metavar="HOST:PORT",
        help="address of the HTTP API/metrics/HTTP-FLV (repeatable; default 0.0.0.0:8080)",
    )
    serve.add_argument("--no-http", action="store_true", help="do not start the HTTP surface")
    serve.add_argument(
        "--tls-listen",
        action="append",
        metavar="HOST:PORT",
        help="address to accept RTMPS on (repeatable; port defaults to 1936)",
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain for RTMPS")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key for RTMPS")
    serve.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aiortmp`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
