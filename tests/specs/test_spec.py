"""Spec loading: every shipped spec is valid; malformed specs fail early with one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.specs.spec import SpecError, load_spec, load_specs

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

GOOD = {
    "name": "edge",
    "title": "edge kernel",
    "kind": "edge_kernel",
    "seeds": [0],
    "settings": {"layer": "handwritten", "init": "randn", "lr": 0.01, "steps": 3},
    "references": [{"metric": "final_loss", "source": "B1", "basis": "chosen before measuring", "at_most": 1.0e9}],
}


def with_change(path: str, value) -> dict:
    """GOOD with one field (dotted path, list indices as ints) replaced, or deleted when value is DELETE."""
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()

# (case id, spec data or raw text, the field path the error must name)
BAD = [
    ("unknown-top-key", with_change("colour", "red"), "(top level): unknown field 'colour'"),
    ("unknown-settings-key", with_change("settings.momentum", 0.9), "settings: unknown field 'momentum'"),
    ("unknown-kind", with_change("kind", "resnet"), "kind"),
    ("missing-name", with_change("name", DELETE), "(top level): missing field 'name'"),
    ("bad-name", with_change("name", "Edge Kernel"), "name"),
    ("seeds-string", with_change("seeds", "0,1"), "seeds"),
    ("seed-negative", with_change("seeds", [-1]), "seeds"),
    ("seeds-repeat", with_change("seeds", [1, 1]), "seeds"),
    ("seeds-empty", with_change("seeds", []), "seeds"),
    ("unknown-device", with_change("devices", ["tpu"]), "devices[0]"),
    ("lr-negative", with_change("settings.lr", -0.01), "settings.lr"),
    ("lr-string", with_change("settings.lr", "0.01"), "settings.lr"),
    ("steps-zero", with_change("settings.steps", 0), "settings.steps"),
    ("steps-float", with_change("settings.steps", 2.5), "settings.steps"),
    ("unknown-layer", with_change("settings.layer", "conv3d"), "settings.layer"),
    ("init-misfit", with_change("settings.init", "default"), "settings"),
    ("bad-kernel-shape", with_change("settings.target_kernel", [[1, -1], [0]]), "settings.target_kernel"),
    ("kernel-too-large", with_change("settings.target_kernel", [[1] * 9]), "settings"),
    ("unknown-metric", with_change("references.0.metric", "accuracy"), "references[0].metric"),
    ("two-comparisons", with_change("references.0.at_least", 0.0), "references[0]"),
    ("no-comparison", with_change("references.0.at_most", DELETE), "references[0]"),
    ("source-old-form", with_change("references.0.source", {"page": "001", "ref": "B1"}), "references[0].source"),
    ("bad-ref-id", with_change("references.0.source", "9 Z"), "references[0].source"),
    ("unknown-ref-id", with_change("references.0.source", "Z9"), "references[0].source: unknown reference id 'Z9'"),
    ("band-reversed", {**with_change("references.0.at_most", DELETE),
                       "references": [{"metric": "final_loss", "source": "B1", "basis": "chosen before measuring",
                                       "band": [1.0, 0.5]}]}, "references[0]"),
    ("equals-not-numbers", {**GOOD, "references": [{"metric": "kernel", "source": "B1",
                                                    "basis": "chosen before measuring", "near": [["a", "b"]]}]},
     "references[0]"),
    ("no-references", with_change("references", []), "references"),
    ("missing-basis", with_change("references.0.basis", DELETE), "references[0]: missing field 'basis'"),
    ("unknown-basis", with_change("references.0.basis", "measured"), "references[0].basis"),
    ("printed-without-quote", with_change("references.0.basis", "printed"), "references[0]: basis printed needs quote"),
    ("quote-not-printed", {**GOOD, "references": [{**GOOD["references"][0], "basis": "printed", "quote": "loss 42"}]},
     "references[0].quote: 'loss 42' is not in what B1 printed"),
    ("derived-without-working", with_change("references.0.basis", "derived"),
     "references[0]: basis derived needs working"),
    ("interval-over-a-draw", {**GOOD, "references": [{**GOOD["references"][0], "at_most": None, "draw": 1.0,
                                                      "over": "interval"}]}, "references[0]: over: interval"),
    ("gate-unknown-device", with_change("references.0.gate", ["tpu"]), "references[0].gate"),
    ("gate-repeat", with_change("references.0.gate", ["cpu", "cpu"]), "references[0].gate"),
    ("gate-string", with_change("references.0.gate", "yes"), "references[0].gate"),
    ("timing-few-rounds", with_change("timing", {"rounds": 2}), "timing.rounds"),
    ("timing-max-below", with_change("timing", {"rounds": 8, "max_rounds": 4}), "timing"),
    ("timing-unknown-key", with_change("timing", {"seconds": 10}), "timing: unknown field 'seconds'"),
    ("timing-confidence", with_change("timing", {"confidence": 1.5}), "timing.confidence"),
    ("not-a-mapping", "- just\n- a list\n", "(top level)"),
    ("invalid-yaml", "name: [unclosed\n", "line"),
    ("duplicate-key", "name: edge\nseeds: [0]\nseeds: [1]\n", "line 3: invalid YAML: duplicate key 'seeds'"),
    ("duplicate-deep-key", yaml.safe_dump(GOOD, sort_keys=False).replace("  lr: 0.01\n", "  lr: 0.01\n  lr: 0.02\n"),
     "line 10: invalid YAML: duplicate key 'lr'"),
    ("duplicate-in-list", yaml.safe_dump(GOOD, sort_keys=False).replace("  at_most: 1000000000.0\n",
                                                                         "  at_most: 1.0e9\n  at_most: 2.0\n"),
     "line 16: invalid YAML: duplicate key 'at_most'"),
    ("not-utf8", "name: caf\u00e9\n".encode("latin-1"), "(file): not UTF-8 text"),
    ("utf16", yaml.safe_dump(GOOD).encode("utf-16"), "(file): not UTF-8 text"),
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
     "line 2: invalid YAML: YAML aliases"),
    ("empty-file", "", "(file): the file is empty"),
    ("comments-only", "# a spec, some day\n", "(top level): the file holds no spec"),
    ("top-level-list", "- name: edge\n  kind: edge_kernel\n", "(top level): a spec must be a mapping"),
    ("top-level-scalar", "edge kernel\n", "(top level): a spec must be a mapping"),
]


def write(tmp_path: Path, case: str, data) -> Path:
    path = tmp_path / f"{case}.yaml"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def test_shipped_specs_are_valid():
    specs = load_specs([str(EXPERIMENTS)])
    assert len(specs) >= 6
    assert {"worked_examples", "edge_kernel"} <= {s.kind for s in specs}


def test_good_spec_loads_with_defaults(tmp_path):
    spec = load_spec(write(tmp_path, "good", GOOD))
    assert spec.devices == ["cpu"] and spec.settings.target_kernel == [[1.0, -1.0]]
    assert len(spec.hash) == 16 and spec.hash == load_spec(write(tmp_path, "again", GOOD)).hash


def test_hash_changes_with_settings(tmp_path):
    a = load_spec(write(tmp_path, "a", GOOD))
    b = load_spec(write(tmp_path, "b", with_change("settings.lr", 0.02)))
    assert a.hash != b.hash


@pytest.mark.parametrize("case,data,field", BAD, ids=[c[0] for c in BAD])
def test_bad_spec_is_one_line_naming_file_and_field(tmp_path, case, data, field):
    path = write(tmp_path, case, data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}")


CLI_BAD = BAD[:14] + [c for c in BAD if c[0] in ("duplicate-key", "not-utf8", "alias-bomb", "empty-file")]


@pytest.mark.parametrize("case,data,field", CLI_BAD, ids=[c[0] for c in CLI_BAD])
def test_cli_exits_2_and_records_nothing(tmp_path, store, capsys, case, data, field):
    good = write(tmp_path, "zz-good", GOOD)  # a valid spec beside it must not run either
    bad = write(tmp_path, case, data)
    assert main(["run", str(good), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and field in err
    assert not (tmp_path / "mlflow.db").exists(), "a bad spec must stop before any MLflow run starts"


def test_missing_file_is_a_spec_error(tmp_path, store, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: (file): cannot read" in capsys.readouterr().err


def test_duplicate_names_rejected(tmp_path):
    write(tmp_path, "a", GOOD)
    write(tmp_path, "b", GOOD)
    with pytest.raises(SpecError, match="name: 'edge' is used by more than one spec"):
        load_specs([str(tmp_path)])


@pytest.mark.parametrize("change,match", [
    ({"near": [9.8], "atol": 1}, r"references\[0\]\.near: 'epoch_ratio_1_over_10' is a timing"),
    ({"draw": 9.8}, r"references\[0\]\.draw: 'epoch_ratio_1_over_10' is a timing"),
    ({"at_least": 3, "over": "interval"}, r"references\[0\]\.over: 'epoch_ratio_1_over_10' is a timing"),
])
def test_timing_reference_needs_a_comparison_an_interval_can_take(tmp_path, change, match):
    data = yaml.safe_load((EXPERIMENTS / "batch-speed.yaml").read_text())
    data["references"] = [{"metric": "epoch_ratio_1_over_10", "source": "D1", "basis": "chosen before measuring",
                           **change}]
    path = write(tmp_path, "timing-ref", data)
    with pytest.raises(SpecError, match=match):
        load_spec(path)


def test_gate_on_listed_devices_only(tmp_path):
    spec = load_spec(write(tmp_path, "gated", with_change("references.0.gate", ["cuda"])))
    ref = spec.references[0]
    assert ref.gates_on("cuda") and not ref.gates_on("cpu")
    assert spec.timing.rounds >= 3 and spec.timing.confidence == 0.95  # the default timing policy
