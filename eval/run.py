"""Evaluation runner (``python -m eval.run``).

    python -m eval.run --segments all --systems all --seeds 1 --out assets/eval

Runs every system on N validation segments (``assets/pop909_valid_segments.npz``; N taken
deterministically, evenly spread) and K seeds, and writes to ``--out``:
- ``per_sample.csv``: one row per segment x system x seed (``system, segment, seed`` then
  one column per metric; see ``eval/METRICS.md``);
- ``summary.csv``: one row per system: each metric's mean and ``<metric>_ci95`` (half-width
  of the 95 % normal-approximation CI), plus ``diversity`` when K ≥ 2;
- ``out_of_key_pitch_classes.csv``: out-of-key sounding steps per system and pitch class
  (relative to the chord root);
- ``rolls/<system>_seed<k>.npz``: the generated rolls (bit-packed), for diversity and reuse;
- ``midi/``: MIDI of the first few segments for every system (melody + accompaniment);
- ``report.html``: interactive plotly report.
Resumable: rows already in ``per_sample.csv`` are not recomputed, and a run stopped
mid-system continues from the rolls it checkpointed (every ``CHECKPOINT_SECONDS``);
``run.json`` holds the settings (a resume with others is refused), the command, device,
precision and the ``seconds`` spent, summed over invocations.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from eval import metrics as M
from eval.baselines import STOCHASTIC, SYSTEMS, EvalContext, SegmentBatch, run_system
from eval.chord_metrics import ChordScorer
from fgg.checkpoint import (
    DEFAULT_MODEL,
    DEFAULT_MODELS,
    SHIPPED_MODELS,
    load_model,
    resolve_checkpoint,
    resolve_device,
)
from fgg.data import VALID_SEGMENTS_FILE, load_valid_segments
from fgg.generate import SamplingOptions
from fgg.guidance import SCALE_TABLES, chord_allowed_pitch_classes
from fgg.model import UNet, mode_of
from fgg.pianoroll import LOWEST_PITCH, N_PITCHES, SEGMENT_STEPS, rolls_to_midi
from fgg.precision import (
    PRECISION_HELP,
    PRECISIONS,
    device_description,
    resolve_precision,
)

KEY_COLUMNS = ["system", "segment", "seed"]
METRIC_COLUMNS = [
    "out_of_key_rate",
    "out_of_key_rate_paper_table",
    "out_of_key_note_rate",
    "key_out_of_key_rate",
    "smg_out_of_key_fraction",
    "chord_accuracy",
    "chord_accuracy_labels",
    "chord_similarity",
    "chord_similarity_full",
    "note_density",
    "polyphony",
    "pitch_range",
    "groove_similarity",
    "oa_pitch",
    "oa_duration",
    "oa_ioi",
    "notes_edited",
    "key_fixes",
    "key_fixes_per_note",
]
# What a stored run was made with; resuming into a folder made otherwise is refused.
RUN_SETTINGS_FILE = "run.json"
EXAMPLE_SEGMENTS = 3
CHECKPOINT_SECONDS = 120  # how often a long run stores its sampled rolls and elapsed time


def select_segments(n_total: int, n: int | None) -> np.ndarray:
    """Deterministic choice of n segment indices, evenly spread over the (song-ordered) set."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


def item_seed(seed: int, segment: int) -> int:
    return seed * 1_000_003 + segment


def root_relative_out_of_key(roll: np.ndarray, allowed: np.ndarray, root: np.ndarray) -> np.ndarray:
    """(12,) counts of out-of-key sounding pixels by interval above the chord root."""
    bad = M.sounding(roll) & ~M.pixel_allowed(allowed)  # (T, 64)
    t, p = np.nonzero(bad)
    rel = (p + LOWEST_PITCH - np.maximum(root[t], 0)) % 12
    return np.bincount(rel, minlength=12)


def table_allowed(segments: dict, seg: int, table: str) -> np.ndarray:
    """(T, 12) allowed pitch classes of segment ``seg`` under chord -> scale ``table``."""
    return chord_allowed_pitch_classes(
        torch.from_numpy(segments["root"][seg].astype(np.int64)), torch.from_numpy(segments["chroma"][seg]), table
    ).numpy()


