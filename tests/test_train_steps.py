"""The training script in process and its pieces, fast enough for the daily subset: two real
steps end to end, per-stage initial weights, and micro-batches that add up to the step."""
import copy
import json

import pytest
import torch
from helpers import train_args

from upscaler import data
from upscaler.stages import STAGES, TWO_X_STAGES


def test_two_steps_in_process(tiny_dataset, tmp_path, monkeypatch):
    """main() with tiny settings: trains, validates (PSNR, and LPIPS where its weights are),
    checkpoints and saves loadable weights, all in this process."""
    import train_accelerate

    from upscaler import lpips
    from upscaler.inference import load_upscaler

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "w"
    train_accelerate.main(train_args(tiny_dataset, out, "--stage", "64to128", "--max-steps", "2")[1:])
    config = json.loads((out / "default" / "64to128" / "config.json").read_text())
    training = config["training"]
    assert training["steps"] == 2 and training["content_scale"] == "world"
    assert (out / "checkpoints" / "default" / "64to128" / "checkpoint-2").is_dir()
    point = training["curve"][-1]
    assert point["step"] == 2 and "psnr_model" in point
    if lpips.available("alex"):
        assert 0 < point["lpips_model"] < 1 and 0 < point["lpips_bicubic"] < 1
    from PIL import Image

    assert load_upscaler("64to128", weights=out)(Image.new("RGB", (6, 5))).size == (12, 10)


def test_a_stage_starts_from_the_same_weights_alone_or_inside_all():
    """--stage all builds 64to128, then 128to256...: each stage's initial weights have their
    own seed, so 128to256 starts the same whatever was built before it."""
    import train_accelerate

    args = train_accelerate.parse_args(["--stage", "all"])
    alone = train_accelerate.build_model(train_accelerate.parse_args(["--stage", "128to256"]), "128to256")
    nets = {stage: train_accelerate.build_model(args, stage) for stage in TWO_X_STAGES}
    assert all(torch.equal(a, b) for a, b in zip(alone.state_dict().values(), nets["128to256"].state_dict().values()))
    other_seed = train_accelerate.build_model(train_accelerate.parse_args(["--stage", "128to256", "--seed", "1"]),
                                              "128to256")
    assert not all(torch.equal(a, b) for a, b in zip(alone.state_dict().values(), other_seed.state_dict().values()))


@pytest.fixture(scope="module")
def photos(tiny_dataset, tmp_path_factory):
    cache = tmp_path_factory.mktemp("decoded")
    return data.DecodedImages.build(data.load_images(data_dir=tiny_dataset, cache_dir=cache), cache)


def test_micro_batches_add_up_to_the_step(photos):
    """Batch 4 x accumulation 2 sees exactly the samples of batch 8: the same photos, crops,
    flips and transposes, so accumulation trains what the larger batch trains."""
    stage = STAGES["64to128"]
    whole = data.PairMaker(photos, stage, 64, 8, "cpu", seed=5)
    parts = data.PairMaker(photos, stage, 64, 4, "cpu", seed=5, accumulation=2)
    for step in (0, 1):
        lr, hr = whole.batch(step)
        micro = [parts.batch(step, m) for m in (0, 1)]
        assert torch.equal(hr, torch.cat([h for _, h in micro])) and torch.equal(lr, torch.cat([x for x, _ in micro]))
    assert whole.steps_per_epoch == parts.steps_per_epoch == len(photos) // 8


