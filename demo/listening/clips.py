"""The listening test's audio: each study MIDI rendered once, ever, and what one rater hears.

Rendering is the slow part (FluidSynth and loudness normalisation), so renders are kept across
restarts in a cache folder (``FGG_CACHE_DIR``, default ``~/.cache/fgg-music``):
``rendered/<key>.wav``, the key a hash of the MIDI's bytes and of everything that shapes the
audio (``renderer_identity``). A restart, a second process or a
rebuilt study with the same files renders nothing; a changed MIDI file or SoundFont gets a new
key, never a stale clip. A render is written to a temp name and renamed, so a reader sees the
whole file or none, and each file has its own lock: raters who need different files never
wait for each other, and two who need the same one wait for one render.

What a rater hears is that render plus 1..``MAX_PAD_SAMPLES`` samples of silence drawn from its
opaque clip id (``ListeningStore.clip_id``), so its bytes are the rater's own (the test is
blind: no file name or hash links two raters' clips). Those files go to this process's temp
root (``demo.workspace``), only the last ``keep`` of them, and are served from there as they
are (the page registers the folder with Gradio as static, so Gradio makes no copy).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from functools import cached_property
from pathlib import Path

import numpy as np
import pretty_midi
from scipy.io import wavfile

from demo import audio
from demo.listening.store import StudyStore
from demo.workspace import process_root, scratch

KEPT_CLIPS = 64  # per-rater clips kept on disk (a clip asked for again is simply written again)
MAX_PAD_SAMPLES = 2048  # a clip's rater-specific trailing silence: 1 to this many samples (≤ 0.1 s)
STALE_TEMP_SECONDS = 3600  # a half-written render this old was left by a process that died
RENDER_LIBRARIES = ("pyfluidsynth", "pyloudnorm", "soundfile", "scipy", "numpy")
log = logging.getLogger("fgg.listening")


def cache_dir() -> Path:
    """Where renders are kept across restarts: ``$FGG_CACHE_DIR``, else ``~/.cache/fgg-music``."""
    return Path(os.environ.get("FGG_CACHE_DIR") or Path.home() / ".cache" / "fgg-music")


def renderer_identity(sample_rate: int = audio.SAMPLE_RATE) -> dict:
    """Everything besides the MIDI that changes a render's bytes: the sample rate, the SoundFont
    file (path, size, modification time), the rendering code itself (``demo/audio.py``: its
    synth settings, loudness target, tail...) and the versions of the libraries it calls."""
    font = audio.soundfont_path().resolve()
    stat = font.stat()
    return {
        "sample_rate": sample_rate,
        "soundfont": [str(font), stat.st_size, stat.st_mtime_ns],
        "renderer": hashlib.sha256(Path(audio.__file__).read_bytes()).hexdigest(),
        "libraries": {name: _version(name) for name in RENDER_LIBRARIES},
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # rendering will say what is missing
        return None


def _write_atomically(path: Path, write) -> None:
    """``write(temp)`` then rename ``temp`` to ``path``: readers see all of the file or none of it."""
    temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


class RenderCache:
    """Renders of MIDI files under ``folder/rendered``, keyed by content (see the module docstring)."""

    def __init__(self, folder: Path | None = None, sample_rate: int = audio.SAMPLE_RATE):
        self.folder = (folder or cache_dir()) / "rendered"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a read-only home: render per process, as a cache that ends with it
            log.warning("cannot use %s (%s): listening renders are kept until exit only", self.folder, err)
            self.folder = process_root() / "rendered"
            self.folder.mkdir(exist_ok=True)
        self.sample_rate = sample_rate
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    @cached_property
    def _identity(self) -> bytes:
        return json.dumps(renderer_identity(self.sample_rate), sort_keys=True).encode()

    def key(self, midi_path: str | os.PathLike) -> str:
        """The hash of the MIDI's bytes and the renderer's identity."""
        return hashlib.sha256(self._identity + b"\0" + Path(midi_path).read_bytes()).hexdigest()

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def wav(self, midi_path: str | os.PathLike) -> Path:
        """The render of ``midi_path``, made now if no process has made it before."""
        key = self.key(midi_path)
        wav = self.folder / f"{key}.wav"
        if not wav.is_file():
            with self._lock(key):
                if not wav.is_file():  # not rendered meanwhile by whoever held the lock
                    midi = pretty_midi.PrettyMIDI(str(midi_path))
                    _write_atomically(wav, lambda temp: audio.write_wav(midi, temp, self.sample_rate))
        return wav

    def sweep_stale_temps(self) -> None:
        """Remove half-written renders that a process killed mid-render left behind."""
        for temp in self.folder.glob(".*.tmp.wav"):
            try:
                if time.time() - temp.stat().st_mtime > STALE_TEMP_SECONDS:
                    temp.unlink()
            except FileNotFoundError:
                pass


class ClipServer:
    """What each rater of a study hears, from its renders (``RenderCache``), under opaque names
    in ``folder`` (default: a folder in this process's temp root); the last ``keep`` are kept."""

    def __init__(
        self,
        store: StudyStore,
        folder: Path | None = None,
        keep: int = KEPT_CLIPS,
        renders: RenderCache | None = None,
    ):
        self.store = store
        self.folder = folder or scratch("clips-")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.renders = renders or RenderCache()
        self._written: deque[Path] = deque()
        self._lock = threading.Lock()

    def _render_study(self) -> None:
        self.renders.sweep_stale_temps()
        for name in sorted({name for item in self.store.items() for name in item.midis}):
            try:
                self.renders.wav(self.store.midi_path(name))
            except Exception as err:  # a broken file: the rater who reaches it gets the error
                log.warning("cannot render %s: %s", name, err)

    def prerender(self) -> threading.Thread:
        """Render the study's files not in the cache yet, in the background, so no rater waits
        for them (with a warm cache: nothing to do)."""
        thread = threading.Thread(target=self._render_study, name="listening-prerender", daemon=True)
        thread.start()
        return thread

    def clip(self, rater: str, item_id: int, label: str, midi_path: str) -> str:
        """The WAV ``rater`` hears as ``label``: named by the clip id, with 1–``MAX_PAD_SAMPLES``
        samples of trailing silence (inaudible) so its bytes are this rater's own."""
        clip_id = self.store.clip_id(rater, item_id, label)
        out = self.folder / f"{clip_id}.wav"
        if not out.is_file():
            rate, music = wavfile.read(self.renders.wav(midi_path))
            pad = np.zeros((1 + int(clip_id[:6], 16) % MAX_PAD_SAMPLES,) + music.shape[1:], dtype=music.dtype)
            _write_atomically(out, lambda temp: wavfile.write(temp, rate, np.concatenate([music, pad])))
            self._remember(out)
        return str(out)

    def _remember(self, clip: Path) -> None:
        """Keep only the last ``keep`` clips written: temp space stays bounded however many raters come."""
        with self._lock:
            self._written.append(clip)
            stale = [self._written.popleft() for _ in range(max(0, len(self._written) - self.keep))]
        for old in stale:
            old.unlink(missing_ok=True)