def score_rows(jobs: list, segments: dict, scorer: ChordScorer) -> list[list]:
    """Every metric of a batch of samples: ``jobs`` = (system, segment, seed, roll,
    guide_allowed, uncorrected) -> CSV rows. The out-of-key rates use fixed tables whatever
    guided the system (ours, and the paper's); ``key_fixes`` counts against
    ``guide_allowed``, the set the system's correction enforced. The chord metrics of the
    whole batch share one chord-encoder forward."""
    from smg_metrics import out_of_key_fraction

    segs = [int(job[1]) for job in jobs]
    chords = scorer.score_many(
        [job[3] for job in jobs],
        [str(seg) for seg in segs],
        [segments["accompaniment"][seg] for seg in segs],
        [segments["chord_labels"][seg] for seg in segs],
    )
    nan = float("nan")
    lines = []
    for i, ((system, seg, seed, roll, guide_allowed, uncorrected), chord) in enumerate(zip(jobs, chords, strict=True)):
        gt = segments["accompaniment"][seg]
        key_allowed = M.key_allowed(segments["key_tonic"][seg], segments["key_minor"][seg])
        ours, paper = table_allowed(segments, seg, "ours"), table_allowed(segments, seg, "paper")
        row = {
            "out_of_key_rate": M.out_of_key_rate(roll, ours),
            "out_of_key_rate_paper_table": M.out_of_key_rate(roll, paper),
            "out_of_key_note_rate": M.out_of_key_note_rate(roll, ours),
            "key_out_of_key_rate": M.out_of_key_rate(roll, key_allowed),
            "note_density": M.note_density(roll),
            "polyphony": M.polyphony(roll),
            "pitch_range": M.pitch_range(roll),
            "groove_similarity": M.groove_similarity(roll, gt),
            "smg_out_of_key_fraction": out_of_key_fraction(scorer.pred_path(i)) if roll[0].any() else 0.0,
            "notes_edited": M.notes_changed(roll, uncorrected) if uncorrected is not None else nan,
            "key_fixes": M.out_of_key_notes(uncorrected, guide_allowed) if uncorrected is not None else nan,
            "key_fixes_per_note": (
                M.out_of_key_note_rate(uncorrected, guide_allowed) if uncorrected is not None else nan
            ),
        }
        row.update(M.overlap_metrics(roll, gt))
        row.update(chord)
        lines.append([system, seg, seed] + [row[c] for c in METRIC_COLUMNS])
    return lines


# Scoring runs in worker processes (chord recognition dominates the cost), overlapped with
# sampling; each worker keeps its own segments and ChordScorer (with its cache of reference
# analyses).
_WORKER: dict = {}


def _init_worker(segments_file: str, workdir: str, single_thread: bool) -> None:
    if single_thread:  # a pool worker must not compete with the sampling process's threads
        torch.set_num_threads(1)
    _WORKER["segments"] = load_valid_segments(segments_file)
    _WORKER["scorer"] = ChordScorer(Path(workdir) / f"w{os.getpid()}")


def _score_jobs(jobs: list) -> list[list]:
    return score_rows(jobs, _WORKER["segments"], _WORKER["scorer"])


