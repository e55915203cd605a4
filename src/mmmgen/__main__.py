"""``python -m mmmgen`` is the ``mmmgen`` command."""

import sys

from mmmgen.cli import main

sys.exit(main())
