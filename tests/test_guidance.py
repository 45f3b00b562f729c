from itertools import pairwise

import numpy as np
import pytest
import torch

from fgg.chords import parse_progression
from fgg.diffusion import Schedule, sample_ddim, sampling_timesteps
from fgg.guidance import (
    CHORD_SCALES,
    PAPER_QUALITIES,
    QUALITIES,
    SCALES,
    cfg_combine,
    chord_allowed_pitch_classes,
    chord_quality,
    fgg_denoiser,
    graded_allowed,
    paper_chord_quality,
    pitch_mask,
    project_pitch,
    project_rhythm,
    scale_pitch_classes,
)

SYMBOLS = {
    "maj": "C",
    "min": "Cm",
    "dom7": "C7",
    "hdim7": "Cm7b5",
    "dim": "Cdim",
    "aug": "Caug",
    "sus": "Csus4",
    "unknown": "C5",
}


def test_quality_table_is_complete():
    assert set(SYMBOLS) == set(QUALITIES) == set(CHORD_SCALES)


@pytest.mark.parametrize("quality", QUALITIES)
@pytest.mark.parametrize("root_name", ["C", "Eb", "F#", "A"])
def test_chord_quality_and_scale(quality, root_name):
    prog = parse_progression(root_name + SYMBOLS[quality][1:])
    root = torch.tensor(prog.root[:1].astype(np.int64))
    chroma = torch.tensor(prog.chroma[:1])
    assert QUALITIES[chord_quality(root, chroma)[0]] == quality
    allowed = chord_allowed_pitch_classes(root, chroma)[0]
    r = int(root[0])
    expected = {(r + i) % 12 for i in CHORD_SCALES[quality]} | set(np.flatnonzero(prog.chroma[0]).tolist())
    assert set(torch.nonzero(allowed).flatten().tolist()) == expected


def test_more_chord_families():
    cases = {
        "Cmaj7": "maj",
        "Cadd9": "maj",
        "Cm7": "min",
        "CmM7": "min",
        "C9": "dom7",
        "Cdim7": "dim",
        "C7sus4": "sus",
        "Csus2": "sus",
        "N.C.": "unknown",
    }
    for symbol, quality in cases.items():
        prog = parse_progression(symbol)
        q = chord_quality(torch.tensor(prog.root[:1].astype(np.int64)), torch.tensor(prog.chroma[:1]))
        assert QUALITIES[q[0]] == quality, symbol
    nc = parse_progression("N.C.")
    assert chord_allowed_pitch_classes(torch.tensor(nc.root.astype(np.int64)), torch.tensor(nc.chroma)).all()


def test_scales():
    assert scale_pitch_classes("dorian", "D").nonzero().flatten().tolist() == [0, 2, 4, 5, 7, 9, 11]
    assert scale_pitch_classes("chinese", 0).nonzero().flatten().tolist() == [0, 2, 4, 7, 9]
    assert scale_pitch_classes("blues", "A").sum() == 6
    assert scale_pitch_classes(["C", "Eb", 7]).nonzero().flatten().tolist() == [0, 3, 7]
    with pytest.raises(ValueError, match="unknown scale 'lydianx'"):
        scale_pitch_classes("lydianx")


def test_pitch_mask_axis():
    pcs = torch.zeros(1, 12, dtype=torch.bool)
    pcs[0, 9] = True  # A
    mask = pitch_mask(pcs)
    assert mask.shape == (1, 64)
    assert mask[0].nonzero().flatten().tolist() == [0, 12, 24, 36, 48, 60]  # MIDI 33, 45, ... are A


def test_cfg_invariants():
    g = torch.Generator().manual_seed(0)
    c, u = torch.randn(2, 2, 8, 8, generator=g), torch.randn(2, 2, 8, 8, generator=g)
    assert torch.equal(cfg_combine(c, u, 1.0, 0.7), c)
    assert torch.allclose(cfg_combine(c, u, 7.5, 0.0), u + 7.5 * (c - u))
    full = cfg_combine(c, u, 7.5, 1.0)
    assert torch.allclose(full.std(dim=(1, 2, 3)), c.std(dim=(1, 2, 3)), atol=1e-5)
    half = cfg_combine(c, u, 7.5, 0.5)
    assert torch.allclose(half, 0.5 * full + 0.5 * (u + 7.5 * (c - u)), atol=1e-5)


