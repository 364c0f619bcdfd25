"""Networks written as data: a layer vocabulary, the chapter's blocks, and the named networks in it.

A spec's ``model`` is a name (``lenet_pad2_avg``, ``alexnet``, ...), or a mapping that starts ``from`` a name and
changes it (``activation: relu``, ``change: {0: {padding: 0}}``), or a whole ``layers`` list with its ``input``
shape. Input channels and features are inferred from the layer before; where a layer states them, they are
checked. ``trace`` works out every layer's output shape from its fields (no torch: validating a spec stays cheap),
so a size mismatch is a one-line error naming the layer before anything runs; ``build`` makes the PyTorch modules,
importing torch only then, and the tests hold the two to the same shapes.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, model_validator

from harness.schema import Strict

if TYPE_CHECKING:
    from torch import nn

Pair = Annotated[int, Field(ge=1)] | Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
Pad = Annotated[int, Field(ge=0)] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)]
Shape = tuple[int, ...]  # one example's shape: (C, H, W) or (features,)


class NetError(ValueError):
    """A network that cannot be built; the message starts with the layer's place: ``layers[6]: ...``."""


def _pair(v: int | list[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def _image(shape: Shape, what: str) -> int:
    if len(shape) != 3:
        raise NetError(f"{what} needs an image input (channels, height, width), gets {list(shape)}")
    return shape[0]


def _slide(shape: Shape, what: str, kernel: Any, stride: Any, padding: Any, pooling: bool = False) -> tuple[int, int]:
    """The height and width a window leaves (PyTorch's arithmetic, no dilation, rounding down), or the one-line
    error PyTorch would raise, worded as the spec reads."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    h, w = shape[1] + 2 * ph, shape[2] + 2 * pw
    where = f"{what} on an input of shape {list(shape)}"
    if pooling and (2 * ph > kh or 2 * pw > kw):
        raise NetError(f"{where}: padding {ph}x{pw} is more than half the {kh}x{kw} window")
    if kh > h or kw > w:
        raise NetError(f"{where}: the {kh}x{kw} window is larger than the padded input {h}x{w}")
    return (h - kh) // sh + 1, (w - kw) // sw + 1


class _ConvFields(Strict):
    """What a convolution, and the block that starts with one, are given."""

    channels: int = Field(ge=1, le=65_536)
    kernel: Pair
    stride: Pair = 1
    padding: Pad = 0


class Conv(_ConvFields):
    type: Literal["conv"]
    in_channels: int | None = Field(None, ge=1)
    bias: bool = True

    def out(self, shape: Shape) -> Shape:
        c = _image(shape, "conv")
        if self.in_channels is not None and self.in_channels != c:
            raise NetError(f"conv expects {self.in_channels} input channels, gets {c}")
        return (self.channels, *_slide(shape, "conv", self.kernel, self.stride, self.padding))

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        self.out(shape)
        return nn.Conv2d(shape[0], self.channels, _pair(self.kernel), _pair(self.stride), _pair(self.padding),
                         bias=self.bias)


class Pool(Strict):
    type: Literal["maxpool", "avgpool"]
    kernel: Pair
    stride: Pair | None = None  # PyTorch's default: the kernel size
    padding: Pad = 0

    def out(self, shape: Shape) -> Shape:
        _image(shape, self.type)
        stride = self.kernel if self.stride is None else self.stride
        return (shape[0], *_slide(shape, self.type, self.kernel, stride, self.padding, pooling=True))

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        self.out(shape)
        cls = nn.MaxPool2d if self.type == "maxpool" else nn.AvgPool2d
        stride = _pair(self.stride) if self.stride is not None else None
        return cls(_pair(self.kernel), stride, _pair(self.padding))


class GlobalAvgPool(Strict):
    """Dive-into-DL-PyTorch's ``GlobalAvgPool2d``: one average per channel (d2l v2 writes ``adaptive_avgpool``)."""

    type: Literal["global_avgpool"]

    def out(self, shape: Shape) -> Shape:
        return (_image(shape, self.type), 1, 1)

    def module(self, shape: Shape) -> nn.Module:
        from harness.book.modern import GlobalAvgPool2d

        self.out(shape)
        return GlobalAvgPool2d()


class AdaptiveAvgPool(Strict):
    type: Literal["adaptive_avgpool"]
    size: Pair = 1

    def out(self, shape: Shape) -> Shape:
        return (_image(shape, self.type), *_pair(self.size))

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        self.out(shape)
        return nn.AdaptiveAvgPool2d(_pair(self.size))


ACTIVATIONS = {"sigmoid": "Sigmoid", "relu": "ReLU", "tanh": "Tanh"}  # torch.nn's class names
ActivationName = Literal["sigmoid", "relu", "tanh"]


class Activation(Strict):
    type: ActivationName

    def out(self, shape: Shape) -> Shape:
        return shape

    def module(self, shape: Shape) -> nn.Module:
        return _after(self.type)


class BatchNorm(Strict):
    """Batch normalization after a convolution or a dense layer: the library's, or the book's from scratch."""

    type: Literal["batchnorm"]
    impl: Literal["library", "scratch"] = Field("library", description="library: nn.BatchNorm2d/1d; scratch: the "
                                                "book's BatchNorm layer (d2l 7.5.3)")

    def out(self, shape: Shape) -> Shape:
        if len(shape) not in (1, 3):
            raise NetError(f"batchnorm needs an image or a flat input, gets {list(shape)}")
        return shape

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        from harness.book.modern import BatchNorm as ScratchBatchNorm

        self.out(shape)
        if self.impl == "scratch":
            return ScratchBatchNorm(shape[0], num_dims=4 if len(shape) == 3 else 2)
        return nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])


