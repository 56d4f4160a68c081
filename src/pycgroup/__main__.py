"""``python -m pycgroup``: the pycgroup command."""

import sys

from pycgroup.cli import main

sys.exit(main())
