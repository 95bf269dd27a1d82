"""``python -m textclf.cli``: the ``textclf`` command."""

import sys

from textclf.cli import main

sys.exit(main())
