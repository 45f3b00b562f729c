import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from eval import metrics as M
from eval.baselines import (
    EvalContext,
    SegmentBatch,
    canonical,
    remove_out_of_key,
    round_out_of_key,
    rule_based_accompaniment,
    run_system,
)
from eval.chord_metrics import (
    ChordScorer,
    chord_accuracy,
    label_chord_accuracy,
    normalize_label,
)
from fgg.checkpoint import load_model, save_model
from fgg.data import load_valid_segments
from fgg.model import PRESETS, UNet, model_config
from fgg.modes import ACCOMPANIMENT, MELODY_AND_ACCOMPANIMENT
from fgg.pianoroll import notes_to_roll, roll_to_notes

C_MAJOR = np.zeros((64, 12), bool)
C_MAJOR[:, [0, 2, 4, 5, 7, 9, 11]] = True


def roll_of(*notes, steps=64):
    return notes_to_roll(np.array(notes, dtype=np.int64).reshape(-1, 3), steps)


def test_out_of_key_rates_exact():
    one_wrong = roll_of([0, 16, 60], [10, 11, 61])  # C# sounds at exactly one step
    assert M.out_of_key_rate(one_wrong, C_MAJOR) == 1 / 64
    assert M.out_of_key_note_rate(one_wrong, C_MAJOR) == 1 / 2
    assert M.out_of_key_rate(roll_of(steps=64), C_MAJOR) == 0.0 and M.out_of_key_note_rate(roll_of(), C_MAJOR) == 0.0
    # a long wrong note counts every step it sounds; two wrong notes at one step count once
    assert M.out_of_key_rate(roll_of([0, 8, 61], [4, 6, 63]), C_MAJOR) == 8 / 64
    # orphan sustain pixels are not notes
    orphan = np.zeros((2, 64, 64), bool)
    orphan[1, 0:4, 61 - 33] = True
    assert M.out_of_key_rate(orphan, C_MAJOR) == 0.0


def test_key_allowed():
    allowed = M.key_allowed(np.array([9, 9, -1]), np.array([True, True, False]))
    assert allowed[0].nonzero()[0].tolist() == [0, 2, 4, 5, 7, 8, 9, 11]  # A minor + G#
    assert allowed[2].all()


def test_texture_metrics():
    roll = roll_of([0, 4, 48], [0, 4, 52], [0, 8, 55], [16, 20, 72])
    assert M.note_density(roll) == 4 / 4
    assert M.polyphony(roll) == pytest.approx((3 * 4 + 1 * 4 + 1 * 4) / 12)
    assert M.pitch_range(roll) == 24
    assert M.pitch_range(roll_of()) == 0 and M.polyphony(roll_of()) == 0.0
    reference = roll_of([0, 4, 48], [8, 12, 50])
    # bar 1: onsets {0} vs {0, 8}: 1 of 16 differs; bars 2-4: {0} vs {} in bar 2 -> 1 differs
    assert M.groove_similarity(roll, reference) == pytest.approx(1 - 2 / 64)
    assert M.groove_similarity(roll, roll) == 1.0


def test_overlap_area():
    bins = np.arange(10, dtype=float)
    assert M.overlapping_area(np.array([3.0]), np.array([3.0]), bins) == pytest.approx(1.0)
    assert M.overlapping_area(np.array([0.0]), np.array([9.0]), bins) < 1e-5
    assert M.overlapping_area(np.array([]), np.array([]), bins) == 1.0
    assert M.overlapping_area(np.array([]), np.array([1.0]), bins) == 0.0
    roll = roll_of([0, 4, 48], [4, 8, 50])
    assert M.overlap_metrics(roll, roll) == pytest.approx({"oa_pitch": 1.0, "oa_duration": 1.0, "oa_ioi": 1.0})


def test_diversity_and_changes():
    a, b = roll_of([0, 4, 48], [4, 8, 50]), roll_of([0, 4, 48], [6, 8, 50])
    assert M.roll_distance(a, a) == 0.0 and M.roll_distance(a, b) == pytest.approx(1 - 1 / 3)
    assert M.diversity([a, a, b]) == pytest.approx((0 + 2 * (2 / 3)) / 3)
    assert math.isnan(M.diversity([a]))
    assert M.notes_changed(a, b) == 2 and M.notes_changed(a, a) == 0


