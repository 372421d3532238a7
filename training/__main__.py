"""``python -m training <command>``: a small dispatcher.

Each command lives in its own module that defines ``register(subparsers)`` and sets
``func(args) -> int`` on its parser, so adding a command never touches the others.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from stm2pe_core.errors import STM2PEError

# modules that define ``register(subparsers)``; missing ones are skipped so the CLI works while
# the package grows
COMMAND_MODULES = (
    "training.music_synth",
    "training.teacher",
    "training.sdgpip",
    "training.train",
    "training.evaluate",
    "training.export",
    "training.calibrate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description="STM2PE Dance training tools")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        if hasattr(mod, "register"):
            mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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


if __name__ == "__main__":
    raise SystemExit(main())
