"""Run the MMC sandbox as a server: ``python -m django_mmc.sandbox``.

Prints the base URL, the OAuth base URL and a ready ``MMC`` setting, then
serves until SIGINT or SIGTERM and exits with status 0. The credentials it
prints are the sandbox's own fake ones.
"""

from __future__ import annotations

import argparse
import logging
import pprint
import re
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .. import contract
from ..dialect import DIALECTS
from .defaults import (
    DEFAULT_AGENTS,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_HOST,
    DEFAULT_ORGANISATION_ID,
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_TOKEN_LIFETIME,
)
from .server import Sandbox

_AGENT = re.compile(r"(?P<id>[^=]+)=(?P<secret>.*?)(?:@(?P<endpoint>https?://.+))?\Z")


def _agent(value: str) -> tuple[str, dict[str, str | None]]:
    match = _AGENT.match(value)
    if match is None or not match["secret"]:
        raise argparse.ArgumentTypeError("expected ID=SECRET or ID=SECRET@http://endpoint")
    return match["id"], {"secret": match["secret"], "endpoint": match["endpoint"]}


def _latency(value: str) -> float | tuple[float, float]:
    try:
        if "," in value:
            low, high = (float(v) for v in value.split(",", 1))
            return (low, high)
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected SECONDS or MIN,MAX") from None


def _interval(value: str) -> float | None:
    if value.lower() in ("none", "off", "manual"):
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected seconds, or 'none' for manual only") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_mmc.sandbox",
        description="Serve a local stand-in of the MMC platform (API, OAuth and webhooks).",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port, 0 for any free one (default %(default)s)"
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=DEFAULT_TOKEN_LIFETIME,
        help="seconds an access token lives (default %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=_latency,
        default=0.0,
        help="seconds added to every API answer, or MIN,MAX for a random range",
    )
    parser.add_argument(
        "--progress-interval",
        type=_interval,
        default=DEFAULT_PROGRESS_INTERVAL,
        help="seconds between automatic status steps; 'none' for manual only (default %(default)s)",
    )
    parser.add_argument(
        "--no-auto-read", action="store_true", help="automatic status steps stop at DELIVERED"
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=contract.SANDBOX_RATE_LIMIT,
        help="requests per second per client before 429 (default: %(default)s; 0: unlimited)",
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--organisation-id", default=DEFAULT_ORGANISATION_ID)
    parser.add_argument(
        "--agent",
        dest="agents",
        type=_agent,
        action="append",
        metavar="ID=SECRET[@URL]",
        help="a dialogue agent and optionally its webhook endpoint; repeat for more "
        "(default: 17 and 18 with fake secrets, no endpoints)",
    )
    parser.add_argument(
        "--fixtures", default=None, help="a JSON seed file (default: the packaged one)"
    )
    parser.add_argument(
        "--dialect",
        default="default",
        choices=sorted(DIALECTS),
        help="the platform dialect to play: paths, query grammar, names, status words and "
        "signature scheme (default %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request and webhook")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGINT/SIGTERM; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    agents: dict[str, Any] = dict(args.agents) if args.agents else dict(DEFAULT_AGENTS)
    sandbox = Sandbox(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        organisation_id=args.organisation_id,
        agents=agents,
        token_lifetime=args.token_lifetime,
        latency=args.latency,
        progress_interval=args.progress_interval,
        auto_read=not args.no_auto_read,
        rate_limit=args.rate_limit or None,
        fixtures=args.fixtures,
        verbose=args.verbose,
        dialect=args.dialect,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        sandbox.start()
    except OSError as error:
        print(f"Cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    try:
        print(f"MMC sandbox serving at {sandbox.url}")
        print(f"BASE_URL       = {sandbox.url}")
        print(f"OAUTH_BASE_URL = {sandbox.oauth_base_url}")
        print(f"Token endpoint = {sandbox.token_url}")
        print("Settings for Django (fake sandbox credentials):")
        print("MMC = " + pprint.pformat(sandbox.mmc_settings(), sort_dicts=False))
        print("Stop with Ctrl+C.", flush=True)
        # Waiting with a timeout keeps the main thread responsive to signals.
        while not stopping.wait(0.5):
            pass
    finally:
        sandbox.stop()
    print("MMC sandbox stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
