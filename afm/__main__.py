"""``python -m afm`` and the ``afm`` console script: see ``afm.cli``."""

from __future__ import annotations

import os
import sys


def main(prog: str = "afm") -> int:
    """The command line (``afm.cli.main``), with OpenMP told to wait passively."""
    # OpenMP threads that spin while waiting lose most of their time on a shared, busy machine; passive
    # waiting costs little on a quiet one. Set before torch loads, which ``import afm`` does not do (a user's
    # own setting wins).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .cli import main as cli_main

    return cli_main(prog=prog)


if __name__ == "__main__":
    sys.exit(main("python -m afm"))
