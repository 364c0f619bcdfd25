"""Networks written as data: a layer vocabulary, the chapter's blocks, and the named networks in it.

A spec's ``model`` is a name (``lenet_pad2_avg``, ``alexnet``, ...), or a mapping that starts ``from`` a name and
changes it (``activation: relu``, ``change: {0: {padding: 0}}``), or a whole ``layers`` list with its ``input``
shape. Input channels and features are inferred from the layer before; where a layer states them, they are
checked. ``trace`` builds the network on the meta device and pushes one input through it, so a size mismatch is a
one-line error naming the layer before anything runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field, ValidationError, model_validator
from torch import nn

from harness.book.models import Inception, nin_block, vgg_block
from harness.schema import Strict

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

    def module(self, shape: Shape) -> nn.Module:
        c = _image(shape, "conv")
        if self.in_channels is not None and self.in_channels != c:
            raise NetError(f"conv expects {self.in_channels} input channels, gets {c}")
        return nn.Conv2d(c, self.channels, _pair(self.kernel), _pair(self.stride), _pair(self.padding),
                         bias=self.bias)


class Pool(Strict):
    type: Literal["maxpool", "avgpool"]
    kernel: Pair
    stride: Pair | None = None  # PyTorch's default: the kernel size
    padding: Pad = 0

    def module(self, shape: Shape) -> nn.Module:
        _image(shape, self.type)
        cls = nn.MaxPool2d if self.type == "maxpool" else nn.AvgPool2d
        stride = _pair(self.stride) if self.stride is not None else None
        return cls(_pair(self.kernel), stride, _pair(self.padding))


class AdaptiveAvgPool(Strict):
    type: Literal["adaptive_avgpool"]
    size: Pair = 1

    def module(self, shape: Shape) -> nn.Module:
        _image(shape, self.type)
        return nn.AdaptiveAvgPool2d(_pair(self.size))


ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


class Activation(Strict):
    type: Literal["sigmoid", "relu", "tanh"]

    def module(self, shape: Shape) -> nn.Module:
        return ACTIVATIONS[self.type]()


class BatchNorm(Strict):
    type: Literal["batchnorm"]

    def module(self, shape: Shape) -> nn.Module:
        return nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])


class Dropout(Strict):
    type: Literal["dropout"]
    p: float = Field(0.5, ge=0, lt=1)

    def module(self, shape: Shape) -> nn.Module:
        return nn.Dropout(self.p)


class Flatten(Strict):
    type: Literal["flatten"]

    def module(self, shape: Shape) -> nn.Module:
        return nn.Flatten()


class Linear(Strict):
    type: Literal["linear"]
    features: int = Field(ge=1, le=1_000_000)
    in_features: int | None = Field(None, ge=1)

    def module(self, shape: Shape) -> nn.Module:
        if len(shape) != 1:
            raise NetError(f"linear needs a flat input (add a flatten before it), gets {list(shape)}")
        if self.in_features is not None and self.in_features != shape[0]:
            raise NetError(f"linear expects {self.in_features} inputs, gets {shape[0]}")
        return nn.Linear(shape[0], self.features)


class VggBlock(Strict):
    """d2l 7.2's ``vgg_block(num_convs, in_channels, out_channels)``."""

    type: Literal["vgg_block"]
    num_convs: int = Field(ge=1, le=16)
    channels: int = Field(ge=1, le=65_536)

    def module(self, shape: Shape) -> nn.Module:
        return vgg_block(self.num_convs, _image(shape, self.type), self.channels)


class NinBlock(_ConvFields):
    """d2l 7.3's ``nin_block(in_channels, out_channels, kernel_size, strides, padding)``."""

    type: Literal["nin_block"]

    def module(self, shape: Shape) -> nn.Module:
        return nin_block(_image(shape, self.type), self.channels, _pair(self.kernel), _pair(self.stride),
                         _pair(self.padding))


class InceptionBlock(Strict):
    """d2l 7.4's ``Inception(in_channels, c1, c2, c3, c4)``: the paths' output channels."""

    type: Literal["inception"]
    c1: int = Field(ge=1)
    c2: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
    c3: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
    c4: int = Field(ge=1)

    def module(self, shape: Shape) -> nn.Module:
        return Inception(_image(shape, self.type), self.c1, self.c2, self.c3, self.c4)


