"""Evaluation runner (``python -m eval.run``), one for every mode.

    python -m eval.run --segments all --systems all --seeds 1 --out assets/eval
    python -m eval.run --mode melody+accompaniment --segments 400 --out assets/eval/combined-paper

Runs the systems of a mode (``fgg.modes``: ``Mode.systems``, each in ``eval/baselines.py``) on
N validation segments (``assets/pop909_valid_segments.npz``; N taken deterministically, evenly
spread) and K seeds, scores them as the mode's entry of ``eval.scoring.SCORERS`` says (the
accompaniment: chords + rhythm + melody in; a melody and an accompaniment: the chords alone
in), and writes to ``--out``:
- ``per_sample.csv``: one row per segment x system x seed (``system, segment, seed`` then
  one column per metric of the mode; see ``eval/METRICS.md``);
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
precision, the ``seconds`` spent, summed over invocations, whether CFG was active, and what
the network computed in the last invocation (``network_gflop``, ``network_gflop_per_s`` over
the time spent sampling: set it against ``python -m fgg.bench``'s measured matmul peak).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from eval import metrics as M
from eval.baselines import STOCHASTIC, SYSTEMS, EvalContext, SegmentBatch, run_system
from eval.chord_metrics import ChordScorer
from eval.plots import write_report
from eval.rolls import load_stored_rolls, save_rolls, unpack, write_examples
from eval.scoring import SCORERS, Job, Scorer, root_relative_out_of_key
from eval.shards import Shard, merge_shards
from eval.table import console_summary
from fgg.checkpoint import SHIPPED_MODELS, load_model, resolve_checkpoint, resolve_device, shipped
from fgg.data import VALID_SEGMENTS_FILE, load_valid_segments
from fgg.guidance import SCALE_TABLES
from fgg.model import UNet, forward_gflops
from fgg.modes import ACCOMPANIMENT, MODES, Mode, get_mode, mode_of
from fgg.pianoroll import N_PITCHES, SEGMENT_STEPS
from fgg.precision import PRECISION_HELP, PRECISIONS, device_description, resolve_precision
from fgg.sampling import SamplingOptions

KEY_COLUMNS = ["system", "segment", "seed"]
# What a stored run was made with; resuming into a folder made otherwise is refused.
RUN_SETTINGS_FILE = "run.json"
# What a run.json written before a setting was recorded was made with: no mode, an accompaniment
# run; no scale table or strength, a melody+accompaniment run (always our table, full strength).
LEGACY_SETTINGS = {"mode": ACCOMPANIMENT.name, "scale_table": "ours", "strength": 1.0}
CHECKPOINT_SECONDS = 120  # how often a long run stores its sampled rolls and elapsed time


def run_order(systems: list[str]) -> list[str]:
    """The order systems run in: the unguided reference first (the last-step baselines reuse
    its samples), then as given."""
    return sorted(systems, key=lambda s: s != "no_fgg")


def select_segments(n_total: int, n: int | None) -> np.ndarray:
    """Deterministic choice of n segment indices, evenly spread over the (song-ordered) set."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


def item_seed(seed: int, segment: int) -> int:
    return seed * 1_000_003 + segment


# Scoring runs in worker processes (chord recognition dominates the cost), overlapped with
# sampling; each worker keeps its own segments and ChordScorer (with its cache of reference
# analyses).
_WORKER: dict = {}


def _init_worker(segments_file: str, workdir: str, single_thread: bool) -> None:
    if single_thread:  # a pool worker must not compete with the sampling process's threads
        torch.set_num_threads(1)
    _WORKER["segments"] = load_valid_segments(segments_file)
    _WORKER["scorer"] = ChordScorer(Path(workdir) / f"w{os.getpid()}")


def _score_jobs(mode: Mode, jobs: list[Job]) -> list[list]:
    return SCORERS[mode].score(jobs, _WORKER["segments"], _WORKER["scorer"])


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


def _onsets(roll: np.ndarray) -> np.ndarray:
    """A (C, T, P) roll's onsets of every track side by side, as a (1, T, C/2 · P) roll."""
    return np.concatenate(list(roll[0::2]), axis=-1)[None]


