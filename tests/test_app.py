"""The app: builds, serves the documented API, and reports bad input clearly."""
import json
import socket

import pytest
import torch
from gradio_client import Client, handle_file

from demo.controller import Controller
from demo.listening import ListeningStore
from demo.ui import build_app
from fgg.generate import Generator
from fgg.model import PRESETS, UNet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def controller():
    torch.manual_seed(0)
    paper, small = UNet(PRESETS["tiny"]), UNet(PRESETS["tiny"])  # two different random models
    return Controller({"paper": Generator(paper), "small": Generator(small)})


@pytest.fixture(scope="module")
def server(controller, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    pool = tmp / "pool"
    pool.mkdir()
    (pool / "manifest.json").write_text(json.dumps({"pairs": []}))
    app = build_app(controller, ListeningStore(f"sqlite:///{tmp / 'db.sqlite'}", pool))
    app.queue(max_size=8, default_concurrency_limit=2)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_api_generate_returns_audio_midi_figure_metrics(server):
    client = Client(server, verbose=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = api["/generate"]["parameters"]
    assert params[0]["parameter_name"] == "chords"
    assert all(p["parameter_has_default"] for p in params)  # only the chords are needed
    wav, midi, figure, metrics = client.predict(chords="C G | Am F", seed=3, api_name="/generate")
    assert wav.endswith(".wav") and open(wav, "rb").read(4) == b"RIFF"
    assert midi.endswith(".mid") and open(midi, "rb").read(4) == b"MThd"
    assert figure is not None
    assert metrics["out_of_key_notes"] == 0 and metrics["out_of_key_rate"] == 0.0 and metrics["notes"] > 0


def test_api_model_and_scale_table_choices(server, controller):
    client = Client(server, verbose=False)
    params = {p["parameter_name"] for p in
              client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"]["parameters"]}
    assert {"model", "scale_table", "scale_mode"} <= params
    _, midi_paper, _, m_paper = client.predict(chords="Cm7 | F7", seed=2, model="paper", scale_table="paper",
                                               api_name="/generate")
    _, midi_small, _, m_small = client.predict(chords="Cm7 | F7", seed=2, model="small", api_name="/generate")
    assert m_paper["out_of_key_notes"] == 0 and m_small["out_of_key_notes"] == 0
    assert open(midi_paper, "rb").read() != open(midi_small, "rb").read()  # another model, another sample
    with pytest.raises(Exception, match="huge"):
        client.predict(chords="C", model="huge", api_name="/generate")
    with pytest.raises(Exception, match="jazz"):
        client.predict(chords="C", scale_table="jazz", api_name="/generate")
    _, _, _, metrics = client.predict(chords="C | F | G | C | Am | F | G | C", bars=4, api_name="/generate")
    assert "8 bars" in metrics["warnings"][0]  # a cut progression is reported, not silent
    labels = dict((v, k) for k, v in controller.model_choices())
    assert labels["paper"].startswith("paper — ") and "best quality" in labels["paper"]


def test_api_bad_chord_is_a_clear_error(server):
    client = Client(server, verbose=False)
    with pytest.raises(Exception, match="bar 2: unrecognised chord symbol 'Hm'"):
        client.predict(chords="C | Hm", api_name="/generate")


def test_api_compare(server):
    client = Client(server, verbose=False)
    wav_a, wav_b, plot_a, plot_b, diff, table = client.predict(chords="Am F | C G", system_a="fgg",
                                                                system_b="no_fgg", model="small", api_name="/compare")
    assert wav_a.endswith("A_fgg.wav") and wav_b.endswith("B_no_fgg.wav")
    rows = {r[0]: r for r in table["data"]}
    assert rows["out_of_key_rate"][1] == 0.0


def test_api_midi_upload_checks(server, tmp_path):
    client = Client(server, verbose=False)
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd this is not really midi")
    with pytest.raises(Exception, match="is empty"):
        client.predict(chords="C", melody_file=handle_file(str(empty)), api_name="/generate")
    with pytest.raises(Exception, match="cannot read melody MIDI"):
        client.predict(chords="C", melody_file=handle_file(str(corrupt)), api_name="/generate")


def test_controller_rechecks_values(controller, tmp_path):
    huge = tmp_path / "huge.mid"
    huge.write_bytes(b"\0" * 1_100_000)
    with pytest.raises(ValueError, match="1.1 MB; the limit is 1 MB"):
        controller.generate("C", melody_file=str(huge))
    # out-of-range widget values are clamped on the server
    _, _, _, metrics = controller.generate("C G", tempo=-5, steps=999, cfg_scale=99, strength=7)
    assert metrics["notes"] >= 0 and metrics["out_of_key_notes"] == 0
    req = controller.resolve("C G", bars=1000, tempo=-5)
    assert req.progression.n_bars == 32 and req.tempo == 40
    with pytest.raises(ValueError, match="rhythm 'from segment' needs a POP909 segment"):
        controller.resolve("C", rhythm="from segment")
    with pytest.raises(ValueError, match="unknown model .huge."):
        controller.generate("C", model="huge")
    with pytest.raises(ValueError, match="unknown scale mode"):
        controller.resolve("C", scale="dorian", scale_mode="loose")
    with pytest.raises(ValueError, match="custom scale"):
        controller.resolve("C", scale="custom", custom_scale=" ")
    with pytest.raises(ValueError, match="not a note name"):
        controller.resolve("C", scale="custom", custom_scale="C H")


def test_segment_fills_inputs(controller):
    text, tempo = controller.segment_fields(0)
    from fgg.chords import parse_progression
    assert parse_progression(text).labels == tuple(str(x) for x in controller.segments["chord_labels"][0])
    assert 40 <= tempo <= 220
    req = controller.resolve(text, segment=0, rhythm="from segment")
    assert req.melody is not None and req.counts is not None


def test_evaluate_run_now(controller):
    from demo.controller import load_eval_results, run_eval_now

    progress = []
    summary, per_sample_csv, summary_csv = run_eval_now(controller, 2, ["fgg", "rule_based"], 1,
                                                        lambda d, t: progress.append((d, t)))
    assert list(summary["system"]) == ["fgg", "rule_based"] and (summary["out_of_key_rate"] == 0).all()
    assert progress[-1] == (4, 4)
    loaded = load_eval_results(__import__("pathlib").Path(summary_csv).parent)
    assert len(loaded[1]) == 4
    with pytest.raises(ValueError, match="at least one system"):
        run_eval_now(controller, 2, [], 1)
