import pycgroup

sampler = pycgroup.Sampler(capacity="4096")
usage = pycgroup.current().read(["memory.current"])["memory.current"] + 1
