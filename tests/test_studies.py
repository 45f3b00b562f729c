"""Listening studies as files: reading and checking them, and building their clips."""

import hashlib
import json
from pathlib import Path

import pretty_midi
import pytest

from demo.listening.build import BuildError, build_study, check_clip, export_prompts, folder_clips, item_systems
from demo.listening.study import StudyError, load_study, study_paths

REPO = Path(__file__).resolve().parents[1]
BASE = """
title = "t"
instructions = "i"
consent = "c"
design = "reference"
reference = "a"
[prompts]
count = 3
[[systems]]
name = "a"
system = "fgg"
[[systems]]
name = "b"
system = "no_fgg"
[[criteria]]
name = "harmony"
question = "Harmony?"
"""


def write(tmp_path: Path, text: str, name: str = "my-study") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_studies_load_and_are_built_from_their_current_files():
    studies = {p.stem: load_study(p) for p in study_paths()}
    assert {"fgg-vs-baselines", "strengths"} <= set(studies)
    for study in studies.values():
        built = json.loads((REPO / "assets" / "studies" / study.id / "items.json").read_text())
        # A study file edited without a rebuild is caught here: the build records the config's hash.
        assert built["config_hash"] == study.config_hash, f"rebuild: python -m demo.listening build {study.path}"
        for item in built["items"]:
            for clip in item["clips"]:
                midi = REPO / "assets" / "studies" / study.id / "midi" / clip["midi"]
                assert hashlib.sha256(midi.read_bytes()).hexdigest()[:16] == midi.stem  # content-addressed
    assert studies["strengths"].design == "multi_stimulus"
    assert not studies["strengths"].system("human").ours  # MIDI made elsewhere


# The pairs the test served before studies were files (assets/listening, removed once the study
# rebuilt every one of its MIDI files byte for byte): (segment, FGG's opponent).
LEGACY_PAIRS = [(0, "no_fgg"), (155, "last_step_remove"), (311, "inpaint"), (466, "no_fgg")]
LEGACY_PAIRS += [(621, "last_step_remove"), (776, "inpaint"), (932, "no_fgg"), (1087, "last_step_remove")]
LEGACY_PAIRS += [(1242, "inpaint"), (1397, "no_fgg"), (1553, "last_step_remove"), (1708, "inpaint"), (0, "degraded")]


def test_the_shipped_study_holds_the_pairs_the_test_has_always_served():
    """Every legacy pair is an item of fgg-vs-baselines (their answers are carried into it), and
    nothing else is."""
    from demo.listening.legacy import legacy_item_key

    built = json.loads((REPO / "assets" / "studies" / "fgg-vs-baselines" / "items.json").read_text())
    assert {item["key"] for item in built["items"]} == {legacy_item_key(s, "fgg", o) for s, o in LEGACY_PAIRS}


@pytest.mark.parametrize(
    "change, message",
    [
        (('design = "reference"', 'design = "abx"'), "design: must be one of reference, round_robin, multi_stimulus"),
        (('reference = "a"', 'reference = "z"'), "reference: 'z' is not one of the systems (a, b)"),
        (('title = "t"', 'title = "t"\ncolour = "red"'), "unknown key 'colour'"),
        (('title = "t"\n', ""), "missing key 'title'"),
        (("count = 3", "count = 0"), "prompts.count: must be between 1 and 500, got 0"),
        (("count = 3", 'count = "3"'), "prompts.count: expected a whole number, got '3'"),
        (('name = "b"', 'name = "a"'), "the name 'a' is used twice"),
        (('name = "b"', 'name = "anchor"'), "'anchor' is reserved"),
        (('question = "Harmony?"', 'question = "Harmony?"\nscale = [1, 50]'), "scale: 2 to 11 points"),
        (('question = "Harmony?"', 'question = "Harmony?"\nlabels = {9 = "x"}'), "labels: '9' is not a point"),
        (('name = "b"\nsystem = "no_fgg"', 'name = "b"\nfolder = "nowhere"'), "folder: no folder 'nowhere'"),
        (('question = "Harmony?"', 'question = "Harmony?"\nstrength = 2'), "unknown key 'strength'"),
    ],
)
def test_a_bad_study_file_is_refused_naming_the_key(tmp_path, change, message):
    text = BASE.replace(*change, 1)
    assert text != BASE
    with pytest.raises(StudyError) as err:
        load_study(write(tmp_path, text))
    assert message in str(err.value) and "my-study.toml" in str(err.value)


def test_a_multi_stimulus_page_is_bounded_and_its_reference_is_ours(tmp_path):
    many = BASE.replace('design = "reference"', 'design = "multi_stimulus"') + "".join(
        f'[[systems]]\nname = "s{n}"\nsystem = "fgg"\n' for n in range(4)
    )
    with pytest.raises(StudyError, match="at most 5 systems"):
        load_study(write(tmp_path, many))
    (tmp_path / "theirs").mkdir()
    foreign = BASE.replace('design = "reference"', 'design = "multi_stimulus"').replace(
        'name = "a"\nsystem = "fgg"', 'name = "a"\nfolder = "theirs"'
    )
    with pytest.raises(StudyError, match="must be one of our systems"):
        load_study(write(tmp_path, foreign))


