"""The networks.

Two families, each with a 2x network and an 8x stack of three of them:

* ``seed``: the reference design (``../shared/seed/image-upscalar.md``) reproduced
  layer for layer: ``Upsampler`` and ``Upsampler8x``. Images in [-1, 1] (its last layer
  is a Tanh). Two stride-2 convolutions and three stride-2 transposed convolutions, so
  the input side must be a multiple of 4.

* ``default``: ``ResidualUpsampler`` and ``ResidualUpsampler8x``. Why this design, by
  measurement on ``cats/val`` (see ``benchmarks/architecture.py`` and the README):
  the seed layout throws away resolution first (two stride-2 convolutions) and must
  re-create every pixel through a Tanh, with BatchNorm statistics that differ between
  training crops and whole photos. It scored *below* plain bicubic after minutes of CPU
  training. A network that works at the input resolution, predicts only the *residual*
  over an interpolated copy of the input, and upsamples with pixel-shuffle (ESPCN;
  Real-ESRGAN's SRVGGNetCompact) starts at bilinear quality on step 0 and beats bicubic
  within a few hundred steps. No BatchNorm: SR networks lose quality with it (EDSR) and
  it would couple a tile's output to its statistics. Images in [0, 1], any size.

  Measured (``python benchmarks/architecture.py --seconds 120``, 2-core CPU, ~2 min of
  training each, 64to128, cats/val PSNR-Y; bicubic 32.25 dB):

  ====================  =======  =======  ==========================
  candidate             params   PSNR-Y   64->512 of 64x64 (fp32)
  ====================  =======  =======  ==========================
  seed layout (MSE)     717 k    27.76    39 ms
  residual F=16, n=4    12 k     34.12    13 ms
  residual F=32, n=4    42 k     34.51    30 ms   <- default
  residual F=48, n=6    132 k    34.62    106 ms
  ====================  =======  =======  ==========================

  F=32, n=4: within 0.1 dB of the 3x larger net at a third of its time, and inside the
  30 ms goal for a 64->512 upscale on a 2-core CPU.

Every class states what a caller must know (spandrel-style): ``factor``,
``size_multiple`` (input sides are padded up to it) and ``value_range``.
All of them save and load through ``PyTorchModelHubMixin``: ``config.json`` holds the
constructor's arguments, ``model.safetensors`` the weights.
"""
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

HUB_TAGS = ["image-upscaling", "super-resolution", "pytorch"]


