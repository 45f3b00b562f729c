from itertools import pairwise

import pytest
import torch

from fgg.diffusion import (
    PAPER_TIMESTEPS,
    SOLVERS,
    Schedule,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sampling_timesteps,
    step_noise,
)


def test_schedule_values():
    s = Schedule.paper()
    assert s.num_timesteps == 1000
    assert s.betas[0].item() == pytest.approx(0.00085) and s.betas[-1].item() == pytest.approx(0.012)
    roots = s.betas.sqrt()
    diffs = roots[1:] - roots[:-1]
    assert torch.allclose(diffs, diffs[0].expand_as(diffs))  # linear on the sqrt grid
    assert (s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all()
    assert s.alphas_cumprod[-1].item() == pytest.approx(torch.prod(1 - s.betas).item())
    assert s.abar(torch.tensor(-1)).item() == 1.0
    assert s.alphas_cumprod[-1].item() == pytest.approx(0.004660, abs=2e-5)  # the paper's ᾱ_T


def test_noise_round_trip():
    s = Schedule.paper()
    x0, eps = torch.randn(3, 2, 8, 8), torch.randn(3, 2, 8, 8)
    t = torch.tensor([0, 500, 999])
    x_t = s.add_noise(x0, eps, t)
    assert torch.allclose(s.x0_from_eps(x_t, eps, t), x0, atol=1e-4)
    assert torch.allclose(s.eps_from_x0(x_t, x0, t), eps, atol=1e-4)


def test_sampling_timesteps():
    assert sampling_timesteps(10) == list(reversed(PAPER_TIMESTEPS))
    ts = sampling_timesteps(50)
    assert ts[0] == 999 and ts[-1] == 0 and all(a > b for a, b in pairwise(ts))
    with pytest.raises(ValueError):
        sampling_timesteps(0)


def test_ddim_with_analytic_denoiser_follows_closed_form():
    """A denoiser that always predicts the same x0* makes η=0 DDIM move exactly along
    x_t = √ᾱ_t x0* + √(1-ᾱ_t) ε0, ε0 fixed by x_T, and return x0*."""
    s = Schedule.paper()
    target = torch.rand(1, 2, 16, 16)
    x_T = torch.randn(1, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    eps0 = s.eps_from_x0(x_T, target, torch.tensor([999]))
    seen = []
    out = sample_ddim(
        lambda x, t: target,
        s,
        x_T.shape,
        sampling_timesteps(10),
        x_init=x_T,
        callback=lambda i, t, x, x0: seen.append((t, x.clone())),
    )
    assert torch.allclose(out, target)
    assert [t for t, _ in seen] == list(reversed(PAPER_TIMESTEPS))
    for t, x in seen:
        expected = s.add_noise(target, eps0, torch.tensor([t]))
        assert torch.allclose(x, expected, atol=1e-4)


def test_ddpm_and_eta_reach_the_analytic_target():
    s = Schedule.paper()
    target = torch.rand(2, 2, 8, 8)
    out = sample_ddpm(lambda x, t: target, s, target.shape, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(out, target)
    out = sample_ddim(
        lambda x, t: target,
        s,
        target.shape,
        sampling_timesteps(20),
        eta=1.0,
        generator=torch.Generator().manual_seed(1),
    )
    assert torch.allclose(out, target)


def test_seeded_sampling_is_reproducible():
    s = Schedule.paper()

    def denoiser(x, t):
        return torch.tanh(x) * 0.5 + 0.2

    runs = [
        sample_ddim(
            denoiser, s, (1, 2, 8, 8), sampling_timesteps(10), eta=0.5, generator=torch.Generator().manual_seed(seed)
        )
        for seed in (3, 3, 4)
    ]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_inpainting_keeps_known_region():
    s = Schedule.paper()
    known = torch.rand(1, 2, 8, 8)
    mask = torch.zeros(1, 1, 8, 1, dtype=torch.bool)
    mask[:, :, :3] = True
    seen = []

    def denoiser(x, t):
        seen.append(x.clone())
        return torch.zeros_like(x)

    out = sample_ddim(
        denoiser,
        s,
        known.shape,
        sampling_timesteps(10),
        known=known,
        known_mask=mask,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(out[:, :, :3], known[:, :, :3]) and (out[:, :, 3:] == 0).all()
    # the denoiser saw a noised copy of the known region (closer to it as t falls)
    last = seen[-1][:, :, :3]
    assert (last - known[:, :, :3]).abs().mean() < (seen[0][:, :, :3] - known[:, :, :3]).abs().mean()


def test_timesteps_must_decrease():
    with pytest.raises(ValueError):
        sample_ddim(lambda x, t: x, Schedule.paper(), (1, 2, 4, 4), [10, 20])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_one_step_noise_is_the_authors_update_by_hand(temperature):
    """One step 999 -> 845 of the authors' sampler, computed by hand from the schedule:
    σ = √((1-ᾱ_998)/(1-ᾱ_999) · (1-ᾱ_999/ᾱ_998)) (DDPM's single step at τ = 999, not the jump
    to 845), x' = √ᾱ_845 x̂₀ + √(1-ᾱ_845-σ²) ε̂ + temperature · σ z. At temperature 0 the update
    still differs from DDIM η = 0 (σ² stays in the direction coefficient)."""
    s = Schedule.paper()
    a = s.alphas_cumprod.double()
    x_t = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x0 = torch.full_like(x_t, 0.25)
    z = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(4)).double()
    sigma = ((1 - a[998]) / (1 - a[999]) * (1 - a[999] / a[998])).sqrt()
    eps = (x_t - a[999].sqrt() * x0) / (1 - a[999]).sqrt()
    by_hand = a[845].sqrt() * x0 + (1 - a[845] - sigma**2).sqrt() * eps + temperature * sigma * z
    assert step_noise(s, 999, 845, temperature, "one_step") == pytest.approx((sigma.item(), temperature * sigma.item()))
    seen = []
    sample_ddim(
        lambda x, t: x0,
        s,
        x_t.shape,
        [999, 845],
        eta=temperature,
        noise="one_step",
        generator=torch.Generator().manual_seed(4),
        x_init=x_t,
        callback=lambda i, t, x, _: seen.append(x.clone()),
    )
    assert torch.allclose(seen[1], by_hand, atol=1e-6)
    ddim = a[845].sqrt() * x0 + (1 - a[845]).sqrt() * eps
    assert (seen[1] - ddim).abs().max() > 1e-4
    with pytest.raises(ValueError, match="one_step"):
        step_noise(s, 999, 845, 0.0, "ancestral")


def gaussian_denoiser(s: Schedule, mean: float, std: float):
    """The exact x̂₀ = E[x₀ | x_t] when every pixel of x₀ is N(mean, std²)."""

    def denoise(x, t):
        a = s.abar(t).to(x.dtype).reshape(-1, 1, 1, 1)
        return mean + std**2 * a.sqrt() / (a * std**2 + 1 - a) * (x - a.sqrt() * mean)

    return denoise


def test_dpmpp_2m_follows_the_ode_closer_than_ddim_in_few_steps():
    """For Gaussian data the probability-flow ODE is solved in closed form:
    x_t = √ᾱ_t μ + √(ᾱ_t s² + 1 − ᾱ_t) z. In 5 steps of its log-SNR grid, DPM-Solver++(2M)
    lands 4x nearer the exact x̂₀ at the last timestep than DDIM on the same grid; its first
    step is DDIM's; a constant x̂₀ it follows exactly."""
    s, mean, std = Schedule.paper(), 0.3, 0.5
    denoise = gaussian_denoiser(s, mean, std)
    x_T = torch.randn(16, 2, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    steps = SOLVERS["dpmpp_2m"].timesteps(5)
    assert steps[0] == 999 and steps[-1] == 13 and len(steps) == 5
    a_T, a_last = s.alphas_cumprod[steps[0]], s.alphas_cumprod[steps[-1]]
    z = (x_T - a_T.sqrt() * mean) / (a_T * std**2 + 1 - a_T).sqrt()
    exact = mean + std**2 * a_last.sqrt() / (a_last * std**2 + 1 - a_last).sqrt() * z
    errors = {
        name: (solver.sample(denoise, s, x_T.shape, steps, x_init=x_T) - exact).abs().mean().item()
        for name, solver in SOLVERS.items()
    }
    assert errors["dpmpp_2m"] < errors["ddim"] / 4, errors
    first = {}
    for name, solver in SOLVERS.items():
        solver.sample(
            denoise,
            s,
            x_T.shape,
            steps[:3],
            x_init=x_T,
            callback=lambda i, t, x, _, n=name: first.setdefault((n, i), x),
        )
    assert torch.allclose(first[("ddim", 1)], first[("dpmpp_2m", 1)])
    target = torch.rand(1, 2, 8, 8, dtype=torch.float64)
    assert torch.allclose(sample_dpmpp_2m(lambda x, t: target, s, target.shape, steps, x_init=x_T[:1]), target)
    with pytest.raises(ValueError, match="deterministic"):
        sample_dpmpp_2m(denoise, s, x_T.shape, steps, eta=0.5)