def random_denoiser(seed):
    gen = torch.Generator().manual_seed(seed)

    def denoise(x_t, t):  # wild predictions: values far on both sides of the threshold
        return torch.randn(x_t.shape, generator=gen) * 1.5 + 0.3 + 0.2 * x_t

    return denoise


ALL_ALLOWED_SETS = [(f"chord {q}", SYMBOLS[q]) for q in QUALITIES] + [(f"scale {s}", s) for s in SCALES]


@pytest.mark.parametrize("name, spec", ALL_ALLOWED_SETS)
def test_fgg_invariant_no_note_on_disallowed_pitch(name, spec):
    """Property: whatever the denoiser predicts and whatever x_T is, after the final step no
    pixel above the threshold sits on a disallowed pitch — for every chord and scale."""
    schedule = Schedule.paper()
    for seed in range(4):
        tonic = seed * 5 % 12
        if name.startswith("chord"):
            prog = parse_progression(["C", "Eb", "F#", "A"][seed] + spec[1:])
            pcs = chord_allowed_pitch_classes(torch.tensor(prog.root.astype(np.int64)), torch.tensor(prog.chroma))
            pcs = pcs.repeat(4, 1)
        else:
            pcs = scale_pitch_classes(spec, tonic).expand(64, 12)
        allowed = pitch_mask(pcs)[None].expand(2, 64, 64)  # (B, T, P)
        denoiser = fgg_denoiser(random_denoiser(seed), allowed)
        out = sample_ddim(
            denoiser,
            schedule,
            (2, 2, 64, 64),
            sampling_timesteps(10),
            generator=torch.Generator().manual_seed(seed),
            eta=0.3,
        )
        assert not ((out > 0.5) & ~allowed[:, None]).any()
        assert ((out > 0.5) & allowed[:, None]).any()  # and it did not just erase everything


def test_rhythm_projection_exact_counts():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 2, 64, 64, generator=g)
    allowed = pitch_mask(scale_pitch_classes("major", 0).expand(64, 12))[None].expand(3, 64, 64)
    counts = torch.randint(0, 6, (3, 64), generator=g)
    counts[0, 0] = 60  # more than the 37 allowed pixels: capped
    out = project_pitch(x0, allowed)
    out = project_rhythm(out, counts, allowed)
    onsets = (out[:, 0] > 0.5).sum(-1)
    expected = torch.minimum(counts, allowed.sum(-1))
    assert torch.equal(onsets, expected)
    assert not ((out > 0.5) & ~allowed[:, None]).any()
    assert torch.equal(out[:, 1], project_pitch(x0, allowed)[:, 1])  # sustain untouched by rhythm
    # already-correct values are not moved
    chosen_before = (project_pitch(x0, allowed)[:, 0] > 0.51) & (out[:, 0] > 0.5)
    assert torch.equal(out[:, 0][chosen_before], project_pitch(x0, allowed)[:, 0][chosen_before])


def test_graded_allowed_forbids_the_harshest_first_and_nests():
    prog = parse_progression("C")
    root, chroma = torch.tensor(prog.root[:1].astype(np.int64)), torch.tensor(prog.chroma[:1])
    allowed = chord_allowed_pitch_classes(root, chroma)  # C major scale: C# D# F# G# A# forbidden
    forbidden_at = {
        s: set(torch.nonzero(~graded_allowed(allowed, chroma, root, s)[0]).flatten().tolist())
        for s in (0.0, 0.2, 0.25, 0.5, 0.75, 1.0)
    }
    assert forbidden_at[0.0] == set() and forbidden_at[1.0] == {1, 3, 6, 8, 10}
    assert forbidden_at[0.2] == {1}  # ⌈0.2·5⌉ = 1: C#, a semitone above the root
    assert forbidden_at[0.25] == {1, 3}  # then D#, a semitone under E
    assert forbidden_at[0.5] == {1, 3, 8}  # G# (semitone from G, a major 3rd from the root)
    assert forbidden_at[0.75] == {1, 3, 6, 8}  # A#, a whole tone from C, goes last
    levels = list(forbidden_at.values())
    assert all(a <= b for a, b in pairwise(levels))  # nested: more strength forbids more
    nc = parse_progression("N.C.")
    r, c = torch.tensor(nc.root.astype(np.int64)), torch.tensor(nc.chroma)
    assert graded_allowed(chord_allowed_pitch_classes(r, c), c, r, 0.5).all()
    with pytest.raises(ValueError, match="strength must be in"):
        graded_allowed(allowed, chroma, root, 1.5)


