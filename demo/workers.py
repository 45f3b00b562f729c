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
import threading
from collections.abc import Callable
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


def at_low_priority(work: Callable[[], R]) -> R:
    """``work()`` in a thread of its own at CPU niceness ``WORK_NICENESS`` (torch's threads it
    starts inherit it) and with its share of ``CORES``, returning or raising what it does. A
    fresh thread each time: a thread's priority, once lowered, cannot be raised back without
    privileges, and Gradio's worker threads are shared."""
    box: dict[str, Any] = {}

    def run() -> None:
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: normal priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORK_NICENESS)
        try:
            with CORES.running_one():
                keep_share()
                box["result"] = work()
        except BaseException as err:  # noqa: BLE001  (raised again in the caller's thread)
            box["error"] = err

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="generation", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
