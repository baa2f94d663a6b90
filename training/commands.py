"""The command line a record or a card names: what a reader types to make it again."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence


def recorded_command(module: str, argv: Sequence[str] | None = None) -> str:
    """``python -m module`` with the arguments given (``argv``, else this process's), quoted as
    a shell reads them."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])