def summarize(
    per_sample: pd.DataFrame, out: Path, systems: list[str], seeds: int, columns=SCORERS[ACCOMPANIMENT].columns
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
            rolls = [unpack(np.load(out / "rolls" / f"{system}_seed{k}.npz")["rolls"]) for k in range(seeds)]
            per_segment = [M.diversity([_onsets(r[i]) for r in rolls]) for i in range(len(rolls[0]))]
            row["diversity"] = float(np.mean(per_segment))
            row["diversity_ci95"] = 1.96 * float(np.std(per_segment, ddof=1)) / np.sqrt(len(per_segment))
        rows.append(row)
    return pd.DataFrame(rows)


def check_run_settings(out: Path, settings: dict) -> None:
    """Write ``run.json`` on a fresh run; refuse to resume a run made with other settings
    (another mode, checkpoint, scale table, CFG, steps, precision), whose stored rows would
    be mixed in."""
    path = out / RUN_SETTINGS_FILE
    if path.is_file():
        before = LEGACY_SETTINGS | json.loads(path.read_text(encoding="utf-8"))
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            detail = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in changed.items())
            raise ValueError(f"{out} holds a run made with other settings ({detail}); use another --out")
    else:
        _write_run_json(path, settings)


def _write_run_json(path: Path, doc: dict) -> None:
    """Atomically: a run stopped mid-write never leaves a broken ``run.json``."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
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


def resolve_systems(requested: str | list[str], mode: Mode) -> list[str]:
    """``--systems`` ("all" or a comma list) -> the systems to run, each one of ``mode``'s."""
    if requested == "all":
        return list(mode.systems)
    names = [s.strip() for s in requested.split(",") if s.strip()] if isinstance(requested, str) else requested
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    foreign = [s for s in names if s not in mode.systems]
    if foreign:
        raise ValueError(
            f"{', '.join(foreign)} does not evaluate the {mode.name} mode; choose from {', '.join(mode.systems)}"
        )
    return list(dict.fromkeys(names))


def load_for_mode(
    model: torch.nn.Module | None, checkpoint: str | Path, mode: Mode, systems: list[str], device
) -> torch.nn.Module:
    """The network to sample with (``model`` if given, else ``checkpoint`` loaded onto
    ``device``; none when no system samples), refused unless it writes ``mode``'s tracks."""
    if model is None:
        needs_model = any(s in STOCHASTIC for s in systems)
        model = load_model(resolve_checkpoint(checkpoint), device)[0] if needs_model else torch.nn.Identity()
    if isinstance(model, UNet) and mode_of(model.config) != mode:
        made = mode_of(model.config)
        raise ValueError(
            f"{checkpoint} writes {made.description} (mode {made.name}): evaluate it with --mode {made.name}; "
            f"--mode {mode.name} needs a model of that mode (--model {' / '.join(shipped(mode))} or a --checkpoint "
            f"trained with python -m fgg.train --mode {mode.name})"
        )
    return model


def run_settings(checkpoint: str | Path, mode: Mode, scale_table: str, options: SamplingOptions) -> dict:
    """What decides a run's samples (``run.json``; a resume must match them)."""
    return {
        "model": str(checkpoint) if str(checkpoint) in SHIPPED_MODELS else str(Path(checkpoint).resolve()),
        "mode": mode.name,
        "scale_table": scale_table,
        "cfg_scale": options.cfg_scale,
        "steps": options.steps,
        "strength": options.strength,
        "precision": options.precision,
    }


def _stored_keys(path: Path, columns) -> set[tuple[str, int, int]]:
    """(system, segment, seed) of the rows ``per_sample.csv`` already holds (a fresh file
    gets its header)."""
    if not path.is_file():
        with open(path, "w", newline="") as f:
            csv.writer(f).writerow(KEY_COLUMNS + list(columns))
        return set()
    with open(path, newline="") as f:
        return {(r["system"], int(r["segment"]), int(r["seed"])) for r in csv.DictReader(f)}


