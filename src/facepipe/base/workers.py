"""Work spread over forked worker processes: results in input order, memory bounded.

On a CPU, face networks keep one core busy far better than two: two processes of one thread
each get through about 1.5 times (MTCNN) to twice (dlib) as much as one process of two threads.
Each worker builds its own model once (`setup`), then runs `task(model, item)` per item.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_model: Any = None
_task: Callable | None = None
_setup_error: BaseException | None = None


def _start_worker(setup: Callable, setup_args: tuple, task: Callable) -> None:
    global _model, _task, _setup_error
    # A forked worker inherits the job's handlers, which turn SIGTERM into a job cancellation;
    # a worker must simply end when its pool is terminated, and leave Ctrl-C to the job.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _task = task
    try:
        _model = setup(*setup_args)
    except Exception as exc:  # noqa: BLE001 - re-raised by every task: a pool whose initializer
        _setup_error = exc  # fails would restart its workers for ever


def _run(item):
    if _setup_error is not None:
        raise _setup_error
    return _task(_model, item)


def ordered_map(setup: Callable, setup_args: tuple, task: Callable, items: Iterable, workers: int) -> Iterator:
    """task(model, item) for each item, in order, with model = setup(*setup_args) built once per
    worker. `setup` and `task` must be module-level functions. At most two items per worker wait
    in flight, so memory does not grow with the input. With workers <= 1 everything runs here.

    Workers are forked, not spawned (spawn would re-run the Snakemake script that called us), so
    the caller must not have imported torch yet: its thread pools do not survive a fork.
    """
    if workers <= 1:
        model = setup(*setup_args)
        for item in items:
            yield task(model, item)
        return
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_start_worker,
                                                    initargs=(setup, setup_args, task))
    try:
        pending: deque = deque()
        for item in items:
            pending.append(pool.apply_async(_run, (item,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()  # all done: let the workers finish on their own
        pool.join()
    finally:
        pool.terminate()  # stopped early (error, cancel): end the workers now
