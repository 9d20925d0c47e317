"""The model card and the upload list, without a server (the uploads themselves: test_hub.py)."""
import json

from upscaler.hub import files_to_upload, model_card, perceptual_terms
from upscaler.models import FAMILIES


def test_card_is_built_from_what_is_there(tiny_weights, tmp_path):
    card = model_card(tiny_weights)
    assert card.startswith("---\nlicense: mit") and "pipeline_tag: image-to-image" in card
    for name, family in FAMILIES.items():
        assert f"`{name}`: `{family.two_x.__name__}`" in card and family.description in card
    assert "Evaluation on cats/val" not in card  # no evaluation.json: no table invented
    (tiny_weights / "evaluation.json").write_text(json.dumps(
        {"images": 40, "data": "../shared/data/cats/val",
         "stages": {"64to128": {"bicubic": {"psnr": 30.0, "ssim": 0.9}}}}))
    try:
        card = model_card(tiny_weights)
        assert "| bicubic | 30.00 / 0.9000 |" in card
        assert "Evaluation on cats/val (40 photos never trained on)" in card  # the photos evaluated, not 204
    finally:
        (tiny_weights / "evaluation.json").unlink()


def test_upload_list_is_exact(tiny_weights):
    (tiny_weights / "checkpoints" / "default" / "64to128").mkdir(parents=True, exist_ok=True)
    (tiny_weights / "checkpoints" / "default" / "64to128" / "model.safetensors").write_bytes(b"x")
    paths = files_to_upload(tiny_weights)
    assert not any(p.startswith("checkpoints") for p in paths)
    assert "default/64to512/model.safetensors" in paths and "seed/64to128/config.json" in paths
    assert len([p for p in paths if p.endswith("model.safetensors")]) == 4 * len(FAMILIES)


def test_the_card_names_the_loss_terms_a_run_used():
    assert perceptual_terms(None) == []
    gan = {"feature_weight": 1.0, "gan_weight": 0.1, "ldl_weight": 1.0}  # a record from before texture existed
    assert perceptual_terms(gan) == ["VGG16 features", "GAN", "LDL"]
    texture = {"feature_weight": 1.0, "texture_weight": 1.0, "grid_weight": 300.0, "gan_weight": 0.0, "ldl_weight": 0}
    assert perceptual_terms(texture) == ["VGG16 features", "texture", "grid penalty"]
