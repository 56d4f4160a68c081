"""What takes pycgroup's data out of the process: files, traces and metrics engines. Each
module imports its optional dependency inside the functions that need it; the core modules
never import from here."""

from pycgroup.export.files import Recording, load, save  # noqa: E402
from pycgroup.export.stream import Recorder, record  # noqa: E402
from pycgroup.export.trace import merge_into_trace, to_chrome_trace  # noqa: E402