@dataclass
class Runner:
    """One invocation of a run: samples every (system, seed) batch by batch, hands the rows
    still missing to the scoring pool, appends them to ``per_sample.csv`` and checkpoints
    the rolls and the time spent."""

    out: Path
    segments: dict
    chosen: np.ndarray
    mode: Mode
    ctx: EvalContext
    pool: ProcessPoolExecutor | _InlineExecutor
    seeds: int = 1
    batch_size: int = 16
    scale_table: str = "ours"
    progress: Callable[[int, int], None] | None = None  # (done, total); raising stops the run
    clock: float = field(default_factory=time.perf_counter)  # when the time not yet recorded began
    done: set[tuple[str, int, int]] = field(init=False)  # (system, segment, seed) rows already written
    scoring: list[Future] = field(init=False, default_factory=list)  # rows being scored
    heat: dict[str, np.ndarray] = field(init=False, default_factory=dict)  # out-of-key counts by interval
    finished: int = field(init=False, default=0)  # samples done (this invocation's bar and ``progress``)
    network_items: int = field(init=False, default=0)  # batch items through the network (forward passes)
    sampling_seconds: float = field(init=False, default=0.0)  # spent in the systems (sampling, corrections)
    total: int = field(init=False, default=0)
    bar: tqdm | None = field(init=False, default=None)

    def __post_init__(self):
        self.done = _stored_keys(self.out / "per_sample.csv", self.scorer.columns)

    @property
    def scorer(self) -> Scorer:
        return SCORERS[self.mode]

    def evaluate(self, systems: list[str]) -> None:
        order = run_order(systems)
        self.total = len(order) * self.seeds * len(self.chosen)
        counting = self.ctx.model.register_forward_hook(lambda module, inputs, output: self._forwarded(inputs[0]))
        try:
            with tqdm(total=self.total, desc="eval", mininterval=2) as self.bar:
                for system in order:
                    self.heat.setdefault(system, np.zeros(12, dtype=np.int64))
                    for seed in range(self.seeds):
                        self.system_seed(system, seed)
        finally:
            counting.remove()

    def _forwarded(self, x: torch.Tensor) -> None:
        self.network_items += x.shape[0]

    def advance(self, n: int) -> None:
        self.finished += n
        if self.bar is not None:
            self.bar.update(n)
        if self.progress is not None:
            self.progress(self.finished, self.total)

    def system_seed(self, system: str, seed: int) -> None:
        """Every batch of one system and seed, resumed from its checkpointed rolls."""
        roll_file = self.rolls_file(system, seed)
        rolls, filled = load_stored_rolls(roll_file, self.chosen) or (
            np.zeros((len(self.chosen), self.mode.channels, SEGMENT_STEPS, N_PITCHES), dtype=bool),
            np.zeros(len(self.chosen), dtype=bool),
        )
        unguided = None if system == "no_fgg" else load_stored_rolls(self.rolls_file("no_fgg", seed), self.chosen)
        last_save = time.perf_counter()
        for lo in range(0, len(self.chosen), self.batch_size):
            part = slice(lo, min(lo + self.batch_size, len(self.chosen)))
            self.batch(system, seed, part, rolls, filled, unguided)
            self.advance(part.stop - part.start)
            if time.perf_counter() - last_save > CHECKPOINT_SECONDS:
                self.write_scored(wait=True)  # rows first: stored rolls without their rows are resampled
                self.store_progress(roll_file, rolls, filled)
                last_save = time.perf_counter()
        self.write_scored(wait=True)
        self.store_progress(roll_file, rolls, filled)
        if seed == 0:
            write_examples(self.out, system, self.chosen, rolls, self.segments, self.mode)

    def rolls_file(self, system: str, seed: int) -> Path:
        return self.out / "rolls" / f"{system}_seed{seed}.npz"

    def batch(self, system: str, seed: int, part: slice, rolls, filled, unguided_all) -> None:
        """Sample the segments ``chosen[part]`` unless stored, and score those without a row."""
        idx = self.chosen[part]
        pending = [(j, int(s)) for j, s in enumerate(idx) if (system, int(s), seed) not in self.done]
        batch = SegmentBatch.from_segments(self.segments, idx, self.scale_table, self.mode, self.scorer.rhythm)
        uncorrected = None
        if pending or not filled[part].all():
            unguided = None if unguided_all is None or not unguided_all[1][part].all() else unguided_all[0][part]
            began = time.perf_counter()
            output = run_system(system, batch, [item_seed(seed, int(s)) for s in idx], self.ctx, unguided=unguided)
            self.sampling_seconds += time.perf_counter() - began
            rolls[part], filled[part] = output.rolls, True
            uncorrected = output.uncorrected
        if pending:
            jobs = [
                Job(system, s, seed, rolls[part][j], batch.allowed[j], None if uncorrected is None else uncorrected[j])
                for j, s in pending
            ]
            self.scoring.append(self.pool.submit(_score_jobs, self.mode, jobs))
            self.write_scored(wait=False)
        for j in range(len(idx)):
            self.heat[system] += root_relative_out_of_key(rolls[part][j], batch.allowed[j], batch.root[j])

    def write_scored(self, wait: bool) -> None:
        """Append the rows of finished scoring jobs (all of them if ``wait``)."""
        ready = list(self.scoring) if wait else [f for f in self.scoring if f.done()]
        for future in ready:
            with open(self.out / "per_sample.csv", "a", newline="") as f:
                csv.writer(f).writerows(future.result())
            self.scoring.remove(future)

    def store_progress(self, roll_file: Path, rolls: np.ndarray, filled: np.ndarray) -> None:
        """Store the rolls sampled so far and the time spent, so an interrupted run resumes
        where it stopped and its ``seconds`` stay true."""
        save_rolls(roll_file, rolls, self.chosen, filled)
        self.record_time()

    def record_time(self, **facts) -> None:
        now = time.perf_counter()
        record_run(self.out, seconds=now - self.clock, **facts)
        self.clock = now


