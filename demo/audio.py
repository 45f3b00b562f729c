"""Audio rendering: MIDI -> WAV through FluidSynth (``pyfluidsynth`` + Debian's libfluidsynth3).

The SoundFont is ``$FGG_SOUNDFONT`` if set, else the General MIDI SoundFont that pretty_midi
ships (TimGM6mb.sf2).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pretty_midi
from scipy.io import wavfile

SAMPLE_RATE = 22050
TAIL_SECONDS = 1.0  # let the last notes ring out


def soundfont_path() -> Path:
    path = Path(os.environ.get("FGG_SOUNDFONT") or Path(pretty_midi.__file__).parent / "TimGM6mb.sf2")
    if not path.is_file():
        raise FileNotFoundError(f"SoundFont not found: {path} (set FGG_SOUNDFONT to a .sf2 file)")
    return path


def render_audio(midi: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 audio in [-1, 1], peak-normalised to -1 dBFS (silence stays silence)."""
    try:
        audio = midi.fluidsynth(fs=sample_rate, synthesizer=str(soundfont_path()))
    except ImportError as err:  # pyfluidsynth present but libfluidsynth missing, or the reverse
        raise RuntimeError("FluidSynth is not available: install libfluidsynth3 (Debian) and pyfluidsynth") from err
    audio = np.concatenate([np.asarray(audio, dtype=np.float32), np.zeros(int(TAIL_SECONDS * sample_rate), np.float32)])
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    return audio * (10 ** (-1 / 20) / peak) if peak > 0 else audio


def write_wav(midi: pretty_midi.PrettyMIDI, path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> Path:
    """Render and write 16-bit PCM WAV; returns the path."""
    audio = render_audio(midi, sample_rate)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, sample_rate, (audio * 32767).astype(np.int16))
    return path
