"""The installed pycgroup that subprocess tests run."""

import os
import shutil
import sys

#: The pycgroup program installed beside the interpreter running the tests: a bare
#: "pycgroup" would be whichever comes first on PATH, maybe another installation.
PYCGROUP = shutil.which("pycgroup", path=os.path.dirname(sys.executable)) or "pycgroup"
