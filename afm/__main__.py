"""``python -m afm``: see ``afm.cli``."""

import os
import sys

# OpenMP threads that spin while waiting lose most of their time on a shared, busy machine; passive
# waiting costs little on a quiet one. Set before torch loads (a user's own setting wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main  # noqa: E402

sys.exit(main())
