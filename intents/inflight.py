"""Several claimed batches in flight per cluster worker process.

A django-q2 worker runs one task at a time. A batch's gateway calls share one event
loop, but while they wait (50 ms of gateway latency, say) the worker's CPU is idle,
and recording the outcomes afterwards is CPU work the wait could have overlapped.
So the ``execute_batch`` task hands its batch to a small pool of threads in the worker
process and returns; it blocks only while ``EXECUTION_BATCHES_IN_FLIGHT`` batches of
this process are still running, so the worker never takes more than that from the
queue. Each thread has its own database connection (Django's are per thread).

Nothing is lost by returning early: the batch's lease is what guards it, exactly as
when the task runs inline. A worker killed with batches in flight leaves leases that
the sweeper reclaims; a worker that stops (``qcluster`` stopping, or a django-q2
recycle) finishes its batches first, since the interpreter joins the pool's threads
before the process exits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections

from .execution import execute_batch

logger = logging.getLogger("intents.inflight")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_slots: threading.BoundedSemaphore | None = None
_size = 0


def _started(size: int) -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
    global _pool, _slots, _size
    with _lock:
        if _pool is None or _slots is None or _size != size:
            if _pool is not None:
                _pool.shutdown(wait=True)  # a changed setting (tests): finish the old ones
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="batch")
            _slots = threading.BoundedSemaphore(size)
            _size = size
        return _pool, _slots


def _run(lease_token: str, intent_ids: list[int]) -> int:
    close_old_connections()
    try:
        return execute_batch(lease_token=lease_token, intent_ids=intent_ids)
    except Exception:
        # The lease stays with the batch; the sweeper reclaims it when it runs out.
        logger.exception("batch %s failed", lease_token)
        raise
    finally:
        close_old_connections()


def submit_batch(*, lease_token: str, intent_ids: Iterable[int]) -> int | None:
    """Run the batch, overlapped with this process's other batches when configured.

    Returns the number of intents attempted when it ran inline (one in flight), or
    None when it was handed to the pool.
    """
    ids = list(intent_ids)
    size = settings.EXECUTION_BATCHES_IN_FLIGHT
    if size <= 1:
        return execute_batch(lease_token=lease_token, intent_ids=ids)
    pool, slots = _started(size)
    slots.acquire()  # the worker waits here while `size` batches are running
    try:
        future: Future[int] = pool.submit(_run, lease_token, ids)
    except BaseException:
        slots.release()
        raise
    future.add_done_callback(lambda _: slots.release())
    return None


def wait_idle(timeout: float | None = None) -> bool:
    """Block until this process has no batch in flight (tests, orderly shutdown)."""
    if _pool is None or _slots is None:
        return True
    taken = 0
    try:
        for _ in range(_size):
            if not _slots.acquire(timeout=timeout):
                return False
            taken += 1
        return True
    finally:
        for _ in range(taken):
            _slots.release()


def shutdown() -> None:
    """Finish every batch, close each pool thread's database connection, drop the pool."""
    global _pool, _slots, _size
    with _lock:
        pool, size = _pool, _size
        _pool, _slots, _size = None, None, 0
    if pool is None:
        return
    # One closing task per thread: each waits at the barrier, so no thread runs two.
    barrier = threading.Barrier(size)

    def close_this_threads_connections() -> None:
        connections.close_all()
        barrier.wait(timeout=60)

    for _ in range(size):
        pool.submit(close_this_threads_connections)
    pool.shutdown(wait=True)
