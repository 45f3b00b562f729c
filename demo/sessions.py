"""Gradio sessions made in advance, so a flood of new visitors costs the event loop nothing.

Gradio makes a session's state when the session's first request arrives: a copy of the config
of every component of the app (158 here: ~24 ms of Python). A join of the queue makes it in the
event loop, and a flood's admitted joins — each a new session, as a flood's client chooses —
held every refusal behind them: 40 joins from 8 addresses, 16 of them admitted, made the median
refusal take 0.62 s (``python -m demo.bench --flood``). ``ReadySessions`` keeps states made
beforehand, in a thread of its own while the server is quiet, and gives one to each new session
as it joins; when none is ready the state is made in that thread, not in the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
from gradio.state_holder import SessionState

REFILL_AFTER_S = 1.0  # a burst's joins are answered before the refill competes for the interpreter


class ReadySessions:
    """Up to ``size`` ready session states of ``app`` (made after its config is final: at
    launch), handed out by ``open`` and made again ``REFILL_AFTER_S`` after the last one taken."""

    def __init__(self, app: gr.Blocks, size: int):
        self.app, self.size = app, size
        self._ready: deque[SessionState] = deque()
        self._maker = ThreadPoolExecutor(1, thread_name_prefix="sessions")
        self._taken = threading.Event()
        self._taken.set()  # fill at once
        threading.Thread(target=self._refill, name="sessions-refill", daemon=True).start()

    async def open(self, session_hash: str | None) -> None:
        """Make sure ``session_hash`` has its state before Gradio looks it up (in the event loop)."""
        holder = self.app.state_holder
        if not session_hash or session_hash in holder:
            return
        try:
            holder.session_data[session_hash] = self._ready.popleft()
        except IndexError:  # none ready: made in the maker's thread while the event loop goes on
            await asyncio.get_running_loop().run_in_executor(self._maker, holder.__getitem__, session_hash)
        self._taken.set()

    def ready(self) -> int:
        return len(self._ready)

    def _refill(self) -> None:
        while True:
            self._taken.wait()
            self._taken.clear()
            if self._taken.wait(REFILL_AFTER_S):  # taken again meanwhile: still busy, wait on
                continue
            while len(self._ready) < self.size and not self._taken.is_set():
                self._ready.append(self._maker.submit(SessionState, self.app).result())
