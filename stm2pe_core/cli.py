"""Command-line interface. Each area registers its sub-commands from its own module, so the
CLI grows with the library without one file that knows every option."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .errors import STM2PEError

# modules that define ``register(subparsers)``; each sub-command sets ``func(args) -> int``
COMMAND_MODULES = (
    "stm2pe_core.audio.cli",
    "stm2pe_core.render.cli",
    "stm2pe_core.weights.cli",
    "stm2pe_core.pipeline",
)


def build_parser(
    prog: str = "python -m stm2pe_core",
    description: str = "STM2PE Dance: music + photo -> dance video",
    modules: tuple[str, ...] = COMMAND_MODULES,
) -> argparse.ArgumentParser:
    """One parser whose sub-commands come from ``modules`` (also used by ``python -m training``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse, run the chosen sub-command, and turn user errors into a message and exit code 2."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except STM2PEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)
