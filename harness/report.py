"""MLflow runs -> pandas tables -> PNG plots and reports/REPORT.md.

The report is rebuilt from the store alone, never from objects held in memory, so it
can be regenerated at any time and can join runs made on other machines (a CPU run
here, a CUDA run on a GPU machine) recorded in one store. It is written to a scratch
directory first and moved into place whole: a failed build leaves the old report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness import tracking  # noqa: E402
from harness.stats import METHOD  # noqa: E402
from harness.tasks import TASKS  # noqa: E402

VERDICT_COLUMNS = ["ref", "metric", "device", "expected", "measured", "tolerance", "status", "detail", "source"]
ENV_TAGS = ["cpu.model", "gpu.model", "torch", "torch.cuda", "cudnn", "python", "platform", "torch.threads",
            "git.commit", "git.dirty"]
MARK = {"reproduced": "✅ reproduced", "not reproduced": "❌ not reproduced", "inconclusive": "❔ inconclusive",
        "skipped": "⏭ skipped"}


@dataclass
class RunView:
    """One recorded spec run, read back from MLflow, with lazy access to its curves and artifacts."""

    row: pd.Series
    figures: Path
    suffix: str = ""  # told apart in figure names when a spec shows two runs (a CPU and a CUDA one)

    @property
    def run_id(self) -> str:
        return self.row["run_id"]

    def tag(self, name: str, default: str = "") -> str:
        value = self.row.get(f"tags.{name}")
        return default if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)

    @property
    def name(self) -> str:
        return self.tag(tracking.SPEC_NAME)

    @property
    def kind(self) -> str:
        return self.tag("harness.kind")

    @property
    def devices(self) -> list[str]:
        return [d for d in self.tag("harness.devices_ran").split(",") if d]

    @cached_property
    def spec(self) -> dict[str, Any]:
        return tracking.load_json(self.run_id, "spec.json")

    @cached_property
    def measured(self) -> dict[str, dict[str, dict[str, Any]]]:
        return tracking.load_json(self.run_id, "measured.json")

    @cached_property
    def verdicts(self) -> pd.DataFrame:
        df = pd.DataFrame(tracking.load_json(self.run_id, "verdicts.json"))
        if "gate" not in df:
            df["gate"] = True
        return df

    def series(self, name: str, device: str, seed: int | str) -> pd.DataFrame:
        return tracking.metric_history(self.run_id, f"{name}/{device}/s{seed}")

    def table(self, name: str, device: str, seed: int | str) -> pd.DataFrame:
        return tracking.load_table(self.run_id, f"{device}/seed{seed}/{name}.json")

    def figure_path(self, stem: str) -> tuple[Path, str]:
        """Where to save a PNG, and the relative link REPORT.md uses for it."""
        name = f"{self.name}{self.suffix}-{stem}.png"
        return self.figures / name, f"figures/{name}"


def md_table(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False) if not df.empty else "_(empty)_"


def save_figure(fig, view: RunView, stem: str, alt: str) -> str:
    """Save a matplotlib figure for the report and return its markdown image line."""
    path, link = view.figure_path(stem)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f"![{alt}]({link})"


def verdict_table(view: RunView) -> str:
    df = view.verdicts.copy()
    df["status"] = [MARK.get(s, s) + ("" if g else " (info)") for s, g in zip(df["status"], df["gate"])]
    df["measured"] = df["measured"].astype(str)
    table = md_table(df[VERDICT_COLUMNS])
    notes = [f"- **{r.ref} {r.metric}**: {r.note}" for r in view.verdicts.itertuples() if getattr(r, "note", "")]
    return table + ("\n\nNotes on the references:\n" + "\n".join(dict.fromkeys(notes)) if notes else "")


def _verdict_word(view: RunView) -> str:
    v = view.verdicts
    gating = v[v["gate"].astype(bool)]
    for status in ("not reproduced", "inconclusive", "reproduced"):
        if (gating["status"] == status).any():
            return MARK[status]
    return MARK["skipped"]


def summary(views: list[RunView]) -> pd.DataFrame:
    rows = []
    for v in views:
        counts = v.verdicts["status"].value_counts()
        rows.append({
            "spec": f"[{v.name}](#{v.name})", "refs": v.tag("harness.refs"), "kind": v.kind,
            "devices": ",".join(v.devices) or "-", "seeds": v.tag("seeds"),
            "reproduced": int(counts.get("reproduced", 0)), "not reproduced": int(counts.get("not reproduced", 0)),
            "inconclusive": int(counts.get("inconclusive", 0)), "skipped": int(counts.get("skipped", 0)),
            "verdict": _verdict_word(v),
            "run": v.run_id[:8], "git": v.tag("git.commit")[:8],
        })
    return pd.DataFrame(rows)


TIMING_NOTE = (
    "**How timing claims are judged.** A timing is measured in rounds, interleaved where two things are compared "
    "(A B A B ...), and a ratio is taken within each round. The estimate is the geometric mean over rounds and the "
    f"interval a {METHOD}. A timing reference is *reproduced* when its whole interval satisfies the claim, *not "
    "reproduced* when all of it violates the claim, and *inconclusive* otherwise; a gating one that is inconclusive "
    "first buys more rounds, up to the spec's time budget. The interval is looked at after every extra round, so a "
    "decisive verdict is somewhat likelier to be wrong than the 5% a single look would allow. Inconclusive does not "
    "fail a run unless `--strict` is given.")


def gating_counts(views: list[RunView]) -> str:
    """One line: the gating verdicts of every spec, counted by outcome (inconclusive apart)."""
    frames = [v.verdicts[v.verdicts["gate"].astype(bool)] for v in views]
    statuses = pd.concat(frames)["status"] if frames else pd.Series(dtype=str)
    counts = statuses.value_counts()
    return ("Gating verdicts: " + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in
                                            ("reproduced", "not reproduced", "inconclusive", "skipped")) + ".")


def environment(views: list[RunView]) -> pd.DataFrame:
    rows = [{t: v.tag(t) for t in ENV_TAGS} | {"runs": 1} for v in views]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    df["git.commit"] = df["git.commit"].str[:10]
    return df.groupby(ENV_TAGS, as_index=False, sort=False)["runs"].sum()


def cuda_section(views: list[RunView]) -> str:
    ran = [v for v in views if "cuda" in v.devices]
    if not ran:
        machines = sorted({v.tag("cpu.model") for v in views})
        return ("**No GPU.** No recorded run had a CUDA device (torch.cuda.is_available() was False on "
                + ", ".join(machines) + "), so every CUDA verdict is *skipped*. Run `nox -s reproduce` on a "
                "machine with a GPU to fill this section.")
    gpus = sorted({v.tag("gpu.model") for v in ran})
    return "CUDA runs on: " + ", ".join(gpus) + ". Specs: " + ", ".join(f"`{v.name}`" for v in ran) + "."


def select_views(runs: pd.DataFrame, figures: Path) -> list[RunView]:
    """The newest finished run of each spec, plus the newest CUDA run where the newest had none."""
    views: list[RunView] = []
    if runs.empty:
        return views
    for _, group in runs.groupby(f"tags.{tracking.SPEC_NAME}", sort=True):
        newest = RunView(group.iloc[0], figures)
        views.append(newest)
        if "cuda" not in newest.devices:
            cuda = group[group["tags.harness.devices_ran"].fillna("").str.contains("cuda")]
            if not cuda.empty:
                views.append(RunView(cuda.iloc[0], figures, suffix="-cuda-run"))
    return views


def render(views: list[RunView], uri: str) -> str:
    parts = [
        "# Reproduction report: Dive into Deep Learning, convolutional networks (PyTorch)",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by `harness report` from {len(views)} recorded "
        f"run(s) in the MLflow store `{_display_uri(uri)}`; every number below was read back from that store. "
        "References are the tutorial's printed values (ids from `REFERENCES.md`); a verdict marked *(info)* "
        "compares one printed random draw and does not decide the outcome.",
        "",
        "## Summary",
        "",
        md_table(summary(views)),
        "",
        gating_counts(views),
        "",
        TIMING_NOTE,
        "",
        "## Environment",
        "",
        md_table(environment(views)),
        "",
        "## CUDA",
        "",
        cuda_section(views),
        "",
    ]
    for view in views:
        parts += [f'<a id="{view.name}{view.suffix}"></a>', "",
                  f"## {view.tag('harness.title') or view.name}",
                  "",
                  f"Spec `{view.name}` (kind `{view.kind}`, refs {view.tag('harness.refs')}), "
                  f"run `{view.run_id}`, seeds {view.tag('seeds')}, devices {','.join(view.devices) or '-'} "
                  f"({view.tag('device.models')}), spec hash `{view.tag('spec.hash')}`.",
                  ""]
        if view.spec.get("description"):
            parts += [view.spec["description"].strip(), ""]
        parts += [verdict_table(view), ""]
        section = getattr(TASKS.get(view.kind), "section", None)
        if section is not None:
            parts += [section(view), ""]
    return "\n".join(parts)


def _display_uri(uri: str) -> str:
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        try:
            return "sqlite:///" + str(path.relative_to(Path.cwd()))
        except ValueError:
            return uri
    return uri


def write_report(out_dir: Path, uri: str | None = None) -> Path:
    """Build REPORT.md and its figures from the store, then move them into ``out_dir`` whole."""
    uri = tracking.tracking_uri(uri)
    runs = tracking.spec_runs(uri)
    if runs.empty:
        raise RuntimeError(f"no finished runs in {uri}: run `harness reproduce` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        figures = Path(tmp) / "figures"
        figures.mkdir()
        text = render(select_views(runs, figures), uri)
        (Path(tmp) / "REPORT.md").write_text(text + "\n", encoding="utf-8")
        if (out_dir / "figures").exists():
            shutil.rmtree(out_dir / "figures")
        shutil.move(str(figures), out_dir / "figures")
        os.replace(Path(tmp) / "REPORT.md", out_dir / "REPORT.md")
    return out_dir / "REPORT.md"
