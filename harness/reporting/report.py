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
from pathlib import Path
from typing import Any

import pandas as pd

from harness.judging.stats import METHOD, SEEDS_METHOD
from harness.judging.verdict import STATUSES
from harness.kinds import registry
from harness.machine.device import PEAK_MEMORY
from harness.reading import results
from harness.reading.markdown import md_table
from harness.reading.view import RunView
from harness.reporting import compare, families, history, repeats, tables
from harness.schema import BASES, natural_order
from harness.store import tracking

VERDICT_COLUMNS = ["ref", "metric", "device", "basis", "expected", "measured", "tolerance", "status",
                   "detectable_shift", "detail"]
ENV_TAGS = ["cpu.model", "gpu.model", "torch", "torch.cuda", "cudnn", "python", "platform", "torch.threads",
            "git.commit", "git.dirty"]
MARK = {"reproduced": "✅ reproduced", "not reproduced": "❌ not reproduced", "inconclusive": "❔ inconclusive",
        "skipped": "⏭ skipped"}


def ref_link(ref_id: str) -> str:
    """A link to the entry's rendering in the report's References section."""
    return f"[{ref_id}](#ref-{ref_id.lower()})"


def verdict_table(view: RunView) -> str:
    df = view.verdicts.copy()
    df["basis"] = df["basis"].fillna("-") if "basis" in df else "-"
    df["ref"] = [ref_link(r) for r in df["ref"]]
    df["status"] = [MARK.get(s, s) + ("" if g else " (info)") + (" (weak)" if w else "")
                    for s, g, w in zip(df["status"], df["gate"], df["weak"])]
    df["measured"] = df["measured"].astype(str)
    table = md_table(df[VERDICT_COLUMNS], fmt={"detectable_shift": families.shift_text},
                     headers={"detectable_shift": "detectable shift"})
    notes = [f"- **{r.ref} {r.metric}**: {r.note}" for r in view.verdicts.itertuples() if getattr(r, "note", "")]
    return table + ("\n\nNotes on the references:\n" + "\n".join(dict.fromkeys(notes)) if notes else "")


def _verdict_word(view: RunView) -> str:
    v = view.verdicts
    gating = v[v["gate"].astype(bool)]
    for status in ("not reproduced", "inconclusive", "reproduced"):
        if (gating["status"] == status).any():
            return status
    return "skipped"


def summary(views: list[RunView]) -> pd.DataFrame:
    """A row per spec run shown: its verdicts counted, the outcome of its gating ones, its run and commit."""
    rows = []
    for v in views:
        counts = v.verdicts["status"].value_counts()
        rows.append({
            "spec": f"{v.name}{v.suffix}", "refs": v.tag("harness.refs"), "kind": v.kind,
            "devices": ",".join(v.devices) or "-", "seeds": v.tag("seeds"),
            **{column(s): int(counts.get(s, 0)) for s in STATUSES},
            "weak": int((v.verdicts["weak"] & v.verdicts["gate"]).sum()),
            "verdict": _verdict_word(v), "wall_s": _rounded(_seconds(v.row)),
            "run": v.run_id, "git": v.tag("git.commit"),
        })
    return pd.DataFrame(rows)