class Dropout(Strict):
    type: Literal["dropout"]
    p: float = Field(0.5, ge=0, lt=1)

    def out(self, shape: Shape) -> Shape:
        return shape

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Dropout(self.p)


class Flatten(Strict):
    type: Literal["flatten"]

    def out(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Flatten()


class Linear(Strict):
    type: Literal["linear"]
    features: int = Field(ge=1, le=1_000_000)
    in_features: int | None = Field(None, ge=1)
    bias: bool = True

    def out(self, shape: Shape) -> Shape:
        if len(shape) != 1:
            raise NetError(f"linear needs a flat input (add a flatten before it), gets {list(shape)}")
        if self.in_features is not None and self.in_features != shape[0]:
            raise NetError(f"linear expects {self.in_features} inputs, gets {shape[0]}")
        return (self.features,)

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        self.out(shape)
        return nn.Linear(shape[0], self.features, bias=self.bias)


class VggBlock(Strict):
    """d2l 7.2's ``vgg_block(num_convs, in_channels, out_channels)``."""

    type: Literal["vgg_block"]
    num_convs: int = Field(ge=1, le=16)
    channels: int = Field(ge=1, le=65_536)

    def parts(self) -> list[Any]:
        """The layers d2l's vgg_block builds: 3x3 convolutions (padding 1) with ReLU, then a 2x2 max-pool."""
        return [*(layer for _ in range(self.num_convs) for layer in (_conv(self.channels, 3, 1), Activation(
            type="relu"))), Pool(type="maxpool", kernel=2, stride=2)]

    def out(self, shape: Shape) -> Shape:
        _image(shape, self.type)
        return trace_layers(self.parts(), shape, "convs")[-1]

    def module(self, shape: Shape) -> nn.Module:
        from harness.book.models import vgg_block

        self.out(shape)
        return vgg_block(self.num_convs, shape[0], self.channels)


class NinBlock(_ConvFields):
    """d2l 7.3's ``nin_block(in_channels, out_channels, kernel_size, strides, padding)``."""

    type: Literal["nin_block"]

    def out(self, shape: Shape) -> Shape:  # the first convolution sets the size; the two 1x1 keep it
        _image(shape, self.type)
        return (self.channels, *_slide(shape, self.type, self.kernel, self.stride, self.padding))

    def module(self, shape: Shape) -> nn.Module:
        from harness.book.models import nin_block

        self.out(shape)
        return nin_block(shape[0], self.channels, _pair(self.kernel), _pair(self.stride), _pair(self.padding))


class InceptionBlock(Strict):
    """d2l 7.4's ``Inception(in_channels, c1, c2, c3, c4)``: the paths' output channels."""

    type: Literal["inception"]
    c1: int = Field(ge=1)
    c2: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
    c3: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
    c4: int = Field(ge=1)

    def out(self, shape: Shape) -> Shape:  # every path keeps the size (1x1; 3x3 pad 1; 5x5 pad 2; pool 3 pad 1)
        _image(shape, self.type)
        return (self.c1 + self.c2[1] + self.c3[1] + self.c4, shape[1], shape[2])

    def module(self, shape: Shape) -> nn.Module:
        from harness.book.models import Inception

        self.out(shape)
        return Inception(shape[0], self.c1, self.c2, self.c3, self.c4)


class Block(Strict):
    """A named group of layers, one ``nn.Sequential`` (GoogLeNet's b1-b5): the book prints its shape as one."""

    type: Literal["block"]
    layers: list[Layer] = Field(min_length=1)

    def out(self, shape: Shape) -> Shape:
        return trace_layers(self.layers, shape, "layers")[-1]

    def module(self, shape: Shape) -> nn.Module:
        return _sequential(self.layers, shape, "layers")[0]


def _activation(name: str) -> list[Activation]:
    return [] if name == "none" else [Activation(type=name)]


def _after(name: str) -> nn.Module:
    from torch import nn

    return nn.Identity() if name == "none" else getattr(nn, ACTIVATIONS[name])()


def _conv(channels: int, kernel: int, padding: int = 0, stride: Any = 1) -> Conv:
    return Conv(type="conv", channels=channels, kernel=kernel, padding=padding, stride=stride)


class Residual(Strict):
    """d2l 7.6's ``Residual(num_channels, use_1x1conv, strides)``: a body whose output is added to the block's input.

    Without ``layers`` the body is the book's (3x3 conv with the stride, batch norm, activation, 3x3 conv, batch
    norm); with ``layers`` it is the spec's own (a bottleneck, a pre-activation order). The shortcut is the input
    itself, the book's 1x1 convolution with the stride (``use_1x1conv``), or layers of its own (``shortcut``, e.g.
    a 1x1 convolution and batch norm as torchvision's ResNets). ``activation`` follows the sum (``none``: nothing).
    """

    type: Literal["residual"]
    channels: int | None = Field(None, ge=1, le=65_536, description="the body's output channels; needed without "
                                 "layers")
    use_1x1conv: bool = False
    stride: Pair = 1
    layers: list[Layer] | None = Field(None, min_length=1, description="the body; default the book's")
    shortcut: list[Layer] | None = Field(None, min_length=1, description="the shortcut's layers; default the "
                                         "input itself, or the 1x1 convolution of use_1x1conv")
    activation: ActivationName | Literal["none"] = "relu"

    @model_validator(mode="after")
    def _has_body(self) -> Residual:
        if self.layers is None and self.channels is None:
            raise ValueError("residual needs channels (the book's body) or layers (a body of its own)")
        if self.shortcut is not None and self.use_1x1conv:
            raise ValueError("give use_1x1conv or shortcut layers, not both")
        if self.layers is not None and self.stride != 1 and not self.use_1x1conv:
            raise ValueError("with layers, stride is the 1x1 shortcut's: it needs use_1x1conv")
        return self

    def body(self) -> list[Any]:
        if self.layers is not None:
            return self.layers
        return [_conv(self.channels, 3, 1, self.stride), BatchNorm(type="batchnorm"), *_activation(self.activation),
                _conv(self.channels, 3, 1), BatchNorm(type="batchnorm")]

    def out(self, shape: Shape) -> Shape:
        _image(shape, self.type)
        out = trace_layers(self.body(), shape, "layers")[-1]
        if len(out) != 3:
            raise NetError(f"residual: the body's output {list(out)} is not an image")
        if self.channels is not None and out[0] != self.channels:
            raise NetError(f"residual: the body ends with {out[0]} channels, channels says {self.channels}")
        if self.shortcut is not None:
            short = trace_layers(self.shortcut, shape, "shortcut")[-1]
        elif self.use_1x1conv:
            sh, sw = _pair(self.stride)
            short = (out[0], (shape[1] - 1) // sh + 1, (shape[2] - 1) // sw + 1)
        else:
            short = shape
        if short != out:
            hint = "" if self.use_1x1conv or self.shortcut else " (use_1x1conv: true matches them)"
            raise NetError(f"residual: the body's output {list(out)} and the shortcut's {list(short)} differ{hint}")
        return out

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        from harness.book.modern import Skip

        out = self.out(shape)
        body = _sequential(self.body(), shape, "layers")[0]
        if self.shortcut is not None:
            shortcut = _sequential(self.shortcut, shape, "shortcut")[0]
        elif self.use_1x1conv:
            shortcut = nn.Conv2d(shape[0], out[0], kernel_size=1, stride=_pair(self.stride))
        else:
            shortcut = nn.Identity()
        return Skip(body, shortcut, _after(self.activation), "add")


class Concat(Strict):
    """One step of a dense block: the body's output concatenated to the block's input on the channels."""

    type: Literal["concat"]
    layers: list[Layer] = Field(min_length=1)

    def out(self, shape: Shape) -> Shape:
        _image(shape, self.type)
        out = trace_layers(self.layers, shape, "layers")[-1]
        if len(out) != 3 or out[1:] != shape[1:]:
            raise NetError(f"concat: the body's output {list(out)} does not keep the input's height and width "
                           f"{list(shape[1:])}")
        return (shape[0] + out[0], *shape[1:])

    def module(self, shape: Shape) -> nn.Module:
        from torch import nn

        from harness.book.modern import Skip

        self.out(shape)
        return Skip(_sequential(self.layers, shape, "layers")[0], nn.Identity(), nn.Identity(), "cat")


class ResnetBlock(Strict):
    """d2l 7.6's ``resnet_block(num_channels, num_residuals, first_block)``: a stage of residual blocks, the first
    halving the resolution with a 1x1 shortcut unless it is the first stage."""

    type: Literal["resnet_block"]
    channels: int = Field(ge=1, le=65_536)
    num_residuals: int = Field(ge=1, le=64)
    first_block: bool = False
    activation: ActivationName = "relu"

    def parts(self) -> list[Residual]:
        first = {} if self.first_block else {"use_1x1conv": True, "stride": 2}
        return [Residual(type="residual", channels=self.channels, activation=self.activation,
                         **(first if i == 0 else {})) for i in range(self.num_residuals)]

    def out(self, shape: Shape) -> Shape:
        return trace_layers(self.parts(), shape, "residuals")[-1]

    def module(self, shape: Shape) -> nn.Module:
        return _sequential(self.parts(), shape, "residuals")[0]


class DenseBlock(Strict):
    """d2l 7.7's ``DenseBlock(num_convs, num_channels)``: ``num_convs`` steps, each concatenated to its input.

    A step is the book's (batch norm, activation, 3x3 convolution to ``growth_rate`` channels) or ``layers`` of the
    spec's own (DenseNet-BC's 1x1 bottleneck first), whose output channels are then the growth rate.
    """

    type: Literal["dense_block"]
    num_convs: int = Field(ge=1, le=256)
    growth_rate: int | None = Field(None, ge=1, le=65_536)
    layers: list[Layer] | None = Field(None, min_length=1, description="one step; default the book's conv_block")
    activation: ActivationName = "relu"

    @model_validator(mode="after")
    def _one_step(self) -> DenseBlock:
        if (self.growth_rate is None) == (self.layers is None):
            raise ValueError("dense_block needs one of growth_rate (the book's step) and layers (a step of its own)")
        return self

    def parts(self) -> list[Concat]:
        step = self.layers or [BatchNorm(type="batchnorm"), Activation(type=self.activation),
                               _conv(self.growth_rate, 3, 1)]
        return [Concat(type="concat", layers=step) for _ in range(self.num_convs)]

    def out(self, shape: Shape) -> Shape:
        return trace_layers(self.parts(), shape, "convs")[-1]

    def module(self, shape: Shape) -> nn.Module:
        return _sequential(self.parts(), shape, "convs")[0]


class TransitionBlock(Strict):
    """d2l 7.7's ``transition_block(num_channels)``: batch norm, activation, a 1x1 convolution to fewer channels
    (``channels``, or the input's times ``compression``, rounded down), 2x2 average pooling."""

    type: Literal["transition_block"]
    channels: int | None = Field(None, ge=1, le=65_536)
    compression: float | None = Field(None, gt=0, le=1, description="the book's: 0.5, half the input's channels")
    activation: ActivationName = "relu"

    @model_validator(mode="after")
    def _one_width(self) -> TransitionBlock:
        if (self.channels is None) == (self.compression is None):
            raise ValueError("transition_block needs one of channels and compression")
        return self

    def parts(self, shape: Shape) -> list[Any]:
        c = _image(shape, self.type)
        channels = self.channels or int(c * self.compression)
        if channels < 1:
            raise NetError(f"transition_block: compression {self.compression} leaves no channel of {c}")
        return [BatchNorm(type="batchnorm"), Activation(type=self.activation), _conv(channels, 1),
                Pool(type="avgpool", kernel=2, stride=2)]

    def out(self, shape: Shape) -> Shape:
        return trace_layers(self.parts(shape), shape, "layers")[-1]

    def module(self, shape: Shape) -> nn.Module:
        return _sequential(self.parts(shape), shape, "layers")[0]


Layer = Annotated[Conv | Pool | GlobalAvgPool | AdaptiveAvgPool | Activation | BatchNorm | Dropout | Flatten | Linear
                  | VggBlock | NinBlock | InceptionBlock | Block | Residual | Concat | ResnetBlock | DenseBlock
                  | TransitionBlock, Field(discriminator="type")]
for _compound in (Block, Residual, Concat, DenseBlock):
    _compound.model_rebuild()


_PLACE = re.compile(r"\w+\[\d+\]")  # a nested layer's place, ``layers[2]`` or ``residuals[0]``


def trace_layers(layers: list[Any], shape: Shape, where: str) -> list[Shape]:
    """Each layer's output shape for the shape the layer before hands it, worked out from the fields (no torch); a
    mismatch is a ``NetError`` that names the layer's place (``layers[3]``, nested ones ``layers[0].layers[1]``)."""
    out = []
    for i, layer in enumerate(layers):
        try:
            shape = layer.out(shape)
        except NetError as err:
            msg = str(err)
            raise NetError(f"{where}[{i}]" + ("." if _PLACE.match(msg) else ": ") + msg) from None
        out.append(shape)
    return out


def _built(layers: list[Any], shape: Shape, where: str) -> list[tuple[nn.Module, Shape]]:
    """Each layer's module, built for the shape the layer before hands it, with its output shape."""
    shapes = trace_layers(layers, shape, where)
    return [(layer.module(s), out) for layer, s, out in zip(layers, [shape, *shapes], shapes)]


def _sequential(layers: list[Any], shape: Shape, where: str) -> tuple[nn.Sequential, Shape]:
    """The layers as one ``nn.Sequential`` for ``shape``, and its output shape."""
    from torch import nn

    built = _built(layers, shape, where)
    return nn.Sequential(*(module for module, _ in built)), built[-1][1]


class Network(Strict):
    """A whole network: one example's input shape and its layers, or a named one changed."""

    input: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1, max_length=3)] | None = None
    layers: list[Layer] | None = None
    from_: str | None = Field(None, alias="from")
    activation: Literal["sigmoid", "relu", "tanh"] | None = Field(
        None, description="every sigmoid, relu and tanh layer of the network becomes this")
    change: dict[int, dict[str, Any]] = Field(default_factory=dict,
                                              description="layer index -> fields to change in that layer")

    @model_validator(mode="after")
    def _complete(self) -> Network:
        if self.from_ is None and (self.layers is None or self.input is None):
            raise ValueError("give `from: <named network>` or both `input` and `layers`")
        if self.from_ is not None and self.from_ not in NAMED:
            raise ValueError(f"unknown network {self.from_!r} (known: {', '.join(NAMED)})")
        return self

    def resolved(self) -> tuple[Shape, list[Any]]:
        """The input shape and the layer list after ``from``, ``activation`` and ``change`` are applied."""
        base = NAMED[self.from_] if self.from_ is not None else None
        shape = tuple(self.input or base.input)
        layers = list(self.layers or base.layers)
        for i, fields in sorted(self.change.items()):
            if not 0 <= i < len(layers):
                raise NetError(f"change.{i}: no layer {i} (the network has {len(layers)})")
            try:
                layers[i] = type(layers[i]).model_validate(layers[i].model_dump(by_alias=True) | fields)
            except ValidationError as err:
                problem = err.errors()[0]
                field = ".".join(str(p) for p in problem["loc"])
                raise NetError(f"change.{i}.{field}: {problem['msg'].removeprefix('Value error, ')}") from None
        if self.activation is not None:
            layers = [_with_activation(layer, self.activation) for layer in layers]
        return shape, layers


