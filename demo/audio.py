"""Audio rendering: MIDI -> 44.1 kHz stereo through FluidSynth, loudness-normalised.

    python -m demo.audio --info      # the SoundFont in use, sample rate, channels, loudness target
    python -m demo.audio --bench     # render time for 4 and 32 bars per SoundFont found, and MP3 encoding

SoundFont: ``$FGG_SOUNDFONT`` if set, else Debian's ``fluid-soundfont-gm`` (FluidR3_GM, the
standard GM bank; in ``packages.txt``), else the small TimGM6mb that pretty_midi ships (with a
one-line notice). Rendering uses a fresh synthesizer per clip, with a room reverb and a light
chorus, and a tail long enough for the last chord to decay, so the same MIDI always gives the
same audio. Every clip is normalised to the same integrated loudness (ITU-R BS.1770-4,
``pyloudnorm``) under a true-peak ceiling, so the two clips of an A/B pair differ in music,
not in level (louder is rated better in listening tests).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import sys
import threading
import time
from functools import cache, partial
from pathlib import Path

import lameenc
import numpy as np
import pretty_midi
import pyloudnorm
import soundfile
from scipy.signal import resample_poly

from fgg.data import load_valid_segments
from fgg.generate import piece_midi

SAMPLE_RATE = 44100
CHANNELS = 2
TARGET_LUFS = -16.0
TRUE_PEAK_CEILING_DBTP = -1.0
TAIL_SECONDS = 2.0  # the reverb and the last chord decay
DEBIAN_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
BUNDLED_SOUNDFONT = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
REVERB = dict(roomsize=0.5, damping=0.4, width=0.8, level=0.35)  # a mid-sized room
CHORUS = dict(nr=3, level=0.6, speed=0.3, depth=8.0, type=0)
FORMATS = {".wav": ("WAV", "PCM_16"), ".mp3": ("MP3", None), ".ogg": ("OGG", "VORBIS")}
# MP3 through LAME itself (lameenc), not libsndfile's: a 4-bar clip (12.7 s with the tail)
# took 0.44 s through libsndfile and 0.12 s through LAME at quality 5 (0 = best, 9 = fastest;
# ``python -m demo.audio --bench``); 160 kbit/s constant keeps piano and reverb clean.
MP3_KBPS = 160
MP3_LAME_QUALITY = 5
LOG = logging.getLogger("fgg.audio")
_fluidsynth_lock = threading.Lock()  # FluidSynth's C objects are made and freed one at a time


@cache
def soundfont_path() -> Path:
    """The SoundFont clips are rendered with (see the module docstring)."""
    if os.environ.get("FGG_SOUNDFONT"):
        path = Path(os.environ["FGG_SOUNDFONT"])
        if not path.is_file():
            raise FileNotFoundError(f"FGG_SOUNDFONT names no file: {path}")
        return path
    if DEBIAN_SOUNDFONT.is_file():
        return DEBIAN_SOUNDFONT
    LOG.warning("FluidR3_GM not found (apt-get install fluid-soundfont-gm): rendering with the small TimGM6mb")
    return BUNDLED_SOUNDFONT


@cache
def _samples_kept_loaded(font_path: str):
    """A synthesizer that holds ``font_path`` for the life of the process. FluidSynth shares a
    SoundFont's samples between the synthesizers that load it (its sample cache), so each clip's
    fresh synthesizer then loads the font in ~0.04 s instead of reading its samples again
    (~0.17 s for FluidR3_GM's 141 MB); the clip's sound is the same (tested)."""
    import fluidsynth  # imported by synthesize, which calls this

    keeper = fluidsynth.Synth(samplerate=float(SAMPLE_RATE))
    keeper.sfload(font_path)
    return keeper


def synthesize(
    midi: pretty_midi.PrettyMIDI, soundfont: Path | None = None, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """(N, 2) float32 stereo of ``midi`` as FluidSynth plays it (not normalised)."""
    try:  # here, not at the top: without libfluidsynth the app still starts and says what is missing
        import fluidsynth
    except ImportError as err:  # pyfluidsynth present but libfluidsynth missing, or the reverse
        raise RuntimeError("FluidSynth is not available: install libfluidsynth3 (Debian) and pyfluidsynth") from err
    events = []
    channels = [i for i in range(16) if i != 9]  # channel 10 is GM percussion
    instruments = [inst for inst in midi.instruments if not inst.is_drum][: len(channels)]
    font_path = str(soundfont or soundfont_path())
    with _fluidsynth_lock:
        _samples_kept_loaded(font_path)
        synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.5)
        synth.setting("synth.reverb.active", 1)
        synth.setting("synth.chorus.active", 1)
        font = synth.sfload(font_path)
    try:
        synth.set_reverb(**REVERB)
        synth.set_chorus(**CHORUS)
        for channel, inst in zip(channels[: len(instruments)], instruments, strict=True):
            synth.program_select(channel, font, 0, inst.program)
            for n in inst.notes:
                events += [(n.start, 1, channel, n.pitch, n.velocity), (n.end, 0, channel, n.pitch, 0)]
            for cc in inst.control_changes:
                events.append((cc.time, 2, channel, cc.number, cc.value))
        events.sort(key=lambda e: (e[0], e[1]))  # at one instant: note-offs, then note-ons, then controls
        chunks, now = [], 0
        for when, kind, channel, a, b in events:
            frames = int(round(when * sample_rate)) - now
            if frames > 0:
                chunks.append(synth.get_samples(frames))
                now += frames
            if kind == 1:
                synth.noteon(channel, a, b)
            elif kind == 0:
                synth.noteoff(channel, a)
            else:
                synth.cc(channel, a, b)
        chunks.append(synth.get_samples(int(TAIL_SECONDS * sample_rate)))
    finally:
        with _fluidsynth_lock:
            synth.delete()
    return (np.concatenate(chunks).reshape(-1, 2) / 32768.0).astype(np.float32)


def true_peak_db(audio: np.ndarray) -> float:
    """Peak of the 4× oversampled signal, in dBTP (BS.1770-4's true-peak estimate)."""
    peak = float(np.abs(resample_poly(audio, 4, 1, axis=0)).max()) if len(audio) else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def loudness(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4); -inf for silence."""
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio))


def normalize(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    target: float = TARGET_LUFS,
    ceiling: float = TRUE_PEAK_CEILING_DBTP,
) -> np.ndarray:
    """Gain to ``target`` LUFS; a peak that would pass ``ceiling`` dBTP is soft-limited (tanh
    above the ceiling) and the gain re-applied, so the loudness stays on target. Silence,
    and clips too short to measure (< 0.4 s), are returned as they are."""
    ceiling_lin = 10 ** (ceiling / 20)
    for _ in range(3):
        level = loudness(audio, sample_rate)
        if not np.isfinite(level):
            return audio
        audio = audio * np.float32(10 ** ((target - level) / 20))
        if true_peak_db(audio) <= ceiling:
            break
        audio = (ceiling_lin * np.tanh(audio / ceiling_lin)).astype(np.float32)
    return audio.astype(np.float32)


def render_audio(midi: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(N, 2) float32 stereo in [-1, 1], at the target loudness."""
    return normalize(synthesize(midi, sample_rate=sample_rate), sample_rate)


def write_audio(audio: np.ndarray, path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write ``audio`` as WAV (16-bit), MP3 or OGG Vorbis, by the path's suffix."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(f"unknown audio format {path.suffix!r}; choose one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp3":
        path.write_bytes(mp3_bytes(audio, sample_rate))
        return path
    kind, subtype = FORMATS[path.suffix]
    soundfile.write(str(path), audio, sample_rate, format=kind, subtype=subtype)
    return path


def mp3_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """``audio`` (N, 2) float32 as a constant-bitrate MP3 (``MP3_KBPS``, LAME quality ``MP3_LAME_QUALITY``)."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")  # (N, 2) interleaved 16-bit
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(MP3_KBPS)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_channels(pcm.shape[1])
    encoder.set_quality(MP3_LAME_QUALITY)
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def write_wav(midi: pretty_midi.PrettyMIDI, path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> Path:
    """Render and write a 16-bit stereo WAV; returns the path."""
    return write_audio(render_audio(midi, sample_rate), path, sample_rate)


def info() -> dict:
    path = soundfont_path()
    return {
        "soundfont": str(path),
        "soundfont_name": path.stem,
        "soundfont_mb": round(path.stat().st_size / 1e6, 1),
        "sample_rate": SAMPLE_RATE,
        "channels": CHANNELS,
        "target_lufs": TARGET_LUFS,
        "true_peak_ceiling_dbtp": TRUE_PEAK_CEILING_DBTP,
        "tail_s": TAIL_SECONDS,
    }


def bench(repeats: int = 5) -> dict:
    """Median render time (synthesis + loudness normalisation) of a POP909 segment's melody +
    accompaniment, 4 and 32 bars, with each SoundFont present; and the 4-bar clip's MP3
    encoding, by LAME (``mp3_bytes``, what the app uses) and by libsndfile's MP3 writer."""
    seg = load_valid_segments()
    pieces = {
        4: (seg["melody"][0], seg["accompaniment"][0]),
        32: tuple(np.concatenate(list(seg[k][:8]), axis=1) for k in ("melody", "accompaniment")),
    }

    def median_seconds(work) -> float:
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            work()
            times.append(time.perf_counter() - began)
        return round(statistics.median(times), 3)

    def render_with(midi, font) -> None:
        normalize(synthesize(midi, font))

    out = {}
    for font in (DEBIAN_SOUNDFONT, BUNDLED_SOUNDFONT):
        if not font.is_file():
            continue
        for bars, (melody, accompaniment) in pieces.items():
            midi = piece_midi(melody, accompaniment, 90.0)
            out[f"{font.stem}_{bars}bars_s"] = median_seconds(partial(render_with, midi, font))
    melody, accompaniment = pieces[4]
    clip = render_audio(piece_midi(melody, accompaniment, 90.0))
    out["mp3_4bars_lame_s"] = median_seconds(lambda: mp3_bytes(clip))
    out["mp3_4bars_libsndfile_s"] = median_seconds(
        lambda: soundfile.write(io.BytesIO(), clip, SAMPLE_RATE, format="MP3")
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.audio", description=__doc__.split("\n")[0])
    parser.add_argument("--info", action="store_true", help="print the rendering settings")
    parser.add_argument("--bench", action="store_true", help="time 4- and 32-bar renders per SoundFont, and MP3")
    args = parser.parse_args(argv)
    print(json.dumps(bench() if args.bench else info()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
