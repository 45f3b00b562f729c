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
from collections.abc import Callable
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
STREAM_PIECE_SECONDS = 0.9  # under a second: Gradio's playlist says 1 s at most (stream_pieces)
SOFT_LIMIT_KNEE = 0.7  # a streamed piece's samples above 0.7 x the ceiling are bent towards it
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


class Performance:
    """FluidSynth playing a piece from its start as far as its music is known: ``play(midi,
    until)`` renders the events of ``midi`` before ``until`` seconds not played yet and returns
    the new audio; ``finish(midi)`` plays the rest, then the tail, and frees the synthesizer.
    Whether a piece is played in one go or part by part, the audio is the same, sample for
    sample, as long as each part's MIDI agrees with the final one before its ``until`` (tested):
    the synthesizer's state carries over, and FluidSynth renders in fixed blocks whatever the
    lengths asked for. Use it as a context manager (the synthesizer is freed however it ends)."""

    def __init__(self, soundfont: Path | None = None, sample_rate: int = SAMPLE_RATE):
        try:  # here, not at the top: without libfluidsynth the app still starts and says what is missing
            import fluidsynth
        except ImportError as err:  # pyfluidsynth present but libfluidsynth missing, or the reverse
            raise RuntimeError("FluidSynth is not available: install libfluidsynth3 (Debian) and pyfluidsynth") from err
        self.sample_rate = sample_rate
        self.frames = 0  # rendered so far
        self.played_until = 0.0  # every event before this time (s) is played
        self.programs_set = False
        font_path = str(soundfont or soundfont_path())
        with _fluidsynth_lock:
            _samples_kept_loaded(font_path)
            self.synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.5)
            self.synth.setting("synth.reverb.active", 1)
            self.synth.setting("synth.chorus.active", 1)
            self.font = self.synth.sfload(font_path)
        self.synth.set_reverb(**REVERB)
        self.synth.set_chorus(**CHORUS)

    def __enter__(self) -> Performance:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.synth is not None:
            with _fluidsynth_lock:
                self.synth.delete()
            self.synth = None

    def _events(self, midi: pretty_midi.PrettyMIDI) -> list[tuple]:
        """(time, kind, channel, a, b) of the non-drum instruments, kind 0 note-off, 1 note-on,
        2 control; sorted so that at one instant note-offs come first, then note-ons, then controls."""
        channels = [i for i in range(16) if i != 9]  # channel 10 is GM percussion
        instruments = [inst for inst in midi.instruments if not inst.is_drum][: len(channels)]
        events = []
        for channel, inst in zip(channels[: len(instruments)], instruments, strict=True):
            if not self.programs_set:
                self.synth.program_select(channel, self.font, 0, inst.program)
            for n in inst.notes:
                events += [(n.start, 1, channel, n.pitch, n.velocity), (n.end, 0, channel, n.pitch, 0)]
            for cc in inst.control_changes:
                events.append((cc.time, 2, channel, cc.number, cc.value))
        self.programs_set = True
        return sorted(events, key=lambda e: (e[0], e[1]))

    def _render_to(self, frame: int, chunks: list) -> None:
        if frame > self.frames:
            chunks.append(self.synth.get_samples(frame - self.frames))
            self.frames = frame

    def play(self, midi: pretty_midi.PrettyMIDI, until: float) -> np.ndarray:
        """(N, 2) float32 of ``midi`` from where the last call stopped to ``until`` seconds."""
        chunks: list = []
        for when, kind, channel, a, b in self._events(midi):
            if not self.played_until <= when < until:
                continue
            self._render_to(int(round(when * self.sample_rate)), chunks)
            if kind == 1:
                self.synth.noteon(channel, a, b)
            elif kind == 0:
                self.synth.noteoff(channel, a)
            else:
                self.synth.cc(channel, a, b)
        if np.isfinite(until):
            self._render_to(int(round(until * self.sample_rate)), chunks)
            self.played_until = until
        return (np.concatenate(chunks).reshape(-1, 2) / 32768.0).astype(np.float32) if chunks else _silence()

    def finish(self, midi: pretty_midi.PrettyMIDI) -> np.ndarray:
        """The rest of ``midi`` and the tail (``TAIL_SECONDS``); the synthesizer is freed."""
        try:
            rest = self.play(midi, float("inf"))
            tail = self.synth.get_samples(int(TAIL_SECONDS * self.sample_rate))
            return np.concatenate([rest, (tail.reshape(-1, 2) / 32768.0).astype(np.float32)])
        finally:
            self.close()