def _with_activation(layer: Any, fn: str) -> Any:
    """The layer with every activation in it, its blocks' included, made ``fn`` (``none`` stays none)."""
    if isinstance(layer, Activation):
        return Activation(type=fn)
    changes: dict[str, Any] = {}
    for field in ("layers", "shortcut"):
        if getattr(layer, field, None) is not None:
            changes[field] = [_with_activation(inner, fn) for inner in getattr(layer, field)]
    if getattr(layer, "activation", "none") != "none":
        changes["activation"] = fn
    return layer.model_copy(update=changes) if changes else layer


def _define(input_shape: list[int], *layers: dict[str, Any]) -> Network:
    return Network.model_validate({"input": input_shape, "layers": list(layers)})


def _lenet(conv1_padding: int, pool: str) -> Network:
    """The LeNets of the pages: two sigmoid convolutions with pooling, three sigmoid dense layers."""
    return _define(
        [1, 28, 28],
        dict(type="conv", channels=6, kernel=5, padding=conv1_padding), dict(type="sigmoid"),
        dict(type=pool, kernel=2, stride=2),
        dict(type="conv", channels=16, kernel=5), dict(type="sigmoid"), dict(type=pool, kernel=2, stride=2),
        dict(type="flatten"),
        dict(type="linear", features=120), dict(type="sigmoid"),
        dict(type="linear", features=84), dict(type="sigmoid"),
        dict(type="linear", features=10))


