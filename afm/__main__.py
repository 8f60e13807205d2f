"""``python -m afm``: see ``afm.cli``."""

import sys

from .cli import main

sys.exit(main())
