"""pycgroup: the cgroup limits, usage, throttling and pressure a process really has."""
