"""The pieces of the sharp family's GAN training (upscaler/adversarial.py)."""
import math

import pytest
import torch

from upscaler import lpips
from upscaler.adversarial import (FeatureLoss, UNetDiscriminatorSN, VGGFeatureDiscriminator, artifact_map,
                                  discriminator_loss, generator_loss, gram_matrices, grid_error, grid_excess)


def test_the_discriminator_judges_every_pixel():
    disc = UNetDiscriminatorSN(num_feat=8)
    x = torch.rand(2, 3, 48, 40)
    assert disc(x).shape == (2, 1, 48, 40)
    # spectral norm: after a few power iterations, each normalised conv's largest singular
    # value is about 1, however large the raw weight
    for _ in range(20):
        disc(x)
    w = disc.conv2.weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2) == pytest.approx(1.0, abs=0.05)


def test_the_relativistic_losses_reward_each_side_for_what_it_wants():
    real, fake = torch.full((4, 1, 8, 8), 3.0), torch.full((4, 1, 8, 8), -3.0)
    # the discriminator tells them apart: its loss is small, the generator's large
    assert discriminator_loss(real, fake) < 0.01 and generator_loss(real, fake) > 5
    # when it cannot (the same logits), both are at chance: log 2
    same = torch.zeros(4, 1, 8, 8)
    assert discriminator_loss(same, same).item() == pytest.approx(0.6931, abs=1e-4)
    assert generator_loss(same, same).item() == pytest.approx(0.6931, abs=1e-4)


def test_the_relativistic_losses_average_a_list_of_heads_head_by_head():
    real = [torch.full((2, 1, 4, 4), 3.0), torch.zeros(2, 1, 2, 2)]
    fake = [torch.full((2, 1, 4, 4), -3.0), torch.zeros(2, 1, 2, 2)]
    expected = (discriminator_loss(real[0], fake[0]) + discriminator_loss(real[1], fake[1])) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(expected.item())
    assert generator_loss(real, fake).item() == pytest.approx(
        ((generator_loss(real[0], fake[0]) + generator_loss(real[1], fake[1])) / 2).item())


@pytest.mark.skipif(not lpips.available("vgg16"), reason="the LPIPS VGG16 weights are in ../shared/data/perceptual")
def test_the_vgg_discriminator_tells_blurred_detail_from_sharp_within_a_few_steps():
    """One head per VGG16 map, each judging every cell of it; only the heads are its own
    weights. Trained for a few steps on fine detail against the same detail blurred, it
    separates them (the reason it exists: the U-Net on pixels stayed at chance for long)."""
    torch.manual_seed(0)
    vgg, disc = FeatureLoss(), VGGFeatureDiscriminator(num_feat=8)
    assert all(k.startswith("heads.") for k in disc.state_dict())
    see = lambda x: vgg.taps(x, disc.depth)  # noqa: E731
    sharp = torch.rand(4, 3, 32, 32)
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1, count_include_pad=False)
    logits = disc(see(sharp))
    assert [tuple(t.shape) for t in logits] == [(4, 1, 16, 16), (4, 1, 8, 8), (4, 1, 4, 4)]
    optimizer = torch.optim.Adam(disc.parameters(), lr=1e-3)
    with torch.no_grad():
        real, fake = see(sharp), see(blurred)
    first = discriminator_loss(disc(real), disc(fake)).item()
    for _ in range(15):
        loss = discriminator_loss(disc(real), disc(fake))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first > 0.5 and loss.item() < 0.2
    # tap 0 adds a head at the image's own resolution
    full = VGGFeatureDiscriminator(num_feat=8, taps=(0, 1))
    assert [tuple(t.shape) for t in full(vgg.taps(sharp, full.depth))] == [(4, 1, 32, 32), (4, 1, 16, 16)]
    with pytest.raises(ValueError):
        VGGFeatureDiscriminator(taps=(5,))
    # the generator's loss reaches the image through the frozen VGG16
    result = blurred.clone().requires_grad_(True)
    generator_loss(disc(real), disc(see(result))).backward()
    assert result.grad.abs().sum() > 0 and not any(p.requires_grad for p in vgg.parameters())


