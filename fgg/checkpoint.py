"""Model checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (the ``UNetConfig`` and
metadata). No pickles anywhere, so a checkpoint is safe to load from an untrusted source."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from fgg.model import UNet, UNetConfig
from fgg.modes import ACCOMPANIMENT, MELODY_AND_ACCOMPANIMENT, Mode, get_mode

REPO_ROOT = Path(__file__).resolve().parent.parent
# The shipped models and what each generates.
SHIPPED_MODES: dict[str, Mode] = {
    "paper": ACCOMPANIMENT,
    "small": ACCOMPANIMENT,
    "combined-paper": MELODY_AND_ACCOMPANIMENT,
    "combined-small": MELODY_AND_ACCOMPANIMENT,
}
SHIPPED_MODELS = {name: REPO_ROOT / "assets" / "checkpoints" / f"fgg-{name}.safetensors" for name in SHIPPED_MODES}
DEFAULT_MODEL = ACCOMPANIMENT.default_model
DEFAULT_CHECKPOINT = SHIPPED_MODELS[DEFAULT_MODEL]


def shipped(mode: str | Mode = ACCOMPANIMENT) -> list[str]:
    """The shipped models of ``mode``, sorted."""
    return sorted(name for name, m in SHIPPED_MODES.items() if m == get_mode(mode))


def resolve_checkpoint(model: str | os.PathLike) -> Path:
    """A shipped model's name ("paper", "small") -> its checkpoint; anything else is a path."""
    return SHIPPED_MODELS.get(str(model), Path(model))


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    elif path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    return path, path.with_suffix(".json")


def save_model(path: str | os.PathLike, model: UNet, meta: dict | None = None, dtype=torch.float16) -> Path:
    """Write the weights (cast to ``dtype``) and the config/metadata JSON; atomic per file."""
    weights, config = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(weights) + ".tmp")
    os.replace(str(weights) + ".tmp", weights)
    doc = {"format": "fgg-unet-v1", "config": model.config.to_dict(), "dtype": str(dtype).removeprefix("torch.")}
    doc.update(meta or {})
    with open(str(config) + ".tmp", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    os.replace(str(config) + ".tmp", config)
    return weights


def load_model(path: str | os.PathLike = DEFAULT_CHECKPOINT, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """Load a checkpoint as a float32 ``UNet`` in eval mode; returns (model, metadata)."""
    weights, config = _paths(path)
    for file in (weights, config):
        if not file.is_file():
            raise FileNotFoundError(f"checkpoint file missing: {file}")
    with open(config, encoding="utf-8") as f:
        meta = json.load(f)
    model = UNet(UNetConfig.from_dict(meta["config"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    model.load_state_dict(state)
    return model.to(device).eval(), meta


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available")
    return torch.device(name)
