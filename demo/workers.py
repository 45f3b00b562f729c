"""Where a generation runs: a thread of its own, below the server's threads in CPU priority,
with its share of the cores.

A generation saturates the cores; at a lower priority it still gets every cycle nobody else
wants, but the server's event loop — joins, refusals, the listening test's clicks — runs first
when it needs a core. Its torch threads are its share of the serving layout's cores
(``CORES``, set by ``demo.serving.ServingLayout.apply``): a generation running alone uses them
all, two running at once one half each. torch's thread count is per thread, so a share is
set in the generation's own thread, and retaken as the others start and end (``keep_share``,
at every sampler step). Two jobs with every core each would run 4 threads on 2 cores, each
job's threads waiting for each other at every operation while the other job holds a core.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import torch

R = TypeVar("R")
WORK_NICENESS = 10  # generations run below the server's own threads


class CoreShare:
    """``cores`` shared by the generations running at once: each takes ``cores // running``
    torch threads (at least one)."""

    def __init__(self, cores: int):
        self.cores = cores
        self.running = 0
        self._lock = threading.Lock()

    def share(self) -> int:
        return max(1, self.cores // max(1, self.running))

    @contextlib.contextmanager
    def running_one(self):
        with self._lock:
            self.running += 1
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1


CORES = CoreShare(torch.get_num_threads())


def keep_share() -> None:
    """This thread's torch threads set to its share of ``CORES`` now (cheap: call it often)."""
    share = CORES.share()
    if torch.get_num_threads() != share:
        torch.set_num_threads(share)


class Stopped(Exception):
    """The request a job served has ended (its visitor left or cancelled): the job stops."""


class Outbox:
    """What a running job hands on to the request it serves, as it goes (``put``), read by
    iterating until the job has ``ended``. ``close()`` — the request ended — makes the job's next
    ``put`` or ``check`` raise ``Stopped``, so a job nobody waits for stops at its next step
    instead of running to the end."""

    _ENDED = object()

    def __init__(self) -> None:
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = threading.Event()

    def put(self, item: Any) -> None:
        self.check()
        self._items.put(item)

    def check(self) -> None:
        if self._closed.is_set():
            raise Stopped

    def ended(self) -> None:
        """The job ended (put by its thread, closed or not): the reader stops waiting."""
        self._items.put(self._ENDED)

    def __iter__(self) -> Iterator[Any]:
        while (item := self._items.get()) is not self._ENDED:
            yield item

    def close(self) -> None:
        self._closed.set()


def at_low_priority(work: Callable[[], R]) -> R:
    """``work()`` run by ``start_at_low_priority``, waited for: returns or raises what it does."""
    return start_at_low_priority(work).result()


def start_at_low_priority(work: Callable[[], R], ended: Callable[[], None] | None = None) -> Future[R]:
    """``work()`` started in a thread of its own at CPU niceness ``WORK_NICENESS`` (torch's
    threads it starts inherit it) and with its share of ``CORES``; its future, and ``ended()``
    called in that thread when the work ends, however it ends. A fresh thread each time: a
    thread's priority, once lowered, cannot be raised back without privileges, and Gradio's
    worker threads are shared."""
    future: Future[R] = Future()

    def run() -> None:
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: normal priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORK_NICENESS)
        try:
            with CORES.running_one():
                keep_share()
                future.set_result(work())
        except BaseException as err:  # noqa: BLE001  (raised again where the future is read)
            future.set_exception(err)
        finally:
            if ended is not None:
                ended()

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="generation", daemon=True)
    worker.start()
    return future
