"""Sampling while another thread keeps something moving (a file rewritten, CPU burnt)."""

import threading
import time


def sample_while(sampler, step, seconds):
    """Runs sampler for ``seconds`` while another thread calls step(n) for n = 1, 2, ...
    without pause; returns sampler.data() once both have stopped."""
    stop = threading.Event()

    def loop():
        n = 0
        while not stop.is_set():
            n += 1
            step(n)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        with sampler:
            time.sleep(seconds)
    finally:
        stop.set()
        worker.join()
    return sampler.data()
