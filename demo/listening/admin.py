"""Who may see the results: the admin password, with a back-off against guessing."""

from __future__ import annotations

import hmac
import math
import os
import threading
import time
from collections.abc import Callable


class AdminGate:
    """The admin password (``FGG_ADMIN_PASSWORD``), compared in constant time, with an
    exponential back-off per client after wrong guesses: after n failures in a row the
    client waits 2^(n-1) s (at most ``max_wait``) before the next guess counts."""

    def __init__(
        self, password: str | None = None, max_wait: float = 300.0, clock: Callable[[], float] = time.monotonic
    ):
        self._password = os.environ.get("FGG_ADMIN_PASSWORD") if password is None else password
        self.max_wait, self._clock = max_wait, clock
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (failures in a row, locked until)
        self._lock = threading.Lock()

    def check(self, password: str | None, client: str) -> None:
        """Return if ``password`` is right; else raise ``PermissionError`` saying why."""
        if not self._password:
            raise PermissionError("the admin view is disabled: FGG_ADMIN_PASSWORD is not set on the server")
        with self._lock:
            failures, until = self._failures.get(client, (0, 0.0))
            now = self._clock()
            if now < until:
                raise PermissionError(f"too many wrong passwords: try again in {math.ceil(until - now)} s")
            if password and hmac.compare_digest(str(password).encode(), self._password.encode()):
                self._failures.pop(client, None)
                return
            failures += 1
            self._failures[client] = (failures, now + min(2.0 ** (failures - 1), self.max_wait))
        raise PermissionError("wrong admin password")
