"""The app: builds, serves the documented API, and reports bad input clearly."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file

from demo.bench import free_port
from demo.controller import Controller
from demo.listening import ListeningStore
from demo.request import COMPARE_PARAMETERS, GENERATE_PARAMETERS, AppRequest, CompareRequest
from demo.ui import build_app, launch
from fgg.generate import Generator
from fgg.model import PRESETS, UNet, model_config
from fgg.pianoroll import roll_to_notes


@pytest.fixture(scope="module")
def controller():
    torch.manual_seed(0)
    paper, small = UNet(PRESETS["tiny"]), UNet(PRESETS["tiny"])  # two different random models
    combined = UNet(model_config("tiny", "melody+accompaniment"))
    return Controller({"paper": Generator(paper), "small": Generator(small), "combined": Generator(combined)})


@pytest.fixture(scope="module")
def server(controller, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    app = build_app(controller, ListeningStore(f"sqlite:///{tmp / 'db.sqlite'}"))
    port = free_port()
    launch(app, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_api_generate_returns_audio_midi_figure_metrics(server):
    client = Client(server, verbose=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = api["/generate"]["parameters"]
    assert [p["parameter_name"] for p in params] == list(GENERATE_PARAMETERS)  # the request's fields, in order
    assert [p["parameter_name"] for p in api["/compare"]["parameters"]] == list(COMPARE_PARAMETERS)
    assert params[0]["parameter_name"] == "chords"
    assert all(p["parameter_has_default"] for p in params)  # only the chords are needed
    mp3, midi, figure, metrics, status, wav = client.predict(chords="C G | Am F", seed=3, api_name="/generate")
    assert mp3.endswith(".mp3") and Path(mp3).read_bytes()[:2] in (
        b"ID",
        b"\xff\xfb",
        b"\xff\xf3",
    )  # ID3 tag or frame sync
    assert (
        wav.endswith(".wav")
        and Path(wav).read_bytes()[:4] == b"RIFF"
        and os.path.getsize(mp3) < os.path.getsize(wav) / 4
    )
    assert midi.endswith(".mid") and Path(midi).read_bytes()[:4] == b"MThd"
    assert figure is not None
    assert metrics["out_of_key_notes"] == 0 and metrics["out_of_key_rate"] == 0.0 and metrics["notes"] > 0
    assert status.startswith(f"✓ {metrics['bars']} bars, {metrics['notes']} notes") and metrics["render_seconds"] > 0


def test_api_model_and_scale_table_choices(server, controller):
    client = Client(server, verbose=False)
    params = {
        p["parameter_name"]
        for p in client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["parameters"]
    }
    assert {"model", "scale_table", "scale_mode"} <= params
    _, midi_paper, _, m_paper, *_ = client.predict(
        chords="Cm7 | F7", seed=2, model="paper", scale_table="paper", api_name="/generate"
    )
    _, midi_small, _, m_small, *_ = client.predict(chords="Cm7 | F7", seed=2, model="small", api_name="/generate")
    assert m_paper["out_of_key_notes"] == 0 and m_small["out_of_key_notes"] == 0
    assert Path(midi_paper).read_bytes() != Path(midi_small).read_bytes()  # another model, another sample
    with pytest.raises(Exception, match="huge"):
        client.predict(chords="C", model="huge", api_name="/generate")
    with pytest.raises(Exception, match="jazz"):
        client.predict(chords="C", scale_table="jazz", api_name="/generate")
    _, _, _, metrics, status, _ = client.predict(chords="C | F | G | C | Am | F | G | C", bars=4, api_name="/generate")
    assert "8 bars" in metrics["warnings"][0] and "8 bars" in status  # a cut progression is reported, not silent
    labels = dict((v, k) for k, v in controller.model_choices())
    assert labels["paper"].startswith("paper — ") and "best quality" in labels["paper"]


def test_api_bad_chord_is_a_clear_error(server):
    client = Client(server, verbose=False)
    with pytest.raises(Exception, match="bar 2: unrecognised chord symbol 'Hm'"):
        client.predict(chords="C | Hm", api_name="/generate")


def test_api_compare_is_generate_with_two_systems(server):
    """Compare A = fgg is the very piece Generate makes with 4 bars (same MIDI bytes), and
    both sides come with audio and MIDI."""
    client = Client(server, verbose=False)
    settings = dict(chords="Am F | C G | Dm | E7 | Am", seed=5, model="small", rhythm="ballad", cfg_scale=3.0, steps=6)
    wav_a, wav_b, midi_a, midi_b, *_, table, status = client.predict(
        **settings, system_a="fgg", system_b="no_fgg", api_name="/compare"
    )
    assert wav_a.endswith("A_fgg_seed5.mp3") and wav_b.endswith("B_no_fgg_seed5.mp3")
    assert Path(midi_b).read_bytes()[:4] == b"MThd"
    rows = {r[0]: r for r in table["data"]}
    assert rows["out_of_key_rate"][1] == 0.0
    assert "5 bars" in status  # cut to the first 4 bars, and said so
    _, midi_on, *_ = client.predict(**settings, bars=4, api_name="/generate")
    _, midi_off, *_ = client.predict(**settings, bars=4, fgg=False, api_name="/generate")
    assert Path(midi_a).read_bytes() == Path(midi_on).read_bytes()
    assert Path(midi_b).read_bytes() == Path(midi_off).read_bytes()
    with pytest.raises(Exception, match="ground_truth is a POP909 segment"):
        client.predict(chords="C", system_b="ground_truth", api_name="/compare")


def test_api_midi_upload_checks(server, tmp_path):
    client = Client(server, verbose=False)
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd this is not really midi")
    with pytest.raises(Exception, match="is empty"):
        client.predict(chords="C", melody_file=handle_file(str(empty)), api_name="/generate")
    with pytest.raises(Exception, match="cannot read melody MIDI 'corrupt.mid'") as err:
        client.predict(chords="C", melody_file=handle_file(str(corrupt)), api_name="/generate")
    assert "/tmp" not in str(err.value) and "gradio" not in str(err.value)  # no server path


def test_controller_refuses_out_of_range_values_naming_them(controller, tmp_path):
    from fgg.checks import InputError

    huge = tmp_path / "huge.mid"
    huge.write_bytes(b"\0" * 1_100_000)
    with pytest.raises(ValueError, match="1.1 MB; the limit is 1 MB"):
        controller.generate(AppRequest("C", melody_file=str(huge)))
    for kwargs, parameter, message in [
        (dict(tempo=-5), "tempo", "tempo must be a number from 40 to 220 BPM (got -5)"),
        (dict(steps=999), "steps", "steps must be a whole number from 2 to 50 (got 999)"),
        (dict(steps=2.5), "steps", "whole number"),
        (dict(cfg_scale="abc"), "cfg_scale", "cfg_scale must be a number from 1 to 12 (got 'abc')"),
        (dict(strength=float("nan")), "strength", "strength must be a number"),
        (dict(seed=10**30), "seed", "seed must be a whole number from 0 to 2147483647 (got 1e+30)"),
        (dict(segment=10**9), "segment", "from -1 to 1708"),
        (dict(bars=1000), "bars", "bars must be a whole number from 4 to 32"),
        (dict(fgg="false"), "fgg", "fgg must be true or false"),
        (dict(rhythm="from segment"), "rhythm", "rhythm 'from segment' needs a POP909 segment"),
        (dict(model="huge"), "model", "unknown model 'huge'"),
        (dict(scale="dorian", scale_mode="loose"), "scale_mode", "unknown scale_mode"),
        (dict(scale="custom", custom_scale=" "), "custom_scale", "custom scale"),
        (dict(scale="custom", custom_scale="C H"), "custom_scale", "not a note name"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)) as err:
            controller.resolve(AppRequest("C G", **kwargs))
        assert err.value.parameter == parameter, kwargs
    with pytest.raises(InputError, match="1,000,000 characters long; the limit is 2,000"):
        controller.resolve(AppRequest("C " * 500_000))
    req = controller.resolve(AppRequest("C G | " * 40))  # bars follow the progression, up to 32, and say so
    assert req.progression.n_bars == 32 and "40 bars" in req.warnings[0]
    assert controller.resolve(AppRequest("C G")).progression.n_bars == 4
    assert not controller.resolve(AppRequest("C G")).cfg_has_effect
    assert controller.resolve(AppRequest("C G", rhythm="ballad")).cfg_has_effect


def test_a_request_is_resolved_once_in_the_library(controller, monkeypatch):
    """One ``resolve_spec`` call per request: the progression is fitted and the allowed notes
    computed once, and the generator samples that spec (Generate and Compare alike)."""
    import demo.controller
    import fgg.inputs
    from fgg.inputs import GenerationSpec

    calls: dict[str, int] = {}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(demo.controller, "resolve_spec", counted("resolve_spec", demo.controller.resolve_spec))
    for name in ("fit_progression", "allowed_pitch_classes"):
        monkeypatch.setattr(fgg.inputs, name, counted(name, getattr(fgg.inputs, name)))
    expected = {"resolve_spec": 1, "fit_progression": 1, "allowed_pitch_classes": 1}
    result = controller.generate(AppRequest("C G | Am F", rhythm="ballad", steps=2, seed=1))
    assert calls == expected and result.metrics["notes"] > 0 and result.warnings == ()
    calls.clear()
    compared = controller.compare(CompareRequest("C G | Am F | Dm | G7 | C", steps=2, seed=1))
    assert calls == expected and "5 bars" in compared.warnings[0] and compared.table.iloc[0, 1] == 0.0
    spec = controller.resolve(AppRequest("Dm7 | G", scale="dorian", tonic="D", model="combined"))
    assert isinstance(spec, GenerationSpec) and spec.mode.writes_melody and spec.melody is None
    assert spec.allowed[:, 1].sum() == 0 and spec.allowed[:, 11].all()  # D dorian: no C#, every B


def test_segment_fills_inputs(controller):
    text, tempo, melody = controller.segment_fields(0)
    from fgg.chords import parse_progression

    assert parse_progression(text).labels == tuple(str(x) for x in controller.segments["chord_labels"][0])
    assert 40 <= tempo <= 220 and melody.startswith("Melody: ")
    req = controller.resolve(AppRequest(text, segment=0, rhythm="from segment"))
    assert req.melody is not None and req.counts is not None
    assert controller.resolve(AppRequest("", segment=0)).progression.labels == parse_progression(text).labels
    silent = next(i for i in range(len(controller.segments["song_id"])) if not controller.has_melody(i))
    assert (
        controller.segment_label(silent).endswith("no melody") and "no melody" in controller.segment_fields(silent)[2]
    )
    songs = controller.song_choices()
    assert len(songs) == len(set(controller.segments["song_id"])) == 88
    label, song = songs[0]
    assert label.startswith(f"song {song:03d} · ") and any(k in label for k in (" major", " minor", "key unknown"))
    assert all(controller.segments["song_id"][i] == song for _, i in controller.segment_choices(song))


def test_evaluate_run_now(controller):
    from demo.evaluation import Cancelled, load_eval_results, run_eval_now

    progress = []
    summary, per_sample_csv, summary_csv = run_eval_now(
        controller, 2, ["fgg", "rule_based"], lambda d, t: progress.append((d, t))
    )
    assert list(summary["system"]) == ["fgg", "rule_based"] and (summary["out_of_key_rate"] == 0).all()
    assert progress[-1] == (4, 4)
    loaded = load_eval_results(__import__("pathlib").Path(summary_csv).parent)
    assert len(loaded[1]) == 4
    with pytest.raises(ValueError, match="at least one system"):
        run_eval_now(controller, 2, [])
    with pytest.raises(ValueError, match="n_segments must be a whole number from 1 to 20 .got 200."):
        run_eval_now(controller, 200, ["fgg"])
    cancel = __import__("threading").Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run_eval_now(controller, 8, ["fgg"], cancel=cancel)
    combined, *_ = run_eval_now(controller, 2, ["fgg", "no_fgg", "ground_truth"], model="combined")  # chords alone
    assert list(combined["system"]) == ["fgg", "no_fgg", "ground_truth"]
    assert combined.set_index("system").loc["fgg", "out_of_key_rate_melody"] == 0


def test_api_melody_and_accompaniment_model(server, tmp_path):
    """A melody+accompaniment model writes both tracks from the chords; it refuses a melody
    file and Compare (whose systems are accompaniment systems)."""
    import pretty_midi

    client = Client(server, verbose=False)
    _, midi, _, metrics, *_ = client.predict(
        chords="Dm7 | G7 | Dm7 | G7",
        model="combined",
        scale="dorian",
        tonic="D",
        scale_mode="strict",
        bars=8,
        seed=2,
        api_name="/generate",
    )
    assert metrics["melody_notes"] > 0 and metrics["out_of_key_notes"] == 0
    tracks = {i.name: i.notes for i in pretty_midi.PrettyMIDI(midi).instruments}
    assert tracks["melody"] and tracks["accompaniment"]
    assert all(n.pitch % 12 in (2, 4, 5, 7, 9, 11, 0) for notes in tracks.values() for n in notes)
    tune = tmp_path / "tune.mid"
    tune.write_bytes(Path(midi).read_bytes())
    with pytest.raises(Exception, match="writes its own melody"):
        client.predict(chords="C", model="combined", melody_file=handle_file(str(tune)), api_name="/generate")
    with pytest.raises(Exception, match="writes the melody too"):
        client.predict(chords="C", model="combined", api_name="/compare")


def test_melody_rhythm_and_rhythm_forcing_reach_the_sampler_and_say_what_they_do(controller):
    """The melody rhythm is the combined models' (an accompaniment model refuses any but auto /
    off), "from segment" reads the segment's melody, and the line under it names the rhythm;
    rhythm forcing is a control of its own."""
    from fgg.checks import InputError
    from fgg.melody_shape import START

    spec = controller.resolve(AppRequest("C G | Am F", model="combined", melody_rhythm="q-q-q-q"))
    assert (spec.melody_shape.rhythm[::4] == START).all()
    assert controller.resolve(AppRequest("C G", model="combined")).melody_shape.rhythm is not None  # auto
    assert controller.resolve(AppRequest("C G", model="combined", melody_rhythm="off")).melody_shape is None
    assert controller.resolve(AppRequest("C G")).melody_shape is None
    with pytest.raises(InputError, match="does not write the melody") as err:
        controller.resolve(AppRequest("C G", melody_rhythm="free"))
    assert err.value.parameter == "melody_rhythm"
    for bad in ("q-q-q", 5, "from segment"):  # not a choice; a number; no segment to read
        with pytest.raises(InputError) as err:
            controller.resolve(AppRequest("C G", model="combined", melody_rhythm=bad))
        assert err.value.parameter == "melody_rhythm"
    segment = next(i for i in range(100) if controller.has_melody(i))
    own = controller.resolve(AppRequest("", segment=segment, model="combined", melody_rhythm="from segment"))
    starts = set(np.flatnonzero(own.melody_shape.rhythm == START) % 64)
    assert starts == set(roll_to_notes(controller.segments["melody"][segment])[:, 0].tolist())
    assert controller.resolve(AppRequest("C G", rhythm="ballad", force_rhythm=False)).options.force_rhythm is False
    assert "chosen because POP909's melodies start" in controller.melody_rhythm_text("auto", "ballad", -1, "combined")
    assert "half" in controller.melody_rhythm_text("e-e-e-e-h", "none", -1, "combined")
    assert "models that write the melody (combined)" in controller.melody_rhythm_text("auto", "none", -1, "paper")


def test_melody_source_and_model_stay_in_step(controller):
    """ "Melody: none / upload / from a segment / generate one" picks the model, the model and
    what is given set the radio, and the line under the radio says the same as the radio."""
    from demo.melody_source import GENERATE, NONE, SEGMENT, UPLOAD, melody_line, model_for_source, source_shown

    assert model_for_source(controller, GENERATE, "small") == "combined"
    assert model_for_source(controller, GENERATE, "combined") == "combined"
    assert model_for_source(controller, UPLOAD, "combined") == "paper"  # back to the default
    assert model_for_source(controller, SEGMENT, "small") == "small"  # a given melody keeps its model
    assert model_for_source(controller, NONE, "combined") == "paper"
    writers_only = Controller({"combined": controller.generators["combined"]})
    assert model_for_source(writers_only, UPLOAD, "combined") == "combined"  # nothing else to switch to

    assert source_shown(controller, "paper", None, None) == NONE  # first load: no melody, and it says so
    assert melody_line(controller, NONE, "paper", None, None).startswith("Melody: none")
    assert source_shown(controller, "combined", "song.mid", 3) == GENERATE
    assert source_shown(controller, "small", "song.mid", 3) == UPLOAD  # an upload replaces the segment's
    assert source_shown(controller, "small", None, 3) == SEGMENT
    # Chosen, not given yet: the radio keeps the choice and the line says what is missing.
    assert source_shown(controller, "small", None, None, chosen=UPLOAD) == UPLOAD
    assert melody_line(controller, UPLOAD, "small", None, None) == "Melody: none yet — upload a MIDI file below."
    assert "pick a POP909 song" in melody_line(controller, SEGMENT, "small", None, None)
    assert source_shown(controller, "small", None, None, chosen=GENERATE) == NONE


def test_humanize_changes_the_performance_not_the_notes(controller):
    import pretty_midi

    plain, humanized, again = (
        pretty_midi.PrettyMIDI(controller.generate(AppRequest("C G | Am F", seed=4, humanize=h)).midi)
        for h in (False, True, True)
    )
    notes = lambda m: [(n.pitch, round(n.start, 6)) for i in m.instruments for n in i.notes]  # noqa: E731
    assert notes(humanized) == notes(again) != notes(plain)  # seeded
    assert sorted(p for p, _ in notes(humanized)) == sorted(p for p, _ in notes(plain))


def test_click_to_audio_is_broken_into_its_parts(server, controller):
    """Every part of a /generate call is timed by the controller, and the bench reports the
    median of each part and of everything but sampling."""
    from argparse import Namespace

    from demo.bench import bench_click_to_audio

    timings = controller.generate(AppRequest("C G | Am F", seed=1)).metrics["timings_s"]
    parts = ["sampling", "midi", "synthesis", "loudness", "mp3", "wav", "figure", "metrics", "mp3_wait", "total"]
    assert set(timings) == set(parts) and all(v >= 0 for v in timings.values())
    serial = sum(timings[p] for p in parts if p not in ("mp3", "total"))  # the MP3 runs beside the rest
    assert serial <= timings["total"]
    report = bench_click_to_audio(server, Namespace(chords="C G", rhythm="none", bars=4, repeats=2))
    assert set(report["parts_median_s"]) == set(parts) | {"outside_the_server"}
    assert 0 < report["overhead_median_s"] < report["click_to_audio_median_s"] and report["bars"] == 4


def test_the_sampler_is_a_choice_of_solver_and_steps(controller):
    from demo.request import DEFAULT_SAMPLER, SAMPLERS
    from fgg.checks import InputError

    spec = controller.resolve(AppRequest("C G", solver="dpmpp_2m", steps=5))
    assert (spec.options.solver, spec.options.steps) == ("dpmpp_2m", 5)
    default = controller.resolve(AppRequest("C G")).options
    assert (default.solver, default.steps) == SAMPLERS[DEFAULT_SAMPLER]
    for values, parameter in ((dict(solver="euler"), "solver"), (dict(solver="dpmpp_2m", steps=0), "steps")):
        with pytest.raises(InputError) as err:
            controller.resolve(AppRequest("C G", **values))
        assert err.value.parameter == parameter
    result = controller.generate(AppRequest("C G | Am F", solver="dpmpp_2m", steps=4, rhythm="ballad", seed=1))
    assert result.metrics["out_of_key_notes"] == 0


def test_a_listener_hears_a_long_piece_window_by_window(controller):
    """With a listener, the audio comes as each 4-bar window becomes final (12 bars: 4 parts),
    the first long before the end; the WAV is those parts, joined; no MP3 is made."""
    import soundfile

    parts = []
    result = controller.generate(AppRequest("C G | Am F", bars=12, seed=5, pedal=True), listen=parts.append)
    assert result.audio is None and len(parts) == 4
    wav, rate = soundfile.read(result.wav, dtype="float32")
    assert rate == 44100 and np.abs(np.concatenate(parts) - wav).max() <= 1 / 32767  # 16-bit rounding
    assert result.metrics["first_audio_s"] < result.metrics["timings_s"]["total"]
    assert Path(controller.generate(AppRequest("C G | Am F", bars=12, seed=5, pedal=True)).audio).suffix == ".mp3"


def test_files_are_named_after_what_they_hold(controller):
    from demo.controller import file_stem
    from fgg.chords import parse_progression

    result = controller.generate(AppRequest("Am F C G", seed=3, model="small"))
    assert Path(result.midi).name == "fgg-small-Am_F_C_G-seed3.mid" and Path(result.wav).suffix == ".wav"
    assert file_stem("paper", parse_progression("C G | F#m7b5/E").labels, 0) == "fgg-paper-C-G_Fsm7b5E-seed0"
    assert file_stem("paper", parse_progression(" ".join(["C"] * 9)).labels, 1).endswith("C_C_C_C_C_C_C_C_etc-seed1")


def test_a_title_says_unguided_when_fgg_does_nothing(controller):
    from demo.controller import guidance_title

    def title(**kwargs):
        return guidance_title(controller.resolve(AppRequest("C G", **kwargs)).options)

    assert title() == "FGG on" and title(fgg=False) == "unguided (FGG off)"
    assert title(strength=0) == "unguided (FGG strength 0)" and title(strength=0.5) == "FGG at strength 0.5"


def test_an_upload_is_read_when_it_arrives(controller, tmp_path):
    """A file that is not a usable MIDI melody is refused beside the upload, before Generate."""
    import pretty_midi

    from fgg.data import load_valid_segments
    from fgg.pianoroll import rolls_to_midi

    fake = tmp_path / "song.mid"
    fake.write_bytes(b"this is not a MIDI file")
    assert controller.melody_description(None, str(fake)).startswith("✗ cannot read melody MIDI 'song.mid'")
    empty = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(empty))
    assert "has no notes" in controller.melody_description(None, str(empty))
    good = tmp_path / "good.mid"
    rolls_to_midi({"melody": load_valid_segments()["melody"][3]}, 90.0).write(str(good))
    assert controller.melody_description(None, str(good)).startswith("Melody: the uploaded file 'good.mid'")


def test_compare_says_why_two_systems_coincide(controller):
    result = controller.compare(CompareRequest("C G | Am F", system_a="fgg", system_b="null_rhythm", seed=2))
    assert any("null_rhythm drops the rhythm condition, and this request has no rhythm" in w for w in result.warnings)
    different = controller.compare(CompareRequest("C G | Am F", rhythm="ballad", system_a="fgg", system_b="no_fgg"))
    assert not any("are the same notes" in w for w in different.warnings)