def test_items_follow_the_design(tmp_path):
    three = BASE + '[[systems]]\nname = "c"\nsystem = "inpaint"\n'
    study = load_study(write(tmp_path, three))
    assert [item_systems(study, n) for n in range(3)] == [[("a", "b")], [("a", "c")], [("a", "b")]]
    every = load_study(write(tmp_path, three.replace('reference = "a"', 'reference = "a"\npairs_per_prompt = "all"')))
    assert item_systems(every, 0) == [("a", "b"), ("a", "c")]
    robin = load_study(write(tmp_path, three.replace('"reference"', '"round_robin"', 1)))
    assert [item_systems(robin, n)[0] for n in range(3)] == [("a", "b"), ("a", "c"), ("b", "c")]
    multi = load_study(write(tmp_path, three.replace('"reference"', '"multi_stimulus"', 1)))
    assert item_systems(multi, 0) == [("a", "b", "c", "hidden_reference", "anchor")]


def clip(tempo: float, beats: float = 16) -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    piano = pretty_midi.Instrument(0, name="accompaniment")
    piano.notes.append(pretty_midi.Note(80, 60, 0.0, beats * 60 / tempo))
    midi.instruments.append(piano)
    return midi


def test_midi_made_elsewhere_must_match_the_prompts(tmp_path):
    from demo.listening.study import StudySystem

    prompts = [{"id": "seg0001", "tempo": 100.0}, {"id": "seg0002", "tempo": 120.0}]
    folder = tmp_path / "theirs"
    folder.mkdir()
    theirs = StudySystem("theirs", folder=folder)
    with pytest.raises(BuildError, match="theirs: no manifest.json"):
        folder_clips(theirs, prompts)
    (folder / "manifest.json").write_text('{"system": "theirs"}')
    clip(100).write(str(folder / "seg0001.mid"))
    with pytest.raises(BuildError, match="theirs: no seg0002.mid for prompt seg0002"):
        folder_clips(theirs, prompts)
    clip(100).write(str(folder / "seg0002.mid"))
    with pytest.raises(BuildError, match=r"theirs/seg0002.mid: tempo 100.0 BPM, the prompt's is 120.0 BPM"):
        folder_clips(theirs, prompts)
    clip(120, beats=24).write(str(folder / "seg0002.mid"))
    with pytest.raises(BuildError, match="seg0002.mid: 24.0 beats long, the prompt is 16 beats"):
        folder_clips(theirs, prompts)
    clip(120).write(str(folder / "seg0002.mid"))
    clip(120).write(str(folder / "seg0999.mid"))
    with pytest.raises(BuildError, match="seg0999.mid is for a prompt this study does not have"):
        folder_clips(theirs, prompts)
    (folder / "seg0999.mid").unlink()
    assert set(folder_clips(theirs, prompts)) == {"seg0001", "seg0002"}
    check_clip(clip(120, beats=16.5), prompts[1], "ok")  # a held last note may ring on


def test_a_study_with_a_midi_folder_builds_its_items_and_checks(tmp_path):
    """Human arrangements exported as a folder, against two systems of ours: the build writes
    each clip once, content-addressed, with a hidden reference and an anchor on every page."""
    study_file = write(
        tmp_path,
        BASE.replace('design = "reference"', 'design = "multi_stimulus"')
        .replace('system = "fgg"', 'system = "rule_based"')
        .replace('system = "no_fgg"', 'system = "ground_truth"')
        .replace("count = 3", "count = 2")
        + '[[systems]]\nname = "human"\nfolder = "human"\n',
    )
    export_prompts(load_study(study_file, folders=False), tmp_path / "human", system="ground_truth")
    study = load_study(study_file)
    built = json.loads(build_study(study, tmp_path / "built").read_text())
    assert built["config_hash"] == study.config_hash and len(built["items"]) == 2
    item = built["items"][0]
    systems = [c["system"] for c in item["clips"]]
    assert systems == ["a", "b", "human", "hidden_reference", "anchor"]
    files = {c["system"]: c["midi"] for c in item["clips"]}
    assert files["b"] == files["human"]  # the same human arrangement, written once
    assert files["hidden_reference"] == files["a"] and files["anchor"] != files["a"]
    assert {p.name for p in (tmp_path / "built" / "midi").iterdir()} == {
        c["midi"] for i in built["items"] for c in i["clips"]
    }


def test_a_studys_config_hash_does_not_depend_on_where_the_checkout_is(tmp_path):
    import shutil

    shutil.copy(REPO / "studies" / "strengths.toml", tmp_path / "strengths.toml")
    shutil.copytree(REPO / "studies" / "midi", tmp_path / "midi")
    assert (
        load_study(tmp_path / "strengths.toml").config_hash
        == load_study(REPO / "studies" / "strengths.toml").config_hash
    )