def test_project_pitch_clamps_exactly_to_the_threshold():
    allowed = pitch_mask(scale_pitch_classes("major", 0).expand(64, 12))[None]
    x0 = torch.linspace(-2, 3, 2 * 64 * 64).reshape(1, 2, 64, 64)
    out = project_pitch(x0, allowed)
    assert out[:, :, ~allowed[0]].max() == 0.5
    assert torch.equal(out[:, :, allowed[0]], x0[:, :, allowed[0]])


PAPER_CASES = {  # symbol on C -> (paper family, allowed intervals above the root)
    "C": ("major", {0, 2, 4, 5, 7, 9, 11}),
    "Cmaj7": ("major", {0, 2, 4, 5, 7, 9, 11}),
    "C6": ("major", {0, 2, 4, 5, 7, 9, 11}),
    "Csus4": ("major", {0, 2, 4, 5, 7, 9, 11}),
    "Csus2": ("major", {0, 2, 4, 5, 7, 9, 11}),
    "Cm": ("minor", {0, 2, 3, 5, 7, 8, 10, 11}),
    "CmM7": ("minor", {0, 2, 3, 5, 7, 8, 10, 11}),
    "Cm7": ("minor7", {0, 2, 3, 5, 7, 8, 10}),
    "Cm9": ("minor7", {0, 2, 3, 5, 7, 8, 10}),
    "C7": ("dominant", {0, 2, 4, 5, 7, 9, 10}),
    "C9": ("dominant", {0, 2, 4, 5, 7, 9, 10}),
    "C7sus4": ("dominant", {0, 2, 4, 5, 7, 9, 10}),
    "Caug": ("chord_tones", {0, 4, 8}),
    "Cdim": ("chord_tones", {0, 3, 6}),
    "Cdim7": ("chord_tones", {0, 3, 6, 9}),
    "Cm7b5": ("chord_tones", {0, 3, 6, 10}),
    "Cm6": ("chord_tones", {0, 3, 7, 9}),
    "N.C.": ("unknown", set(range(12))),
}


@pytest.mark.parametrize("symbol", PAPER_CASES)
@pytest.mark.parametrize("root", [0, 3, 6, 9])
def test_paper_scale_table(symbol, root):
    family, intervals = PAPER_CASES[symbol]
    names = ["C", "Eb", "F#", "A"]
    prog = parse_progression(symbol if symbol == "N.C." else names[root // 3] + symbol[1:])
    r, chroma = torch.tensor(prog.root[:1].astype(np.int64)), torch.tensor(prog.chroma[:1])
    assert PAPER_QUALITIES[paper_chord_quality(r, chroma)[0]] == family
    allowed = chord_allowed_pitch_classes(r, chroma, "paper")[0]
    expected = intervals if symbol == "N.C." else {(root + i) % 12 for i in intervals}
    assert set(torch.nonzero(allowed).flatten().tolist()) == expected


def test_paper_table_is_never_looser_than_ours_and_unknown_table_fails():
    for symbol in PAPER_CASES:
        prog = parse_progression(symbol)
        r, chroma = torch.tensor(prog.root.astype(np.int64)), torch.tensor(prog.chroma)
        ours, paper = chord_allowed_pitch_classes(r, chroma), chord_allowed_pitch_classes(r, chroma, "paper")
        assert (paper <= ours).all(), symbol
    with pytest.raises(ValueError, match="unknown scale table 'jazz'"):
        chord_allowed_pitch_classes(r, chroma, "jazz")


def test_rhythm_projection_edits_only_the_chosen_onset_channel():
    """With melody ++ accompaniment (4 channels) the rhythm is the accompaniment's: channel 2."""
    from fgg.guidance import project_rhythm

    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 4, 8, 64, generator=g)
    counts = torch.full((1, 8), 2)
    allowed = torch.ones(1, 8, 64, dtype=torch.bool)
    out = project_rhythm(x0, counts, allowed, onset_channel=2)
    assert torch.equal(out[:, [0, 1, 3]], x0[:, [0, 1, 3]])
    assert ((out[0, 2] > 0.5).sum(-1) == 2).all()