def _seconds(row: Any) -> float | None:
    """A run's wall seconds, start to end (its seeds, timing rounds and recording): where a suite's time goes."""
    start, end = row.get("start_time"), row.get("end_time")
    if start is None or end is None or pd.isna(start) or pd.isna(end):
        return None
    return (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def column(words: str) -> str:
    """A status or phrase as a table column: ``not reproduced`` -> ``not_reproduced``."""
    return words.replace(" ", "_")


HEADERS = {column(s): s for s in (*STATUSES, "information only")} | {"wall_s": "wall (s)"}  # the markdown's words


def summary_table(df: pd.DataFrame) -> str:
    return md_table(df, fmt={"spec": lambda n: f"[{n}](#{n})", "verdict": MARK.get, "run": lambda r: r[:8],
                             "git": lambda g: g[:8], "wall_s": lambda w: "-" if pd.isna(w) else f"{w:,.1f}",
                             "refs": lambda refs: " ".join(ref_link(r) for r in refs.split(",") if r)},
                    headers=HEADERS)


TIMING_NOTE = (
    "**How verdicts are judged, and what they guarantee.** A timing is measured in rounds, interleaved where two "
    "things are compared (A B A B ...), and a ratio is taken within each round. Its estimate is the median round "
    f"and its interval a {METHOD}. After the first rounds, and after each extra round while a gating claim is "
    "undecided (up to the spec's `max_rounds` and time budget), the claim is *reproduced* when its whole interval "
    "satisfies it, *not reproduced* when all of it violates it, and *inconclusive* otherwise. Because the interval "
    "holds at every round at once, a claim whose true median lies exactly on its bound is called *reproduced* at "
    "most half the error the confidence leaves (2.5% at 95%) and *not reproduced* at most as often, whichever round "
    "the rule stops at, for any distribution of independent rounds; the `calibration` spec measures those rates on "
    "synthetic rounds. The guarantee assumes rounds independent of each other: each timing claim's rounds are "
    "tested for it (lag-1 autocorrelation, runs test), and a machine whose speed drifts during a run is outside it. "
    f"Values per seed are judged seed by seed or on their mean, or, with `over: interval`, on the {SEEDS_METHOD} "
    "(exact for normal values); a single printed draw of a random run is *reproduced* when it lies inside the seeds' "
    "prediction interval, where one more seed falls 95% of the time, and several editions' draws of one run are "
    "judged together too, their mean against where the mean of as many seeds would fall.\n\n"
    "**One level up: a spec, and the suite.** A spec's gating claims on one device are a family. Each claim judged "
    "at a level (a draw, an interval over seeds, a timing) gives a p-value, the level at which its own interval "
    "would first call it not reproduced; Holm's step-down over the family calls a claim *not reproduced* only when "
    "its adjusted p-value is at most the spec's family error (5% unless the spec sets `family_error`), so a spec "
    "whose claims all hold is called not reproduced at most that often, however many claims it judges; the same step "
    "over the p-values against a claim failing bounds a wrong *reproduced* of a timing or an interval alike. A row "
    "shows its status after the step, and its detail what its own interval said. Exact checks, and point checks on "
    "every seed or on the mean, decide by their own rule and spend none of the family's error. Every check on a "
    "random quantity states its *detectable shift*: the smallest departure of the truth from what is claimed that "
    "it calls not reproduced 80% of the time, at its sample size and at the level its family gives it (a printed "
    "draw against three seeds can only catch a large one: a reproduced there is weak evidence). Across the suite, "
    "a spec's ❌ is read at a false discovery rate: Benjamini and Hochberg over the specs' family p-values, per "
    "device, below. The `calibration` spec shows all three levels on synthetic data with a known truth. "
    "Inconclusive does not fail a run unless `--strict` is given.")


def by_basis(views: list[RunView]) -> pd.DataFrame:
    """The verdicts counted by where their expected value comes from, gating ones by outcome, the others apart."""
    frames = [v.verdicts if "basis" in v.verdicts else v.verdicts.assign(basis=None) for v in views]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["basis", "status", "gate"])
    df["basis"] = df["basis"].fillna("(not recorded)")
    rows = []
    for basis in [b for b in BASES if b in set(df["basis"])] + sorted(set(df["basis"]) - set(BASES)):
        sub = df[df["basis"] == basis]
        gating = sub[sub["gate"].astype(bool)]["status"].value_counts()
        rows.append({"basis": basis, **{column(s): int(gating.get(s, 0)) for s in STATUSES},
                     "information_only": int((~sub["gate"].astype(bool)).sum())})
    return pd.DataFrame(rows, columns=["basis", *map(column, STATUSES), "information_only"])


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
    return (df.groupby(ENV_TAGS, as_index=False, sort=False)["runs"].sum()
            .rename(columns=lambda c: c.replace(".", "_")))


