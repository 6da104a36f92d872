"""Run a fuzz target with hypothesis (or, if it is installed, with atheris)."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from .hostile import hostile_inputs
from .targets import FuzzTarget

__all__ = ["run_target"]


def run_target(
    target: FuzzTarget, *, examples: int, seed: int | None = None, derandomize: bool = False
) -> float:
    """Feed ``target`` its known hostile inputs, then ``examples`` generated ones.

    Returns the wall time in seconds.

    Args:
        target: the target.
        examples: how many inputs hypothesis generates (plus the ones it replays from its
            example database and the ones it tries while shrinking a failure).
        seed: a hypothesis seed, to repeat a run.
        derandomize: derive the inputs from the test itself (the same on every run), as
            the quick pytest run does.

    Raises:
        Exception: whatever the target raised on the (shrunk) failing input; hypothesis
            prints that input.
    """

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(target.strategy())
    def check(data: bytes) -> None:
        target.one_input(data)

    if seed is not None:
        check = hypothesis_seed(seed)(check)
    start = time.perf_counter()
    for data in hostile_inputs(target.name):
        target.one_input(data)
    check()
    return time.perf_counter() - start
