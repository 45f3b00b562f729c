"""The app's files on disk, in one temp folder per process that goes when the process goes.

Everything the app writes while it serves lives under ``process_root()``,
``$TMPDIR/music-app-<pid>-<hex>/``: the requests' files (``Workspace``), the listening clips
(``demo.listening.clips``) and, when the app sets it up (``use_for_gradio``, before gradio is
imported), Gradio's own cache (uploads, served files). One folder, so one removal cleans up:

- a normal exit, Ctrl-C (SIGINT) or SIGTERM/SIGHUP (``stop_on_signals``: the signal becomes the
  KeyboardInterrupt Gradio's ``launch`` already ends on) runs the ``atexit`` removal;
- a crash (``kill -9``, out of memory) cannot clean up after itself, so the next start does: each
  process holds a lock on its root's lock file for as long as it lives (the kernel drops it
  when the process dies, however it dies), and ``process_root`` first removes every root whose
  lock nobody holds. A lock, not the pid in the name: pids are reused, and another container
  sharing ``/tmp`` has pids of its own. A folder without our lock file is never touched.

The names are neutral (no "fgg", only hex digits at random) because they reach the browser:
Gradio serves a file under its absolute path, and the listening test's clip URLs must not name
a system, not even by chance.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections import deque
from functools import cache
from pathlib import Path
from typing import NoReturn

ROOT_PREFIX = "music-app-"
LOCK = ".fgg-music-app.lock"  # inside the root, never in a URL; marks the folder as one of ours
_held_locks: list[int] = []  # this process's lock file descriptors, open until it ends


def _take_lock(root: Path) -> None:
    """Lock ``root``'s lock file (``LOCK``) for this process's lifetime. Locked under another
    name, then renamed: a sweeper only looks at ``LOCK``, so it never sees a root whose lock is
    not yet held."""
    pending = root / f"{LOCK}.pending"
    fd = os.open(pending, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.replace(pending, root / LOCK)  # the lock belongs to the open file, it survives the rename
    _held_locks.append(fd)  # never closed: closing would release it


def _abandoned(root: Path) -> bool:
    """``root``'s process is gone: nobody holds the lock on its lock file."""
    try:
        fd = os.open(root / LOCK, os.O_RDWR)
    except OSError:  # no lock file (being made, or not one of ours), or not ours to touch
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its process is alive
    finally:
        os.close(fd)
    return True


def sweep_abandoned(temp_dir: str | os.PathLike | None = None) -> list[Path]:
    """Remove the roots in ``temp_dir`` (default: the temp dir) of processes that died without
    cleaning up (``kill -9``); returns them."""
    gone = []
    for root in Path(temp_dir or tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"):
        if root.is_dir() and not root.is_symlink() and _abandoned(root):
            shutil.rmtree(root, ignore_errors=True)
            gone.append(root)
    return gone


def new_folder(parent: Path, prefix: str) -> Path:
    """A new private folder ``parent/<prefix><8 hex digits>``."""
    while True:
        folder = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # 1 in 4 billion: draw again
            continue
        return folder


@cache
def process_root() -> Path:
    """This process's temp root (made on first use, after sweeping the dead processes' roots),
    removed at exit."""
    sweep_abandoned()
    root = new_folder(Path(tempfile.gettempdir()), f"{ROOT_PREFIX}{os.getpid()}-")
    _take_lock(root)
    atexit.register(shutil.rmtree, root, True)
    return root


def scratch(prefix: str) -> Path:
    """A new folder in this process's root, removed with it."""
    return new_folder(process_root(), prefix)


def use_for_gradio() -> Path:
    """Point Gradio's cache (``GRADIO_TEMP_DIR``) into this process's root, unless the user set
    it; returns it. Call before gradio is imported: some of its modules read it at import."""
    os.environ.setdefault("GRADIO_TEMP_DIR", str(process_root() / "gradio"))
    return Path(os.environ["GRADIO_TEMP_DIR"])


_stopping = threading.Event()


def _interrupt(signum, frame) -> None:
    """The first stop signal interrupts the main thread; the repeats that often follow (a
    supervisor signalling the whole process group, an impatient Ctrl-C) are ignored, so they
    cannot break off the shutdown they asked for."""
    if not _stopping.is_set():
        _stopping.set()
        raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_on_signals(signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)) -> None:
    """Make ``signals`` stop the process as Ctrl-C does: Gradio's ``launch`` closes the server on
    KeyboardInterrupt and returns, so the process exits normally and ``atexit`` removes the
    root. (Python's default for SIGTERM is to die at once, leaving everything behind.) Main
    thread only, as ``signal.signal`` requires."""
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            signal.signal(signum, _interrupt)


def exit_now(status: int = 0) -> NoReturn:
    """End the process, its server closed: the exit handlers (the root's removal among them),
    then out, without the interpreter's teardown. A request still running in a worker thread
    (torch's and FluidSynth's C++ threads) makes that teardown abort ("terminate called without
    an active exception", exit status -6) instead of exiting cleanly."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


class Workspace:
    """The files requests produce (WAV, MIDI, CSV), in one folder of the process's root
    (or ``root``, when given).

    Gradio copies every returned file into its own cache (pruned by the app's
    ``delete_cache``), so ours are needed only until the response is sent: each request gets a
    subfolder, the oldest beyond ``keep`` are deleted as new ones are made, and the whole
    folder goes when the process exits. Temp space is bounded by ``keep`` requests' files."""

    def __init__(self, root: str | Path | None = None, keep: int = 16):
        self.root = Path(root) if root is not None else scratch("work-")
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