# --------------------------------------------------------------------------- seed
class Upsampler(nn.Module, PyTorchModelHubMixin, tags=HUB_TAGS):
    """Upsampler by a factor of 2 (the reference design, layer for layer)."""

    factor = 2
    size_multiple = 4
    value_range = (-1.0, 1.0)

    def __init__(self):
        super().__init__()

        self.fw = nn.Sequential(
            nn.Conv2d(in_channels=3, out_channels=16, kernel_size=5, stride=2, padding=2),
            nn.BatchNorm2d(num_features=16),
            nn.ReLU(),
            nn.Conv2d(in_channels=16, out_channels=64, kernel_size=5, stride=2, padding=2),
            nn.BatchNorm2d(num_features=64),
            nn.ReLU(),
            nn.Conv2d(in_channels=64, out_channels=256, kernel_size=5, padding=2),
            nn.BatchNorm2d(num_features=256),
            nn.ReLU(),
            nn.ConvTranspose2d(in_channels=256, out_channels=64, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm2d(num_features=64),
            nn.ReLU(),
            nn.ConvTranspose2d(in_channels=64, out_channels=16, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm2d(num_features=16),
            nn.ReLU(),
            nn.ConvTranspose2d(in_channels=16, out_channels=3, kernel_size=4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, x):
        return self.fw(x)


class Upsampler8x(nn.Module, PyTorchModelHubMixin, tags=HUB_TAGS):
    """Upsampler by a factor of 8: the three 2x stages stacked (reference design).

    The seed's ``load_checkpoints`` read three pickled ``.pt`` files; here
    ``from_stages`` takes three loaded ``Upsampler`` s instead (safetensors only).
    """

    factor = 8
    size_multiple = 4  # the first stage's requirement; later stages get 2x, 4x that
    value_range = (-1.0, 1.0)

    def __init__(self):
        super().__init__()
        self.upsample_64 = Upsampler()
        self.upsample_128 = Upsampler()
        self.upsample_256 = Upsampler()

    @classmethod
    def from_stages(cls, s64: Upsampler, s128: Upsampler, s256: Upsampler) -> "Upsampler8x":
        return _load_stages(cls(), s64, s128, s256)

    def forward(self, x):
        return self.upsample_256(self.upsample_128(self.upsample_64(x)))


def _load_stages(stack, s64, s128, s256):
    """Copy three trained 2x stages into an 8x stack (strict: the shapes must match)."""
    stack.upsample_64.load_state_dict(s64.state_dict())
    stack.upsample_128.load_state_dict(s128.state_dict())
    stack.upsample_256.load_state_dict(s256.state_dict())
    return stack


# ------------------------------------------------------------------------ default
class ResidualUpsampler(nn.Module, PyTorchModelHubMixin, tags=HUB_TAGS):
    """2x upsampler: a plain conv stack at input resolution -> pixel-shuffle -> added
    to a bilinear upsampling of the input.

    conv3x3(3->F) PReLU, ``num_convs`` x [conv3x3(F->F) PReLU], conv3x3(F->3*4),
    PixelShuffle(2), + bilinear(x). The last conv starts at zero, so an untrained
    network *is* bilinear interpolation and training only ever adds detail.
    """

    factor = 2
    size_multiple = 1
    value_range = (0.0, 1.0)

    def __init__(self, num_features: int = 32, num_convs: int = 4):
        super().__init__()
        layers = [nn.Conv2d(3, num_features, 3, padding=1), nn.PReLU(num_features)]
        for _ in range(num_convs):
            layers += [nn.Conv2d(num_features, num_features, 3, padding=1), nn.PReLU(num_features)]
        layers += [nn.Conv2d(num_features, 3 * 4, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(2)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x):
        base = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return base + self.shuffle(self.body(x))


class ResidualUpsampler8x(nn.Module, PyTorchModelHubMixin, tags=HUB_TAGS):
    """Upsampler by a factor of 8: three ``ResidualUpsampler`` s stacked, fine-tuned."""

    factor = 8
    size_multiple = 1
    value_range = (0.0, 1.0)

    def __init__(self, num_features: int = 32, num_convs: int = 4):
        super().__init__()
        self.upsample_64 = ResidualUpsampler(num_features, num_convs)
        self.upsample_128 = ResidualUpsampler(num_features, num_convs)
        self.upsample_256 = ResidualUpsampler(num_features, num_convs)

    @classmethod
    def from_stages(cls, s64, s128, s256) -> "ResidualUpsampler8x":
        config = getattr(s64, "_hub_mixin_config", None) or {}  # the stages' size, e.g. 32 features
        return _load_stages(cls(**config), s64, s128, s256)

    def forward(self, x):
        return self.upsample_256(self.upsample_128(self.upsample_64(x)))


# ---------------------------------------------------------------------- registry
# model name -> (2x class, 8x class)
MODELS = {
    "default": (ResidualUpsampler, ResidualUpsampler8x),
    "seed": (Upsampler, Upsampler8x),
}


def model_class(model: str, stage: str):
    """The class that serves ``stage`` ("64to128" ... "64to512") for ``model``."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    two_x, eight_x = MODELS[model]
    from .stages import STACK_STAGE, get_stage

    get_stage(stage)  # validates the name
    return eight_x if stage == STACK_STAGE else two_x


def to_model_range(x: torch.Tensor, net) -> torch.Tensor:
    """[0, 1] images -> the range the network was trained on."""
    lo, hi = net.value_range
    return x if (lo, hi) == (0.0, 1.0) else x * (hi - lo) + lo


def from_model_range(y: torch.Tensor, net) -> torch.Tensor:
    lo, hi = net.value_range
    return y if (lo, hi) == (0.0, 1.0) else (y - lo) / (hi - lo)
