"""The pool: MIDI pairs (FGG vs a baseline on the same validation segment, same seed) and
their ``manifest.json``, built once offline; audio is rendered from the MIDI on first use, so
raters never wait for sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pretty_midi

from demo.listening.schema import ATTENTION_SYSTEM, FGG_SYSTEM

REPO_ROOT = Path(__file__).resolve().parents[2]
POOL_DIR = REPO_ROOT / "assets" / "listening"
DEFAULT_BASELINES = ("no_fgg", "last_step_remove", "inpaint")


def read_manifest(pool_dir: Path) -> dict:
    return json.loads((pool_dir / "manifest.json").read_text(encoding="utf-8"))


def write_manifest(pool_dir: Path, manifest: dict) -> Path:
    path = pool_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def degrade(midi_path: Path, out: Path) -> None:
    """The attention check's clip: the accompaniment a semitone sharp, the melody unchanged."""
    midi = pretty_midi.PrettyMIDI(str(midi_path))
    for inst in midi.instruments:
        if "melody" not in inst.name.lower():
            for note in inst.notes:
                note.pitch = min(note.pitch + 1, 127)
    midi.write(str(out))


def add_attention_pair(pool_dir: Path = POOL_DIR) -> dict:
    """Add (or keep) the pool's attention-check pair, built from its first FGG clip."""
    manifest = read_manifest(pool_dir)
    existing = next((p for p in manifest["pairs"] if p["system_y"] == ATTENTION_SYSTEM), None)
    if existing:
        return existing
    source = next(p for p in manifest["pairs"] if p["system_x"] == FGG_SYSTEM)
    name = Path(source["midi_x"]).stem + f"_{ATTENTION_SYSTEM}.mid"
    degrade(pool_dir / source["midi_x"], pool_dir / name)
    pair = {
        "key": f"{Path(source['midi_x']).stem}-attention",
        "segment": source["segment"],
        "song_id": source.get("song_id"),
        "system_x": FGG_SYSTEM,
        "system_y": ATTENTION_SYSTEM,
        "midi_x": source["midi_x"],
        "midi_y": name,
    }
    manifest["pairs"].append(pair)
    write_manifest(pool_dir, manifest)
    return pair


def build_pool(
    n_pairs: int,
    out: Path = POOL_DIR,
    model: str = "paper",
    baselines: tuple[str, ...] = DEFAULT_BASELINES,
    seed: int = 0,
) -> Path:
    """Generate ``n_pairs`` pairs (FGG vs a baseline, cycling through ``baselines``) on
    evenly spread validation segments with ``model`` (a shipped model's name or a checkpoint
    path) and write their MIDI + manifest.json, plus the attention-check pair."""
    # The model stack (torch, the evaluation's systems) loads only when a pool is built, never
    # for the store, the results or the app's listening pages.
    from eval.baselines import STOCHASTIC, EvalContext, SegmentBatch, run_system
    from eval.run import item_seed, select_segments
    from fgg.checkpoint import load_model, resolve_checkpoint
    from fgg.data import load_valid_segments
    from fgg.generate import piece_midi

    segments = load_valid_segments()
    chosen = select_segments(len(segments["song_id"]), n_pairs)
    ctx = EvalContext(load_model(resolve_checkpoint(model))[0])
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    for n, seg in enumerate(chosen):
        baseline = baselines[n % len(baselines)]
        batch = SegmentBatch.from_segments(segments, [seg])
        seeds = [item_seed(seed, int(seg))]
        rolls = {FGG_SYSTEM: run_system(FGG_SYSTEM, batch, seeds, ctx).rolls[0]}
        unguided = run_system("no_fgg", batch, seeds, ctx).rolls if baseline in STOCHASTIC else None
        rolls[baseline] = run_system(baseline, batch, seeds, ctx, unguided=unguided).rolls[0]
        names = {system: f"seg{int(seg):04d}_{system}.mid" for system in rolls}
        for system, roll in rolls.items():
            piece_midi(segments["melody"][seg], roll, float(segments["tempo"][seg])).write(str(out / names[system]))
        pairs.append(
            {
                "key": f"seg{int(seg):04d}-fgg-vs-{baseline}",
                "segment": int(seg),
                "song_id": int(segments["song_id"][seg]),
                "system_x": FGG_SYSTEM,
                "system_y": baseline,
                "midi_x": names[FGG_SYSTEM],
                "midi_y": names[baseline],
            }
        )
    built_by = f"python -m demo.listening build --pairs {n_pairs} --model {model}"
    manifest = write_manifest(out, {"built_by": built_by, "model": str(model), "pairs": pairs})
    add_attention_pair(out)
    return manifest
