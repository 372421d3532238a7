"""User-facing errors.

Every failure a user can cause (bad file, missing weights, wrong option) is raised as an
:class:`STM2PEError` whose message names the file and says what to do. The CLI prints the
message without a traceback; ComfyUI shows it in its error dialog.
"""

from __future__ import annotations

from pathlib import Path


class STM2PEError(Exception):
    """Base class: the message is written for the person running the pack."""


class InputError(STM2PEError, ValueError):
    """Unusable input data (audio, image, motion file, option value)."""


class MissingModelError(STM2PEError, FileNotFoundError):
    """A model file the requested step needs is not where the pack looks for it."""


class WeightsError(STM2PEError):
    """A weight file exists but does not match the network (keys, shapes, truncation)."""


class Cancelled(STM2PEError):
    """The user cancelled a long job; partial outputs have been removed."""


def bad_file(path: str | Path, problem: str, fix: str) -> InputError:
    """Build an :class:`InputError` of the house form: file, problem, fix."""
    return InputError(f"{Path(path).name if path else '<input>'}: {problem}. {fix}".strip())
