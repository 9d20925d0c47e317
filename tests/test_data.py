import random

import pytest
from PIL import Image

from upscaler import data
from upscaler.stages import STAGES


@pytest.mark.parametrize("stage", list(STAGES))
def test_random_pairs_have_the_stage_factor(stage):
    st = STAGES[stage]
    img = Image.effect_noise((300, 200), 50).convert("RGB")
    lr, hr = data.random_pair(img, st, patch=128 if st.factor == 2 else 256, rng=random.Random(0))
    assert hr.shape[1] == hr.shape[2] == lr.shape[1] * st.factor
    assert 0 <= lr.min() and lr.max() <= 1


def test_the_same_key_gives_the_same_pair():
    img = Image.effect_noise((300, 200), 50).convert("RGB")
    a = data.random_pair(img, STAGES["64to128"], 64, rng=random.Random("0-1-5"))
    b = data.random_pair(img, STAGES["64to128"], 64, rng=random.Random("0-1-5"))
    assert all((x == y).all() for x, y in zip(a, b))


def test_eval_pair_is_the_fixed_protocol():
    img = Image.new("RGB", (500, 374))
    for name, st in STAGES.items():
        lr, hr = data.eval_pair(img, st)
        assert lr.size == (st.input_size,) * 2 and hr.size == (st.output_size,) * 2


def test_image_folder_loads_and_skips_unreadable(tiny_dataset, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for f in sorted(tiny_dataset.iterdir())[:3]:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    ds = data.load_images(data_dir=folder, cache_dir=tmp_path / "cache")
    assert len(ds) == 4 and ds.column_names == ["image", "index"]
    ds.set_transform(data.make_train_transform(STAGES["64to128"], 64))
    batch = data.collate([ds[i] for i in range(len(ds))])
    assert batch["lr"].shape == (3, 3, 32, 32) and batch["hr"].shape == (3, 3, 64, 64)
    assert batch["skipped"] == 1
