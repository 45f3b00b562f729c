"""Data pipeline on the real POP909 files (skipped without them, failed under FGG_REQUIRE_DATA=1)."""

import json
import os

import numpy as np
import pretty_midi
import pytest

from fgg import data
from fgg.chords import encode_label
from fgg.condition import C3_INDEX, C4_INDEX
from fgg.pianoroll import (
    LOWEST_PITCH,
    ONSET,
    SEGMENT_STEPS,
    fold_pitches,
    midi_to_notes,
    notes_to_roll,
    quantize_times,
    resolve_overlaps,
    roll_to_notes,
    rolls_to_midi,
)
from fgg.pop909 import read_song

SAMPLE_SONGS = [1, 4, 77, 250, 431, 600, 818, 909]


def folded(notes):
    notes = notes.astype(np.int64).copy()
    notes[:, 2], _ = fold_pitches(notes[:, 2])
    return resolve_overlaps(notes)


@pytest.mark.parametrize("song_id", SAMPLE_SONGS[:4])
def test_midi_roll_midi_round_trip(pop909_dir, song_id):
    song = read_song(str(pop909_dir), song_id)
    raw = pretty_midi.PrettyMIDI(str(pop909_dir / f"{song_id:03d}" / f"{song_id:03d}.mid"))
    for track, names in (("melody", {"MELODY"}), ("accompaniment", {"BRIDGE", "PIANO"})):
        expected = folded(getattr(song, track))
        raw_onsets = np.array([n.start for i in raw.instruments if i.name in names for n in i.notes])
        raw_pitches = np.array([n.pitch for i in raw.instruments if i.name in names for n in i.notes])
        # every raw note survives, except notes that land on the same (step, pitch) and merge
        raw_keys = set(
            zip(
                quantize_times(raw_onsets, song.step_times).tolist(), fold_pitches(raw_pitches)[0].tolist(), strict=True
            )
        )
        assert set(zip(expected[:, 0].tolist(), expected[:, 2].tolist(), strict=True)) == raw_keys
        assert len(expected) >= 0.95 * len(raw_onsets)
        roll = notes_to_roll(expected, song.n_steps)
        midi = rolls_to_midi({track: roll}, tempo=100)
        np.testing.assert_array_equal(midi_to_notes(midi), expected)


def test_melody_onsets_land_on_grid(pop909_dir):
    errors = []
    for song_id in SAMPLE_SONGS:
        song = read_song(str(pop909_dir), song_id)
        raw = pretty_midi.PrettyMIDI(str(pop909_dir / f"{song_id:03d}" / f"{song_id:03d}.mid"))
        onsets = np.array([n.start for i in raw.instruments if i.name == "MELODY" for n in i.notes])
        steps = quantize_times(onsets, song.step_times)
        step_len = np.diff(song.step_times)[np.minimum(steps, song.n_steps - 1)]
        errors.append(np.abs(onsets - song.step_times[steps]) / step_len)
        # bars start on annotated downbeats, so a bar line is a beat boundary
        assert (song.bar_start % 4 == 0).all()
    errors = np.concatenate(errors)
    assert np.median(errors) < 0.05  # in steps (16th notes)
    assert np.mean(errors < 0.2) > 0.97


def test_bars_follow_downbeats(pop909_dir):
    song = read_song(str(pop909_dir), 4)
    rows = [line.split() for line in (pop909_dir / "004" / "beat_midi.txt").read_text().splitlines()]
    downbeat_times = [float(r[0]) for r in rows if float(r[2]) == 1]
    starts = song.step_times[song.bar_start]
    # every annotated downbeat is a bar start (8-beat bars additionally get a middle one)
    assert set(np.round(downbeat_times, 6)) <= set(np.round(starts, 6))


def test_chords_match_annotation(pop909_dir):
    song = read_song(str(pop909_dir), 1)
    rows = [line.split("\t") for line in (pop909_dir / "001" / "chord_midi.txt").read_text().splitlines()]
    for start, end, label in rows[:40]:
        mid = quantize_times(np.array([(float(start) + float(end)) / 2]), song.step_times)[0]
        root, chroma, bass = encode_label(label)
        np.testing.assert_array_equal(song.chroma[mid], chroma)
        assert song.root[mid] == root and song.bass[mid] == bass


def test_split_and_counts(collection):
    split = data.load_split()
    assert len(split["train"]) == 818 and len(split["valid"]) == 91
    assert not set(split["train"]) & set(split["valid"])
    assert len(collection) == 909 - 29  # all 4/4 songs parse
    assert len(set(collection.song_id.tolist()) & set(split["valid"])) == 88
    train = data.split_segments(collection, "train")
    valid = data.split_segments(collection, "valid")
    assert len(train) > 50_000 and len(valid) > 1_500
    # validation segments of one song never overlap
    for song in np.unique(valid[:, 0]):
        bars = valid[valid[:, 0] == song, 1]
        assert (np.diff(bars) >= 4).all()


