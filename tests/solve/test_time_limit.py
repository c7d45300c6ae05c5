"""A hypothesis' refinement is stopped after a limit of CPU seconds of its process, not of wall time: other jobs
waiting for the same cores do not change which hypotheses a solve refines."""

import time

import pytest

from scatterfit.solve.hypotheses import _screen, _Stop, _time_limit


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("observer", [_screen, _time_limit])
def test_waiting_does_not_count_and_working_does(observer, threads):
    """Sleeping counts nothing; 0.15 CPU seconds of work pass a 0.1 s limit on one torch thread, and with two
    threads (a refinement that may use two cores) only 0.25 s do."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        observe = observer(0.1, time.process_time())
        time.sleep(0.3)  # a process that waits for a core (or sleeps) does no work
        observe(1, 0, 0.1, {})
        start = time.process_time()
        while time.process_time() - start < 0.15:  # work: 0.15 CPU seconds
            sum(range(1000))
        if threads == 2:
            observe(1, 1, 0.1, {})  # 0.075 per thread
            while time.process_time() - start < 0.25:
                sum(range(1000))
        with pytest.raises(_Stop, match="not converged within 0 CPU seconds"):
            observe(1, 1, 0.1, {})
    finally:
        torch.set_num_threads(before)