def _vgg(conv_arch: list[tuple[int, int]]) -> Network:
    """d2l 7.2's ``vgg(conv_arch)``: the blocks, then 4096-4096-10 dense layers with dropout."""
    return _define(
        [1, 224, 224],
        *(dict(type="vgg_block", num_convs=n, channels=c) for n, c in conv_arch),
        dict(type="flatten"),
        dict(type="linear", features=4096), dict(type="relu"), dict(type="dropout", p=0.5),
        dict(type="linear", features=4096), dict(type="relu"), dict(type="dropout", p=0.5),
        dict(type="linear", features=10))


def _bn_lenet(impl: str) -> Network:
    """d2l 7.5's LeNet with batch norm after each convolution and hidden dense layer, before the sigmoid."""
    bn = dict(type="batchnorm", impl=impl)
    return _define(
        [1, 28, 28],
        dict(type="conv", channels=6, kernel=5), bn, dict(type="sigmoid"), dict(type="avgpool", kernel=2, stride=2),
        dict(type="conv", channels=16, kernel=5), bn, dict(type="sigmoid"), dict(type="avgpool", kernel=2, stride=2),
        dict(type="flatten"),
        dict(type="linear", features=120), bn, dict(type="sigmoid"),
        dict(type="linear", features=84), bn, dict(type="sigmoid"),
        dict(type="linear", features=10))


