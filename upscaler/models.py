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

  How it got its layout (48 features x 8 convs at 64to128, 32 x 6, 32 x 2), measured step
  by step: ``docs/architecture.md``.

Every class describes itself (spandrel-style), and callers read these instead of
comparing model names: ``factor``, ``size_multiple`` (input sides are padded up to it),
``value_range``, ``receptive_field`` (input pixels each side that reach an output pixel:
the overlap tiles need), ``default_tile``, ``reduced_dtypes`` (the lower precisions whose
PSNR was measured within 0.05 dB of float32) and ``loss`` (its training recipe's loss).
Every ``forward`` takes float32 images; a network whose weights were cast to one of its
``reduced_dtypes`` (how ``Upscaler`` runs them) computes in that dtype.

``FAMILIES`` is the one table of model families: adding one is a new class pair plus
one ``register`` line.
All of them save and load through ``PyTorchModelHubMixin``: ``config.json`` holds the
constructor's arguments, ``model.safetensors`` the weights.
"""
import copy
import dataclasses
import inspect

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn.utils import parametrize

from .stages import STACK_STAGE, TWO_X_STAGES, Stage, get_stage

HUB_TAGS = ["image-upscaling", "super-resolution", "pytorch"]


class Describes:
    """What a network tells its callers. Subclasses override what differs."""

    factor: int = 2
    size_multiple: int = 1              # input sides are padded up to a multiple of this
    value_range = (0.0, 1.0)            # what the network reads and writes
    receptive_field: int = 16           # input pixels each side, rounded up: tiles overlap this much
    default_tile: int = 384             # input-side tile that bounds memory (0 = whole image)
    reduced_dtypes: tuple = ()          # "bfloat16" / "float16": measured within 0.05 dB of float32
    loss: str = "l1"                    # the training recipe's loss

    @classmethod
    def receptive_field_for(cls, **constructor_args) -> int:
        """The ``receptive_field`` of a network built with these arguments. A class whose
        reach depends on its arguments overrides this; the class attribute is its defaults'."""
        return cls.receptive_field

    def folded(self):
        """The network as it is saved and served. Networks trained with extra branches
        (``ResidualUpsampler(train_branches=True)``) fold them away; others are already plain."""
        return self


# --------------------------------------------------------------------------- seed
class Upsampler(Describes, nn.Module, PyTorchModelHubMixin, tags=HUB_TAGS):
    """Upsampler by a factor of 2 (the reference design, layer for layer)."""

    size_multiple = 4
    value_range = (-1.0, 1.0)
    receptive_field = 20  # measured reach of an output pixel: 18 input pixels (tests/test_models.py)
    # On an H200, bf16 and fp16 moved cats/val PSNR by at most 0.02 dB; on the CPU see
    # benchmarks/speed.py.
    reduced_dtypes = ("bfloat16", "float16")
    loss = "mse"  # the reference's recipe

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
        return self.fw(x.to(self.fw[0].weight.dtype))  # weights cast for inference: input follows


# ------------------------------------------------------------------------ default
class ConvBranches(nn.Module):
    """Structural re-parameterisation (RepVGG, ECBSR) without the extra inference cost.

    A 3x3 convolution trained as three parallel branches: the 3x3 kernel, a 1x1 kernel
    and (when in == out channels) the identity. All three are linear in the input, so
    their sum *is* one 3x3 convolution whose kernel is the sum of the three (the 1x1 and
    the identity sit at the centre tap). Registered as a parametrisation of the conv's
    ``weight``: training sees the branches and their gradients, and ``folded()`` bakes
    the sum into a plain ``weight``, so the shipped network is the plain one.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        cout, cin = conv.out_channels, conv.in_channels
        self.one_by_one = nn.Parameter(torch.zeros(cout, cin, 1, 1))
        identity = torch.zeros(cout, cin, 3, 3)
        if cin == cout:
            identity[range(cout), range(cin), 1, 1] = 1.0
        self.register_buffer("identity", identity, persistent=False)

    def forward(self, kernel):
        return kernel + F.pad(self.one_by_one, (1, 1, 1, 1)) + self.identity.to(kernel.dtype)


class ResidualUpsampler(Describes, nn.Module, PyTorchModelHubMixin, tags=HUB_TAGS):
    """2x upsampler: a plain conv stack at input resolution -> pixel-shuffle -> added
    to a bilinear upsampling of the input.

    conv3x3(3->F) PReLU, ``num_convs`` x [conv3x3(F->F) PReLU], conv3x3(F->3*4),
    PixelShuffle(2), + bilinear(x). The last conv starts at zero, so an untrained
    network *is* bilinear interpolation and training only ever adds detail.

    ``train_branches=True`` trains each conv as 3x3 + 1x1 (+ identity) branches
    (``ConvBranches``); ``folded()`` turns it into the plain network, and only plain
    networks are saved, so inference never sees a branch.
    """

    @staticmethod
    def receptive_field_for(num_convs: int = 6, **_) -> int:
        # num_convs + 2 convolutions of 3x3 reach that many input pixels
        # (tests/test_models.py), plus a margin of 2
        return num_convs + 2 + 2

    receptive_field = receptive_field_for()  # the defaults'; each instance sets its own
    reduced_dtypes = ("bfloat16", "float16")  # bf16: -0.002 dB on cats/val (benchmarks/speed.py)
    loss = "l1"

    def __init__(self, num_features: int = 32, num_convs: int = 6, train_branches: bool = False):
        super().__init__()
        self.receptive_field = self.receptive_field_for(num_convs)
        layers = [nn.Conv2d(3, num_features, 3, padding=1), nn.PReLU(num_features)]
        for _ in range(num_convs):
            layers += [nn.Conv2d(num_features, num_features, 3, padding=1), nn.PReLU(num_features)]
        layers += [nn.Conv2d(num_features, 3 * 4, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(2)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)
        if train_branches:
            for conv in self.convs():
                parametrize.register_parametrization(conv, "weight", ConvBranches(conv))

    def convs(self):
        return [m for m in self.body if isinstance(m, nn.Conv2d)]

    def folded(self):
        """The plain network that computes the same function (a copy; ``self`` is kept)."""
        plain = ResidualUpsampler(num_features=self.body[0].out_channels, num_convs=len(self.convs()) - 2)
        with torch.no_grad():
            for mine, theirs in zip(plain.convs(), self.convs()):
                mine.weight.copy_(theirs.weight)  # a parametrised weight reads as the folded sum
                mine.bias.copy_(theirs.bias)
            for mine, theirs in zip(plain.body, self.body):
                if isinstance(mine, nn.PReLU):
                    mine.weight.copy_(theirs.weight)
        return plain.to(next(self.parameters()).device)

    def forward(self, x):
        # The image itself (the bilinear base, and the sum) stays in x's precision: float32
        # at inference. Only the convolutions run in their weights' dtype, so a copy cast to
        # bfloat16 (``Upscaler``) adds bf16 detail to a float32 image, as autocast
        # does, without autocast re-casting every weight on every call. Training passes
        # float32 weights under autocast, where the cast below is a no-op. (The dtype is read
        # from a bias: a weight trained with branches is recomputed on every read.)
        base = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        detail = self.shuffle(self.body(x.to(self.body[0].bias.dtype)))
        return base + detail.to(base.dtype)


# ------------------------------------------------------------------- the 8x stack
class Stack8x(Describes, nn.Module):
    """Three 2x networks of one class, applied in turn: the 8x network that is then
    fine-tuned end to end. Subclasses name ``stage_class`` and pass its arguments up;
    every description is derived from the stages'.

    Each constructor argument is one value for all three stages, or a list of three
    (64to128, 128to256, 256to512). The stages need not be alike: the first sees 1/16 of
    the last one's pixels, so capacity costs 16x less there, and that is where the
    information is scarcest.
    """

    stage_class: type
    factor = 8

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        st = cls.stage_class
        # later stages see 2x and 4x the input grid: the first stage's multiple suffices
        cls.size_multiple, cls.value_range = st.size_multiple, st.value_range
        cls.reduced_dtypes, cls.loss = st.reduced_dtypes, st.loss
        cls.receptive_field = cls.receptive_field_for()  # the default layout's; instances set their own
        cls.default_tile = 128  # an 8x tile of 128 input px is 1024x1024 out

    @classmethod
    def layout(cls, **stage_kwargs) -> list[dict]:
        """The three stages' constructor arguments (``stage_kwargs`` over the class's defaults)."""
        params = inspect.signature(cls.__init__).parameters
        args = {k: p.default for k, p in params.items() if p.default is not p.empty}
        args.update(stage_kwargs)
        return [{k: v[i] if isinstance(v, (list, tuple)) else v for k, v in args.items()} for i in range(3)]

    @classmethod
    def receptive_field_for(cls, **stage_kwargs) -> int:
        # a pixel's reach in input pixels: rf + rf/2 + rf/4 of the three stages, rounded up
        rf64, rf128, rf256 = (cls.stage_class.receptive_field_for(**kw) for kw in cls.layout(**stage_kwargs))
        return -(-(4 * rf64 + 2 * rf128 + rf256) // 4)

    def __init__(self, **stage_kwargs):
        super().__init__()
        s64, s128, s256 = (self.stage_class(**kw) for kw in self.layout(**stage_kwargs))
        self.upsample_64, self.upsample_128, self.upsample_256 = s64, s128, s256
        self.receptive_field = self.receptive_field_for(**stage_kwargs)

    @classmethod
    def from_stages(cls, s64, s128, s256):
        """An 8x stack holding copies of three trained 2x stages (strict: shapes must match)."""
        stages = [s.folded() for s in (s64, s128, s256)]  # the stack is always plain
        # the stages' constructor arguments that the stack takes (e.g. 32 features), without
        # config.json's extras; one value when the three agree, else a list of three
        names = [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "stage_kwargs")]
        per_stage = [_constructor_args(s, names) for s in stages]
        config = {k: [a[k] for a in per_stage] for k in names}
        config = {k: v[0] if v.count(v[0]) == 3 else v for k, v in config.items()}
        stack = cls(**config)
        for mine, trained in zip((stack.upsample_64, stack.upsample_128, stack.upsample_256), stages):
            mine.load_state_dict(trained.state_dict())
        return stack

    def forward(self, x):
        return self.upsample_256(self.upsample_128(self.upsample_64(x)))


def _constructor_args(net, names) -> dict:
    """``net``'s constructor arguments named in ``names``: from its config, else the defaults."""
    config = getattr(net, "_hub_mixin_config", None) or {}
    params = inspect.signature(type(net).__init__).parameters
    return {k: config.get(k, params[k].default) for k in names}