@pytest.mark.skipif(not lpips.available("vgg16"), reason="the LPIPS VGG16 weights are in ../shared/data/perceptual")
def test_the_feature_loss_is_zero_for_the_truth_and_pulls_towards_it():
    loss = FeatureLoss()
    truth = torch.rand(1, 3, 32, 32)
    assert loss(truth, truth).item() == 0
    result = (truth + 0.1 * torch.randn_like(truth)).clamp(0, 1).requires_grad_(True)
    value = loss(result, truth)
    value.backward()
    assert value.item() > 0 and result.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())  # frozen: only the result learns
    with torch.no_grad():  # a small step against the gradient gets closer
        assert loss(result - 0.01 * result.grad.sign(), truth) < value


def test_gram_matrices_describe_each_window_without_positions():
    x = torch.rand(2, 4, 16, 24)
    grams = gram_matrices(x, 8)
    assert grams.shape == (2 * 2 * 3, 4, 4)
    assert torch.allclose(grams, grams.transpose(1, 2))
    # the first window's matrix, by hand
    tile = x[0, :, :8, :8].reshape(4, 64)
    assert torch.allclose(grams[0], tile @ tile.T / 64, atol=1e-6)
    # shuffling pixels inside a window changes nothing: statistics, not positions
    shuffled = x.clone()
    shuffled[0, :, :8, :8] = x[0, :, :8, :8].reshape(4, 64)[:, torch.randperm(64)].reshape(4, 8, 8)
    assert torch.allclose(gram_matrices(shuffled, 8), grams, atol=1e-5)


@pytest.mark.skipif(not lpips.available("vgg16"), reason="the LPIPS VGG16 weights are in ../shared/data/perceptual")
def test_the_texture_term_asks_a_blurred_result_for_more_detail():
    loss = FeatureLoss()
    torch.manual_seed(0)
    truth = torch.rand(1, 3, 32, 32)  # all fine detail
    assert loss(truth, truth, with_texture=True)[1].item() == 0
    blurred = torch.nn.functional.avg_pool2d(truth, 3, 1, 1, count_include_pad=False).requires_grad_(True)
    feature, texture = loss(blurred, truth, with_texture=True)
    assert feature.item() == pytest.approx(loss(blurred, truth).item())  # the same pass, the same feature term
    texture.backward()
    assert texture.item() > 0
    with torch.no_grad():  # a step against its gradient adds detail: the Laplacian's energy grows
        sharper = blurred - 0.01 * blurred.grad.sign()
        lap = lambda t: (4 * t[..., 1:-1, 1:-1] - t[..., :-2, 1:-1] - t[..., 2:, 1:-1]  # noqa: E731
                         - t[..., 1:-1, :-2] - t[..., 1:-1, 2:]).var()
        assert loss(sharper, truth, with_texture=True)[1] < texture
        assert lap(sharper) > lap(blurred)


@pytest.mark.skipif(not lpips.available("vgg16"), reason="the LPIPS VGG16 weights are in ../shared/data/perceptual")
def test_the_texture_term_gives_nothing_for_a_grid_every_second_pixel():
    """A pixel-shuffle network can add fine 'detail' as a checkerboard. The texture term sees
    the images averaged over 2x2, where such a grid cancels: it earns nothing there."""
    torch.manual_seed(0)
    truth = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 64), 3, 1, 1, count_include_pad=False)
    x = torch.arange(64)
    grid = 0.05 * ((-1.0) ** (x[:, None] + x[None, :]))
    with_grid = truth + grid
    assert FeatureLoss()(with_grid, truth, with_texture=True)[1].item() == pytest.approx(0, abs=1e-6)
    assert FeatureLoss(texture_pool=1)(with_grid, truth, with_texture=True)[1].item() > 0.01


def test_grid_excess_charges_a_grid_only_beyond_the_truths():
    torch.manual_seed(0)
    truth = torch.rand(2, 3, 64, 64)
    x = torch.arange(64)
    grid = 0.05 * ((-1.0) ** (x[:, None] + x[None, :]))
    assert grid_excess(truth, truth).item() == 0
    with_grid = (truth + grid).requires_grad_(True)
    cost = grid_excess(with_grid, truth)
    cost.backward()
    assert cost.item() > 0.02
    with torch.no_grad():  # its gradient takes the grid away
        assert grid_excess(with_grid - 0.02 * with_grid.grad.sign(), truth) < cost
    # a truth that has the grid itself allows it
    assert grid_excess(truth + grid, truth + grid).item() == 0
    # less contrast is no more grid
    assert grid_excess(truth.clamp(0.2, 0.8), truth).item() < 0.01


