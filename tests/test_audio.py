"""Rendering: FluidR3_GM where installed, 44.1 kHz stereo, the same loudness for every clip,
deterministic dynamics with the melody above the accompaniment."""

import json

import numpy as np
import pretty_midi
import pytest
import soundfile

from demo import audio as A
from fgg.data import load_valid_segments
from fgg.dynamics import humanize, shape_dynamics
from fgg.generate import piece_midi


@pytest.fixture(scope="module")
def segments():
    return load_valid_segments()


def test_info_names_the_soundfont_and_the_format(capsys):
    assert A.main(["--info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sample_rate"] == 44100 and info["channels"] == 2 and info["target_lufs"] == -16.0
    if A.DEBIAN_SOUNDFONT.is_file():  # Debian's fluid-soundfont-gm, from packages.txt
        assert info["soundfont_name"] == "FluidR3_GM"


def test_a_4_bar_clip_is_44k_stereo_at_the_target_loudness(segments, tmp_path):
    midi = piece_midi(segments["melody"][3], segments["accompaniment"][3], 90.0)
    path = A.write_wav(midi, tmp_path / "x.wav")
    audio, rate = soundfile.read(str(path))
    assert rate == 44100 and audio.ndim == 2 and audio.shape[1] == 2
    assert abs(A.loudness(audio, rate) - A.TARGET_LUFS) <= 0.5
    assert A.true_peak_db(audio) <= A.TRUE_PEAK_CEILING_DBTP + 0.1
    assert len(audio) / rate >= 4 * 4 * 60 / 90.0 + A.TAIL_SECONDS - 0.01  # 4 bars at 90 BPM + the tail
    again = A.render_audio(midi)
    np.testing.assert_array_equal(again, A.render_audio(midi))  # the same MIDI, the same audio
    mp3 = A.write_audio(again, tmp_path / "x.mp3")
    assert mp3.stat().st_size < path.stat().st_size / 4
    decoded, mp3_rate = soundfile.read(str(mp3))  # a real MP3: it plays back as the same music
    assert mp3_rate == 44100 and decoded.shape[1] == 2 and abs(len(decoded) - len(again)) < 0.1 * 44100
    assert abs(A.loudness(decoded, mp3_rate) - A.TARGET_LUFS) <= 0.5
    n = min(len(decoded), len(again))
    lag = int(np.argmax(np.correlate(decoded[: n // 4, 0], again[:2048, 0], "valid")))  # the encoder's delay
    assert np.corrcoef(decoded[lag : lag + n // 2, 0], again[: n // 2, 0])[0, 1] > 0.99


def test_a_clip_sounds_the_same_whether_its_soundfont_was_loaded_before_or_not(segments, tmp_path, monkeypatch):
    """Each clip's synthesizer is fresh; only the SoundFont's samples are shared (kept loaded)."""
    font = tmp_path / "font.sf2"  # a file no synthesizer of this process has loaded yet
    font.write_bytes(A.BUNDLED_SOUNDFONT.read_bytes())
    midi = piece_midi(segments["melody"][4], segments["accompaniment"][4], 90.0)
    monkeypatch.setattr(A, "_samples_kept_loaded", lambda path: None)
    read_from_disk = A.synthesize(midi, font)
    monkeypatch.undo()
    shared = A.synthesize(midi, font)
    assert A._samples_kept_loaded.cache_info().currsize >= 1
    np.testing.assert_array_equal(shared, read_from_disk)


def test_a_quiet_and_a_dense_clip_come_out_equally_loud(segments):
    first_bar = segments["accompaniment"][5].copy()
    first_bar[:, 16:] = False  # one bar of accompaniment alone, then silence
    assert first_bar.any()
    sparse = piece_midi(np.zeros_like(first_bar), first_bar, 120.0)
    dense = piece_midi(segments["melody"][5], segments["accompaniment"][5], 120.0)
    levels = [A.loudness(A.render_audio(m)) for m in (sparse, dense)]
    assert abs(levels[0] - levels[1]) <= 0.5, levels


def test_dynamics_melody_above_accompaniment_bass_and_downbeats_accented(segments):
    midi = piece_midi(segments["melody"][3], segments["accompaniment"][3], 100.0)
    tracks = {i.name: i.notes for i in midi.instruments}
    assert min(n.velocity for n in tracks["melody"]) > max(n.velocity for n in tracks["accompaniment"])
    step = 60.0 / 100.0 / 4
    for n in tracks["accompaniment"]:
        position = round(n.start / step) % 16
        chord = [m.pitch for m in tracks["accompaniment"] if abs(m.start - n.start) < 1e-6]
        expected = 64 + (8 if position == 0 else 4 if position == 8 else 0) + (8 if n.pitch == min(chord) else 0)
        assert n.velocity == expected
    copy = piece_midi(segments["melody"][3], segments["accompaniment"][3], 100.0)
    assert [n.velocity for n in copy.instruments[1].notes] == [n.velocity for n in tracks["accompaniment"]]


def test_humanize_is_seeded_and_small():
    def piece():
        midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        inst = pretty_midi.Instrument(0, name="accompaniment")
        inst.notes = [pretty_midi.Note(80, 60 + i, i * 0.5, i * 0.5 + 0.4) for i in range(8)]
        midi.instruments.append(inst)
        return shape_dynamics(midi)

    a, b, c = humanize(piece(), 1), humanize(piece(), 1), humanize(piece(), 2)
    starts = lambda m: [n.start for n in m.instruments[0].notes]  # noqa: E731
    assert starts(a) == starts(b) != starts(c)
    base = piece().instruments[0].notes
    assert all(
        abs(x.start - y.start) <= 0.012 and abs(x.velocity - y.velocity) <= 6
        for x, y in zip(a.instruments[0].notes, base, strict=True)
    )


def test_every_shipped_studys_clips_are_loudness_matched():
    """Every screen of every shipped study (attention checks and anchors included): its clips
    within 0.5 LU of each other, and each clip's melody above its accompaniment."""
    from demo.listening import shipped_studies

    levels: dict[str, float] = {}
    for study in shipped_studies():
        assert len(study.items) >= 6
        for item in study.items:
            for clip in item["clips"]:
                if clip["midi"] not in levels:
                    midi = pretty_midi.PrettyMIDI(str(study.folder / "midi" / clip["midi"]))
                    tracks = {i.name: i.notes for i in midi.instruments if i.notes}
                    if "melody" in tracks:
                        melody, accompaniment = tracks["melody"], tracks["accompaniment"]
                        assert min(n.velocity for n in melody) > max(n.velocity for n in accompaniment)
                    levels[clip["midi"]] = A.loudness(A.render_audio(midi))
            heard = [levels[clip["midi"]] for clip in item["clips"]]
            assert max(heard) - min(heard) <= 0.5, (study.id, item["key"], heard)


def test_pedal_lifts_at_each_chord_change():
    from fgg.dynamics import pedal_at_chord_changes

    midi = piece_midi(np.zeros((2, 32, 64), bool), np.pad(np.ones((2, 32, 1), bool), ((0, 0), (0, 0), (20, 43))), 120.0)
    labels = ["C:maj"] * 4 + ["A:min"] * 4  # one change, at beat 4 = 2.0 s
    pedal_at_chord_changes(midi, labels)
    events = [(round(c.time, 3), c.value) for c in midi.instruments[1].control_changes]
    assert all(c.number == 64 for c in midi.instruments[1].control_changes)
    assert events[:3] == [(0.02, 127), (2.0, 0), (2.02, 127)] and events[-1][1] == 0
    assert not midi.instruments[0].control_changes  # the melody is left alone
    assert A.render_audio(midi).shape[1] == 2  # the renderer plays the pedal


def test_a_piece_played_as_it_is_generated_sounds_as_the_finished_piece():
    """12 bars (4 windows) with pedal and humanize: the parts rendered as each window became
    final (``Performance.play`` up to ``audible_until``) join into exactly the audio of the
    finished MIDI played at once; ``LiveAudio`` hands on those parts at one gain, and a piece
    of one window is normalised as every clip is."""
    import torch

    from demo.controller import audible_until
    from fgg import dynamics
    from fgg.generate import Generator
    from fgg.inputs import resolve_spec
    from fgg.model import PRESETS, UNet

    torch.manual_seed(0)
    generator = Generator(UNet(PRESETS["tiny"]))
    so_far = []
    result = generator.sample(resolve_spec("C G | Am F", bars=12, seed=2), on_window=so_far.append)
    assert [s.accompaniment.shape[1] for s in so_far] == [64, 112, 160]  # each window's end, 3 bars on
    assert all((s.accompaniment == result.accompaniment[:, : s.accompaniment.shape[1]]).all() for s in so_far[:1])

    def performed(music):
        dynamics.pedal_at_chord_changes(music.midi, music.progression.labels)
        return dynamics.humanize(music.midi, 2)

    with A.Performance() as performance:
        parts = [performance.play(performed(s), audible_until(s)) for s in so_far]
        parts.append(performance.finish(performed(result)))
    assert np.array_equal(np.concatenate(parts), A.synthesize(result.midi))

    heard = []
    with A.LiveAudio(heard.append) as live:
        for s in so_far:  # performed above, in place
            live.add(s.midi, audible_until(s))
        whole = live.finish(result.midi)
    assert len(heard) == 4 and np.array_equal(np.concatenate(heard), whole)
    assert np.array_equal(whole, A.soft_limit(A.synthesize(result.midi) * np.float32(live.gain)))
    first = A.loudness(heard[0])
    assert abs(first - A.TARGET_LUFS) < 0.5 and np.abs(whole).max() <= 10 ** (A.TRUE_PEAK_CEILING_DBTP / 20)

    with A.LiveAudio() as live:
        assert np.array_equal(live.finish(so_far[0].midi), A.normalize(A.synthesize(so_far[0].midi)))


def test_soft_limit_leaves_the_quiet_alone_and_bends_peaks_under_the_ceiling():
    ceiling = 10 ** (A.TRUE_PEAK_CEILING_DBTP / 20)
    x = np.linspace(-3, 3, 601, dtype=np.float32)[:, None].repeat(2, 1)
    y = A.soft_limit(x)
    quiet = np.abs(x) <= A.SOFT_LIMIT_KNEE * ceiling
    assert np.array_equal(y[quiet], x[quiet]) and np.abs(y).max() <= ceiling * (1 + 1e-6)  # float32 rounding
    assert (np.diff(y[:, 0]) >= 0).all() and (np.sign(y) == np.sign(x)).all()  # monotone, sign kept
