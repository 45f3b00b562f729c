"""What a visitor may send a public Space, and how much of the server one visitor may hold.

The values themselves are checked by ``fgg.checks`` (``InputError`` names the parameter, the
limit and the shortened value) against the public bounds here (``PUBLIC_LIMITS``). ``Admission``
bounds how much work one endpoint holds (waiting or running) in all and per client, refusing
the excess when it asks.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

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


class Admission:
    """At most ``total`` requests on one endpoint, and ``per_client`` of any one client,
    admitted and not yet released (waiting in the queue or running).

    ``admit`` runs when a request joins the queue (a Gradio validator), so the excess is
    refused at once instead of after waiting; ``release`` runs when the request ends. A
    request admitted but never run (its client left while it waited) is forgotten after
    ``ttl`` seconds."""

    def __init__(self, what: str, total: int, per_client: int, ttl: float = 900.0, clock=time.monotonic):
        self.what, self.total, self.per_client, self.ttl, self._clock = what, total, per_client, ttl, clock
        self._tickets: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for client in list(self._tickets):
            tickets = self._tickets[client]
            while tickets and now - tickets[0] > self.ttl:
                tickets.popleft()
            if not tickets:
                del self._tickets[client]

    def admit(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            self._expire(now)
            mine = self._tickets.get(client, deque())
            if len(mine) >= self.per_client:
                raise Busy(
                    f"you already have {len(mine)} {self.what} request(s) waiting or running "
                    f"(limit {self.per_client} per visitor); wait for them to finish"
                )
            if sum(map(len, self._tickets.values())) >= self.total:
                raise Busy(
                    f"the server is busy: {self.total} {self.what} requests are waiting or running; "
                    "try again in a minute"
                )
            mine.append(now)
            self._tickets[client] = mine

    def release(self, client: str) -> None:
        with self._lock:
            tickets = self._tickets.get(client)
            if tickets:
                tickets.popleft()
                if not tickets:
                    del self._tickets[client]

    def held(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return sum(map(len, self._tickets.values()))


class Workspace:
    """The files requests produce (WAV, MIDI, CSV), in one folder per process.

    Gradio copies every returned file into its own cache (pruned by the app's
    ``delete_cache``), so ours are needed only until the response is sent: each request gets a
    subfolder, the oldest beyond ``keep`` are deleted as new ones are made, and the whole
    folder goes when the process exits. Temp space is bounded by ``keep`` requests' files."""

    def __init__(self, root: str | Path | None = None, keep: int = 16):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="fgg-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self._folders: deque[Path] = deque()
        self._lock = threading.Lock()
        atexit.register(shutil.rmtree, self.root, True)

    def new(self, prefix: str) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=self.root))
        with self._lock:
            self._folders.append(folder)
            stale = [self._folders.popleft() for _ in range(max(0, len(self._folders) - self.keep))]
        for old in stale:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())
