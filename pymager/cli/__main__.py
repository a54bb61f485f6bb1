"""``python -m pymager.cli``: the ``pymager`` command without its console script."""

import sys

from pymager.cli import main

sys.exit(main())