def run(
    segments_file: str | Path,
    systems: list[str],
    n_segments: int | None,
    seeds: int,
    out: Path,
    checkpoint: str | Path | None = None,
    batch_size: int = 16,
    options: SamplingOptions = SamplingOptions(),
    progress=None,
    workers: int | None = None,
    model: torch.nn.Module | None = None,
    scale_table: str = "ours",
    device: str | torch.device = "cpu",
    precision: str = "auto",
    mode: str | Mode = ACCOMPANIMENT,
    shard: Shard | None = None,
) -> pd.DataFrame | None:
    """Evaluate ``systems`` (each one of ``mode``'s) and return the summary. ``model``
    (already loaded, on any device) takes precedence over ``checkpoint`` (a shipped model's
    name or a path, loaded onto ``device``; default: the mode's default model). ``precision``
    (``fgg.precision``) replaces ``options.precision``. ``workers`` scoring processes run
    beside sampling (0: score inline; None: ``default_workers``). Under torchrun, ``shard``
    (``eval.shards``) says which part is this process's; rank 0 merges and returns the
    summary, the others None."""
    clock = time.perf_counter()
    shard = shard or Shard()
    mode = get_mode(mode)
    systems = resolve_systems(systems, mode)
    if scale_table not in SCALE_TABLES:
        raise ValueError(f"unknown scale table {scale_table!r}; choose one of {', '.join(SCALE_TABLES)}")
    checkpoint = checkpoint or mode.default_model
    model = load_for_mode(model, checkpoint, mode, systems, device)
    model_device = next(iter(model.parameters()), torch.zeros(0)).device
    options = replace(options, precision=resolve_precision(precision, model_device))
    settings = run_settings(checkpoint, mode, scale_table, options)
    (out / "rolls").mkdir(parents=True, exist_ok=True)
    if shard.rank == 0:  # the run's own record: one writer
        check_run_settings(out, settings)
    folder = shard.folder(out)  # this process's (out itself, unless torchrun shards the run)
    (folder / "rolls").mkdir(parents=True, exist_ok=True)
    check_run_settings(folder, settings)
    segments = load_valid_segments(segments_file)
    chosen = select_segments(len(segments["song_id"]), n_segments)
    workers = default_workers(model_device) if workers is None else max(0, min(workers, os.cpu_count() or 1))
    pool_cls = ProcessPoolExecutor if workers > 0 else _InlineExecutor
    with pool_cls(
        workers, initializer=_init_worker, initargs=(str(segments_file), str(folder / ".work"), workers > 0)
    ) as pool:
        ctx = EvalContext(model, options=options)
        mine = shard.part(chosen)
        runner = Runner(folder, segments, mine, mode, ctx, pool, seeds, batch_size, scale_table, progress, clock)
        runner.evaluate(systems)
    shards = shard.gather((runner.heat, runner.network_items, runner.sampling_seconds))
    if shards is None:  # another rank merges
        return None
    # A single process has added its checkpoints' time to out's run.json already; a shard added
    # them to its own folder's, so out's gets this invocation's whole time.
    since = runner.clock
    if shard.world > 1:
        merge_shards(out, shard.world, chosen, run_order(systems), seeds, segments, mode)
        since = clock
    heat = {s: np.sum([h[s] for h, _, _ in shards], axis=0) for s in systems}
    items = sum(n for _, n, _ in shards)
    sampling_seconds = max(seconds for _, _, seconds in shards)  # the shards ran side by side
    summary = finish(out, chosen, systems, seeds, heat, SCORERS[mode].columns)
    record_run(
        out,
        seconds=time.perf_counter() - since,
        input=SCORERS[mode].given,
        segments=len(chosen),
        cfg_active=cfg_active(mode, options),
        processes=shard.world,
        **network_rate(model, items, sampling_seconds),
    )
    return summary


def network_rate(model: torch.nn.Module, items: int, seconds: float) -> dict:
    """What the network computed while the systems ran, for ``run.json``: GFLOP (``items``
    batch items through it x ``forward_gflops``) and GFLOP/s over the ``seconds`` spent in the
    systems (sampling and its corrections, not scoring)."""
    if not isinstance(model, UNet) or not items:
        return {}
    gflop = items * forward_gflops(model)
    return {"network_gflop": round(gflop, 1), "network_gflop_per_s": round(gflop / seconds, 1)}


