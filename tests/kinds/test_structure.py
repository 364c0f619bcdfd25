"""E1-E4: the modern CNNs' shapes block by block, their parameters, the layer table, and the shipped specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kinds.structure import KIND
from harness.kinds.structure.measure import Settings
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


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "nin", "googlenet"])
def test_the_shipped_structure_specs_validate(name):
    spec = load_spec(ROOT / "experiments" / f"structure-{name}.yaml")
    assert spec.kind == "structure" and {r.metric for r in spec.references} == {"block_shapes", "parameters"}


def test_an_input_too_small_for_the_network_is_a_spec_error(write_spec):
    path = write_spec({"name": "tiny-alexnet", "title": "x", "kind": "structure", "seeds": [0],
                       "settings": {"model": "alexnet", "input": [1, 32, 32]},
                       "references": [{"metric": "parameters", "source": "E1", "basis": "chosen before measuring",
                                       "equals": 1}]})
    with pytest.raises(SpecError, match=r"settings: model.layers\[\d+\]: maxpool on an input of shape"):
        load_spec(path)
