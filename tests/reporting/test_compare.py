"""harness compare: two suites judged metric by metric against their noise, with the three-way verdicts."""

from __future__ import annotations

import math
import re

import pytest

from harness.cli import main
from harness.judging.stats import Interval
from harness.reading import results
from harness.reporting import compare


def rows(text: str, spec: str) -> dict[tuple[str, str], list[str]]:
    """The markdown table printed for one spec, by (device, metric): its cells."""
    block = text.split(f"## {spec}\n", 1)[1].strip().split("\n\n", 1)[0]
    out = {}
    for line in block.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[(cells[0], cells[1])] = cells
    return out


def test_the_slowed_implementation_is_slower_and_the_rest_unchanged(two_suites, monkeypatch, capsys):
    root, uri = two_suites
    monkeypatch.chdir(root)
    first, second = results.suites(uri)["run_id"].iloc[::-1]
    assert main(["compare", first[:8], "latest", "--tracking-uri", uri, "--threshold", "1"]) == 0
    text = capsys.readouterr().out
    assert text.index("Environment") < text.index("## conv-throughput")  # environment differences come first
    assert re.search(r"\| torch\s*\|", text) and re.search(r"\| cpu.model\s*\|", text)
    conv = rows(text, "conv-throughput")
    for shape in ("edge", "small", "lenet_c1"):
        cells = conv[("cpu", f"s.unfold.{shape}")]
        assert cells[-1] == "slower", cells
        low, high = (float(v.replace(",", "")) for v in re.match(r"([\d.,]+)-([\d.,]+)x", cells[-2]).groups())
        assert 2 < low <= float(cells[-3].rstrip("x").replace(",", "")) <= high, cells  # B / A, within its interval
        assert conv[("cpu", f"s.library.{shape}")][-1] in ("no change", "inconclusive")
    assert conv[("cpu", "library_over_unfold_lenet_min")][-1] == "faster"  # the library, against the slowed unfold
    edge = rows(text, "edge-small")
    assert edge and {cells[-1] for cells in edge.values()} == {"no change"}  # deterministic: the same to the bit
    assert ("cpu", "final_loss") in edge
    assert "Compared" in text and "slower" in text.splitlines()[-1]