def _silence() -> np.ndarray:
    return np.zeros((0, CHANNELS), np.float32)


def synthesize(
    midi: pretty_midi.PrettyMIDI, soundfont: Path | None = None, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """(N, 2) float32 stereo of ``midi`` as FluidSynth plays it (not normalised)."""
    with Performance(soundfont, sample_rate) as performance:
        return performance.finish(midi)


class LiveAudio:
    """A piece's audio heard while it is generated: ``add(midi, until)`` renders the part that
    became final (``Performance``) and hands it to ``listen`` at once; ``finish(midi)`` renders
    the rest and returns the whole, which is exactly the parts heard, joined. A piece that comes
    in one part is normalised as every clip is (``normalize``). One that comes in several plays
    at one gain, measured on its first part (what follows is not known yet), with the peaks
    over the ceiling soft-limited sample by sample (``soft_limit``), so that the parts join
    without a step in level; its loudness is then within a few LU of the target."""

    def __init__(self, listen: Callable[[np.ndarray], None] | None = None):
        self.listen = listen
        self.performance = Performance()
        self.parts: list[np.ndarray] = []
        self.gain: float | None = None
        self.seconds = {"synthesis": 0.0, "loudness": 0.0}  # spent so far, by part of the work

    def __enter__(self) -> LiveAudio:
        return self

    def __exit__(self, *exc) -> None:
        self.performance.close()

    def add(self, midi: pretty_midi.PrettyMIDI, until: float) -> None:
        """The audio of ``midi`` up to ``until`` seconds, to the listener."""
        raw = self._timed("synthesis", self.performance.play, midi, until)
        if self.gain is None:
            self.gain = self._timed("loudness", loudness_gain, raw)
        self._hand_on(self._timed("loudness", soft_limit, raw * np.float32(self.gain)))

    def finish(self, midi: pretty_midi.PrettyMIDI) -> np.ndarray:
        """The rest of ``midi``, to the listener; returns the whole piece's audio."""
        raw = self._timed("synthesis", self.performance.finish, midi)
        if self.gain is None:
            self._hand_on(self._timed("loudness", normalize, raw))
        else:
            self._hand_on(self._timed("loudness", soft_limit, raw * np.float32(self.gain)))
        return np.concatenate(self.parts)

    def _timed(self, part: str, work: Callable, *args):
        began = time.perf_counter()
        try:
            return work(*args)
        finally:
            self.seconds[part] += time.perf_counter() - began

    def _hand_on(self, part: np.ndarray) -> None:
        self.parts.append(part)
        if self.listen is not None:
            self.listen(part)


def loudness_gain(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, target: float = TARGET_LUFS) -> float:
    """The gain that brings ``audio`` to ``target`` LUFS; 1 for silence or a clip too short to measure."""
    level = loudness(audio, sample_rate)
    return float(10 ** ((target - level) / 20)) if np.isfinite(level) else 1.0


def soft_limit(audio: np.ndarray, ceiling: float = TRUE_PEAK_CEILING_DBTP, knee: float = SOFT_LIMIT_KNEE) -> np.ndarray:
    """Samples above ``knee`` × the ceiling (``ceiling`` dBFS) bent smoothly towards it (tanh),
    the rest untouched: y = x for |x| ≤ k, else sign(x)·(k + (c − k)·tanh((|x| − k)/(c − k))),
    c the ceiling, k = knee·c. Sample by sample, so a piece limited in parts is limited as a whole."""
    c = 10 ** (ceiling / 20)
    k = knee * c
    magnitude = np.abs(audio)
    bent = k + (c - k) * np.tanh((magnitude - k) / (c - k))
    return np.where(magnitude <= k, audio, np.sign(audio) * bent).astype(np.float32)


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


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """``audio`` (N, 2) float32 as a 16-bit WAV, in memory."""
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def stream_pieces(audio: np.ndarray, seconds: float = STREAM_PIECE_SECONDS, sample_rate: int = SAMPLE_RATE):
    """``audio`` as WAV pieces of at most ``seconds``, to stream. The browser's player (HLS)
    looks for new pieces as often as the longest piece lasts: a 10 s part sent whole stalled
    playback for 9 s although the rest of the piece was ready."""
    size = int(seconds * sample_rate)
    for start in range(0, len(audio), size):
        yield wav_bytes(audio[start : start + size], sample_rate)


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
