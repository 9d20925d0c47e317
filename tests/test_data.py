"""Training data: the decoded-photo cache and the pairs made on the device."""
import numpy as np
import pytest
import torch
from conftest import CATS_VAL
from PIL import Image

from upscaler import data, resize
from upscaler.metrics import psnr_y
from upscaler.protocol import eval_pair
from upscaler.stages import STAGES


@pytest.fixture(scope="module")
def decoded(tiny_dataset, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    ds = data.load_images(data_dir=tiny_dataset, cache_dir=cache)
    return data.DecodedImages.build(ds, cache, num_workers=2)


def test_pil_bicubic_matches_pil_on_the_evaluation_protocol():
    """Training's LR inputs come from pil_bicubic, evaluation's from PIL: the bicubic
    baseline scored on either differs by less than 0.01 dB, at every stage."""
    photos = [Image.open(f).convert("RGB") for f in sorted(CATS_VAL.glob("*.jpg"))[:8]]
    for stage in STAGES.values():
        ours, theirs = [], []
        for p in photos:
            lr, hr = eval_pair(p, stage)
            gt512 = eval_pair(p, STAGES["64to512"])[1]  # the protocol's inputs come from the 512 image
            gt = torch.from_numpy(np.asarray(gt512, dtype=np.float32)).permute(2, 0, 1)[None]
            mine = resize.pil_bicubic(gt, (stage.input_size,) * 2)[0].permute(1, 2, 0).byte().numpy()
            mine = Image.fromarray(mine)
            assert np.abs(np.asarray(mine, np.int16) - np.asarray(lr, np.int16)).max() <= 1
            theirs.append(psnr_y(lr.resize(hr.size, Image.BICUBIC), hr, stage.factor))
            ours.append(psnr_y(mine.resize(hr.size, Image.BICUBIC), hr, stage.factor))
        assert abs(np.mean(ours) - np.mean(theirs)) < 0.01, stage.name


def test_photos_are_decoded_once_and_shared(decoded, tiny_dataset, tmp_path):
    assert len(decoded) == 16 and decoded.skipped == 0
    first = next(iter(sorted(tiny_dataset.iterdir())))
    assert decoded[0].shape == np.asarray(Image.open(first)).shape  # imagefolder keeps file order
    # a second build of the same dataset maps the same file instead of decoding again
    ds = data.load_images(data_dir=tiny_dataset, cache_dir=decoded.folder.parent.parent)
    again = data.DecodedImages.build(ds, decoded.folder.parent.parent)
    assert again.folder == decoded.folder and np.array_equal(again[3], decoded[3])


@pytest.mark.parametrize("stage", list(STAGES))
def test_pairs_have_the_stage_factor_and_match_bicubic(decoded, stage):
    st = STAGES[stage]
    patch = 128 if st.factor == 2 else 256
    lr, hr = data.PairMaker(decoded, st, patch, batch_size=4, device="cpu").batch(0)
    assert hr.shape == (4, 3, patch, patch) and lr.shape == (4, 3, patch // st.factor, patch // st.factor)
    assert 0 <= lr.min() and lr.max() <= 1 and hr.std() > 0.02
    # the LR input is the PIL-bicubic downscale of the HR target
    img = Image.fromarray((hr[0] * 255).round().byte().permute(1, 2, 0).numpy())
    want = np.asarray(img.resize((patch // st.factor,) * 2, Image.BICUBIC), np.float32)
    got = lr[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(got - want).max() <= 1.01


def test_batches_are_keyed_by_step_not_by_history(decoded):
    st = STAGES["64to128"]
    a = data.PairMaker(decoded, st, 64, batch_size=4, device="cpu", seed=3)
    b = data.PairMaker(decoded, st, 64, batch_size=4, device="cpu", seed=3)
    for step in (0, 1, 2):
        a.batch(step)
    # a fresh maker asked for step 2 directly gives what the one that made 0 and 1 gave
    assert all(torch.equal(x, y) for x, y in zip(a.batch(2), b.batch(2)))
    assert not torch.equal(a.batch(2)[1], a.batch(3)[1])
    other_seed = data.PairMaker(decoded, st, 64, batch_size=4, device="cpu", seed=4)
    assert not torch.equal(a.batch(2)[1], other_seed.batch(2)[1])


def test_an_epoch_visits_every_photo_once_across_processes(decoded):
    st = STAGES["64to128"]
    makers = [data.PairMaker(decoded, st, 64, batch_size=2, device="cpu", rank=r, world=2) for r in range(2)]
    steps = makers[0].steps_per_epoch
    assert steps == 16 // (2 * 2)
    seen = [i for m in makers for s in range(steps) for i in m.indices(s)]
    assert sorted(seen) == list(range(16))


def test_too_few_photos_is_a_clear_error(decoded):
    with pytest.raises(ValueError, match="cannot fill one step"):
        data.PairMaker(decoded, STAGES["64to128"], 64, batch_size=9, device="cpu", world=2)


def test_image_folder_loads_and_skips_unreadable(tiny_dataset, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for f in sorted(tiny_dataset.iterdir())[:3]:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    ds = data.load_images(data_dir=folder, cache_dir=tmp_path / "cache")
    assert len(ds) == 4 and ds.column_names == ["image"]
    images = data.DecodedImages.build(ds, tmp_path / "cache")
    assert len(images) == 3 and images.skipped == 1


def test_label_filter_keeps_only_the_chosen_class(tmp_path):
    """What the default source does to microsoft/cats_vs_dogs (labels 0 = cat), on a
    local dataset of the same layout (image, labels)."""
    import datasets

    cells = []
    for i, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (40, 30), colour).save(path)
        cells.append(str(path))
    features = datasets.Features({"image": datasets.Image(), "labels": datasets.ClassLabel(names=["cat", "dog"])})
    ds = datasets.Dataset.from_dict({"image": cells, "labels": [0, 1, 0, 1]}, features=features)
    ds.save_to_disk(tmp_path / "ds")
    loaded = datasets.load_from_disk(tmp_path / "ds")
    assert loaded.filter(lambda v: v == data.CATS_LABEL_VALUE, input_columns=data.CATS_LABEL_COLUMN).num_rows == 2
