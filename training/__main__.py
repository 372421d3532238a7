"""``python -m training <command>``: the training tools' CLI.

Each command lives in its own module that defines ``register(subparsers)`` and sets
``func(args) -> int`` on its parser; parsing and error handling are the library CLI's.
"""

from __future__ import annotations

from stm2pe_core.cli import build_parser, run

COMMAND_MODULES = (
    "training.music_synth",
    "training.teacher",
    "training.sdgpip",
    "training.train",
    "training.evaluate",
    "training.export",
    "training.calibrate",
)


def main(argv: list[str] | None = None) -> int:
    return run(build_parser("python -m training", "STM2PE Dance training tools", COMMAND_MODULES), argv)


if __name__ == "__main__":
    raise SystemExit(main())