class Upsampler8x(Stack8x, PyTorchModelHubMixin, tags=HUB_TAGS):
    """The reference's 8x network: three ``Upsampler`` s. The seed's ``load_checkpoints``
    read three pickled ``.pt`` files; here ``from_stages`` takes three loaded
    ``Upsampler`` s instead (safetensors only)."""

    stage_class = Upsampler

    def __init__(self):
        super().__init__()


class ResidualUpsampler8x(Stack8x, PyTorchModelHubMixin, tags=HUB_TAGS):
    """Three ``ResidualUpsampler`` s stacked, fine-tuned end to end.

    The shipped layout spends its compute where the pixels are few: 48 features and 8
    hidden convs at 64to128, 32 and 6 at 128to256, 32 and 2 at 256to512 (the last stage
    sees 16x the first one's pixels; see the module's notes). Each 2x stage is trained as
    its part of this layout (``Family.two_x_layout``).
    """

    stage_class = ResidualUpsampler

    def __init__(self, num_features: int | list = (48, 32, 32), num_convs: int | list = (8, 6, 2)):
        super().__init__(num_features=num_features, num_convs=num_convs)


# ---------------------------------------------------------------------- registry
def blend_strength(value) -> float:
    """The one rule for a blend strength (the photo model's denoise strength), used by the
    app, the API, ``load_upscaler``, the command line, browser mode and each family's
    ``page_strength``: a number from 0 to 1,
    rounded to two decimals. The rounded value is the strength that runs, and the one that
    results and file names report (0.37 runs as 0.37). Raises ValueError with a message
    meant for the person otherwise."""
    try:
        strength = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"denoise strength must be a number from 0 to 1 (got {value!r})") from None
    if not 0.0 <= strength <= 1.0:  # NaN fails this too
        raise ValueError(f"denoise strength must be from 0 to 1 (got {value!r})")
    return round(strength, 2)


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family: a 2x network class and its 8x stack, with what a user is told."""

    name: str
    two_x: type
    eight_x: type
    label: str          # how the demo names it
    description: str    # one line: what it is and why it is there
    degradations: str = "none"  # the training inputs: "none" (clean bicubic) or a name in degradations.NAMED
    blend_base: str | None = None  # a family of the same layout that ``denoise_strength`` 0 means
    content_scale: str = "world"  # the training patches' content: "world" or "all" (data.CONTENT_SCALES)
    adversarial: bool = False  # trained with train_accelerate.py's GAN recipe (feature, GAN and LDL losses)
    # The blend with blend_base as the page shows it: the slider's name and what it does,
    # and where the page starts it (chosen by measurement: README, "Results"). The API's
    # default stays 1, the model itself, so no program's results change.
    strength_label: str = "denoise strength"
    strength_info: str = ""
    page_strength: float = 1.0

    def __post_init__(self):
        # the page runs what it shows: a strength the one rule keeps as it is, and no blend
        # for a family that has no twin to blend with
        try:
            runs_as_shown = blend_strength(self.page_strength) == self.page_strength
        except ValueError:
            runs_as_shown = False
        if not runs_as_shown or (self.blend_base is None and self.page_strength != 1.0):
            raise ValueError(f"{self.name}: page_strength {self.page_strength!r} must be 0..1 in steps of "
                             f"0.01, and 1 for a family without a blend_base")

    def architecture(self, stage: "str | Stage") -> type:
        """The class that serves ``stage`` for this family."""
        return self.eight_x if get_stage(stage).name == STACK_STAGE else self.two_x

    def two_x_layout(self, stage: "str | Stage") -> dict:
        """The constructor arguments a 2x stage is trained with: its part of the 8x layout."""
        return self.eight_x.layout()[TWO_X_STAGES.index(get_stage(stage).name)]

    def build(self, stage: "str | Stage", **overrides):
        """A fresh network for ``stage`` at this family's layout (``overrides`` on top)."""
        name = get_stage(stage).name
        if name == STACK_STAGE:
            return self.eight_x(**overrides)
        return self.two_x(**{**self.two_x_layout(name), **overrides})


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