def cuda_section(views: list[RunView]) -> str:
    ran = [v for v in views if "cuda" in v.devices]
    if not ran:
        machines = sorted({v.tag("cpu.model") for v in views})
        return ("**No GPU.** No recorded run had a CUDA device (torch.cuda.is_available() was False on "
                + ", ".join(machines) + "), so every CUDA verdict is *skipped*. Run `nox -s reproduce` on a "
                "machine with a GPU, or the GPU-node kit (`nox -s gpu_kit`, README), to fill this section.")
    gpus = sorted({v.tag("gpu.model") for v in ran})
    return "CUDA runs on: " + ", ".join(gpus) + ". Specs: " + ", ".join(f"`{v.name}`" for v in ran) + "."


def cuda_table(views: list[RunView]) -> pd.DataFrame:
    """Per spec run with a CUDA half: the GPU, the libraries the node ran, and the most device memory a unit held."""
    rows = []
    for v in (v for v in views if "cuda" in v.devices):
        units = tracking.unit_runs(v.run_id)
        units = units[units["tags.device"] == "cuda"]
        peak = units.get(f"metrics.{PEAK_MEMORY}", pd.Series(dtype=float)).max()
        rows.append({"spec": v.name, "run": v.run_id[:8], "gpu": v.tag("gpu.model"), "torch": v.tag("torch"),
                     "cuda": v.tag("torch.cuda"), "cudnn": v.tag("cudnn"), "units": len(units),
                     "peak_memory_mb": peak,
                     "tf32_cudnn": ",".join(sorted(set(units.get("tags.device.tf32_cudnn", pd.Series(dtype=str))
                                                       .dropna())))})
    return pd.DataFrame(rows)


def determinism_section(df: pd.DataFrame) -> list[str]:
    """Whether repeated runs of one spec, code, machine and seed gave the same curves, per device."""
    return ["## Determinism", "",
            "Every run fixes its seeds and asks for deterministic kernels (`torch.use_deterministic_algorithms`, "
            "cuDNN's deterministic mode, `CUBLAS_WORKSPACE_CONFIG` set before the first CUDA call). Whether that "
            "holds is read from the store: units run twice with the same spec, code, device model, torch and seed, "
            "their learning curves compared point by point.", "", *repeats.summary(df), "",
            *([md_table(repeats.by_spec(df)), ""] if not df.empty else [])]


def select_views(runs: pd.DataFrame, figures: Path) -> list[RunView]:
    """The newest finished run of each spec, plus, for a device it did not run on, the newest run that did: a GPU
    node's suite, imported here, fills the CUDA half beside this machine's CPU half."""
    views: list[RunView] = []
    if runs.empty:
        return views
    for _, group in runs.groupby(f"tags.{tracking.SPEC_NAME}", sort=True):
        newest = tables.view(group.iloc[0], figures)
        views.append(newest)
        ran = group["tags.harness.devices_ran"].fillna("").str.split(",")
        for device in ("cpu", "cuda"):
            if device in newest.devices:
                continue
            on = group[[device in d for d in ran]]
            if not on.empty:
                views.append(tables.view(on.iloc[0], figures, suffix=f"-{device}-run"))
    return views