def assert_charged_and_stepped_away(penalty, with_pattern, without, margin):
    """``penalty`` costs ``with_pattern`` more than ``without`` by ``margin``, and one small
    step down its gradient lowers the cost (the gradient takes the pattern away)."""
    with_pattern = with_pattern.clone().requires_grad_(True)
    cost = penalty(with_pattern)
    cost.backward()
    assert cost.item() > penalty(without).item() + margin
    with torch.no_grad():
        assert penalty(with_pattern - 0.002 * with_pattern.grad.sign()) < cost


def test_grid_error_charges_a_faint_grid_that_grid_excess_lets_pass():
    torch.manual_seed(0)
    truth = torch.rand(2, 3, 128, 128)  # fine detail everywhere: period-2 energy of random phase
    soft = torch.nn.functional.avg_pool2d(truth, 3, 1, 1, count_include_pad=False)  # a soft result
    x = torch.arange(128)
    faint = 0.005 * ((-1.0) ** (x[:, None] + x[None, :]))  # fainter than the truth's own fine detail
    assert grid_error(truth, truth).item() == 0
    # beside the truth's fine detail a faint grid is nearly free for grid_excess ...
    assert grid_excess(soft + faint, truth).item() < 0.0005
    # ... not for grid_error over 128-px tiles, whose gradient takes it away
    assert_charged_and_stepped_away(lambda r: grid_error(r, truth, window=128), soft + faint, soft, 0.003)
    # a tile larger than the image shrinks to it
    assert grid_error(soft + faint, truth, window=512).item() == grid_error(soft + faint, truth, window=128).item()


def test_grid_error_at_period_4_charges_a_cross_hatch_that_period_2_does_not_see():
    """The pattern a second 2x stage draws from the first's lattice: a diagonal grid of
    period 4. grid_error at period 2 is blind to it; at period 4 a faint one on a soft result
    costs a good part of its amplitude over 64-px tiles, beside the truth's own random detail,
    and the gradient takes it away."""
    torch.manual_seed(0)
    truth = torch.rand(2, 3, 128, 128)
    soft = torch.nn.functional.avg_pool2d(truth, 5, 1, 2, count_include_pad=False)
    x = torch.arange(128.0)
    hatch = 0.01 * torch.cos((x[:, None] + x[None, :]) * math.pi / 2 + 0.4)  # of any phase
    assert grid_error(truth, truth, period=4).item() == 0
    assert grid_error(soft + hatch, truth, period=2).item() == pytest.approx(grid_error(soft, truth).item(), abs=1e-6)
    assert_charged_and_stepped_away(lambda r: grid_error(r, truth, period=4), soft + hatch, soft, 0.003)
    # grid_excess at period 4: the hatch on a soft result costs, whatever its phase; the
    # truth's own period-4 detail (here: the hatch in the truth) allows it
    for phase in (0.0, 0.4, 1.3):
        shifted = 0.01 * torch.cos((x[:, None] + x[None, :]) * math.pi / 2 + phase)
        assert grid_excess(soft + shifted, soft, period=4).item() > 0.004
    assert grid_excess(soft + hatch, soft + hatch, period=4).item() == 0
    assert grid_excess(soft + hatch, soft, period=2).item() < 1e-6


def test_the_artifact_map_marks_noisy_errors_the_ema_does_not_make():
    truth = torch.full((1, 3, 32, 32), 0.5)
    ema = truth + 0.01  # the EMA network: a small, smooth error everywhere
    result = ema.clone()
    result[..., 8:16, 8:16] += 0.3 * torch.randn(1, 3, 8, 8)  # a made-up texture in one corner
    weight = artifact_map(truth, result, ema)
    assert weight.shape == (1, 1, 32, 32)
    assert weight[..., 9:15, 9:15].mean() > 0
    assert weight[..., 24:, 24:].abs().max() == 0  # smooth and no worse than the EMA: left alone
    # where the result is closer to the truth than the EMA's, nothing is marked
    assert artifact_map(truth, truth, ema).abs().max() == 0