def _b1() -> dict[str, Any]:
    """ResNet's and DenseNet's first block: 7x7 convolution, batch norm, ReLU, 3x3 max-pool, a quarter the size."""
    return dict(type="block", layers=[dict(type="conv", channels=64, kernel=7, stride=2, padding=3),
                                      dict(type="batchnorm"), dict(type="relu"),
                                      dict(type="maxpool", kernel=3, stride=2, padding=1)])


def _densenet(num_channels: int = 64, growth_rate: int = 32, convs: tuple[int, ...] = (4, 4, 4, 4)) -> Network:
    """d2l 7.7's DenseNet: b1, dense blocks with transitions halving the channels between them, then the head."""
    blocks: list[dict[str, Any]] = []
    for i, num_convs in enumerate(convs):
        blocks.append(dict(type="dense_block", num_convs=num_convs, growth_rate=growth_rate))
        if i != len(convs) - 1:
            blocks.append(dict(type="transition_block", compression=0.5))
    return _define([1, 96, 96], _b1(), *blocks, dict(type="batchnorm"), dict(type="relu"),
                   dict(type="adaptive_avgpool", size=1), dict(type="flatten"), dict(type="linear", features=10))


VGG11_ARCH = [(1, 64), (1, 128), (2, 256), (2, 512), (2, 512)]