def test_chord_labels():
    assert normalize_label("A#:maj") == normalize_label("Bb:maj7") == (10, "maj")
    assert normalize_label("N") is None
    assert chord_accuracy(["C:maj", "A:min", "N"], ["C:maj7", "A:maj", "N", "G:maj"]) == pytest.approx(2 / 3)
    assert label_chord_accuracy(["C:maj", "A:min", "G:maj"], ["N", "A:min7", "G:7"]) == 1.0
    assert math.isnan(label_chord_accuracy(["C:maj"], ["N"]))


def test_chord_scorer_matches_smg():
    from smg_metrics import compute_ca, compute_cs

    seg = load_valid_segments()
    scorer = ChordScorer()
    pred, ref = seg["accompaniment"][40], seg["accompaniment"][41]
    scores = scorer.score(pred, "41", ref, seg["chord_labels"][41])
    pred_path = scorer.pred_path()
    ref_path = scorer.reference("41", ref)[3]
    assert scores["chord_accuracy"] == pytest.approx(compute_ca(pred_path, ref_path, method="dp"))
    assert scores["chord_similarity"] == pytest.approx(compute_cs(pred_path, ref_path), abs=1e-5)
    same = scorer.score(ref, "41", ref, seg["chord_labels"][41])
    assert same["chord_accuracy"] == 1.0 and same["chord_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert same["chord_similarity_full"] == pytest.approx(1.0, abs=1e-5)


def test_full_chord_similarity_covers_bars_3_and_4():
    """smg's compute_cs scores only bars 1-2 of a 4-bar segment; the full version sees a change
    in bars 3-4 (over bars 1-2 it is smg's number: test_chord_scorer_matches_smg)."""
    from smg_metrics import compute_cs

    seg = load_valid_segments()
    scorer = ChordScorer()
    ref = seg["accompaniment"][41]
    changed = ref.copy()
    changed[:, 32:] = seg["accompaniment"][900][:, 32:]  # bars 3-4 from another song
    scores = scorer.score(changed, "41", ref)
    assert scores["chord_similarity"] == pytest.approx(1.0, abs=1e-5)  # smg: blind to bars 3-4
    assert scores["chord_similarity_full"] < 0.99
    assert compute_cs(scorer.pred_path(), scorer.reference("41", ref)[3]) == pytest.approx(1.0, abs=1e-5)


def test_last_step_edits():
    roll = roll_of([0, 8, 61], [0, 8, 64], [8, 16, 66])  # C#, E, F#: two out of C major
    removed = remove_out_of_key(roll, C_MAJOR)
    assert M.out_of_key_rate(removed, C_MAJOR) == 0 and M.notes_changed(removed, roll) == 2
    rounded = round_out_of_key(roll, C_MAJOR)
    assert M.out_of_key_rate(rounded, C_MAJOR) == 0
    from fgg.pianoroll import roll_to_notes

    assert roll_to_notes(rounded).tolist() == [[0, 8, 60], [0, 8, 64], [8, 16, 65]]  # ties go down


def test_rounding_never_merges_with_a_sounding_note():
    """A held C4 must not be cut by a C#4 moved onto C4 in the middle of it: the moved note
    avoids every pitch that sounds during its span, not only onsets."""
    from fgg.pianoroll import roll_to_notes

    roll = roll_of([0, 16, 60], [4, 8, 61])
    rounded = round_out_of_key(roll, C_MAJOR)
    assert roll_to_notes(rounded).tolist() == [[0, 16, 60], [4, 8, 62]]  # C4 whole; C# went up to D
    crowded = roll_of([0, 16, 60], [0, 16, 62], [4, 8, 61])  # both neighbours sound
    assert roll_to_notes(round_out_of_key(crowded, C_MAJOR)).tolist() == [[0, 16, 60], [0, 16, 62], [4, 8, 59]]


def test_rule_based():
    chroma = np.zeros((64, 12), np.uint8)
    chroma[:, [0, 4, 7]] = 1
    counts = np.zeros(64, int)
    counts[::8] = 3
    roll = rule_based_accompaniment(chroma, np.zeros(64, int), np.full(64, 4), counts)
    np.testing.assert_array_equal(roll[0].sum(-1), counts)
    assert M.out_of_key_rate(roll, C_MAJOR) == 0


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", UNet(PRESETS["tiny"]))


def test_every_system_returns_valid_rolls(tiny_checkpoint):
    from fgg.checkpoint import load_model

    seg = load_valid_segments()
    batch = SegmentBatch.from_segments(seg, [3, 400, 900])
    ctx = EvalContext(load_model(tiny_checkpoint)[0])
    for name in ACCOMPANIMENT.systems:
        output = run_system(name, batch, [1, 2, 3], ctx)
        rolls = output.rolls
        assert rolls.shape == (3, 2, 64, 64) and rolls.dtype == bool, name
        if name in ("fgg", "last_step_remove", "last_step_round", "inpaint", "null_rhythm", "rule_based"):
            for roll, allowed in zip(rolls, batch.allowed, strict=True):
                assert M.out_of_key_rate(roll, allowed) == 0.0, name
        if name in ("fgg", "inpaint", "null_rhythm", "last_step_remove", "last_step_round"):
            assert output.uncorrected.shape == rolls.shape, name  # what the correction started from
    fgg_output = run_system("fgg", batch, [1, 2, 3], ctx)
    fgg = fgg_output.rolls
    np.testing.assert_array_equal(fgg[:, 0].sum(-1), batch.onset_counts)  # rhythm enforced
    # the uncorrected final prediction of an untrained model is out of key somewhere
    assert any(M.out_of_key_rate(r, a) > 0 for r, a in zip(fgg_output.uncorrected, batch.allowed, strict=True))
    np.testing.assert_array_equal(run_system("ground_truth", batch, [0] * 3, ctx).rolls, batch.accompaniment)
    # the same seed gives the same sample in any batch composition
    for name in ("fgg", "inpaint"):
        batched = fgg if name == "fgg" else run_system(name, batch, [1, 2, 3], ctx).rolls
        single = run_system(name, SegmentBatch.from_segments(seg, [400]), [2], ctx).rolls
        np.testing.assert_array_equal(single[0], batched[1])


def test_runner_end_to_end(tiny_checkpoint, tmp_path):
    from eval.run import main

    systems = "fgg,no_fgg,last_step_remove,ground_truth"
    args = [
        "--segments",
        "3",
        "--systems",
        systems,
        "--seeds",
        "2",
        "--out",
        str(tmp_path),
        "--workers",
        "2",
        "--checkpoint",
        str(tiny_checkpoint),
    ]
    assert main(args) == 0
    for name in ("per_sample.csv", "summary.csv", "report.html", "out_of_key_pitch_classes.csv"):
        assert (tmp_path / name).is_file(), name
    with open(tmp_path / "per_sample.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 4 * 2
    assert list(rows[0])[:4] == ["system", "segment", "seed", "out_of_key_rate"]
    assert all(float(r["out_of_key_rate"]) == 0 for r in rows if r["system"] == "fgg")
    with open(tmp_path / "summary.csv") as f:
        summary = {r["system"]: r for r in csv.DictReader(f)}
    assert set(summary) == set(systems.split(",")) and "out_of_key_rate_ci95" in summary["fgg"]
    assert float(summary["fgg"]["diversity"]) > 0
    assert (tmp_path / "midi").is_dir() and len(list((tmp_path / "midi").glob("*.mid"))) == 3 * 4
    # the network's work: fgg and no_fgg (last_step_remove reuses no_fgg's samples), 2 seeds x 3
    # segments, 10 steps of 2 forwards each (CFG: conditional and null) -> 240 items through it
    from fgg.checkpoint import load_model
    from fgg.model import forward_gflops

    record = json.loads((tmp_path / "run.json").read_text())
    gflop = 240 * forward_gflops(load_model(tiny_checkpoint)[0])
    assert record["network_gflop"] == pytest.approx(gflop, abs=0.1) and record["network_gflop_per_s"] > 0
    # resumable: a second run adds no rows
    assert main(args) == 0
    with open(tmp_path / "per_sample.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert main(["--systems", "nope", "--out", str(tmp_path)]) == 2
    # another checkpoint or scale table in the same folder is refused, not mixed in
    assert main(args + ["--scale-table", "paper"]) == 2


def test_runner_resume_with_other_segments_rescores_the_right_samples(tiny_checkpoint, tmp_path):
    """A second run in the same folder with another --segments must not reuse the stored
    no_fgg rolls (made for other segments) for the last-step baselines."""
    from eval.run import main

    common = ["--systems", "no_fgg,last_step_remove", "--seeds", "1", "--checkpoint", str(tiny_checkpoint)]
    assert main(common + ["--segments", "3", "--out", str(tmp_path / "reused")]) == 0
    assert main(common + ["--segments", "5", "--out", str(tmp_path / "reused")]) == 0
    assert main(common + ["--segments", "5", "--out", str(tmp_path / "fresh")]) == 0
    reused = pd.read_csv(tmp_path / "reused" / "summary.csv").set_index("system")
    fresh = pd.read_csv(tmp_path / "fresh" / "summary.csv").set_index("system")
    for column in ("out_of_key_rate_paper_table", "note_density", "key_fixes", "chord_similarity_full"):
        assert reused.loc["last_step_remove", column] == pytest.approx(fresh.loc["last_step_remove", column]), column


def test_summary_has_both_tables_full_similarity_and_per_note_fixes(tiny_checkpoint, tmp_path):
    from eval.run import main

    assert (
        main(
            [
                "--segments",
                "4",
                "--systems",
                "fgg,no_fgg",
                "--seeds",
                "1",
                "--out",
                str(tmp_path),
                "--checkpoint",
                str(tiny_checkpoint),
                "--scale-table",
                "paper",
            ]
        )
        == 0
    )
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("system")
    for column in ("out_of_key_rate", "out_of_key_rate_paper_table", "chord_similarity_full", "key_fixes_per_note"):
        assert column in summary and f"{column}_ci95" in summary, column
    assert summary.loc["fgg", "out_of_key_rate_paper_table"] == 0  # guided by the paper's table
    assert summary.loc["fgg", "out_of_key_rate"] == 0  # the paper's allowed sets lie inside ours
    assert 0 <= summary.loc["fgg", "key_fixes_per_note"] <= 1
    from eval.table import main as table_main  # the README tables come from these files

    assert table_main([str(tmp_path)]) == 0 and table_main([str(tmp_path), "--full"]) == 0
    assert table_main([str(tmp_path), "--paired", "fgg"]) == 0
    assert table_main([str(tmp_path / "missing")]) == 2


def test_uncorrected_is_the_unguided_prediction_at_the_final_step(tiny_checkpoint):
    """The evaluation reads the last pre-correction x̂₀ off the sampler instead of re-running
    the network: it must equal a fresh unguided prediction from the final x_t."""
    from eval.baselines import item_generators
    from fgg.guidance import cfg_denoiser
    from fgg.sampling import SamplingOptions, build_conditions, fgg_pixel_mask, sample_batch

    seg = load_valid_segments()
    batch = SegmentBatch.from_segments(seg, [10, 400])
    model = load_model(tiny_checkpoint)[0]
    ctx = EvalContext(model, options=SamplingOptions(precision="fp32"))
    output = run_system("fgg", batch, [5, 6], ctx)
    cond, null = build_conditions(batch.chroma, batch.onset_counts, batch.melody, ACCOMPANIMENT)
    final = {}
    gens = item_generators([5, 6])
    x_init = torch.stack([torch.randn(2, 64, 64, generator=g) for g in gens])
    sample_batch(
        model,
        ctx.schedule,
        cond,
        null,
        fgg_pixel_mask(batch.allowed, batch.chroma, batch.root),
        torch.from_numpy(batch.onset_counts.astype(np.int64)),
        x_init,
        ctx.options,
        generator=gens,
        callback=lambda i, t, x_t, x0: final.update(x_t=x_t, t=t),
    )
    with torch.inference_mode():
        x0 = cfg_denoiser(model, ctx.schedule, cond, null, 7.5, 0.7)(final["x_t"], torch.full((2,), final["t"]))
    np.testing.assert_array_equal(output.uncorrected, np.stack([canonical(r) for r in x0.numpy()]))


def test_batched_chord_scoring_equals_one_at_a_time_and_smg():
    import pretty_midi
    from smg_metrics import midi_to_chords_dp
    from smg_metrics.chord_recognition import recognize_chords_beat

    from eval.chord_metrics import labels_per_beat, recognize

    seg = load_valid_segments()
    picks = [3, 40, 41, 700, 1200]
    rolls = [seg["accompaniment"][i] for i in picks]
    rolls.append(np.zeros_like(rolls[0]))  # an empty roll in the batch
    refs = [str(i + 1) for i in picks] + ["3"]
    ref_rolls = [seg["accompaniment"][i + 1] for i in picks] + [seg["accompaniment"][3]]
    labels = [seg["chord_labels"][int(r)] for r in refs]
    batched = ChordScorer().score_many(rolls, refs, ref_rolls, labels)
    single = ChordScorer()
    for i, roll in enumerate(rolls):
        one = single.score(roll, refs[i], ref_rolls[i], labels[i])
        for key, value in one.items():
            assert value == pytest.approx(batched[i][key], abs=1e-6, nan_ok=True), (i, key)
        if roll.any():
            path = single.pred_path()
            intervals = recognize(path)
            assert intervals == recognize_chords_beat(path)
            assert labels_per_beat(intervals, pretty_midi.PrettyMIDI(path).get_beats()) == midi_to_chords_dp(path)


def test_interrupted_run_resumes_where_it_stopped(tiny_checkpoint, tmp_path, monkeypatch):
    """A run stopped mid-system (its rolls checkpointed with a filled mask, rows written so
    far) resumes without resampling what it stored and ends with the rows of an
    uninterrupted run; run.json's seconds add up over both invocations."""

    from eval import run as R

    common = [
        "--segments",
        "6",
        "--systems",
        "no_fgg,fgg",
        "--seeds",
        "1",
        "--checkpoint",
        str(tiny_checkpoint),
        "--batch-size",
        "2",
        "--precision",
        "fp32",
    ]
    assert R.main(common + ["--out", str(tmp_path / "straight")]) == 0
    monkeypatch.setattr(R, "CHECKPOINT_SECONDS", 0.0)
    out = tmp_path / "interrupted"
    assert R.main(common + ["--out", str(out)]) == 0
    # Simulate a stop after the first batch of fgg: later rows gone, rolls marked unfilled.
    rows = pd.read_csv(out / "per_sample.csv")
    chosen = R.select_segments(1709, 6)
    rows = rows[(rows.system == "no_fgg") | rows.segment.isin(chosen[:2])]
    rows.to_csv(out / "per_sample.csv", index=False)
    rolls, filled = R.load_stored_rolls(out / "rolls" / "fgg_seed0.npz", chosen)
    filled[2:] = False
    rolls[2:] = False
    R.save_rolls(out / "rolls" / "fgg_seed0.npz", rolls, chosen, filled)
    before = json.loads((out / "run.json").read_text())["seconds"]
    sampled = []
    real = R.run_system
    monkeypatch.setattr(
        R, "run_system", lambda name, batch, *a, **k: sampled.append((name, len(batch))) or real(name, batch, *a, **k)
    )
    assert R.main(common + ["--out", str(out)]) == 0
    assert sampled == [("fgg", 2), ("fgg", 2)]  # only the two unfinished batches
    doc = json.loads((out / "run.json").read_text())
    assert doc["seconds"] > before and doc["precision"] == "fp32" and doc["segments"] == 6
    assert doc["command"].startswith("python -m eval.run --segments 6")
    key = ["system", "segment", "seed"]
    a = pd.read_csv(tmp_path / "straight" / "per_sample.csv").sort_values(key).reset_index(drop=True)
    b = pd.read_csv(out / "per_sample.csv").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_precision_agreement_counts_pixels_notes_and_out_of_key(tmp_path):
    from eval.precision_agreement import main
    from eval.run import save_rolls

    seg = load_valid_segments()
    chosen = np.array([0, 5, 9])
    rolls = seg["accompaniment"][chosen].copy()
    (tmp_path / "a" / "rolls").mkdir(parents=True)
    (tmp_path / "b" / "rolls").mkdir(parents=True)
    save_rolls(tmp_path / "a" / "rolls" / "fgg_seed0.npz", rolls, chosen, np.ones(3, dtype=bool))
    other = rolls.copy()
    other[1] = False  # segment 5 silent in the second run
    # the second run stopped before segment 9: only the common, filled segments count
    save_rolls(tmp_path / "b" / "rolls" / "fgg_seed0.npz", other, chosen, np.array([True, True, False]))
    out = tmp_path / "report.json"
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(out)]) == 0

    r = json.loads(out.read_text())["systems"]["fgg"]
    notes0 = len(roll_to_notes(rolls[0]))
    assert r["segments"] == 2 and r["segments_identical"] == 0.5
    assert r["notes_second"] == notes0 and r["notes_first"] == notes0 + len(roll_to_notes(rolls[1]))
    assert r["notes_second_also_in_first"] == 1.0
    assert r["pixels_equal"] == pytest.approx(1 - rolls[1].sum() / rolls[:2].size)
    assert main([str(tmp_path / "a"), str(tmp_path / "nothing")]) == 2


@pytest.fixture(scope="module")
def tiny_combined_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = UNet(model_config("tiny", MELODY_AND_ACCOMPANIMENT))
    return save_model(tmp_path_factory.mktemp("ckpt") / "tiny-combined.safetensors", model)


def test_combined_systems_sample_the_tracks_from_the_chords_alone(tiny_combined_checkpoint):
    """In melody+accompaniment mode a system returns (B, 4, T, P) rolls, melody then
    accompaniment, sampled from the chords alone (null rhythm) with item b's starting noise
    ``randn(4, T, P)`` from its own seed: the committed combined runs' recipe, bit for bit."""
    from eval.baselines import canonical, item_generators
    from fgg.sampling import SamplingOptions, build_conditions, fgg_pixel_mask, sample_batch

    seg = load_valid_segments()
    batch = SegmentBatch.from_segments(seg, [3, 400], mode=MELODY_AND_ACCOMPANIMENT, rhythm=False)
    assert batch.onset_counts is None
    model = load_model(tiny_combined_checkpoint)[0]
    ctx = EvalContext(model, options=SamplingOptions(precision="fp32"))
    rolls = run_system("fgg", batch, [5, 6], ctx).rolls
    assert rolls.shape == (2, 4, 64, 64) and rolls.dtype == bool
    for roll, allowed in zip(rolls, batch.allowed, strict=True):
        assert M.out_of_key_rate(roll[:2], allowed) == 0 and M.out_of_key_rate(roll[2:], allowed) == 0
    cond, null = build_conditions(batch.chroma, None, None, MELODY_AND_ACCOMPANIMENT)
    gens = item_generators([5, 6])
    out = sample_batch(
        model,
        ctx.schedule,
        cond,
        null,
        fgg_pixel_mask(batch.allowed, batch.chroma, batch.root),
        None,
        torch.stack([torch.randn(4, 64, 64, generator=g) for g in gens]),
        ctx.options,
        generator=gens,
    ).numpy()
    for b in range(2):
        np.testing.assert_array_equal(rolls[b, :2], canonical(out[b, :2]))
        np.testing.assert_array_equal(rolls[b, 2:], canonical(out[b, 2:]))
    truth = run_system("ground_truth", batch, [0, 0], ctx).rolls
    np.testing.assert_array_equal(truth, np.concatenate([batch.melody, batch.accompaniment], axis=1))
    with pytest.raises(ValueError, match="does not evaluate the melody.accompaniment mode"):
        run_system("rule_based", batch, [0, 0], ctx)


def test_combined_run_resumes_after_an_interruption(tiny_combined_checkpoint, tmp_path, monkeypatch):
    """``eval.run --mode melody+accompaniment`` killed mid-system resumes like the
    accompaniment runner: the rows and rolls it stored are not recomputed, and the result is
    an uninterrupted run's; run.json keeps the settings, sums the seconds and refuses a resume
    with other settings."""

    from eval import run as R

    common = [
        "--mode",
        "melody+accompaniment",
        "--segments",
        "6",
        "--checkpoint",
        str(tiny_combined_checkpoint),
        "--batch-size",
        "2",
        "--precision",
        "fp32",
        "--workers",
        "0",
        "--systems",
        "fgg,no_fgg,ground_truth",
    ]
    straight, out = tmp_path / "straight", tmp_path / "interrupted"
    assert R.main(common + ["--out", str(straight)]) == 0
    real, sampled = R.run_system, []

    def killed_at_the_fifth_batch(name, batch, *args, **kwargs):
        if len(sampled) == 4:  # no_fgg's three batches and fgg's first are done
            raise RuntimeError("killed")
        sampled.append((name, len(batch)))
        return real(name, batch, *args, **kwargs)

    monkeypatch.setattr(R, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(R, "run_system", killed_at_the_fifth_batch)
    with pytest.raises(RuntimeError, match="killed"):
        R.main(common + ["--out", str(out)])
    assert pd.read_csv(out / "per_sample.csv").groupby("system").size().to_dict() == {"fgg": 2, "no_fgg": 6}
    before = json.loads((out / "run.json").read_text())["seconds"]
    sampled.clear()
    monkeypatch.setattr(
        R, "run_system", lambda name, batch, *a, **k: sampled.append((name, len(batch))) or real(name, batch, *a, **k)
    )
    assert R.main(common + ["--out", str(out)]) == 0
    assert sampled == [("fgg", 2), ("fgg", 2)] + [("ground_truth", 2)] * 3  # only what was not stored
    key = ["system", "segment", "seed"]
    for name in ("per_sample.csv", "summary.csv"):
        a, b = (pd.read_csv(folder / name) for folder in (straight, out))
        if name == "per_sample.csv":
            a, b = (x.sort_values(key).reset_index(drop=True) for x in (a, b))
        pd.testing.assert_frame_equal(a, b)
    chosen = R.select_segments(1709, 6)
    for system in ("no_fgg", "fgg", "ground_truth"):
        a, b = (R.load_stored_rolls(folder / "rolls" / f"{system}_seed0.npz", chosen) for folder in (straight, out))
        assert a[1].all() and b[1].all() and a[0].shape == (6, 4, 64, 64)
        np.testing.assert_array_equal(a[0], b[0])
    doc = json.loads((out / "run.json").read_text())
    assert doc["mode"] == "melody+accompaniment" and doc["input"] == "chords only (null rhythm)"
    assert doc["seconds"] > before and doc["precision"] == "fp32" and doc["segments"] == 6
    assert doc["command"].startswith("python -m eval.run --mode melody+accompaniment") and doc["device"] == "cpu"
    assert R.main(common + ["--out", str(out), "--cfg", "3"]) == 2  # other settings: refused, not mixed in


def test_strength_curve_with_and_without_rhythm_forcing(tiny_checkpoint):
    """One row per forcing x strength; strength 0 is the unguided sampler whatever the forcing,
    strength 1 is in key either way."""
    from eval.strength_curve import strength_curve
    from fgg.checkpoint import load_model

    segments = load_valid_segments()
    curve, per_sample = strength_curve(load_model(tiny_checkpoint)[0], segments, np.array([3, 400]), (0.0, 1.0))
    assert curve[["force_rhythm", "strength"]].values.tolist() == [[False, 0.0], [False, 1.0], [True, 0.0], [True, 1.0]]
    unguided = per_sample[per_sample.strength == 0].pivot(index="segment", columns="force_rhythm")
    assert (unguided.xs(True, axis=1, level=1) == unguided.xs(False, axis=1, level=1)).all().all()
    assert (per_sample[per_sample.strength == 1].out_of_key_rate == 0).all()


def test_steps_curve_compares_solvers_with_the_reference_per_segment(tiny_checkpoint):
    from eval.steps_curve import parse_configs, steps_curve, steps_figure
    from fgg.checkpoint import load_model

    configs = parse_configs("ddim:10, dpmpp_2m:4")
    assert configs == [("ddim", 10), ("dpmpp_2m", 4)]
    for bad in ("euler:4", "dpmpp_2m:x", "dpmpp_2m:5000", ""):
        with pytest.raises(ValueError):
            parse_configs(bad)
    model = load_model(tiny_checkpoint)[0]
    curve, per_sample = steps_curve(model, load_valid_segments(), np.array([3, 400]), configs)
    assert curve[["solver", "steps", "n"]].values.tolist() == [["ddim", 10, 2], ["dpmpp_2m", 4, 2]]
    assert (curve.loc[0, [c for c in curve if c.endswith("_diff")]] == 0).all()  # the reference minus itself
    assert (per_sample.out_of_key_rate == 0).all()  # FGG's guarantee at any step count
    assert len(steps_figure(curve).data) == 4  # two chord metrics x two solvers


def test_paired_table_across_two_runs(tmp_path, capsys):
    """--against pairs a system with another run's systems on the segments both have."""
    from eval.table import main

    columns = ["chord_accuracy", "chord_similarity", "chord_similarity_full", "out_of_key_rate_paper_table"]
    for name, shift, segments in (("a", 0.1, [0, 1, 2]), ("b", 0.0, [0, 1, 2, 3])):
        (tmp_path / name).mkdir()
        rows = [
            {"system": "fgg", "segment": s, "seed": 0} | {c: 0.5 + shift + 0.01 * s for c in columns} for s in segments
        ]
        pd.DataFrame(rows).to_csv(tmp_path / name / "per_sample.csv", index=False)
    assert main([str(tmp_path / "a"), "--paired", "fgg", "--against", str(tmp_path / "b")]) == 0
    assert "| `fgg (b)` | +0.1000 ± 0.0000 | +0.1000 ± 0.0000" in capsys.readouterr().out


def test_torchrun_shards_equal_a_single_process_run(tiny_checkpoint, tmp_path):
    """``torchrun --nproc_per_node 2 -m eval.run``: two gloo processes, each every other
    segment in a folder of its own, merged by rank 0 into the same rows (in the same order),
    rolls (bit for bit), examples and summary as one process makes."""
    import os
    import subprocess
    import sys

    from eval.run import main
    from fgg.checkpoint import REPO_ROOT

    common = ["--segments", "8", "--systems", "fgg,no_fgg,last_step_remove,ground_truth", "--batch-size", "3"]
    common += ["--checkpoint", str(tiny_checkpoint), "--workers", "0", "--precision", "fp32"]
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert main(common + ["--out", str(single)]) == 0
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*torchrun, "-m", "eval.run", *common, "--out", str(sharded)],
        cwd=REPO_ROOT,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the same rows in the same order; a chord encoder's batched forward differs in the 8th digit
    for name in ("per_sample.csv", "summary.csv", "out_of_key_pitch_classes.csv"):
        expected, merged = pd.read_csv(single / name), pd.read_csv(sharded / name)
        pd.testing.assert_frame_equal(expected, merged, check_exact=False, rtol=1e-5, atol=1e-7)
    for rolls in sorted((single / "rolls").glob("*.npz")):
        expected, merged = np.load(rolls), np.load(sharded / "rolls" / rolls.name)
        assert all(np.array_equal(expected[k], merged[k]) for k in ("rolls", "segments", "filled")), rolls.name
    examples = sorted(p.name for p in (single / "midi").glob("*.mid"))
    assert examples == sorted(p.name for p in (sharded / "midi").glob("*.mid")) and len(examples) == 3 * 4
    record = json.loads((sharded / "run.json").read_text())
    assert record["processes"] == 2 and record["network_gflop"] > 0
    # the run's time is the invocation's, not what rank 0 had left after its last checkpoint
    shard_seconds = json.loads((sharded / ".shards" / "rank0" / "run.json").read_text())["seconds"]
    assert record["seconds"] >= shard_seconds
