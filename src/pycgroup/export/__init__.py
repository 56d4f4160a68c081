"""What takes pycgroup's data out of the process: files, traces and metrics engines. Each
module imports its optional dependency inside the functions that need it; the core modules
never import from here."""