def _inception(c1, c2, c3, c4) -> dict[str, Any]:
    return dict(type="inception", c1=c1, c2=list(c2), c3=list(c3), c4=c4)


NAMED: dict[str, Network] = {
    # Dive-into-DL-PyTorch 5.5 (C1, A13), d2l v2 6.6 (C2, A12), the C3 notebook
    "lenet_nopad_max": _lenet(0, "maxpool"),
    "lenet_pad2_avg": _lenet(2, "avgpool"),
    "lenet_pad2_max": _lenet(2, "maxpool"),
    # d2l 7.1: AlexNet for one-channel 224x224 Fashion-MNIST, 10 classes
    "alexnet": _define(
        [1, 224, 224],
        dict(type="conv", channels=96, kernel=11, stride=4, padding=1), dict(type="relu"),
        dict(type="maxpool", kernel=3, stride=2),
        dict(type="conv", channels=256, kernel=5, padding=2), dict(type="relu"),
        dict(type="maxpool", kernel=3, stride=2),
        dict(type="conv", channels=384, kernel=3, padding=1), dict(type="relu"),
        dict(type="conv", channels=384, kernel=3, padding=1), dict(type="relu"),
        dict(type="conv", channels=256, kernel=3, padding=1), dict(type="relu"),
        dict(type="maxpool", kernel=3, stride=2),
        dict(type="flatten"),
        dict(type="linear", features=4096), dict(type="relu"), dict(type="dropout", p=0.5),
        dict(type="linear", features=4096), dict(type="relu"), dict(type="dropout", p=0.5),
        dict(type="linear", features=10)),
    # d2l 7.2: VGG-11, and the narrower one the book trains (every channel count divided by 4)
    "vgg11": _vgg(VGG11_ARCH),
    "vgg11_small": _vgg([(n, c // 4) for n, c in VGG11_ARCH]),
    # d2l 7.3: NiN, ending in global average pooling over 10 channels instead of dense layers
    "nin": _define(
        [1, 224, 224],
        dict(type="nin_block", channels=96, kernel=11, stride=4, padding=0), dict(type="maxpool", kernel=3, stride=2),
        dict(type="nin_block", channels=256, kernel=5, stride=1, padding=2), dict(type="maxpool", kernel=3, stride=2),
        dict(type="nin_block", channels=384, kernel=3, stride=1, padding=1), dict(type="maxpool", kernel=3, stride=2),
        dict(type="dropout", p=0.5),
        dict(type="nin_block", channels=10, kernel=3, stride=1, padding=1),
        dict(type="adaptive_avgpool", size=1),
        dict(type="flatten")),
    # d2l 7.4: GoogLeNet on 96x96 inputs, in the book's five blocks b1-b5
    "googlenet": _define(
        [1, 96, 96],
        dict(type="block", layers=[dict(type="conv", channels=64, kernel=7, stride=2, padding=3), dict(type="relu"),
                                   dict(type="maxpool", kernel=3, stride=2, padding=1)]),
        dict(type="block", layers=[dict(type="conv", channels=64, kernel=1), dict(type="relu"),
                                   dict(type="conv", channels=192, kernel=3, padding=1), dict(type="relu"),
                                   dict(type="maxpool", kernel=3, stride=2, padding=1)]),
        dict(type="block", layers=[_inception(64, (96, 128), (16, 32), 32),
                                   _inception(128, (128, 192), (32, 96), 64),
                                   dict(type="maxpool", kernel=3, stride=2, padding=1)]),
        dict(type="block", layers=[_inception(192, (96, 208), (16, 48), 64),
                                   _inception(160, (112, 224), (24, 64), 64),
                                   _inception(128, (128, 256), (24, 64), 64),
                                   _inception(112, (144, 288), (32, 64), 64),
                                   _inception(256, (160, 320), (32, 128), 128),
                                   dict(type="maxpool", kernel=3, stride=2, padding=1)]),
        dict(type="block", layers=[_inception(256, (160, 320), (32, 128), 128),
                                   _inception(384, (192, 384), (48, 128), 128),
                                   dict(type="adaptive_avgpool", size=1), dict(type="flatten")]),
        dict(type="linear", features=10)),
    # d2l 7.5: LeNet with batch normalization, the concise layers and the book's own from scratch
    "bn_lenet": _bn_lenet("library"),
    "bn_lenet_scratch": _bn_lenet("scratch"),
    # d2l 7.6: ResNet-18 on 96x96 inputs, b1 and four stages of two residual blocks, global average pooling
    "resnet18": _define(
        [1, 96, 96], _b1(),
        dict(type="resnet_block", channels=64, num_residuals=2, first_block=True),
        dict(type="resnet_block", channels=128, num_residuals=2),
        dict(type="resnet_block", channels=256, num_residuals=2),
        dict(type="resnet_block", channels=512, num_residuals=2),
        dict(type="adaptive_avgpool", size=1), dict(type="flatten"), dict(type="linear", features=10)),
    # d2l 7.7: DenseNet on 96x96 inputs, four dense blocks of four convolutions, growth rate 32
    "densenet": _densenet(),
    # the batch-size page's MNIST CNN (its Softmax left to the loss: cross-entropy takes the logits)
    "mnist_cnn": _define(
        [1, 28, 28],
        dict(type="conv", channels=32, kernel=3), dict(type="relu"), dict(type="maxpool", kernel=2),
        dict(type="conv", channels=64, kernel=2), dict(type="relu"), dict(type="maxpool", kernel=2, stride=2),
        dict(type="flatten"),
        dict(type="linear", features=10)),
}

ModelRef = Annotated[Annotated[str, Field(min_length=1), Tag("name")] | Annotated[Network, Tag("network")],
                     Discriminator(lambda v: "name" if isinstance(v, str) else "network")]


def network(model: str | Network) -> Network:
    """A spec's ``model`` as a Network (a name is looked up)."""
    if isinstance(model, Network):
        return model
    if model not in NAMED:
        raise NetError(f"unknown network {model!r} (known: {', '.join(NAMED)})")
    return NAMED[model]


def trace(model: str | Network, input_shape: Shape | None = None) -> list[tuple[str, Shape]]:
    """Validate without building: each top-level layer's type and output shape (``trace_layers``)."""
    shape, layers = network(model).resolved()
    return [(layer.type, out) for layer, out in zip(layers, trace_layers(layers, tuple(input_shape or shape),
                                                                        "layers"))]


CPU_FOLD = 4  # images per group of models.BatchFolded on the CPU: LeNet's 6 channels become 24, whole AVX2 vectors
FOLDABLE = ("conv", "sigmoid", "relu", "tanh", "maxpool", "avgpool")


def foldable(model: str | Network) -> bool:
    """Can the harness loop fold the batch into the channels (``models.foldable`` on the built network)? Plain
    convolutions, activations, pooling and the library's batch norm, then a flatten."""
    layers = network(model).resolved()[1]
    flat = next((i for i, layer in enumerate(layers) if layer.type == "flatten"), None)
    return flat is not None and all(layer.type in FOLDABLE or layer.type == "batchnorm" and layer.impl == "library"
                                    for layer in layers[:flat])


def build(model: str | Network, input_shape: Shape | None = None, device: str | None = None) -> nn.Sequential:
    """The network, its weights initialised by PyTorch's defaults in layer order (as the pages' code does)."""
    import torch

    shape, layers = network(model).resolved()
    with torch.device(device or torch.get_default_device()):
        return _sequential(layers, tuple(input_shape or shape), "layers")[0]


def layer_table(model: str | Network, input_shape: Shape | None = None) -> list[dict[str, Any]]:
    """Each top-level layer for one example: type, output shape, parameters, forward FLOP (torch.utils.flop_counter).

    Built and run on the meta device: nothing is allocated, so it is instant even for VGG-11.
    """
    rows = layer_tree(model, input_shape)
    return [{key: int(value) if key == "layer" else value for key, value in row.items() if key != "depth"}
            for row in rows]


def layer_tree(model: str | Network, input_shape: Shape | None = None, depth: int = 0) -> list[dict[str, Any]]:
    """Each top-level layer's row (type, output shape, parameters, forward FLOP), each block opened ``depth``
    levels down: its modules' rows, in the order they run.

    A nested row's ``layer`` is the module's path (``1.0.body.3``) and its ``type`` the module's class; ``depth``
    says how deep it sits. Parameters and FLOP of a block are its rows' sums.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    shape, layers = network(model).resolved()
    net = build(model, input_shape, device="meta").eval()  # one example: batch norm in eval mode
    called: list[tuple[str, nn.Module, tuple[Any, ...]]] = []

    def record(name: str):
        return lambda module, args: called.append((name, module, args))

    hooks = [module.register_forward_pre_hook(record(name)) for name, module in net.named_modules()
             if name and name.count(".") <= depth]
    try:
        net(torch.empty((1, *(input_shape or shape)), device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    rows = []
    for name, module, args in called:
        with FlopCounterMode(display=False) as counter:
            out = module(*args)
        level = name.count(".")
        rows.append({"layer": name, "type": layers[int(name)].type if level == 0 else _module_type(module),
                     "depth": level, "output shape": list(out.shape), "parameters": parameters(module),
                     "forward FLOP": int(counter.get_total_flops())})
    return rows


def _module_type(module: nn.Module) -> str:
    from harness.book.modern import Skip

    if isinstance(module, Skip):
        return "residual" if module.join == "add" else "concat"
    return type(module).__name__


def input_shape(model: str | Network) -> Shape:
    return network(model).resolved()[0]


def parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def describe(model: str | Network) -> str:
    """A few words for titles: the network's name, or what it started from and how it was changed."""
    net = network(model)
    if isinstance(model, str):
        return model
    return f"{net.from_ or 'custom'}" + (f", {net.activation}" if net.activation else "") + (
        f", {len(net.change)} change(s)" if net.change else "")


__all__ = ["NAMED", "Layer", "ModelRef", "NetError", "Network", "build", "describe", "foldable", "input_shape",
           "layer_table", "layer_tree", "network", "parameters", "trace", "trace_layers"]