def test_dataset_items(collection):
    dataset = data.PianoRollDataset(collection, "train", seed=3)
    for i in np.random.default_rng(0).integers(0, len(dataset), 40):
        item = {k: v.numpy() for k, v in dataset[int(i)].items()}
        for key in ("accompaniment", "melody", "chord", "chord_null"):
            assert item[key].shape == (2, SEGMENT_STEPS, 64) and item[key].dtype == np.float32
        assert set(np.unique(item["accompaniment"])) <= {0.0, 1.0}
        assert set(np.unique(item["melody"])) <= {0.0, 1.0}
        assert item["chroma"].shape == (64, 12) and item["onset_counts"].shape == (64,)
        assert -5 <= item["transpose"] <= 6
        counts = item["accompaniment"][ONSET].sum(-1)
        np.testing.assert_array_equal(item["onset_counts"], counts)
        np.testing.assert_array_equal(item["chord"][0, :, C4_INDEX : C4_INDEX + 12], item["chroma"] * counts[:, None])
        np.testing.assert_array_equal(
            item["chord"][1, :, C3_INDEX : C3_INDEX + 12], item["chroma"] * (counts == 0)[:, None]
        )
        assert set(np.unique(item["chord_null"])) <= {-1.0, -2.0}
        # a decoded segment re-renders to itself
        roll = item["accompaniment"].astype(bool)
        np.testing.assert_array_equal(notes_to_roll(roll_to_notes(roll), SEGMENT_STEPS), roll)
    valid = data.PianoRollDataset(collection, "valid")
    assert not valid.augment and valid[0]["transpose"] == 0


def test_augmentation_keeps_notes_and_chords_aligned(collection):
    song, bar = data.split_segments(collection, "train")[1234]
    base = collection.segment(song, bar, 0)
    for shift in (-5, -1, 3, 6):
        moved = collection.segment(song, bar, shift)
        np.testing.assert_array_equal(moved["chroma"], np.roll(base["chroma"], shift, axis=1))
        assert ((moved["root"] - base["root"]) % 12 == shift % 12)[base["root"] >= 0].all()
        for track in ("melody", "accompaniment"):
            a, b = roll_to_notes(base[track]), roll_to_notes(moved[track])
            assert len(a) == len(b)
            # same timing, same interval to the chord root (folding keeps pitch classes)
            np.testing.assert_array_equal(a[:, :2], b[:, :2])
            root_a = base["root"][a[:, 0]]
            root_b = moved["root"][b[:, 0]]
            np.testing.assert_array_equal((a[:, 2] - root_a) % 12, (b[:, 2] - root_b) % 12)
            unfolded = (a[:, 2] + shift >= LOWEST_PITCH) & (a[:, 2] + shift <= 96)
            np.testing.assert_array_equal(b[unfolded, 2], a[unfolded, 2] + shift)


def test_cache_hit_returns_identical_arrays(pop909_dir, tmp_path):
    first, report1 = data.build_songs(pop909_dir, tmp_path, limit=12, workers=1)
    second, report2 = data.build_songs(pop909_dir, tmp_path, limit=12)
    assert not report1.cache_hit and report2.cache_hit
    assert report1.cache_file == report2.cache_file
    np.testing.assert_array_equal(first.song_id, second.song_id)
    assert first.arrays.keys() == second.arrays.keys()
    for key in first.arrays:
        np.testing.assert_array_equal(first.arrays[key], second.arrays[key])
        np.testing.assert_array_equal(first.offsets[key], second.offsets[key])
    _, report3 = data.build_songs(pop909_dir, tmp_path, limit=13)
    assert report3.cache_file != report1.cache_file  # different inputs, different key


def test_cli_prints_one_json_line(pop909_dir, tmp_path, capsys):
    assert data.main(["--pop909", str(pop909_dir), "--limit", "40", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["songs"] == 39 and summary["skipped"] == {"34": "triple meter (index.csv)"}
    assert summary["train_segments"] > 0 and summary["valid_segments"] > 0
    assert {"notes_folded", "seconds"} <= summary.keys()


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert data.main(["--pop909", str(tmp_path / "nowhere")]) == 2
    assert "POP909 not found" in capsys.readouterr().err


def test_committed_valid_segments_are_current(collection, tmp_path):
    path = data.VALID_SEGMENTS_FILE
    assert os.path.getsize(path) <= 8 * 2**20
    shipped = data.load_valid_segments(path)
    n = len(shipped["song_id"])
    expected_shapes = {
        "melody": (n, 2, 64, 64),
        "accompaniment": (n, 2, 64, 64),
        "chroma": (n, 64, 12),
        "onset_counts": (n, 64),
        "chord_labels": (n, 16),
        "bar": (n,),
        "tempo": (n,),
    }
    for key, shape in expected_shapes.items():
        assert shipped[key].shape == shape, key
    assert shipped["melody"].dtype == bool and shipped["chroma"].dtype == np.uint8
    fresh_path = tmp_path / "valid.npz"
    assert data.export_valid_segments(collection, fresh_path) == n
    fresh = data.load_valid_segments(fresh_path)
    for key in fresh:
        np.testing.assert_array_equal(shipped[key], fresh[key], err_msg=f"{key}: rerun `python -m fgg.data --export`")