class Block(Strict):
    """A named group of layers, one ``nn.Sequential`` (GoogLeNet's b1-b5): the book prints its shape as one."""

    type: Literal["block"]
    layers: list[Layer] = Field(min_length=1)

    def module(self, shape: Shape) -> nn.Module:
        return nn.Sequential(*_modules(self.layers, shape, "layers"))


Layer = Annotated[Conv | Pool | AdaptiveAvgPool | Activation | BatchNorm | Dropout | Flatten | Linear | VggBlock
                  | NinBlock | InceptionBlock | Block, Field(discriminator="type")]
Block.model_rebuild()


def _built(layers: list[Any], shape: Shape, where: str) -> list[tuple[nn.Module, Shape]]:
    """Each layer's module, built for the shape the layer before hands it, with its output shape (found by pushing
    an input through a copy on the meta device)."""
    out = []
    x = torch.empty((1, *shape), device="meta")
    for i, layer in enumerate(layers):
        try:
            module = layer.module(tuple(x.shape[1:]))
            with torch.device("meta"):
                x = layer.module(tuple(x.shape[1:])).eval()(x)
        except NetError as err:
            msg = str(err)
            raise NetError(f"{where}[{i}]" + ("." if msg.startswith("layers[") else ": ") + msg) from None
        except (RuntimeError, ValueError) as err:
            first = str(err).strip().splitlines()[0]
            raise NetError(f"{where}[{i}]: {layer.type} on an input of shape {list(x.shape[1:])}: {first}") from None
        out.append((module, tuple(x.shape[1:])))
    return out


def _modules(layers: list[Any], shape: Shape, where: str) -> list[nn.Module]:
    return [module for module, _ in _built(layers, shape, where)]


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
    if isinstance(layer, Activation):
        return Activation(type=fn)
    if isinstance(layer, Block):
        return Block(type="block", layers=[_with_activation(inner, fn) for inner in layer.layers])
    return layer


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
    # the batch-size page's MNIST CNN (its Softmax left to the loss: cross-entropy takes the logits)
    "mnist_cnn": _define(
        [1, 28, 28],
        dict(type="conv", channels=32, kernel=3), dict(type="relu"), dict(type="maxpool", kernel=2),
        dict(type="conv", channels=64, kernel=2), dict(type="relu"), dict(type="maxpool", kernel=2, stride=2),
        dict(type="flatten"),
        dict(type="linear", features=10)),
}

ModelRef = Annotated[str, Field(min_length=1)] | Network


def network(model: str | Network) -> Network:
    """A spec's ``model`` as a Network (a name is looked up)."""
    if isinstance(model, Network):
        return model
    if model not in NAMED:
        raise NetError(f"unknown network {model!r} (known: {', '.join(NAMED)})")
    return NAMED[model]


def trace(model: str | Network, input_shape: Shape | None = None) -> list[tuple[str, Shape]]:
    """Validate on the meta device: each top-level layer's type and output shape (no weights allocated)."""
    shape, layers = network(model).resolved()
    with torch.device("meta"):
        built = _built(layers, tuple(input_shape or shape), "layers")
    return [(layer.type, out) for layer, (_, out) in zip(layers, built)]


def build(model: str | Network, input_shape: Shape | None = None, device: str | None = None) -> nn.Sequential:
    """The network, its weights initialised by PyTorch's defaults in layer order (as the pages' code does)."""
    shape, layers = network(model).resolved()
    with torch.device(device or torch.get_default_device()):
        return nn.Sequential(*_modules(layers, tuple(input_shape or shape), "layers"))


def layer_table(model: str | Network, input_shape: Shape | None = None) -> list[dict[str, Any]]:
    """Each top-level layer for one example: type, output shape, parameters, forward FLOP (torch.utils.flop_counter).

    Built and run on the meta device: nothing is allocated, so it is instant even for VGG-11.
    """
    from torch.utils.flop_counter import FlopCounterMode

    shape, layers = network(model).resolved()
    x = torch.empty((1, *(input_shape or shape)), device="meta")
    rows = []
    for i, (layer, module) in enumerate(zip(layers, build(model, input_shape, device="meta"))):
        with FlopCounterMode(display=False) as counter:
            x = module(x)
        rows.append({"layer": i, "type": layer.type, "output shape": list(x.shape), "parameters": parameters(module),
                     "forward FLOP": int(counter.get_total_flops())})
    return rows


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


__all__ = ["NAMED", "Layer", "ModelRef", "NetError", "Network", "build", "describe", "input_shape", "layer_table",
           "network", "parameters", "trace"]
