"""The ``authgate`` console script: the server CLI, or one line on how to install it.

``pip install authgate`` is the verifier kit alone (``authgate.resource``); the server,
its CLI included, needs ``authgate[server]``. Without those extras this says so in one
line and exits 2 (a usage error), instead of a traceback about a missing module.
Nothing here imports a server dependency before it is known to be there.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

INSTALL_HINT = 'the authgate server is not installed: pip install "authgate[server]"'


def _is_ours(module: str | None) -> bool:
    # A missing authgate module is a bug of ours, not a missing extra: let it raise.
    return module is not None and (module == "authgate" or module.startswith("authgate."))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from authgate.cli.main import main as server_main
    except ModuleNotFoundError as exc:
        if _is_ours(exc.name):
            raise
        print(f"authgate: {INSTALL_HINT} (missing {exc.name})", file=sys.stderr)
        return 2
    return server_main(argv)