DEFAULT_MODEL = register(Family(
    "default", ResidualUpsampler, ResidualUpsampler8x, "clean (sharp sources)",
    "Residual pixel-shuffle CNN (173k parameters at 64to128, 60k and 23k in the 8x "
    "stack's later stages), trained on clean bicubic pairs: the sharpest on clean input, "
    "but it sharpens JPEG blocks and noise too.")).name
# The same layout as default, so the two can be blended weight by weight (denoise strength).
PHOTO_MODEL = register(Family(
    "photo", ResidualUpsampler, ResidualUpsampler8x, "photo (JPEG, noise)",
    "The clean model's network, fine-tuned from its weights on inputs with synthetic blur, "
    "noise and JPEG (upscaler/degradations.py): for real photos and uploads.",
    degradations="photo", blend_base="default",
    strength_info="1: the photo model, which removes JPEG blocks and noise. Lower keeps more fine texture "
                  "(and more noise): a blend of its weights with the clean model's, as Real-ESRGAN's "
                  "denoise strength.")).name
# The same layout as photo again: "invented detail" blends the two weight by weight. The
# page starts it at 0.9, which was closer to the photos by LPIPS than 1 on held-out photos,
# clean and as JPEG 75 (experiments/sharp-phase6/choose.md).
SHARP_MODEL = register(Family(
    "sharp", ResidualUpsampler, ResidualUpsampler8x, "sharp (perceptual)",
    "The photo model fine-tuned on degraded photos at every content scale for how people judge "
    "detail: as a GAN (Real-ESRGAN's recipe in small), then with a texture loss, then as a GAN "
    "again against a discriminator on VGG16 features. Closer to the "
    "real photo as people judge it (LPIPS), less painted than photo; some of its texture is "
    "made up.",
    degradations="photo", blend_base="photo", content_scale="all", adversarial=True,
    strength_label="invented detail",
    strength_info="0: faithful (the photo model). 1: the sharpest, with fine detail the network makes "
                  "up. Between: a blend of the two models' weights.",
    page_strength=0.9)).name
