"""What a model generates — a *mode* — as data, in one registry.

``accompaniment``: the paper's main task, an accompaniment for chords (+ rhythm) and a melody.
``melody+accompaniment``: the paper's second mode, both tracks from the chords (+ rhythm) alone.
A mode says which tracks x₀ holds (2 channels each, onset and sustain, the accompaniment last,
so FGG's rhythm projection always finds its onsets at channel C − 2), which condition channels
the network reads and in which order (one function, ``Mode.condition``, lays them out for
training and for sampling), its default shipped model and its evaluation systems. Code outside
this file asks a ``Mode`` what it needs and never compares mode names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NETWORK_INPUT_CHANNELS = 6  # x_t ++ conditions, whatever the mode (fgg.model.UNetConfig.in_channels)


@dataclass(frozen=True)
class Mode:
    name: str
    tracks: tuple[str, ...]  # what x₀ holds, in channel order, the accompaniment last
    conditions: tuple[str, ...]  # condition channels in order: "chord" (chord × rhythm), "melody"
    default_model: str  # the shipped model served for this mode (fgg.checkpoint.SHIPPED_MODELS)
    systems: tuple[str, ...]  # what its evaluation compares (eval.baselines.SYSTEMS)
    description: str  # one line for help texts

    @property
    def channels(self) -> int:
        """x₀'s channels: onset and sustain per generated track."""
        return 2 * len(self.tracks)

    @property
    def writes_melody(self) -> bool:
        return "melody" in self.tracks

    @property
    def takes_melody(self) -> bool:
        """Whether the network is conditioned on a melody (given, or the null melody)."""
        return "melody" in self.conditions

    def condition(self, channels: dict[str, torch.Tensor]) -> torch.Tensor:
        """Named (B, 2, T, P) condition channels -> the network's (B, 6 − C, T, P) condition, in
        this mode's order (the paper's conditioning by concatenation); names the mode does not
        read are ignored."""
        return torch.cat([channels[name] for name in self.conditions], dim=1)

    def target(self, tracks: dict[str, torch.Tensor]) -> torch.Tensor:
        """Named (B, 2, T, P) rolls -> x₀ (B, C, T, P), this mode's tracks in order."""
        return torch.cat([tracks[name] for name in self.tracks], dim=1)


ACCOMPANIMENT = Mode(
    name="accompaniment",
    tracks=("accompaniment",),
    conditions=("chord", "melody"),
    default_model="paper",
    systems=(
        "fgg",
        "no_fgg",
        "last_step_remove",
        "last_step_round",
        "inpaint",
        "null_rhythm",
        "rule_based",
        "ground_truth",
    ),
    description="an accompaniment for chords and a melody",
)
MELODY_AND_ACCOMPANIMENT = Mode(
    name="melody+accompaniment",
    tracks=("melody", "accompaniment"),
    conditions=("chord",),
    default_model="combined-paper",
    systems=("fgg", "no_fgg", "fgg_melody", "fgg_melody_rhythm", "fgg_melody_auto", "ground_truth"),
    description="a melody and an accompaniment from the chords alone",
)
MODES: dict[str, Mode] = {mode.name: mode for mode in (ACCOMPANIMENT, MELODY_AND_ACCOMPANIMENT)}


def get_mode(mode: str | Mode) -> Mode:
    """A mode by name (or the mode itself); ``ValueError`` naming the choices otherwise."""
    if isinstance(mode, Mode):
        return mode
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    return MODES[mode]


def mode_of(config) -> Mode:
    """The mode a network (``fgg.model.UNetConfig``) was built for, from its output channels."""
    for mode in MODES.values():
        if config.out_channels == mode.channels:
            return mode
    raise ValueError(f"a UNet with {config.out_channels} output channels matches no mode")
