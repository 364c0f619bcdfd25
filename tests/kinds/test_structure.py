"""E1-E4: the modern CNNs' shapes block by block, their parameters, the layer table, and the shipped specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.judging.verdict import check_one
from harness.kinds.structure import KIND
from harness.kinds.structure.settings import Settings
from harness.specs.spec import SpecError, load_spec

from .memory_view import MemoryView, markdown_rows

ROOT = Path(__file__).resolve().parents[2]


def test_googlenet_blocks_on_96x96(memory_recorder):
    out = KIND.run(Settings(model="googlenet"), memory_recorder())
    assert out["block_shapes"] == [[1, 64, 24, 24], [1, 192, 12, 12], [1, 480, 6, 6], [1, 832, 3, 3], [1, 1024],
                                   [1, 10]]
    assert out["output_shape"] == [1, 10] and out["parameters"] == 5_977_530 and out["forward_flop"] > 0
    assert set(out) == set(KIND.names) and KIND.metric("forward_flop").unit == "FLOP"


def test_an_input_override_and_the_layer_table(memory_recorder):
    rec = memory_recorder()
    out = KIND.run(Settings(model="nin", input=[1, 96, 96]), rec)
    assert out["block_shapes"][0] == [1, 96, 22, 22]
    assert list(rec.tables["layers"]["module"][:2]) == ["Sequential", "MaxPool2d"]


def test_the_layers_table_and_the_section(memory_recorder):
    spec = load_spec(ROOT / "experiments" / "structure-nin.yaml")
    rec = memory_recorder()
    out = KIND.run(spec.settings, rec)
    view = MemoryView(spec.resolved(), {("cpu", 0): (out, rec)})
    layers = KIND.tables(view)["layers"]
    assert list(layers.columns) == ["layer", "module", "type", "output_shape", "parameters", "forward_flop"]
    assert list(layers["output_shape"]) == ["x".join(map(str, s)) for s in out["block_shapes"]]
    assert layers["parameters"].sum() == out["parameters"] and layers["forward_flop"].sum() == out["forward_flop"]
    text = KIND.section(view)
    assert markdown_rows(text) == len(layers) + 2 and f"{out['parameters']:,}" in text


LATER = ["structure-resnet18", "structure-resnet18-yaml", "structure-resnet18-first-edition", "structure-densenet",
         "exercise-bn-lenet-no-bias", "exercise-resnet18-preact", "exercise-resnet50", "exercise-densenet121"]


@pytest.mark.parametrize("name", [f"structure-{n}" for n in ("alexnet", "vgg11", "nin", "googlenet")] + LATER)
def test_the_shipped_structure_specs_validate(name):
    spec = load_spec(ROOT / "experiments" / f"{name}.yaml")
    assert spec.kind == "structure" and {r.metric for r in spec.references} == {"block_shapes", "parameters"}


@pytest.mark.parametrize("name", LATER)
def test_the_later_networks_and_the_exercises_hold_their_references(name, memory_recorder):
    spec = load_spec(ROOT / "experiments" / f"{name}.yaml")
    out = KIND.run(spec.settings, memory_recorder())
    for ref in spec.references:
        assert check_one(ref, out[ref.metric])[0], (ref.metric, out[ref.metric])


def test_a_misfit_residual_deep_in_a_spec_is_one_line_naming_it(write_spec):
    block = {"type": "block", "layers": [{"type": "relu"}, {"type": "residual", "layers": [
        {"type": "conv", "channels": 8, "kernel": 3, "padding": 1}]}]}
    path = write_spec({"name": "misfit", "title": "x", "kind": "structure", "seeds": [0],
                       "settings": {"model": {"input": [1, 8, 8], "layers": [block]}},
                       "references": [{"metric": "parameters", "source": "E5", "basis": "chosen before measuring",
                                       "equals": 1}]})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == (f"{path}: settings: model.layers[0].layers[1]: residual: the body's output [8, 8, 8] "
                              "and the shortcut's [1, 8, 8] differ (use_1x1conv: true matches them)")


def test_an_input_too_small_for_the_network_is_a_spec_error(write_spec):
    path = write_spec({"name": "tiny-alexnet", "title": "x", "kind": "structure", "seeds": [0],
                       "settings": {"model": "alexnet", "input": [1, 32, 32]},
                       "references": [{"metric": "parameters", "source": "E1", "basis": "chosen before measuring",
                                       "equals": 1}]})
    with pytest.raises(SpecError, match=r"settings: model.layers\[\d+\]: maxpool on an input of shape"):
        load_spec(path)


@pytest.mark.parametrize("layer,message", [
    ({"type": "residul", "channels": 4}, "layers[1]: unknown layer type 'residul' (did you mean residual?)"),
    ({"type": "conv", "channel": 6, "kernel": 5},
     "layers[1] (conv): unknown field 'channel' (did you mean 'channels'?)"),
    ({"type": "linear"}, "layers[1] (linear): missing field 'features'"),
    ({"type": "residual", "layers": [{"type": "relu"}, {"type": "conv", "chanels": 2, "kernel": 1}]},
     "layers[1] (residual).layers[1] (conv): unknown field 'chanels' (did you mean 'channels'?)"),
    ({"type": "residual", "channels": 4, "shortcut": [{"type": "maxpol", "kernel": 2}]},
     "layers[1] (residual).shortcut[0]: unknown layer type 'maxpol' (did you mean maxpool?)"),
    ({"type": "block", "layers": [{"type": "dense_block", "num_convs": 2, "growth_rate": 0}]},
     "layers[1] (block).layers[0] (dense_block).growth_rate: Input should be greater than or equal to 1 (got 0)"),
    ({"type": "conv", "channels": 6, "kernel": 5, "stride": -1}, "layers[1] (conv).stride: Input should be greater"),
    ({"type": "softmax"}, "layers[1]: unknown layer type 'softmax' (known: conv, maxpool"),
])
def test_a_bad_layer_at_any_depth_is_one_line_naming_its_place_type_and_field(write_spec, layer, message):
    path = write_spec({"name": "bad-layer", "title": "x", "kind": "structure", "seeds": [0],
                       "settings": {"model": {"input": [1, 28, 28], "layers": [{"type": "relu"}, layer]}},
                       "references": [{"metric": "parameters", "source": "E5", "basis": "chosen before measuring",
                                       "equals": 1}]})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: settings.model.{message}") and "\n" not in str(err.value)