register(Family(
    "seed", Upsampler, Upsampler8x, "seed reproduction",
    "The reference design, layer for layer, trained with its recipe: kept to show what the "
    "original design achieves."))


def blending_families() -> str:
    """The models a strength applies to, each with its twin: "photo (with default), ..."."""
    return ", ".join(f"{n} (with {f.blend_base})" for n, f in FAMILIES.items() if f.blend_base)


def get_family(model: str) -> Family:
    try:
        return FAMILIES[model]
    except KeyError:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(FAMILIES)}") from None


def model_class(model: str, stage) -> type:
    """The class that serves ``stage`` ("64to128" ... "64to512", or a Stage) for ``model``."""
    return get_family(model).architecture(stage)


def strength_tag(strength: float) -> str:
    """How a file name carries a blend strength: 0.3 -> "d0.3", 0.37 -> "d0.37"."""
    return f"d{blend_strength(strength):g}"


def blend_networks(base: nn.Module, other: nn.Module, strength: float) -> nn.Module:
    """Network interpolation (Real-ESRGAN's ``--denoise_strength``, after Wang et al.'s
    DNI): a copy of ``base`` whose every weight is ``(1 - s) * base + s * other``, with
    ``s = blend_strength(strength)``. The two must have the same layout (e.g. ``default``
    and ``photo``, which was fine-tuned from it, so the weights are close and the blend
    stays a working network). s = 0 is ``base``, 1 is ``other``; in between removes less
    noise and JPEG blocking and keeps more fine detail."""
    strength = blend_strength(strength)
    a, b = base.state_dict(), other.state_dict()
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("the two networks have different layouts and cannot be blended")
    out = copy.deepcopy(base)
    out.load_state_dict({k: torch.lerp(a[k].float(), b[k].float(), strength).to(a[k].dtype) for k in a})
    return out


def to_model_range(x: torch.Tensor, net) -> torch.Tensor:
    """[0, 1] images -> the range the network was trained on."""
    lo, hi = net.value_range
    return x if (lo, hi) == (0.0, 1.0) else x * (hi - lo) + lo


def from_model_range(y: torch.Tensor, net) -> torch.Tensor:
    lo, hi = net.value_range
    return y if (lo, hi) == (0.0, 1.0) else (y - lo) / (hi - lo)
