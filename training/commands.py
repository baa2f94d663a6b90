"""The command line a record or a card names: what a reader types to make it again."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository


def portable(argument: str) -> str:
    """A command-line argument with an absolute path made relative to the repository (the
    archive beside the checkout becomes ``../shared/data/x.tar.gz``), so that a record names no
    one machine's folders; ``--flag=/path`` too. Anything else is returned as it is."""
    if argument.startswith("--") and "=" in argument:
        flag, value = argument.split("=", 1)
        return f"{flag}={portable(value)}"
    return os.path.relpath(argument, ROOT) if os.path.isabs(argument) else argument


def recorded_command(module: str, argv: Sequence[str] | None = None) -> str:
    """``python -m module`` with the arguments given (``argv``, else this process's), paths made
    :func:`portable`, quoted as a shell reads them."""
    arguments = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", module, *map(portable, arguments)])