class _InlineExecutor:
    """The ``ProcessPoolExecutor`` interface, run in this process (workers = 0)."""

    def __init__(self, workers, initializer, initargs):
        initializer(*initargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done


def _pack(rolls: np.ndarray) -> np.ndarray:
    return np.packbits(rolls.astype(bool), axis=-1)


def _unpack(packed: np.ndarray) -> np.ndarray:
    return np.unpackbits(packed, axis=-1).astype(bool)


def summarize(
    per_sample: pd.DataFrame, out: Path, systems: list[str], seeds: int, columns: list[str] = METRIC_COLUMNS
) -> pd.DataFrame:
    rows = []
    for system in systems:
        part = per_sample[per_sample.system == system]
        if part.empty:
            continue
        row = {"system": system, "n": len(part)}
        for col in columns:
            values = part[col].astype(float).dropna()
            row[col] = values.mean() if len(values) else float("nan")
            row[f"{col}_ci95"] = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
        if seeds >= 2 and system in STOCHASTIC:
            rolls = [_unpack(np.load(out / "rolls" / f"{system}_seed{k}.npz")["rolls"]) for k in range(seeds)]
            per_segment = [M.diversity([r[i] for r in rolls]) for i in range(len(rolls[0]))]
            row["diversity"] = float(np.mean(per_segment))
            row["diversity_ci95"] = 1.96 * float(np.std(per_segment, ddof=1)) / np.sqrt(len(per_segment))
        rows.append(row)
    return pd.DataFrame(rows)


def load_stored_rolls(path: Path, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(rolls, filled (N,) bool) stored by an earlier run — a finished system has every
    segment filled, an interrupted one those sampled before it stopped — or None when absent
    or made for other segments (a run in the same folder with another ``--segments``):
    those are resampled, never reused."""
    if not path.is_file():
        return None
    stored = np.load(path)
    if "segments" not in stored or not np.array_equal(stored["segments"], chosen):
        return None
    filled = stored["filled"] if "filled" in stored else np.ones(len(chosen), dtype=bool)
    return _unpack(stored["rolls"]), filled


def save_rolls(path: Path, rolls: np.ndarray, chosen: np.ndarray, filled: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, rolls=_pack(rolls), segments=chosen, filled=filled)
    os.replace(tmp, path)


def check_run_settings(out: Path, settings: dict) -> None:
    """Write ``run.json`` on a fresh run; refuse to resume a run made with other settings
    (another checkpoint, scale table, CFG, steps, precision), whose stored rows would be
    mixed in."""
    path = out / RUN_SETTINGS_FILE
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            detail = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in changed.items())
            raise ValueError(f"{out} holds a run made with other settings ({detail}); use another --out")
    else:
        _write_run_json(path, settings)


def _write_run_json(path: Path, doc: dict) -> None:
    """Atomically: a run stopped mid-write never leaves a broken ``run.json``."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def record_run(out: Path, seconds: float = 0.0, **facts) -> dict:
    """Add to ``run.json``: ``facts`` overwrite, ``seconds`` adds up (over checkpoints and
    over resumed invocations, so an interrupted run's time is counted too)."""
    path = out / RUN_SETTINGS_FILE
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.update(facts)
    doc["seconds"] = round(doc.get("seconds", 0.0) + seconds, 1)
    _write_run_json(path, doc)
    return doc


def default_workers(device: torch.device) -> int:
    """Scoring processes beside sampling: none on a CPU with few cores (sampling already
    uses every core; a worker would only take turns with it), all but one core while a GPU
    samples."""
    cores = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(cores - 1, 8))
    return (cores - 2) // 2 if cores >= 4 else 0


def run(
    segments_file: str | Path,
    systems: list[str],
    n_segments: int | None,
    seeds: int,
    out: Path,
    checkpoint: str | Path = DEFAULT_MODEL,
    batch_size: int = 16,
    options: SamplingOptions = SamplingOptions(),
    progress=None,
    workers: int | None = None,
    model: torch.nn.Module | None = None,
    scale_table: str = "ours",
    device: str | torch.device = "cpu",
    precision: str = "auto",
) -> pd.DataFrame:
    """Evaluate ``systems``; ``model`` (already loaded, on any device) takes precedence over
    ``checkpoint`` (a shipped model's name or a path, loaded onto ``device``). ``precision``
    (``fgg.precision``) replaces ``options.precision``. ``workers`` scoring processes run
    beside sampling (0: score inline; None: ``default_workers``)."""
    clock = time.perf_counter()
    if scale_table not in SCALE_TABLES:
        raise ValueError(f"unknown scale table {scale_table!r}; choose one of {', '.join(SCALE_TABLES)}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "rolls").mkdir(exist_ok=True)
    segments = load_valid_segments(segments_file)
    chosen = select_segments(len(segments["song_id"]), n_segments)
    needs_model = any(s in STOCHASTIC for s in systems)
    if model is None:
        model = load_model(resolve_checkpoint(checkpoint), device)[0] if needs_model else torch.nn.Identity()
    if isinstance(model, UNet) and mode_of(model.config) != "accompaniment":
        raise ValueError(f"{checkpoint} writes the melody too: evaluate it with --mode melody+accompaniment")
    model_device = next(iter(model.parameters()), torch.zeros(0)).device
    options = replace(options, precision=resolve_precision(precision, model_device))
    model_name = str(checkpoint) if str(checkpoint) in SHIPPED_MODELS else str(Path(checkpoint).resolve())
    check_run_settings(
        out,
        {
            "model": model_name,
            "scale_table": scale_table,
            "cfg_scale": options.cfg_scale,
            "steps": options.steps,
            "strength": options.strength,
            "precision": options.precision,
        },
    )
    ctx = EvalContext(model, options=options)
    per_sample_path = out / "per_sample.csv"
    done = set()
    if per_sample_path.is_file():
        with open(per_sample_path, newline="") as f:
            done = {(r["system"], int(r["segment"]), int(r["seed"])) for r in csv.DictReader(f)}
    else:
        with open(per_sample_path, "w", newline="") as f:
            csv.writer(f).writerow(KEY_COLUMNS + METRIC_COLUMNS)
    heat = {s: np.zeros(12, dtype=np.int64) for s in systems}
    order = sorted(systems, key=lambda s: s != "no_fgg")  # the unguided reference first
    total, finished = len(order) * seeds * len(chosen), 0
    bar = tqdm(total=total, desc="eval", mininterval=2)
    workers = default_workers(model_device) if workers is None else max(0, min(workers, os.cpu_count() or 1))
    pool_cls = ProcessPoolExecutor if workers > 0 else _InlineExecutor
    scoring: list[Future] = []

    def write_scored(wait: bool) -> None:
        """Append the rows of finished scoring jobs (all of them if ``wait``)."""
        ready = list(scoring) if wait else [f for f in scoring if f.done()]
        for future in ready:
            with open(per_sample_path, "a", newline="") as f:
                csv.writer(f).writerows(future.result())
            scoring.remove(future)

    def store_progress(roll_file, rolls, filled) -> None:
        """Store the rolls sampled so far and the time spent, so an interrupted run resumes
        where it stopped and its ``seconds`` stay true."""
        nonlocal clock
        save_rolls(roll_file, rolls, chosen, filled)
        now = time.perf_counter()
        record_run(out, seconds=now - clock)
        clock = now

    with pool_cls(
        workers, initializer=_init_worker, initargs=(str(segments_file), str(out / ".work"), workers > 0)
    ) as pool:
        for system in order:
            for seed in range(seeds):
                roll_file = out / "rolls" / f"{system}_seed{seed}.npz"
                stored = load_stored_rolls(roll_file, chosen)
                rolls, filled = stored or (
                    np.zeros((len(chosen), 2, SEGMENT_STEPS, N_PITCHES), dtype=bool),
                    np.zeros(len(chosen), dtype=bool),
                )
                unguided_all = (
                    load_stored_rolls(out / "rolls" / f"no_fgg_seed{seed}.npz", chosen) if system != "no_fgg" else None
                )
                last_save = time.perf_counter()
                for lo in range(0, len(chosen), batch_size):
                    idx = chosen[lo : lo + batch_size]
                    part = slice(lo, lo + len(idx))
                    pending = [(j, int(s)) for j, s in enumerate(idx) if (system, int(s), seed) not in done]
                    batch = SegmentBatch.from_segments(segments, idx, scale_table)
                    unguided = (
                        None if unguided_all is None or not unguided_all[1][part].all() else unguided_all[0][part]
                    )
                    uncorrected = None
                    if pending or not filled[part].all():
                        output = run_system(
                            system, batch, [item_seed(seed, int(s)) for s in idx], ctx, unguided=unguided
                        )
                        rolls[part], filled[part] = output.rolls, True
                        uncorrected = output.uncorrected
                    if pending:
                        scoring.append(
                            pool.submit(
                                _score_jobs,
                                [
                                    (
                                        system,
                                        s,
                                        seed,
                                        rolls[lo + j],
                                        batch.allowed[j],
                                        None if uncorrected is None else uncorrected[j],
                                    )
                                    for j, s in pending
                                ],
                            )
                        )
                        write_scored(wait=False)
                    for j in range(len(idx)):
                        heat[system] += root_relative_out_of_key(rolls[lo + j], batch.allowed[j], batch.root[j])
                    finished += len(idx)
                    bar.update(len(idx))
                    if progress is not None:
                        progress(finished, total)
                    if time.perf_counter() - last_save > CHECKPOINT_SECONDS:
                        write_scored(wait=True)  # rows first: stored rolls without their rows are resampled
                        store_progress(roll_file, rolls, filled)
                        last_save = time.perf_counter()
                write_scored(wait=True)
                store_progress(roll_file, rolls, filled)
                if seed == 0:
                    write_examples(out, system, chosen, rolls, segments)
    bar.close()
    per_sample = pd.read_csv(per_sample_path)
    per_sample = per_sample[per_sample.segment.isin(chosen) & per_sample.seed.lt(seeds)]
    summary = summarize(per_sample, out, systems, seeds)
    summary.to_csv(out / "summary.csv", index=False)
    heat_table = pd.DataFrame(
        [{"system": s, "interval": i, "count": int(c)} for s in systems for i, c in enumerate(heat[s])]
    )
    heat_table.to_csv(out / "out_of_key_pitch_classes.csv", index=False)
    from eval.plots import write_report

    write_report(out, summary, per_sample, heat_table)
    record_run(out, seconds=time.perf_counter() - clock)
    return summary


def write_examples(out: Path, system: str, chosen: np.ndarray, rolls: np.ndarray, segments: dict) -> None:
    (out / "midi").mkdir(exist_ok=True)
    for j, seg in enumerate(chosen[:EXAMPLE_SEGMENTS]):
        midi = rolls_to_midi(
            {"melody": segments["melody"][seg], "accompaniment": rolls[j]}, float(segments["tempo"][seg])
        )
        midi.write(str(out / "midi" / f"segment{int(seg):04d}_{system}.mid"))


def _run_combined(args, n: int | None, device) -> int:
    from eval.combined import run_combined

    source = args.checkpoint or args.model or DEFAULT_MODELS["melody+accompaniment"]
    model = load_model(resolve_checkpoint(source), device)[0]
    if mode_of(model.config) != "melody+accompaniment":
        raise ValueError(
            "--mode melody+accompaniment needs a checkpoint of that mode "
            "(python -m fgg.train --mode melody+accompaniment)"
        )
    options = SamplingOptions(cfg_scale=args.cfg, steps=args.steps, precision=resolve_precision(args.precision, device))
    summary = run_combined(args.segments_file, n, Path(args.out), model, str(source), options, args.batch_size)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 4):
        print(
            summary[
                [
                    "system",
                    "n",
                    "out_of_key_rate",
                    "out_of_key_rate_melody",
                    "chord_accuracy_labels",
                    "melody_pitch_class_entropy",
                ]
            ].to_string(index=False)
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__.split("\n")[0])
    parser.add_argument("--segments", default="all", help="number of validation segments, or 'all'")
    parser.add_argument("--systems", default="all", help=f"comma list from {','.join(SYSTEMS)} or 'all'")
    parser.add_argument(
        "--mode",
        choices=["accompaniment", "melody+accompaniment"],
        default="accompaniment",
        help="melody+accompaniment: a model of that mode from the chords alone, systems fgg, no_fgg "
        "and ground_truth (eval/combined.py); one seed",
    )
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--model",
        choices=sorted(SHIPPED_MODELS),
        help=f"shipped model (default: {DEFAULT_MODELS['accompaniment']}; with --mode melody+accompaniment, "
        f"{DEFAULT_MODELS['melody+accompaniment']})",
    )
    parser.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    parser.add_argument(
        "--scale-table",
        choices=SCALE_TABLES,
        default="ours",
        help="chord -> scale table that guides FGG and the corrections (both are scored)",
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--segments-file", default=str(VALID_SEGMENTS_FILE))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cfg", type=float, default=7.5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    parser.add_argument(
        "--workers",
        type=int,
        help="scoring processes beside sampling (0 = score inline; "
        "default: none on a CPU with < 4 cores, all cores but one beside a GPU)",
    )
    args = parser.parse_args(argv)
    systems = list(SYSTEMS) if args.systems == "all" else [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        print(f"error: unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    n = None if args.segments == "all" else int(args.segments)
    began = time.perf_counter()
    try:
        device = resolve_device(args.device)
        if args.mode == "melody+accompaniment":
            return _run_combined(args, n, device)
        summary = run(
            args.segments_file,
            systems,
            n,
            args.seeds,
            Path(args.out),
            args.checkpoint or args.model or DEFAULT_MODEL,
            args.batch_size,
            SamplingOptions(cfg_scale=args.cfg, steps=args.steps),
            workers=args.workers,
            scale_table=args.scale_table,
            device=device,
            precision=args.precision,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    record_run(
        Path(args.out),
        command="python -m eval.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        device=str(device),
        device_name=device_description(device),
        torch_threads=torch.get_num_threads(),
        segments=int(summary["n"].max()) // args.seeds if len(summary) else 0,
    )
    cols = [
        "system",
        "n",
        "out_of_key_rate",
        "out_of_key_rate_paper_table",
        "chord_accuracy",
        "chord_similarity",
        "chord_similarity_full",
        "note_density",
        "groove_similarity",
    ]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 4):
        print(summary[[c for c in cols if c in summary]].to_string(index=False))
    print(json.dumps({"out": args.out, "seconds": round(time.perf_counter() - began, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
