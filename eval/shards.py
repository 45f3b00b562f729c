"""One evaluation over several processes: ``torchrun --nproc_per_node N -m eval.run …``.

Each process (a *shard*, torchrun's rank) evaluates every N-th of the chosen segments
(``Shard.part``) in a folder of its own, ``OUT/.shards/rank<k>/`` (resumable there like any
run); rank 0 then merges them into ``OUT``: the rows of every shard into ``per_sample.csv``, in
the order a single process writes them, the rolls of every (system, seed) back into the chosen
segments' order, and the example MIDI from the merged rolls. Sampling is per-item seeded, so
the merged run equals a single-process run with the same seeds (``tests/test_eval.py``).
The processes talk over torch.distributed's gloo backend (CPU; one GPU each works the same).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.distributed as dist

from eval.rolls import load_stored_rolls, save_rolls, write_examples
from fgg.modes import Mode

SHARDS_DIR = ".shards"


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> Shard:
        """This process's shard, as torchrun sets ``RANK`` and ``WORLD_SIZE`` (one process: 0 of 1);
        with several, joins their gloo process group."""
        shard = cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))
        if shard.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
        return shard

    def part(self, chosen: np.ndarray) -> np.ndarray:
        return chosen[self.rank :: self.world]

    def folder(self, out: Path) -> Path:
        """Where this shard writes: ``out`` itself for a single process."""
        return out if self.world == 1 else out / SHARDS_DIR / f"rank{self.rank}"

    def gather(self, value) -> list | None:
        """Every shard's ``value``, in rank order, on rank 0 (None elsewhere)."""
        if self.world == 1:
            return [value]
        values: list | None = [None] * self.world if self.rank == 0 else None
        dist.gather_object(value, values, dst=0)
        return values

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def merge_rows(out: Path, world: int, order: list[str], seeds: int, chosen: np.ndarray) -> None:
    """``out/per_sample.csv`` from the shards' rows: one row per (system, segment, seed), in a
    single process's order (system as run, then seed, then segment as chosen)."""
    position = {int(s): i for i, s in enumerate(chosen)}
    header, rows = None, {}
    for rank in range(world):
        with open(out / SHARDS_DIR / f"rank{rank}" / "per_sample.csv", newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            for row in reader:
                rows[(row[0], int(row[1]), int(row[2]))] = row
    assert header is not None and header[:3] == ["system", "segment", "seed"]
    ranked = sorted(
        (key for key in rows if key[0] in order and key[2] < seeds and key[1] in position),
        key=lambda key: (order.index(key[0]), key[2], position[key[1]]),
    )
    with open(out / "per_sample.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows[key] for key in ranked)


def merge_rolls(out: Path, world: int, chosen: np.ndarray, name: str) -> np.ndarray:
    """The rolls ``name`` of every shard put back in ``chosen``'s order and saved to
    ``out/rolls/name``; returns them."""
    merged: np.ndarray | None = None
    index = {int(s): i for i, s in enumerate(chosen)}
    for rank in range(world):
        mine = Shard(rank, world).part(chosen)
        stored = load_stored_rolls(out / SHARDS_DIR / f"rank{rank}" / "rolls" / name, mine)
        if stored is None or not stored[1].all():
            raise RuntimeError(f"shard {rank} did not finish {name}")
        if merged is None:
            merged = np.zeros((len(chosen), *stored[0].shape[1:]), dtype=bool)
        merged[[index[int(s)] for s in mine]] = stored[0]
    assert merged is not None
    save_rolls(out / "rolls" / name, merged, chosen, np.ones(len(chosen), dtype=bool))
    return merged


def merge_shards(out: Path, world: int, chosen: np.ndarray, order: list[str], seeds: int, segments, mode: Mode) -> None:
    """Rank 0: the shards' rows and rolls into ``out``, and the examples from the merged rolls."""
    merge_rows(out, world, order, seeds, chosen)
    for system in order:
        for seed in range(seeds):
            rolls = merge_rolls(out, world, chosen, f"{system}_seed{seed}.npz")
            if seed == 0:
                write_examples(out, system, chosen, rolls, segments, mode)
