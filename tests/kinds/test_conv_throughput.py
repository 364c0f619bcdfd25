"""D2 task: settings are validated; a tiny run checks, times, extrapolates the loop, records and reports."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from harness.cli import main
from harness.kinds.conv_throughput import KIND, measure
from harness.kinds.conv_throughput.measure import library_backend
from harness.kinds.conv_throughput.section import _breakeven, _calls, _ceiling_text, derive, shown, tables
from harness.kinds.conv_throughput.settings import Settings, Shape
from harness.reading.markdown import of_seed
from harness.reading.view import RunView
from harness.specs.spec import SpecError, load_spec
from harness.store import tracking
from tests.conftest import unit_of

SHAPES = [
    {"id": "edge", "n": 1, "c_in": 1, "h": 6, "w": 8, "c_out": 1, "kh": 1, "kw": 2},
    {"id": "small", "n": 1, "c_in": 1, "h": 10, "w": 10, "c_out": 1, "kh": 3, "kw": 3},
    {"id": "layer", "n": 6, "c_in": 2, "h": 12, "w": 12, "c_out": 3, "kh": 3, "kw": 3, "padding": 1},
    {"id": "strided", "n": 16, "c_in": 2, "h": 16, "w": 15, "c_out": 4, "kh": 3, "kw": 3, "padding": 1,
     "stride": [2, 3]},
]
SETTINGS = {"shapes": SHAPES, "implementations": ["loop", "unfold", "strided", "library", "unfold_compiled"],
            "claim_shape": "small", "lenet_shapes": ["layer"], "min_run_time": 0.01, "loop_budget_s": 0.02,
            "peak_n": 64, "peak_min_run_time": 0.01}
COLUMNS = ["shape", "input", "kernel", "padding", "stride", "impl", "backend", "time_s", "rel_spread", "others_cpu",
           "runs", "calls_per_run", "gflops", "speedup_over_loop", "fraction_of_peak", "extrapolated", "max_rel_err",
           "compile_s", "compile_breakeven_calls", "status"]
SPEC = {
    "name": "conv-tiny", "title": "tiny throughput run", "kind": "conv_throughput", "seeds": [0],
    "devices": ["cpu", "cuda"], "deterministic": False, "settings": SETTINGS,
    "timing": {"rounds": 3, "max_rounds": 3, "budget_s": 0},
    "references": [
        # bounds that any machine meets: the test checks the plumbing, never a speed
        {"metric": "unfold_over_loop_claim", "source": "D2", "basis": "chosen before measuring", "at_least": 0},
        {"metric": "library_fraction_of_peak_lenet_min", "source": "D2", "basis": "chosen before measuring",
         "at_least": 0,
         "gate": False},
    ],
}


def test_the_spec_holds_the_grid():
    s = Settings.model_validate(load_spec("experiments/conv-throughput.yaml").settings)
    ids = [sh.id for sh in s.shapes]
    assert ids[:4] == ["edge_6x8", "img_28x28", "lenet_c1", "lenet_c2"] and s.claim_shape == "img_28x28"
    lenet1 = s.shapes[2]
    assert lenet1.out_hw == (28, 28) and lenet1.flops == 2 * 256 * 6 * 28 * 28 * 25
    alexnet = s.shapes[ids.index("alexnet_c1")]
    assert alexnet.out_hw == (54, 54) and alexnet.flops == 2 * 96 * 54 * 54 * 11 * 11 and alexnet.stride_text == "4"


@pytest.mark.parametrize("missing", ["shapes", "claim_shape", "lenet_shapes"])
def test_the_grid_comes_from_the_spec(missing):
    with pytest.raises(ValidationError, match=f"{missing}\n  Field required"):
        Settings.model_validate({k: v for k, v in SETTINGS.items() if k != missing})


@pytest.mark.parametrize("stride,out,text", [(1, (8, 8), "1"), (2, (4, 4), "2"), ([3, 4], (3, 2), "3x4"),
                                             ((9, 9), (1, 1), "9")])
def test_stride_sets_output_size_and_flops(stride, out, text):
    shape = Shape(id="s", n=2, c_in=3, h=8, w=8, c_out=5, kh=3, kw=3, padding=1, stride=stride)
    assert shape.out_hw == out and shape.stride_text == text
    assert shape.flops == 2 * 2 * 5 * out[0] * out[1] * 3 * 3 * 3


@pytest.mark.parametrize("change,msg", [
    ({"implementations": ["unfold", "library", "strided"]}, "must include loop"),
    ({"implementations": ["loop", "unfold", "library", "fft"]}, "Input should be"),
    ({"implementations": ["loop", "unfold", "library", "library"]}, "must not repeat"),
    ({"claim_shape": "nope"}, "not in shapes"),
    ({"lenet_shapes": ["edge", "missing"]}, "not in shapes"),
    ({"shapes": SHAPES + [SHAPES[0]]}, "ids must not repeat"),
    ({"shapes": [dict(SHAPES[0], kh=7)] + SHAPES[1:]}, "larger than the padded"),
    ({"shapes": [dict(SHAPES[0], n=0)] + SHAPES[1:]}, "greater than or equal to 1"),
    ({"shapes": [dict(SHAPES[0], extra=1)] + SHAPES[1:]}, "Extra inputs"),
    *[({"shapes": [dict(SHAPES[0], stride=bad)] + SHAPES[1:]}, "stride must be an int from 1 to 64")
      for bad in (0, -1, 65, [2, 0], [1, 2, 3], [2], 1.5, True, "2", None)],
    ({"min_run_time": 0}, "greater than 0"),
    ({"loop_budget_s": -1.0}, "greater than 0"),
    ({"threads": 0}, "greater than or equal to 1"),
    ({"bogus": 1}, "Extra inputs"),
])
def test_bad_settings_rejected(change, msg):
    with pytest.raises(ValidationError, match=msg):
        Settings.model_validate(SETTINGS | change)


def test_shape_rejects_huge_input():
    with pytest.raises(ValidationError, match="2\\*\\*28"):
        Shape(id="big", n=4096, c_in=4096, h=64, w=64, c_out=1, kh=1, kw=1)


def test_bad_stride_in_a_spec_is_one_line_naming_the_field(write_spec):
    shapes = [dict(SHAPES[0], stride=[2, 0])] + SHAPES[1:]
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(SPEC | {"settings": SETTINGS | {"shapes": shapes}}))
    assert "\n" not in str(err.value) and "settings.shapes[0].stride: stride must be" in str(err.value)


@pytest.mark.parametrize("stride", [1, 2, (3, 4)], ids=str)
def test_library_backend_names_a_kernel(stride):
    X, K = torch.randn(2, 3, 16, 16), torch.randn(4, 3, 3, 3)
    assert library_backend(X, K, 1, stride) not in ("", "unknown")


def test_loop_part_of_a_strided_shape_is_checked_and_scaled():
    shape = Shape(id="s", n=2, c_in=2, h=13, w=11, c_out=3, kh=3, kw=2, padding=1, stride=[2, 3])
    X, K = torch.randn(2, 2, 13, 11), torch.randn(3, 2, 3, 2)
    ref = F.conv2d(X.double(), K.double(), padding=1, stride=(2, 3))
    case = measure.Case(shape, "loop", {})
    measure._loop_case(case, F.pad(X, (1,) * 4), K, ref, "cpu", budget=1e-9)
    assert case.row["max_rel_err"] < 1e-6 and case.call().shape == (1, 1, 1, 4)
    assert (case.part_work, case.full_work) == (1, 2 * 3 * 7) and case.row["extrapolated"]


def test_prepare_checks_every_implementation_at_the_shape_stride(monkeypatch):
    seen = []

    def spy(X, K, padding, stride):
        seen.append(stride)
        return measure.ops.conv2d_unfold(X, K, padding, stride)

    monkeypatch.setitem(measure.FUNCS, "strided", spy)
    settings = Settings.model_validate(SETTINGS | {"implementations": ["loop", "unfold", "strided", "library"]})
    cases = measure.prepare(settings, "cpu", 0)
    assert all(c.row["status"] == "ok" and c.row["max_rel_err"] < 1e-5 for c in cases)
    assert seen == [1, 1, 1, (2, 3)]
    assert [c.row["stride"] for c in cases if c.impl == "library"] == ["1", "1", "1", "2x3"]


@pytest.fixture
def no_compile(monkeypatch):
    """torch.compile replaced by a failing stub: a compiler failure is recorded, and the test stays fast."""
    def broken(*args, **kwargs):
        def fn(*a, **k):
            raise RuntimeError("no compiler here\nsecond line")
        return fn
    monkeypatch.setattr(torch, "compile", broken)


def test_tiny_run_records_tables_metrics_and_report(tmp_path, store, no_compile, write_spec):
    path = write_spec(SPEC)
    assert main(["run", str(path)]) == 0
    run = tracking.spec_runs().iloc[0]
    df = tracking.load_table(unit_of(run.run_id), "conv_throughput.json")
    peak = tracking.load_table(unit_of(run.run_id), "matmul_peak.json").iloc[0]
    assert peak["n"] == 64 and peak["gflops"] > 0
    assert len(df) == 4 * 5 and set(df["impl"]) == set(SETTINGS["implementations"])
    timed = df[df["status"] == "ok"]
    assert len(timed) == 4 * 4  # the compiled version failed to compile, and says so
    failed = df[df["impl"] == "unfold_compiled"]
    assert all(s.startswith("compile failed: RuntimeError: no compiler here") for s in failed["status"])
    assert failed["median_s"].isna().all()
    assert (timed["median_s"] > 0).all() and (timed["max_rel_err"] < 1e-4).all()
    assert ((timed["gflops"] * 1e9 * timed["median_s"] / timed["flops"] - 1).abs() < 1e-3).all()
    loops = timed[timed["impl"] == "loop"].set_index("shape")
    assert (loops["speedup_over_loop"] == 1).all()
    assert not loops.at["edge", "extrapolated"] and loops.at["edge", "method"] == "measured whole"
    assert loops.at["layer", "extrapolated"] and "extrapolated linearly" in loops.at["layer", "method"]
    assert loops.at["strided", "extrapolated"] and str(loops.at["strided", "stride"]) == "2x3"
    assert loops.at["strided", "flops"] == 2 * 16 * 4 * 8 * 5 * 2 * 3 * 3
    lib = timed[timed["impl"] == "library"]
    assert (lib["backend"] != "").all()
    # tables go through JSON with 10 decimals: compare them relatively, to 1e-3
    assert ((timed["fraction_of_peak"] * peak["gflops"] / timed["gflops"] - 1).abs() < 1e-3).all()
    measured = tracking.load_json(run.run_id, "measured.json")["cpu"]["0"]
    assert KIND.undeclared([*measured, *measured["rounds"]]) == []  # the metric table covers what run returned
    assert {"matmul_peak_gflops", *KIND.timings} <= set(measured) and set(measured["rounds"]) == set(KIND.timings)
    for r in timed.itertuples():
        assert measured[f"gflops.{r.impl}.{r.shape}"] == pytest.approx(r.gflops, rel=1e-6)
        assert measured[f"speedup_over_loop.{r.impl}.{r.shape}"] == pytest.approx(r.speedup_over_loop, rel=1e-6)
    assert math.isnan(measured["unfold_compiled_over_unfold_lenet_min"])  # nothing compiled, nothing measured
    rounds = tracking.load_table(unit_of(run.run_id), "rounds.json")
    assert list(rounds["round"]) == [1, 2, 3]
    ratios = (rounds["s.loop.small"] / rounds["s.unfold.small"]).tolist()  # taken within each round
    assert rounds["unfold_over_loop_claim"].tolist() == pytest.approx(ratios)
    assert measured["unfold_over_loop_claim"] == pytest.approx(sorted(ratios)[1])  # the median round
    small = timed[timed["shape"] == "small"].set_index("impl")["speedup_over_loop"]  # the table's figure: the same one
    assert small["unfold"] == pytest.approx(measured["unfold_over_loop_claim"], rel=1e-6)
    lenet = (rounds["s.unfold.layer"] / rounds["s.library.layer"]).tolist()
    assert measured["rounds"]["library_over_unfold_lenet_min"] == pytest.approx(lenet)
    by = timed.set_index(["shape", "impl"])["median_s"]  # the table pools the blocks of every round
    assert rounds["s.loop.layer"].min() <= by["layer", "loop"] <= rounds["s.loop.layer"].max()

    assert {f"s.{r.impl}.{r.shape}" for r in timed.itertuples()} <= set(rounds.columns)  # the seconds of each round
    assert all(KIND.metric(c) is not None for c in rounds.columns if c not in ("round", "seconds"))

    out = tmp_path / "reports"
    assert main(["report", "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    csv = pd.read_csv(out / "tables" / "conv-tiny-throughput-cpu.csv", dtype={"stride": str})
    assert list(csv.columns) == COLUMNS + ["seed"] and list(csv["stride"].iloc[-5:]) == ["2x3"] * 5
    assert csv["time_s"].tolist() == pytest.approx(df["median_s"].tolist(), rel=1e-9, nan_ok=True)
    assert csv["fraction_of_peak"].tolist() == pytest.approx(df["fraction_of_peak"].tolist(), rel=1e-9, nan_ok=True)
    view = RunView(run)
    assert shown(of_seed(tables(view)["throughput-cpu"], 0)) in text  # the table it returns
    assert f"- `layer`: {loops.at['layer', 'method']}" in text  # how the loop was extrapolated, shape by shape
    assert "![GFLOP/s by implementation and shape](figures/conv-tiny-gflops-cpu.png)" in text
    assert (out / "figures" / "conv-tiny-gflops-cpu.png").stat().st_size > 1000
    if not torch.cuda.is_available():
        assert "no GPU found" in text


def test_a_wrong_implementation_is_not_timed(monkeypatch, store):
    from harness.store.tracking import Recorder, connect, recorded_run

    def wrong(X, K, padding, stride):
        return measure.ops.conv2d_unfold(X, K, padding, stride) + 1

    monkeypatch.setitem(measure.FUNCS, "strided", wrong)
    settings = Settings.model_validate(SETTINGS | {"implementations": ["loop", "unfold", "strided", "library"]})
    connect()
    with recorded_run("wrong", tags={}) as run:
        measure.run(settings, Recorder(run.info.run_id, "cpu", 0))
    df = tracking.load_table(run.info.run_id, "conv_throughput.json")  # the recorder writes into its own run
    bad = df[df["impl"] == "strided"]
    assert bad["status"].str.startswith("check failed").all() and bad["median_s"].isna().all()


def test_compile_breakeven():
    df = pd.DataFrame({"shape": ["a", "a", "b", "b", "c"],
                       "impl": ["unfold", "unfold_compiled", "unfold", "unfold_compiled", "unfold_compiled"],
                       "median_s": [2e-3, 1e-3, 1e-3, 2e-3, 1e-3], "compile_s": [None, 1.0, None, 1.0, None]})
    calls = _breakeven(df)
    assert [_calls(c) for c in calls] == ["-", "1,000 calls", "-", "never (not faster)", "-"]
    assert calls[1] == 1000 and calls[3] == math.inf  # the CSV keeps the number (inf: never)


def test_strict_min_propagates_nan():
    assert measure._strict(min, [2.0, 1.0]) == 1.0
    assert math.isnan(measure._strict(min, [2.0, math.nan, 1.0]))
    assert math.isnan(measure._strict(max, [math.nan, 1.0]))


def test_on_cuda_the_ceiling_names_the_tf32_switches_it_ran_with():
    peak = pd.Series({"n": 8192, "dtype": "float32", "gflops": 51234.5, "runs": 7, "iqr_s": 0.01, "median_s": 1.0,
                      "threads": 16, "tf32_matmul": False, "tf32_cudnn": True})
    cuda, cpu = _ceiling_text(peak, "cuda"), _ceiling_text(peak, "cpu")
    assert "a 8192x8192 float32 matrix product" in cuda and "**51234.5 GFLOP/s**" in cuda
    assert "16 threads; TF32 matmul False, TF32 cuDNN True)" in cuda and "TF32" not in cpu


class FakeView:
    """What ``derive`` reads of a run: its seeds per device and each unit's throughput table."""

    measured = {"cpu": {"3": {}, "4": {}}}

    def __init__(self):
        self.read = []

    def table(self, name, device, seed):
        self.read.append((name, device, seed))
        return pd.DataFrame({"impl": ["loop", "library"], "shape": ["a", "a"], "flops": [2e9, 2e9]})


