"""What a visitor may send a public Space, and how much of the server one visitor may hold.

The values themselves are checked by ``fgg.checks`` (``InputError`` names the parameter, the
limit and the shortened value) against the public bounds here (``PUBLIC_LIMITS``). ``Admission``
bounds how much work one endpoint holds (waiting or running) in all and per client, refusing
the excess when it asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from fgg.inputs import InputLimits

MAX_CHORD_CHARS = 2_000
MAX_CUSTOM_SCALE_CHARS = 100
MAX_MIDI_BYTES = 1_000_000
MAX_UPLOAD = "1mb"  # Gradio's ``max_file_size``: a bigger upload is refused before it is stored
PUBLIC_EVAL_SEGMENTS = 20  # an anonymous "run now" evaluation: at most this many segments × 1 seed
# What a visitor may ask of one generation (``fgg.inputs.resolve_spec`` refuses the rest); the
# Generate tab's sliders take their ranges from here.
PUBLIC_LIMITS = InputLimits(
    bars=(4, 32),
    tempo=(40, 220),
    steps=(2, 50),
    cfg_scale=(1.0, 12.0),
    seed=(0, 2**31 - 1),
    chord_chars=MAX_CHORD_CHARS,
    scale_chars=MAX_CUSTOM_SCALE_CHARS,
)


class Busy(Exception):
    """An endpoint (or this client's share of it) is full; the message says which limit."""


def client_of(request) -> str:
    """The caller's address (a ``gr.Request``'s client host), the unit of every per-client limit."""
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


@dataclass(eq=False)
class _Ticket:
    """One admitted request: its client, the object that identifies its job in the queue
    (``job``: the HTTP request that joined it, or ``None``), when it was admitted, and
    whether its handler has started (from then on the handler releases it)."""

    client: str
    job: object | None
    since: float
    started: bool = False


class Admission:
    """At most ``total`` requests on one endpoint, and ``per_client`` of any one client,
    admitted and not yet released (waiting in the queue or running).

    ``admit`` runs when a request joins the queue (``demo.guard.refuse_early``), so the excess
    is refused at once instead of after waiting; ``release`` runs when its handler ends. A
    request whose handler never runs (its client left while it waited, it was cancelled or
    dropped by the queue) cannot keep its place: with ``live`` set (``demo.guard.follow_queue``:
    the ids of the jobs waiting or running in the queue), every ``admit`` and ``held`` first
    forgets the tickets whose job is no longer there, unless their handler has started
    (``start``) or they are younger than ``grace`` seconds (the queue adds a job just after
    admitting it). As a last resort, any ticket is forgotten after ``ttl`` seconds."""

    def __init__(
        self,
        what: str,
        total: int,
        per_client: int,
        ttl: float = 900.0,
        grace: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what, self.total, self.per_client, self.ttl, self.grace = what, total, per_client, ttl, grace
        self._clock = clock
        self._tickets: list[_Ticket] = []
        self._lock = threading.Lock()
        self.live: Callable[[], Collection[int]] | None = None

    def _ended(self, ticket: _Ticket, now: float, live: Collection[int] | None) -> bool:
        age = now - ticket.since
        if age > self.ttl:
            return True
        if live is None or ticket.job is None or ticket.started or age < self.grace:
            return False
        return id(ticket.job) not in live

    def _expire(self, now: float) -> None:
        live = self.live() if self.live is not None else None
        self._tickets = [t for t in self._tickets if not self._ended(t, now, live)]

    def _refuse_if_full(self, client: str) -> None:
        mine = sum(t.client == client for t in self._tickets)
        if mine >= self.per_client:
            raise Busy(
                f"you already have {mine} {self.what} request(s) waiting or running "
                f"(limit {self.per_client} per visitor); wait for them to finish"
            )
        if len(self._tickets) >= self.total:
            raise Busy(
                f"the server is busy: {self.total} {self.what} requests are waiting or running; try again in a minute"
            )

    def check(self, client: str) -> None:
        """Raise ``Busy`` if a request of ``client`` would be refused now (admitting nothing)."""
        with self._lock:
            self._expire(self._clock())
            self._refuse_if_full(client)

    def admit(self, client: str, job: object | None = None) -> None:
        """Admit one request of ``client`` (``job``: what identifies it in the queue) or raise ``Busy``."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._refuse_if_full(client)
            self._tickets.append(_Ticket(client, job, now))

    def start(self, job: object) -> None:
        """``job``'s handler has started: from now on its ``release`` gives the place back."""
        with self._lock:
            for ticket in self._tickets:
                if ticket.job is job:
                    ticket.started = True

    def release(self, client: str, job: object | None = None) -> None:
        """Give back ``job``'s place (gone already: nothing), or without ``job`` the oldest
        of ``client``'s, a started one first."""
        with self._lock:
            mine = [t for t in self._tickets if t.client == client and (job is None or t.job is job)]
            mine.sort(key=lambda t: not t.started)  # stable: the oldest started one first
            if mine:
                self._tickets.remove(mine[0])

    def held(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._tickets)
