"""User-facing errors and the CLI wrapper that reports them.

Bad input (a config typo, a missing dataset, a checkpoint of the other app) is the user's to fix,
so it ends with one line naming the problem and the fix and exit status 2. Everything else is a
bug in leakylab and keeps its traceback (exit 1): there is deliberately no catch-all.
"""

from __future__ import annotations

import sys
from typing import Callable, NoReturn, Sequence

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input from the user; the message is one line that names the problem and the fix."""


def cli(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``main(argv)`` as a command: ``UserError`` → one line on stderr and exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = main(args)
    except UserError as exc:
        message = " ".join(str(exc).split())  # always exactly one line
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