def standalone_runs(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """For each spec whose newest run was made outside a suite (``harness run``) and that has run more than once:
    the headline figures of its last runs (``history.runs_of_spec``)."""
    out = {}
    for name, group in runs.groupby(f"tags.{tracking.SPEC_NAME}", sort=True):
        parent = group.iloc[0].get("tags.mlflow.parentRunId")
        if len(group) >= 2 and not (isinstance(parent, str) and parent):
            df = history.runs_of_spec(group)
            if df["suite"].nunique() >= 2:
                out[name] = df
    return out


def runs_section(df: pd.DataFrame) -> list[str]:
    """A standalone spec's last runs, a row each: the spread between whole runs, beside each run's own interval."""
    n = df["suite"].nunique()
    return ["### Runs of this spec", "",
            f"This spec runs outside the suite, so the History above leaves it out: its last {n} finished runs in "
            "this store, oldest first, each headline with that run's own 95% interval. A run's interval covers the "
            "spread of its own rounds (or seeds), not the state the machine is in from one run to the next: where "
            "runs disagree by more than their intervals, that spread is the machine's, and no single run shows it.",
            "", md_table(history.pivot(df)), ""]


def history_section(df: pd.DataFrame, figures: Path) -> list[str]:
    """The headline figures over the last suites, once the store holds two or more."""
    if df["suite"].nunique() < 2:
        return []
    history.plot(df).savefig(figures / "report-history.png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close("all")
    return ["## History", "",
            f"A few headline figures over the last {df['suite'].nunique()} suites in this store (at most "
            f"{history.LAST}), oldest first, one point per suite and device, coloured by the machine that measured "
            "it; the bars are 95% intervals over rounds (timings) or seeds (accuracy). The x labels are the suite's "
            "start and commit. `harness compare A B` judges any two suites metric by metric.", "",
            "![headline figures over the last suites](figures/report-history.png)", "",
            md_table(history.pivot(df)), ""]


def suite_time(uri: str) -> str:
    """One line: how long the newest suite took, on what machine (a timing rule that buys rounds costs time)."""
    found = results.suites(uri)
    if found.empty or "end_time" not in found:
        return ""
    row = found.iloc[0]
    seconds = _seconds(row)
    minutes = float("nan") if seconds is None else seconds / 60
    specs = len(str(row.get("tags.specs") or "").split(","))
    return (f"The newest suite (run `{row['run_id'][:8]}`, {specs} specs) took {minutes:.1f} minutes on "
            f"{row.get('tags.cpu.model', '?')} ({row.get('tags.cpu.count', '?')} cores), GPU: "
            f"{row.get('tags.gpu.model', 'none')}.")


def drift_section(pair: tuple[results.Resolved, results.Resolved] | None, table: pd.DataFrame) -> list[str]:
    """How many changes `harness compare` calls between two suites of one commit and machine, by threshold."""
    if pair is None:
        return []
    a, b = pair
    best = compare.calibrated_threshold(table)
    advice = (f"At a threshold of {best:.0%} or more, at most {compare.FALSE_CALLS:.0%} of the timings and of the "
              "per-seed values are called a change: compare suites of this machine with that `--threshold`."
              if best == best else
              f"No threshold up to {max(compare.DRIFT_THRESHOLDS):.0%} keeps the calls within "
              f"{compare.FALSE_CALLS:.0%}: this machine drifts more than a comparison can tell from a change.")
    shown = md_table(table, fmt={"threshold": "{:.0%}".format, "called_fraction": "{:.1%}".format})
    return ["## Drift", "",
            f"Two suites of one commit on one machine, where nothing changed: {a.label} and {b.label}. Each row counts "
            "the numbers `harness compare` calls a change at a noise threshold (the default is "
            f"{compare.THRESHOLD:.0%}). The intervals cover the noise within each run's rounds; what the machine "
            f"drifts between runs only the threshold absorbs. {advice} `harness compare A B --drift` does this for any "
            "pair.",
            "", shown, ""]


def render(views: list[RunView], uri: str, past: pd.DataFrame | None = None,
           drift: list[str] | None = None, took: str = "", determinism: list[str] | None = None,
           gpu: pd.DataFrame | None = None, standalone: dict[str, pd.DataFrame] | None = None) -> str:
    parts = [
        "# Reproduction report: Dive into Deep Learning, convolutional networks (PyTorch)",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by `harness report` from {len(views)} recorded "
        f"run(s) in the MLflow store `{_display_uri(uri)}`; every number below was read back from that store. "
        "Each verdict compares a measurement with a reference value, and says where that value comes from (its "
        "basis: printed by the source, derived from it, chosen here, or a self-check); its id links to the entry "
        "under [References](#references) (the public source, what it printed, how the claim is read). A verdict "
        "marked *(info)* is shown but does not decide the outcome.",
        "",
        "## Summary",
        "",
        summary_table(summary(views)),
        "",
        gating_counts(views) + (" " + took if took else ""),
        "",
        "The suite's error, per device:",
        "",
        *families.suite_lines(views),
        "Verdicts by the basis of their expected value: *printed* by the cited source (quoted), *derived* from what "
        "it printed (with the working), *chosen* by this project before or after measuring, or a *self-check* of the "
        "harness's own arithmetic, which says nothing about the book. Gating verdicts by outcome:",
        "",
        md_table(by_basis(views), headers=HEADERS),
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
    if gpu is not None and not gpu.empty:
        parts += [md_table(gpu, fmt={"peak_memory_mb": "{:,.0f}".format}), ""]
    parts += determinism or []
    if past is not None and views and views[0].figures is not None:
        parts += history_section(past, views[0].figures)
    parts += drift or []
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
        parts += families.family_lines(view) + families.adjustment_cost(view)
        if view.devices:
            parts += [registry.get(view.kind).section(view), ""]
        else:
            parts += ["Nothing was measured: every device was skipped, for the reasons in the table above.", ""]
        if standalone and view.name in standalone and not view.suffix:
            parts += runs_section(standalone[view.name])
    parts += references_section(views)
    return "\n".join(parts)


def references_section(views: list[RunView]) -> list[str]:
    """Every cited entry, as recorded with the runs: its sources and addresses, what they printed, the reading."""
    cited: dict[str, dict[str, Any]] = {}
    for view in views:
        cited.update(view.cited)
    parts = ['<a id="references"></a>', "", "## References", ""]
    for ref_id in sorted(cited, key=natural_order):
        entry = cited[ref_id]
        parts += [f'<a id="ref-{ref_id.lower()}"></a>', "", f"### {ref_id}: {entry['title']}", ""]
        for src in entry["sources"]:
            where = f"{src['book']}, {src['edition']}, {src['section']}"
            parts.append(f"- [{where}]({src['url']})" if src.get("url") else f"- {where}")
        parts += ["", "Printed:", "", "```text", entry["printed"].rstrip(), "```", "",
                  f"Read as: {entry['reading'].strip()}", ""]
    return parts


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
        views = select_views(runs, figures)
        past = history.history(uri)
        pair = results.same_commit_pair(uri)
        aa = compare.drift(*pair) if pair else pd.DataFrame()
        repeated, gpu, standalone = repeats.table(views), cuda_table(views), standalone_runs(runs)
        text = render(views, uri, past, drift_section(pair, aa), suite_time(uri), determinism_section(repeated), gpu,
                      standalone)
        frames = (report_tables(views, past) | {f"{name}-runs": df for name, df in standalone.items()}
                  | ({"report-drift": aa} if pair else {})
                  | ({"report-determinism": repeats.by_spec(repeated)} if not repeated.empty else {})
                  | ({"report-cuda": gpu} if not gpu.empty else {}))
        tables.write_csv(frames, Path(tmp) / "tables")
        (Path(tmp) / "REPORT.md").write_text(text + "\n", encoding="utf-8")
        for folder in ("figures", "tables"):
            if (out_dir / folder).exists():
                shutil.rmtree(out_dir / folder)
            shutil.move(str(Path(tmp) / folder), out_dir / folder)
        os.replace(Path(tmp) / "REPORT.md", out_dir / "REPORT.md")
    return out_dir / "REPORT.md"


def report_tables(views: list[RunView], past: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every table the report shows, by CSV name: ``<spec>-<table>[-<device>]``, and ``report-*`` for its own."""
    out = {"report-summary": summary(views), "report-bases": by_basis(views), "report-environment": environment(views)}
    if past["suite"].nunique() >= 2:
        out["report-history"] = past
    for view in views:
        out |= {f"{view.name}{view.suffix}-{name}": df for name, df in tables.view_tables(view).items()}
    return out
