"""A hypothesis' refinement is stopped after a limit of CPU seconds of its process, not of wall time: other jobs
waiting for the same cores do not change which hypotheses a solve refines."""

import time

import pytest

from scatterfit.solve.hypotheses import _screen, _Stop, _time_limit


@pytest.mark.parametrize("observer", [_screen, _time_limit])
def test_waiting_does_not_count_and_working_does(observer):
    observe = observer(0.1, time.process_time())
    time.sleep(0.3)  # a process that waits for a core (or sleeps) does no work
    observe(1, 0, 0.1, {})
    start = time.process_time()
    while time.process_time() - start < 0.15:  # work: 0.15 CPU seconds
        sum(range(1000))
    with pytest.raises(_Stop, match="not converged within 0 CPU seconds"):
        observe(1, 1, 0.1, {})