def test_all_scale_patches_reach_the_photos_own_resolution(photos):
    """content_scale="all": some patches show the photo's own pixels (a window of about
    the patch's size), where "world" patches always show the photo shrunk to the world."""
    stage = STAGES["64to128"]
    windows = {}
    for scale in data.CONTENT_SCALES:
        maker = data.PairMaker(photos, stage, 64, 4, "cpu", seed=1, content_scale=scale)
        seen = []
        real = data.pil_bicubic

        def spy(x, size, seen=seen):
            if x.shape[0] == 1:  # one sample's window of the photo, resized to the patch
                seen.append(x.shape[-1])
            return real(x, size)

        data.pil_bicubic = spy
        try:
            for step in range(6):
                maker.batch(step)
        finally:
            data.pil_bicubic = real
        windows[scale] = sorted(seen)
    median = {k: v[len(v) // 2] for k, v in windows.items()}
    assert median["all"] < median["world"]  # on average closer to the camera's pixels
    # some "all" patches are cut at about the photo's own pixels (a 64 px window for a 64 px
    # patch); "world" ones never: they see at least 60% of a short side >= 261 px at 128 px
    assert windows["all"][0] <= 70 < windows["world"][0]
    with pytest.raises(ValueError, match="content_scale"):
        data.PairMaker(photos, stage, 64, 4, "cpu", content_scale="huge")


def test_input_from_trains_128to256_on_what_64to128_makes(tiny_dataset, tmp_path, monkeypatch):
    """--input-from: 128to256's input is the shipped 64to128's result on an input 4x smaller
    than the truth, rounded to 8 bits as the demo's 4x passes it on; recorded in config.json.
    A stage with nothing before it is refused."""
    import train_accelerate

    from upscaler.images import tensor_to_pil, to_tensor
    from upscaler.inference import load_upscaler

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    args = train_accelerate.parse_args(train_args(tiny_dataset, tmp_path, "--model", "sharp", "--stage", "128to256",
                                                  "--input-from", "weights")[1:])
    earlier = train_accelerate.EarlierStages(args, STAGES["128to256"], "cpu")
    assert (earlier.chain.input_size, earlier.chain.output_size, earlier.chain.factor) == (64, 256, 4)
    lr = torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    made = earlier(lr)
    assert made.shape == (2, 3, 24, 20)
    assert torch.equal(made * 255, (made * 255).round())  # 8-bit steps, as between the demo's stages
    first = load_upscaler("64to128", model="sharp", weights="weights")
    shown = to_tensor(first(tensor_to_pil(lr[0:1])))
    assert (made[0] - shown).abs().max() <= 1.5 / 255  # the demo's own 64to128, to rounding

    out = tmp_path / "w"
    train_accelerate.main(train_args(tiny_dataset, out, "--model", "sharp", "--stage", "128to256", "--max-steps", "1",
                                     "--patch-size", "64", "--train-batch-size", "2", "--gan-weight", "0",
                                     "--init-model", "sharp", "--init-weights", "weights",
                                     "--input-from", "weights", "--grid4-weight", "300")[1:])
    training = json.loads((out / "sharp" / "128to256" / "config.json").read_text())["training"]
    assert training["input_from"] == "weights" and training["patch_size"] == 64
    assert training["input_from_share"] == 1.0
    assert training["perceptual"]["grid4_weight"] == 300 and training["perceptual"]["grid4_loss"] == "error"
    from upscaler.hub import model_card, perceptual_terms

    assert "period-4 grid penalty" in perceptual_terms(training["perceptual"])
    assert "128to256 (in the chain from 64 px)" in model_card(out)
    with pytest.raises(SystemExit):
        train_accelerate.parse_args(train_args(tiny_dataset, out, "--stage", "64to128", "--input-from", "weights")[1:])


def test_input_from_share_mixes_the_chains_pairs_with_the_stages_own(tiny_dataset, tmp_path, monkeypatch):
    """--input-from-share 0.5: half of each batch comes through the earlier stages (inputs 4x
    smaller than the truth, upscaled by them), the other half are the stage's own pairs
    (inputs 2x smaller), drawn from other photos; the truths line up with their inputs."""
    import train_accelerate
    from accelerate import Accelerator

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    args = train_accelerate.parse_args(train_args(tiny_dataset, tmp_path, "--model", "sharp", "--stage", "128to256",
                                                  "--patch-size", "64", "--input-from", "weights",
                                                  "--input-from-share", "0.5")[1:])
    stage = STAGES["128to256"]
    accelerator = Accelerator(cpu=True)
    earlier = train_accelerate.EarlierStages(args, stage, "cpu")
    pairs, _, _ = train_accelerate.build_data(args, stage, accelerator, earlier)
    lr, hr = pairs.batch(0)
    assert lr.shape == (4, 3, 32, 32) and hr.shape == (4, 3, 64, 64)
    chain_lr, chain_hr = pairs.chain.batch(0)
    own_lr, own_hr = pairs.own.batch(0)
    assert chain_lr.shape[-1] == 16 and own_lr.shape[-1] == 32  # 4x and 2x smaller than the truth
    assert torch.equal(lr[:2], earlier(chain_lr)) and torch.equal(lr[2:], own_lr)
    assert torch.equal(hr, torch.cat([chain_hr, own_hr]))
    assert not torch.equal(chain_hr, own_hr)
    assert pairs.share == 0.5 and pairs.steps_per_epoch == len(pairs.images) // 4  # epochs of whole batches
    # a patch side that only the stage's own factor divides is cut to the chain's, for both halves
    odd = train_accelerate.parse_args(train_args(tiny_dataset, tmp_path, "--model", "sharp", "--stage", "128to256",
                                                 "--patch-size", "66", "--input-from", "weights",
                                                 "--input-from-share", "0.5")[1:])
    odd_pairs, _, _ = train_accelerate.build_data(odd, stage, accelerator, earlier)
    assert odd_pairs.batch(0)[1].shape == (4, 3, 64, 64)
    for refused in (["--input-from", "weights", "--input-from-share", "0"], ["--input-from-share", "0.5"],
                    ["--model", "photo", "--grid4-weight", "300"]):
        with pytest.raises(SystemExit):
            train_accelerate.parse_args(train_args(tiny_dataset, tmp_path, "--stage", "128to256", *refused)[1:])


def test_the_vgg_discriminator_trains_and_checkpoints_only_its_heads(tiny_dataset, tmp_path, monkeypatch):
    """--disc vgg: the GAN's discriminator judges the frozen VGG16 maps; it takes its steps
    (its loss shows), the run records it, the model card names it, and its checkpoint holds
    the heads alone, not a copy of VGG16."""
    import train_accelerate
    from safetensors.torch import load_file

    from upscaler import lpips
    from upscaler.hub import model_card

    if not lpips.available("vgg16"):
        pytest.skip("the LPIPS VGG16 weights are in ../shared/data/perceptual")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "w"
    train_accelerate.main(train_args(tiny_dataset, out, "--model", "sharp", "--stage", "64to128", "--max-steps", "2",
                                     "--patch-size", "32", "--train-batch-size", "2", "--disc", "vgg",
                                     "--disc-features", "8", "--disc-taps", "0,2")[1:])
    training = json.loads((out / "sharp" / "64to128" / "config.json").read_text())["training"]
    assert training["perceptual"]["disc"] == "vgg" and training["perceptual"]["gan_weight"] > 0
    assert training["perceptual"]["disc_taps"] == "VGG16 ReLU 2,7"
    assert "GAN (discriminator on VGG16 features)" in model_card(out)
    heads = load_file(out / "checkpoints" / "sharp" / "64to128" / "checkpoint-2" / "model_1.safetensors")
    assert heads and all(k.startswith("heads.") for k in heads)
    assert sum(v.numel() for v in heads.values()) < 100_000  # VGG16 alone has millions
    # one head per tap asked for: ReLU 2 (64 channels) and ReLU 7 (256)
    assert sorted(v.shape[1] for k, v in heads.items() if k.endswith(".0.weight_orig")) == [64, 256]
    # a checkpoint of one discriminator cannot resume another: refused, saying which
    resume = ["--model", "sharp", "--stage", "64to128", "--max-steps", "3", "--patch-size", "32",
              "--train-batch-size", "2", "--resume-from-checkpoint", "latest"]
    with pytest.raises(SystemExit, match="--disc vgg --disc-taps 0,2.*--disc unet"):
        train_accelerate.main(train_args(tiny_dataset, out, *resume)[1:])
    with pytest.raises(SystemExit, match="--disc-taps 0,2 --disc-features 8.*--disc-taps 1,2,3"):
        train_accelerate.main(train_args(tiny_dataset, out, *resume, "--disc", "vgg", "--disc-features", "8")[1:])
    # and so can one of another width, whose weights' shapes differ
    with pytest.raises(SystemExit, match="--disc-features 8.*--disc-features 16"):
        train_accelerate.main(train_args(tiny_dataset, out, *resume, "--disc", "vgg", "--disc-taps", "0,2",
                                         "--disc-features", "16")[1:])
    # a checkpoint saved before widths were recorded resumes at its own width
    step_json = out / "checkpoints" / "sharp" / "64to128" / "checkpoint-2" / "step.json"
    step_json.write_text(json.dumps({k: v for k, v in json.loads(step_json.read_text()).items()
                                     if k != "disc_features"}))
    train_accelerate.main(train_args(tiny_dataset, out, *resume, "--disc", "vgg", "--disc-taps", "0,2",
                                     "--disc-features", "8")[1:])
    assert (out / "checkpoints" / "sharp" / "64to128" / "checkpoint-3").is_dir()
    for bad in (["--disc-taps", "0,5"], ["--disc-taps", "relu2"], ["--disc-taps", "0"]):  # the last: no --disc vgg
        with pytest.raises(SystemExit):
            train_accelerate.parse_args(train_args(tiny_dataset, out, "--model", "sharp", *bad)[1:])
    with pytest.raises(SystemExit):  # and where no adversarial term would use it
        train_accelerate.parse_args(train_args(tiny_dataset, out, "--model", "sharp", "--disc", "vgg",
                                               "--gan-weight", "0")[1:])


def test_the_vgg_discriminator_reuses_the_feature_loss_maps_for_the_same_losses(tiny_dataset, tmp_path):
    """With --disc vgg one VGG16 pass of the results and one of the truths serve the feature
    loss, the generator's adversarial term and the discriminator's step: each equals what
    its own passes give."""
    import train_accelerate
    from accelerate import Accelerator

    from upscaler import lpips
    from upscaler.adversarial import VGGFeatureDiscriminator, discriminator_loss, generator_loss

    if not lpips.available("vgg16"):
        pytest.skip("the LPIPS VGG16 weights are in ../shared/data/perceptual")
    args = train_accelerate.parse_args(train_args(tiny_dataset, tmp_path, "--model", "sharp", "--disc", "vgg",
                                                  "--gan-weight", "0.3", "--ldl-weight", "0",
                                                  "--disc-features", "8")[1:])
    torch.manual_seed(0)
    gan = train_accelerate.PerceptualLosses(args, Accelerator(cpu=True))
    hr = torch.rand(2, 3, 32, 32)
    sr = (hr + 0.05 * torch.randn_like(hr)).clamp(0, 1).requires_grad_(True)
    see = lambda x: gan.features.taps(x, gan.judge.depth)  # noqa: E731
    # spectral norm takes a power-iteration step at every call: each side starts from one state
    start = copy.deepcopy(gan.judge.state_dict())
    gan.generator(sr, hr, torch.tensor(0.0), None)
    with torch.no_grad():
        assert gan.last["feature"].item() == pytest.approx(args.feature_weight * gan.features(sr, hr).item())
        after_generator = copy.deepcopy(gan.judge.state_dict())
        gan.judge.load_state_dict(start)
        real = gan.judge(see(hr))
        expected = generator_loss(real, gan.judge(see(sr)))
        assert gan.last["gan"].item() == pytest.approx(args.gan_weight * expected.item(), rel=1e-5)
        gan.judge.load_state_dict(after_generator)
        expected_disc = discriminator_loss(gan.judge(see(hr)), gan.judge(see(sr)))
        gan.judge.load_state_dict(after_generator)
    gan.discriminator_step(sr, hr)
    assert gan.last["disc"].item() == pytest.approx(expected_disc.item(), rel=1e-5)
    assert sr.grad is None  # the discriminator's step reaches no result
