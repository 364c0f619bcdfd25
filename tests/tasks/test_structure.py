"""E1-E4: the modern CNNs' shapes block by block, their parameters, and the shipped specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec import SpecError, load_spec
from harness.tasks import structure

ROOT = Path(__file__).resolve().parents[2]


def test_googlenet_blocks_on_96x96(memory_recorder):
    out = structure.run(structure.Settings(model="googlenet"), memory_recorder())
    assert out["block_shapes"] == [[1, 64, 24, 24], [1, 192, 12, 12], [1, 480, 6, 6], [1, 832, 3, 3], [1, 1024],
                                   [1, 10]]
    assert out["output_shape"] == [1, 10] and out["parameters"] == 5_977_530 and out["forward_flop"] > 0


def test_an_input_override_and_the_layer_table(memory_recorder):
    rec = memory_recorder()
    out = structure.run(structure.Settings(model="nin", input=[1, 96, 96]), rec)
    assert out["block_shapes"][0] == [1, 96, 22, 22]
    assert list(rec.tables["layers"]["module"][:2]) == ["Sequential", "MaxPool2d"]


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
