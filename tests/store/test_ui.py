"""MLflow's own UI on a harness store, in a real browser: Playwright driving Debian's chromium (no download).

A short suite (a three-seed LeNet on generated data, and the pooling examples) is recorded, ``mlflow server``
serves the store on loopback, and the browser checks what a user sees: the suite and its specs, a LeNet spec's
child runs (one per seed), and MLflow's compare view overlaying the seeds on one metric chart. The screenshot
of that chart is kept.

``nox -s ui`` runs the same check on the store ``nox -s reproduce`` left behind (``HARNESS_UI_STORE``), for the
three seeds of ``lenet-c2`` on ``test_acc``, and saves the screenshot under ``reports/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml

from harness.cli import main
from tests.book.test_data import make_dataset

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# the flags a sandboxed, offline root session needs: no sandbox, no GPU, no calls home
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPAND = "button[data-component-id*='runnamecellrenderer']"  # the +/- before a parent run's name
ROOT = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1500, "height": 950}

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"),
]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; an error if the file is no PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def colours(path: Path) -> int:
    """How many colours the picture holds (a blank page has one or two)."""
    from PIL import Image

    with Image.open(path) as im:
        return len(im.convert("RGB").getcolors(maxcolors=1 << 24))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def short_suite(tmp_path, monkeypatch):
    """A store holding one short suite: LeNet on generated data (3 seeds) and the pooling examples."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    make_dataset(tmp_path / "idx", monkeypatch, n_train=512, n_test=200)
    specs = tmp_path / "specs"
    specs.mkdir()
    lenet = {"name": "lenet-tiny", "title": "LeNet, three seeds, generated data", "kind": "training",
             "seeds": [0, 1, 2],
             "settings": {"model": "lenet_nopad_max", "data": {"dir": str(tmp_path / "idx")}, "progress": False,
                          "optimisation": {"optimizer": "adam", "lr": 0.003, "batch_size": 64, "epochs": 3}},
             "references": [{"metric": "test_acc", "source": "C1", "basis": "chosen before measuring",
                             "at_least": 0.0}]}
    (specs / "lenet-tiny.yaml").write_text(yaml.safe_dump(lenet, sort_keys=False))
    shutil.copy(ROOT / "experiments" / "worked-pooling.yaml", specs)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["reproduce", str(specs), "--tracking-uri", uri, "--out", str(tmp_path / "reports")]) == 0
    return uri


@pytest.fixture
def serve(tmp_path):
    """Start ``mlflow server`` on a loopback port for a store; it is stopped when the test ends."""
    procs = []

    def start(uri: str) -> str:
        port = free_port()
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        proc = subprocess.Popen([str(mlflow_bin), "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        return url
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not answer on /health within 90 s")

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def browser_page():
    """A page of headless chromium at the test's viewport, closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def check_ui(url: str, uri: str, spec: str, seeds: list[int], metric: str, screenshot: Path) -> None:
    """The suite, its specs and ``spec``'s child runs are listed; the compare view overlays the seeds on ``metric``."""
    from playwright.sync_api import expect

    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name("d2l-cnn-chapter")
    suites = mlflow.search_runs([experiment.experiment_id], filter_string="tags.`harness.role` = 'suite'")
    suite_name = suites["tags.mlflow.runName"].iloc[0]
    units = [f"{spec} cpu seed {s}" for s in seeds]
    with browser_page() as page:
        # the experiment, in MLflow 3's model-training view: the runs, not the GenAI overview
        page.goto(f"{url}/#/experiments/{experiment.experiment_id}?workflowType=machine_learning")
        page.get_by_role("row").filter(has_text=suite_name).locator(EXPAND).click()
        expect(page.get_by_role("row").filter(has_text=spec).first).to_be_visible()
        page.get_by_role("row").filter(has_text=spec).first.locator(EXPAND).click()
        for name in units:  # one child run per seed, under the spec's run
            expect(page.get_by_text(name, exact=True)).to_be_visible()
            page.get_by_role("row").filter(has_text=name).locator("input.ag-checkbox-input").check()
        page.get_by_role("button").filter(has_text="Compare").first.click()
        page.get_by_role("link", name=metric, exact=True).click()
        expect(page.locator(".js-plotly-plot")).to_have_count(1)  # one chart ...
        legend = page.get_by_text(re.compile(rf"^{re.escape(spec)} cpu seed \d+ \({re.escape(metric)}\)$"))
        expect(legend).to_have_count(len(seeds))  # ... with one line per seed, named in its legend
        for name in units:
            expect(page.get_by_text(f"{name} ({metric})", exact=True)).to_be_visible()
        assert page.locator(".js-plotly-plot .scatterlayer .trace path.js-line").count() >= len(seeds)
        closer = page.locator("[data-component-id='mlflow.assistant.chat_panel.close']")
        if closer.count():
            closer.first.click()
        page.wait_for_timeout(1000)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))


def check_inputs_and_report(url: str, uri: str, spec: str) -> None:
    """A unit run's page lists the dataset it read, with its digest; the suite run's artifacts hold the report."""
    from playwright.sync_api import expect

    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name("d2l-cnn-chapter").experiment_id
    unit = mlflow.search_runs([experiment], filter_string=f"tags.`harness.role` = 'unit' and "
                              f"tags.`harness.spec` = '{spec}'", max_results=1, output_format="list")[0]
    (used,) = unit.inputs.dataset_inputs
    suite = mlflow.search_runs([experiment], filter_string="tags.`harness.role` = 'suite'", max_results=1,
                               output_format="list")[0]
    with browser_page() as page:
        page.goto(f"{url}/#/experiments/{experiment}/runs/{unit.info.run_id}")
        expect(page.get_by_text(used.dataset.name).first).to_be_visible()
        expect(page.get_by_text(used.dataset.digest).first).to_be_visible()
        page.goto(f"{url}/#/experiments/{experiment}/runs/{suite.info.run_id}/artifacts/report/REPORT.md")
        expect(page.get_by_text("Reproduction report").first).to_be_visible()


def test_mlflow_ui_lists_the_suite_and_overlays_a_spec_s_seeds(short_suite, serve, tmp_path):
    pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    shot = tmp_path / "reports" / "mlflow-ui-lenet-tiny-loss.png"
    url = serve(short_suite)
    check_ui(url, short_suite, "lenet-tiny", [0, 1, 2], "loss", shot)
    check_inputs_and_report(url, short_suite, "lenet-tiny")
    assert png_size(shot) == (VIEWPORT["width"], VIEWPORT["height"]) and colours(shot) > 16


@pytest.mark.skipif(not os.environ.get("HARNESS_UI_STORE"), reason="nox -s ui: checks the store of nox -s reproduce")
def test_mlflow_ui_overlays_lenet_c2_seeds_in_the_reproduce_store(serve):
    pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    uri = os.environ["HARNESS_UI_STORE"]
    shot = ROOT / "reports" / "mlflow-ui-lenet-c2-test-acc.png"
    check_ui(serve(uri), uri, "lenet-c2", [0, 1, 2], "test_acc", shot)
    assert png_size(shot) == (VIEWPORT["width"], VIEWPORT["height"]) and colours(shot) > 16