def test_fail_on_slower_gates_and_strict_reports_inconclusive(two_suites, monkeypatch, capsys):
    root, uri = two_suites
    monkeypatch.chdir(root)
    first = results.suites(uri)["run_id"].iloc[-1]
    assert main(["compare", first, "latest", "--tracking-uri", uri, "--threshold", "1", "--fail-on", "slower"]) == 1
    assert "slower (--fail-on slower)" in capsys.readouterr().err
    assert main(["compare", "latest", "latest", "--tracking-uri", uri, "--fail-on", "slower,worse", "--strict"]) == 0
    out = capsys.readouterr().out
    assert "slower" not in out.splitlines()[-1] and "inconclusive" not in out.splitlines()[-1]
    assert main(["compare", "latest", "latest", "--tracking-uri", uri, "--changes-only"]) == 0
    assert "## edge-small" not in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["nope", "latest"], "nope: not a run id (its first 6 characters or more), a git commit, or latest"),
    (["abcdef0123", "latest"], "no suite in this store ran at commit abcdef0123"),
    (["latest", "latest", "--fail-on", "slowest"], "--fail-on: slowest is not one of"),
])
def test_bad_references_are_one_line(two_suites, monkeypatch, capsys, args, message):
    root, uri = two_suites
    monkeypatch.chdir(root)
    assert main(["compare", *args, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_git_commit_names_the_newest_suite_at_it(two_suites, monkeypatch):
    root, uri = two_suites
    monkeypatch.chdir(root)
    suites = results.suites(uri)
    commit = suites["tags.git.commit"].iloc[0]
    found = results.resolve(commit[:8], uri)
    assert found.role == "suite" and found.row["run_id"] == suites["run_id"].iloc[0]
    spec_run = found.runs["edge-small"]["run_id"]
    single = results.resolve(spec_run[:10], uri)
    assert single.role == "spec" and list(single.runs) == ["edge-small"]


@pytest.mark.parametrize("iv, verdict", [
    (Interval(1.5, 1.3, 1.7, 5), "slower"),  # seconds: higher is slower
    (Interval(0.5, 0.4, 0.6, 5), "faster"),
    (Interval(1.01, 0.98, 1.04, 5), "no change"),
    (Interval(1.04, 0.99, 1.2, 5), "inconclusive"),  # straddles the threshold
    (Interval(1.5, math.nan, math.nan, 1), "inconclusive"),  # one round: no interval
])
def test_three_way_verdict_on_a_timing(iv, verdict):
    way = compare.direction("conv_throughput", "s.unfold.small", timing=True)
    assert compare.verdict(iv, 1 / 1.05, 1.05, way) == verdict


def test_directions_follow_the_metric():
    assert compare.direction("training", "test_acc", timing=False).up == "better"
    assert compare.direction("edge_kernel", "final_loss", timing=False).up == "worse"
    assert compare.direction("conv_throughput", "unfold_over_loop_claim", timing=True).up == "faster"
    assert compare.direction("batch_speed", "epoch_s_b1", timing=True).up == "slower"
    assert compare.direction("batch_speed", "epoch_ratio_1_over_10", timing=True).up == "higher"
    assert compare.direction("batch_speed", "update_s.b10", timing=True).up == "slower"
    assert compare.direction("batch_speed", "examples_per_s_max", timing=True).up == "faster"
    assert compare.direction("training", "epoch_s", timing=False).up == "slower"
    assert compare.direction("training", "harness.fraction_of_peak", timing=True).up == "faster"


def test_each_number_is_compared_once():
    import pandas as pd

    both = pd.DataFrame([
        ("cpu", "update_s.b1", "rounds", [1.0, 1.1], [1.2, 1.3]),
        ("cpu", "update_s.b1", "seeds", [1.05], [1.25]),  # its rounds are there: goes
        ("cpu", "examples_per_s", "rounds", [5.0, 6.0], [7.0, 8.0]),
        ("cpu", "harness.examples_per_s", "rounds", [5.0, 6.0], [7.0, 8.0]),  # the same loop, twice: goes
        ("cpu", "tutorial.examples_per_s", "rounds", [1.0, 2.0], [3.0, 4.0]),  # another loop: stays
    ], columns=["device", "metric", "basis", "values A", "values B"])
    kept = compare._without_repeats(both)
    assert list(zip(kept["metric"], kept["basis"])) == [
        ("update_s.b1", "rounds"), ("examples_per_s", "rounds"), ("tutorial.examples_per_s", "rounds")]
    assert compare._without_repeats(both.iloc[:0]).columns.equals(both.columns)


def test_a_threshold_calls_a_change_only_beyond_its_band():
    import pandas as pd

    df = pd.DataFrame({"basis": ["rounds", "rounds", "seeds", "seeds"], "a": [1.0, 1.0, 0.80, 0.80],
                       "low": [1.12, 0.80, 0.05, -0.01], "high": [1.30, 0.95, 0.06, 0.01]})
    assert compare.called(df, 0.05).tolist() == [True, True, True, False]
    assert compare.called(df, 0.2).tolist() == [False, False, False, False]  # 20% of A (0.16) covers 0.05-0.06


def test_drift_of_a_suite_against_itself_calls_nothing(two_suites):
    _, uri = two_suites
    latest = results.resolve("latest", uri)
    table = compare.drift(latest, latest)
    assert (table["called"] == 0).all() and set(table["compared"]) == {"timings", "per-seed values"}
    assert compare.calibrated_threshold(table) == compare.DRIFT_THRESHOLDS[0]


def test_drift_names_no_threshold_when_one_side_is_far_slower(two_suites, monkeypatch, capsys):
    """The second suite's unfold sleeps 100x its time: no threshold up to 50% hides that, and the CLI says so."""
    root, uri = two_suites
    monkeypatch.chdir(root)
    assert main(["compare", "latest~1", "latest", "--tracking-uri", uri, "--drift"]) == 0  # the two suites
    out = capsys.readouterr().out
    assert "Changes called between two suites where nothing changed" in out
    assert "No threshold up to 50% keeps the calls within 5%" in out  # the words the report prints too


def test_a_bad_threshold_in_the_environment_is_one_line(two_suites, monkeypatch, capsys):
    _, uri = two_suites
    monkeypatch.setenv("HARNESS_COMPARE_THRESHOLD", "five percent")
    assert main(["compare", "latest", "latest", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("HARNESS_COMPARE_THRESHOLD: 'five percent' is not a number (0.05 is 5%)")