def test_derive_turns_seconds_per_round_into_gflops_per_round():
    samples = pd.DataFrame([
        {"device": "cpu", "metric": "s.library.a", "basis": "rounds", "values": [0.5, 1.0, 4.0], "seeds": []},
        {"device": "cpu", "metric": "s.loop.a", "basis": "rounds", "values": [2.0], "seeds": []},
        {"device": "cpu", "metric": "s.unfold.a", "basis": "rounds", "values": [1.0], "seeds": []},  # not in the table
        {"device": "cpu", "metric": "gflops.library.a", "basis": "seeds", "values": [3.3], "seeds": [3]},
        {"device": "cpu", "metric": "matmul_peak_gflops", "basis": "seeds", "values": [9.0], "seeds": [3]},
    ])
    view = FakeView()
    out = derive(view, samples).set_index("metric")
    assert view.read == [("conv_throughput", "cpu", "3")]  # the FLOP of the device's first seed
    assert out.loc["gflops.library.a", "values"] == [4.0, 2.0, 0.5] and out.loc["gflops.library.a", "basis"] == "rounds"
    assert out.loc["gflops.loop.a", "values"] == [1.0] and out.loc["gflops.loop.a", "seeds"] == []
    assert "gflops.unfold.a" not in out.index and out.index.is_unique  # the per-seed gflops.library.a is replaced
    assert list(out.index[:4]) == ["s.library.a", "s.loop.a", "s.unfold.a", "matmul_peak_gflops"]
    assert list(out.columns) == ["device", "basis", "values", "seeds"]


def test_derive_leaves_samples_without_seconds_alone():
    samples = pd.DataFrame([{"device": "cpu", "metric": "library_over_loop_claim", "basis": "rounds",
                             "values": [60.0], "seeds": []}])
    assert derive(FakeView(), samples).equals(samples)
    assert KIND.derive(FakeView(), samples).equals(samples) and KIND.headlines == ["library_over_loop_claim"]