def cfg_active(mode: Mode, options: SamplingOptions) -> bool:
    """Whether classifier-free guidance changes the samples: its scale is not 1 and the
    condition differs from the null condition. The chords alone (the chord channel with the
    null rhythm, no melody channel) *are* the null condition, so CFG is the identity there."""
    return options.cfg_scale != 1.0 and (SCORERS[mode].rhythm or mode.takes_melody)


def finish(out: Path, chosen: np.ndarray, systems: list[str], seeds: int, heat: dict, columns) -> pd.DataFrame:
    """Write ``summary.csv``, the out-of-key table and the report from this run's rows."""
    per_sample = pd.read_csv(out / "per_sample.csv")
    per_sample = per_sample[per_sample.segment.isin(chosen) & per_sample.seed.lt(seeds)]
    summary = summarize(per_sample, out, systems, seeds, columns)
    summary.to_csv(out / "summary.csv", index=False)
    heat_table = pd.DataFrame(
        [{"system": s, "interval": i, "count": int(c)} for s in systems for i, c in enumerate(heat[s])]
    )
    heat_table.to_csv(out / "out_of_key_pitch_classes.csv", index=False)
    write_report(out, summary, per_sample, heat_table)
    return summary


def add_model_arguments(parser: argparse.ArgumentParser, mode: Mode) -> None:
    """The options of a curve over one model of ``mode`` (``eval.strength_curve``,
    ``eval.steps_curve``): which model, where it runs, in what precision, on which segments."""
    parser.add_argument("--model", default=mode.default_model, choices=shipped(mode))
    parser.add_argument("--checkpoint", help="a checkpoint path (overrides --model)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--segments-file", default=str(VALID_SEGMENTS_FILE))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)


def curve_inputs(args: argparse.Namespace) -> tuple[torch.nn.Module, dict, np.ndarray, SamplingOptions]:
    """What ``add_model_arguments``'s options name: the model, the validation segments, the
    ``--segments`` chosen of them and the sampling options (``ValueError`` /
    ``FileNotFoundError`` for a bad one)."""
    if args.segments < 2:
        raise ValueError(f"--segments must be at least 2, got {args.segments}")
    model = load_model(resolve_checkpoint(args.checkpoint or args.model), resolve_device(args.device))[0]
    segments = load_valid_segments(args.segments_file)
    chosen = select_segments(len(segments["song_id"]), args.segments)
    options = SamplingOptions(precision=resolve_precision(args.precision, next(model.parameters()).device))
    return model, segments, chosen, options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__.split("\n")[0])
    parser.add_argument("--segments", default="all", help="number of validation segments, or 'all'")
    systems_of = "; ".join(f"{m.name}: {','.join(m.systems)}" for m in MODES.values())
    parser.add_argument("--systems", default="all", help=f"comma list of the mode's systems or 'all' ({systems_of})")
    parser.add_argument(
        "--mode",
        choices=list(MODES),
        default=ACCOMPANIMENT.name,
        help="what the model writes: " + "; ".join(f"{m.name}, {m.description}" for m in MODES.values()),
    )
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", required=True)
    defaults = ", ".join(f"{m.default_model} for --mode {m.name}" for m in MODES.values())
    parser.add_argument("--model", choices=sorted(SHIPPED_MODELS), help=f"shipped model (default: {defaults})")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = get_mode(args.mode)
    began = time.perf_counter()
    shard = Shard.from_env()
    try:
        systems = resolve_systems(args.systems, mode)
        device = resolve_device(args.device)
        if device.type == "cuda" and shard.world > 1:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per process
        summary = run(
            args.segments_file,
            systems,
            None if args.segments == "all" else int(args.segments),
            args.seeds,
            Path(args.out),
            args.checkpoint or args.model or mode.default_model,
            args.batch_size,
            SamplingOptions(cfg_scale=args.cfg, steps=args.steps),
            workers=args.workers,
            scale_table=args.scale_table,
            device=device,
            precision=args.precision,
            mode=mode,
            shard=shard,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        shard.close()
    if summary is None:  # rank 0 reports
        return 0
    record_run(
        Path(args.out),
        command="python -m eval.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        device=str(device),
        device_name=device_description(device),
        torch_threads=torch.get_num_threads(),
    )
    print(console_summary(summary))
    print(json.dumps({"out": args.out, "seconds": round(time.perf_counter() - began, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
