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
from string import Template
from typing import Any

import pandas as pd

from harness.judging.stats import METHOD, SEEDS_METHOD
from harness.judging.verdict import SKIPPED, STATUSES, overall
from harness.kinds import registry
from harness.machine import PEAK_MEMORY
from harness.reading import results
from harness.reading.markdown import md_table
from harness.reading.view import RunView
from harness.reporting import compare, families, history, repeats, tables
from harness.reporting import first_screen as first_screen_mod
from harness.schema import BASES, natural_order
from harness.store import tags as tag
from harness.store import tracking

VERDICT_COLUMNS = ["ref", "metric", "device", "basis", "expected", "measured", "tolerance", "status",
                   "detectable_shift", "detail"]
ENV_TAGS = ["cpu.model", "gpu.model", "torch", "torch.cuda", "cudnn", "python", "platform", "torch.threads",
            "git.commit", "git.dirty"]
MARK = {"reproduced": "✅ reproduced", "not reproduced": "❌ not reproduced", "inconclusive": "❔ inconclusive",
        "skipped": "⏭ skipped", "info only": "ℹ info only"}
TEMPLATE = Template((Path(__file__).parent / "report.md").read_text(encoding="utf-8"))  # the report's fixed prose


def ref_link(ref_id: str) -> str:
    """A link to the entry's rendering in the report's References section."""
    return f"[{ref_id}](#ref-{ref_id.lower()})"


def verdict_table(view: RunView) -> str:
    """The spec's verdict rows; a device on which every claim was skipped for one reason is one line, not a row per
    claim."""
    df = view.verdicts.copy()
    df["basis"] = df["basis"].fillna("-") if "basis" in df else "-"
    folded = []
    for device, rows in df.groupby("device", sort=False):
        reasons = rows["detail"].unique()
        if (rows["status"] == SKIPPED).all() and len(reasons) == 1:
            folded.append(f"- **{device}**: {len(rows)} claims not run: {reasons[0]}.")
            df = df[df["device"] != device]
    df["ref"] = [ref_link(r) for r in df["ref"]]
    df["status"] = [MARK.get(s, s) + ("" if g else " (info)") + (" (weak)" if w else "")
                    for s, g, w in zip(df["status"], df["gate"], df["weak"])]
    df["measured"] = df["measured"].astype(str)
    table = md_table(df[VERDICT_COLUMNS], fmt={"detectable_shift": families.shift_text},
                     headers={"detectable_shift": "detectable shift"}) if not df.empty else ""
    notes = [f"- **{r.ref} {r.metric}**: {r.note}" for r in view.verdicts.itertuples() if getattr(r, "note", "")]
    return "\n".join([table, *([""] if table and folded else []), *folded]) + (
        "\n\nNotes on the references:\n" + "\n".join(dict.fromkeys(notes)) if notes else "")


def book_order(view: RunView) -> tuple:
    """Where a spec run sits in the book: its section (5.1 ... 5.12; the harness's own checks last), then its name."""
    section = view.spec.get("section") or ""
    major, _, minor = section.partition(".")
    return (int(major), int(minor)) if section else (99, 0), view.name, view.suffix


def summary(views: list[RunView], suite_id: str = "") -> pd.DataFrame:
    """A row per spec run shown, in the book's order: its gating verdicts counted by status, the information-only
    ones apart (``info``), the spec's verdict (which follows from those counts), its run, commit and start, and whether
    it ran in the newest suite (``suite_id``)."""
    rows = []
    for v in sorted(views, key=book_order):
        gating = v.verdicts[v.verdicts["gate"].astype(bool)]
        counts = gating["status"].value_counts()
        rows.append({
            "section": v.spec.get("section") or "-", "spec": f"{v.name}{v.suffix}", "smoke": bool(v.spec.get("smoke")),
            "refs": v.tag(tag.REFS), "kind": v.kind, "devices": ",".join(v.devices) or "-",
            "seeds": v.tag("seeds"), **{column(s): int(counts.get(s, 0)) for s in STATUSES},
            "info": int((~v.verdicts["gate"].astype(bool)).sum()), "weak": int((gating["weak"]).sum()),
            "verdict": overall(v.verdicts.itertuples()), "wall_s": _rounded(_seconds(v.row)),
            "in_newest_suite": bool(suite_id) and v.tag("mlflow.parentRunId") == suite_id,
            "started": pd.Timestamp(v.row["start_time"]).strftime("%Y-%m-%d %H:%M"), "run": v.run_id,
            "git": v.tag("git.commit"),
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


HEADERS = ({column(s): s for s in (*STATUSES, "information only")}  # the markdown's words
           | {"wall_s": "wall (s)", "not_run": "not run", "skipped": "not run", "specs_judged": "specs judged",
              "specs_not_run": "specs not run", "why_not_run": "why not run"})


def summary_table(df: pd.DataFrame) -> str:
    """The summary as markdown: the newest suite's rows, then the rows of older runs with their start and commit."""
    fmt = {"spec": lambda n: f"[{n}](#{n})", "verdict": MARK.get, "run": lambda r: r[:8], "git": lambda g: g[:8],
           "wall_s": lambda w: "-" if pd.isna(w) else f"{w:,.1f}",
           "refs": lambda refs: " ".join(ref_link(r) for r in refs.split(",") if r)}
    shown = df.assign(spec=[f"{s}" for s in df["spec"]])
    shown["spec"] = [fmt["spec"](s) + (" (smoke test, not the book's result)" if smoke else "")
                     for s, smoke in zip(df["spec"], df["smoke"])]
    fmt.pop("spec")
    newest, older = shown[shown["in_newest_suite"]], shown[~shown["in_newest_suite"]]
    drop = ["smoke", "in_newest_suite"]
    parts = []
    if not newest.empty:
        parts += [md_table(newest.drop(columns=drop + ["started", "git"]), fmt=fmt, headers=HEADERS), ""]
    if not older.empty:
        parts += ["Spec runs from before the newest suite, or run alone (`harness run`), with their start and commit:"
                  if not newest.empty else "No suite holds these runs: each was run alone (`harness run`).", "",
                  md_table(older.drop(columns=drop), fmt=fmt, headers=HEADERS), ""]
    return "\n".join(parts).rstrip()


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
    return [*repeats.summary(df), "", *([md_table(repeats.by_spec(df)), ""] if not df.empty else [])]


def select_views(runs: pd.DataFrame, figures: Path) -> list[RunView]:
    """The newest finished run of each spec, plus, for a device it did not run on, the newest run that did: a GPU
    node's suite, imported here, fills the CUDA half beside this machine's CPU half."""
    views: list[RunView] = []
    if runs.empty:
        return views
    ran = runs[tag.column(tag.DEVICES_RAN)].fillna("").str.split(",")
    for rows in runs.groupby(f"tags.{tag.SPEC_NAME}", sort=True).indices.values():  # positions, newest first
        newest = tables.view(runs.iloc[rows[0]], figures)
        views.append(newest)
        for device in ("cpu", "cuda"):
            on = [i for i in rows if device in ran.iat[i]]
            if device not in newest.devices and on:
                views.append(tables.view(runs.iloc[on[0]], figures, suffix=f"-{device}-run"))
    return views


def standalone_runs(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """For each spec whose newest run was made outside a suite (``harness run``) and that has run more than once:
    the headline figures of its last runs (``history.runs_of_spec``)."""
    out = {}
    for name, group in runs.groupby(f"tags.{tag.SPEC_NAME}", sort=True):
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
    from harness.reading.figures import write

    write(history.plot(df), figures / "report-history.png")
    return ["## History", "",
            f"A few headline figures over the last {df['suite'].nunique()} suites in this store (at most "
            f"{history.LAST}), oldest first, one point per suite and device, coloured by the machine that measured "
            "it; the bars are 95% intervals over rounds (timings) or seeds (accuracy). The x labels are the suite's "
            "start and commit. `harness compare A B` judges any two suites metric by metric.", "",
            "![headline figures over the last suites](figures/report-history.png)", "",
            md_table(history.pivot(df)), ""]


def drift_section(pair: tuple[results.RunSet, results.RunSet] | None, table: pd.DataFrame) -> list[str]:
    """How many changes `harness compare` calls between two suites of one commit and machine, by threshold."""
    if pair is None:
        return []
    a, b = pair
    advice = compare.drift_advice(table)
    shown = md_table(table, fmt={"threshold": "{:.0%}".format, "called_fraction": "{:.1%}".format})
    return ["## Drift", "",
            f"Two suites of one commit on one machine, where nothing changed: {a.label} and {b.label}. Each row counts "
            "the numbers `harness compare` calls a change at a noise threshold (the default is "
            f"{compare.THRESHOLD:.0%}). The intervals cover the noise within each run's rounds; what the machine "
            f"drifts between runs only the threshold absorbs. {advice} `harness compare A B --drift` does this for any "
            "pair.",
            "", shown, ""]


SECTIONS = {"5.1": "The 2D convolution layer", "5.2": "Padding and stride", "5.3": "Multiple input and output channels",
            "5.4": "Pooling", "5.5": "LeNet", "5.6": "AlexNet", "5.7": "VGG", "5.8": "NiN", "5.9": "GoogLeNet",
            "5.10": "Batch normalization", "5.11": "ResNet", "5.12": "DenseNet"}  # the chapter, as the port numbers it
TOP = [("summary", "Summary"), ("how-verdicts-are-judged", "How verdicts are judged"), ("environment", "Environment"),
       ("cuda", "CUDA"), ("determinism", "Determinism")]


def contents(views: list[RunView], extra: list[tuple[str, str]]) -> str:
    """The table of contents: the report's own sections, then the specs by the chapter's sections, in its order."""
    lines = ["- " + " · ".join(f"[{title}](#{anchor})" for anchor, title in [*TOP, *extra, ("references",
                                                                                           "References")])]
    by_section: dict[str, list[str]] = {}
    for view in sorted(views, key=book_order):
        by_section.setdefault(view.spec.get("section") or "", []).append(f"[{view.name}{view.suffix}]"
                                                                        f"(#{view.name}{view.suffix})")
    for section, links in by_section.items():
        head = f"{section} {SECTIONS.get(section, '')}".strip() if section else "The harness's own checks"
        lines.append(f"- {head}: " + ", ".join(links))
    return "\n".join(lines)


def first_screen(views: list[RunView], suite: pd.Series | None, figures: Path,
                 frames: dict[str, pd.DataFrame] | None = None) -> dict[str, str]:
    """The answers: per device, the claims reproduced or not, and why some did not run; the suite's error; by basis;
    the speed-ups against the book's own code, as a table and a chart (from ``frames``, the report's tables, where
    they are made already)."""
    devices = frames if frames is not None else first_screen_tables(views)
    speed = devices["report-speedups"]
    chart = first_screen_mod.speedups_figure(speed, figures / "report-speedups.png")
    measured_cuda = (speed["device"] == "cuda").any()
    speed_md = md_table(speed[["compared", "spec", "device", "measured", "claims"]], headers={
        "compared": "speed-up", "measured": "median round (95% CI)", "claims": "claimed bound, verdict"},
        fmt={"spec": lambda n: f"[{n}](#{n})"}) if not speed.empty else "No spec run shown measured a speed-up."
    return {
        "devices": md_table(devices["report-devices"], headers=HEADERS),
        "suite_error": families.suite_error(views),
        "bases": md_table(devices["report-bases"], headers=HEADERS),
        "speedups": "\n".join([
            speed_md, "", *(["![each speed-up's median round and 95% interval, its claimed bounds marked]"
                             "(figures/report-speedups.png)", ""] if chart else []),
            "CPU against CUDA: " + ("see the CUDA rows above." if measured_cuda else
                                    "not measured here (no spec ran on CUDA in this store).")]),
    }


def first_screen_tables(views: list[RunView]) -> dict[str, pd.DataFrame]:
    """The first screen's tables, by CSV name."""
    return {"report-devices": first_screen_mod.devices_table(views), "report-bases": by_basis(views),
            "report-speedups": first_screen_mod.speedups_table(views)}


def render(views: list[RunView], uri: str, past: pd.DataFrame | None = None,
           drift: list[str] | None = None, determinism: list[str] | None = None,
           gpu: pd.DataFrame | None = None, standalone: dict[str, pd.DataFrame] | None = None,
           suite: pd.Series | None = None, figures: Path | None = None, sections: str | None = None,
           frames: dict[str, pd.DataFrame] | None = None) -> str:
    """REPORT.md: the template (``report.md``) filled with the store's tables, figures and sections (``sections``
    and ``frames``, the spec sections and the report's tables, where the caller made them already)."""
    history_part = history_section(past, figures) if past is not None and figures is not None else []
    cuda = [cuda_section(views)] + ([md_table(gpu, fmt={"peak_memory_mb": "{:,.0f}".format})]
                                    if gpu is not None and not gpu.empty else [])
    extra = [(a, t) for a, t, part in (("history", "History", history_part), ("drift", "Drift", drift)) if part]
    suite_id = "" if suite is None else suite["run_id"]
    frames = frames if frames is not None else report_tables(views, past if past is not None else pd.DataFrame(
        {"suite": []}), suite_id)
    screen = first_screen(views, suite, figures or Path(tempfile.mkdtemp()), frames)
    fields = {
        "provenance": first_screen_mod.provenance(suite, views),
        "info": int(sum((~v.verdicts["gate"].astype(bool)).sum() for v in views)),
        **screen,
        "contents": contents(views, extra),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "runs": len(views), "store": _display_uri(uri),
        "summary": summary_table(frames["report-summary"]),
        "suite_lines": "\n".join(families.suite_lines(views)),
        "method": METHOD, "seeds_method": SEEDS_METHOD,
        "environment": md_table(frames["report-environment"]),
        "cuda": "\n\n".join(cuda),
        "determinism": "\n".join(determinism or []),
        "history": "\n".join(['<a id="history"></a>', "", *history_part]) + "\n" if history_part else "",
        "drift": "\n".join(['<a id="drift"></a>', "", *drift]) + "\n" if drift else "",
        "sections": spec_sections(views, standalone) if sections is None else sections,
        "references": "\n".join(references_section(views)),
    }
    return TEMPLATE.substitute(fields)


def spec_sections(views: list[RunView], standalone: dict[str, pd.DataFrame] | None) -> str:
    """Every spec run's section, in the book's order."""
    return "\n".join(part for view in sorted(views, key=book_order) for part in spec_section(view, standalone))


def spec_section(view: RunView, standalone: dict[str, pd.DataFrame] | None) -> list[str]:
    """One spec run's section: what it is, its verdicts and family, then its kind's tables and figures."""
    parts = [f'<a id="{view.name}{view.suffix}"></a>', "", f"## {view.tag(tag.TITLE) or view.name}", "",
             (f"Section {view.spec['section']}, " if view.spec.get("section") else "")
             + ("a smoke test (not the book's result): " if view.spec.get("smoke") else "")
             + f"spec `{view.name}` (kind `{view.kind}`, refs {view.tag(tag.REFS)}), run `{view.run_id}`, "
             f"seeds {view.tag('seeds')}, devices {','.join(view.devices) or '-'} ({view.tag('device.models')}), spec "
             f"hash `{view.tag('spec.hash')}`.", ""]
    if view.spec.get("description"):
        parts += [view.spec["description"].strip(), ""]
    parts += [verdict_table(view), ""]
    parts += families.family_lines(view) + families.adjustment_cost(view)
    if view.devices:
        parts += [registry.get(view.kind).section(view), ""]
        forest = families.forest(view)
        if forest:
            parts += [forest, ""]
    else:
        parts += ["Nothing was measured: every device was skipped, for the reasons in the table above.", ""]
    if standalone and view.name in standalone and not view.suffix:
        parts += runs_section(standalone[view.name])
    return parts


def references_section(views: list[RunView]) -> list[str]:
    """Every cited entry, as recorded with the runs: its sources and addresses, what they printed, the reading."""
    cited: dict[str, dict[str, Any]] = {}
    for view in views:
        cited.update(view.cited)
    parts = []
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
    """Build REPORT.md and its figures from one read of the store, then move them into ``out_dir`` whole."""
    uri = tracking.tracking_uri(uri)
    with tracking.one_read(uri):
        runs = tracking.spec_runs(uri)
        if runs.empty:
            raise RuntimeError(f"no finished runs in {uri}: run `harness reproduce` first")
        out_dir.mkdir(parents=True, exist_ok=True)
        return _build(out_dir, uri, runs)


def _build(out_dir: Path, uri: str, runs: pd.DataFrame) -> Path:
    """The report of ``runs`` built in a folder beside ``out_dir``, then moved into it whole."""
    from harness.reading import figures  # its matplotlib settings, before any figure is made

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        drawn = Path(tmp) / "figures"
        drawn.mkdir()
        with figures.drawing():  # every figure on disk and logged once this block ends
            views, standalone = select_views(runs, drawn), standalone_runs(runs)
            sections = spec_sections(views, standalone)  # first: their figures are drawn while the rest is read
            past = history.history(uri)
            pair = results.same_commit_pair(uri)
            aa = compare.drift(*pair) if pair else pd.DataFrame()
            repeated, gpu = repeats.table(views), cuda_table(views)
            found = results.suites(uri)
            suite = None if found.empty else found.iloc[0]
            frames = (report_tables(views, past, "" if suite is None else suite["run_id"])
                      | {f"{name}-runs": df for name, df in standalone.items()}
                      | ({"report-drift": aa} if pair else {})
                      | ({"report-determinism": repeats.by_spec(repeated)} if not repeated.empty else {})
                      | ({"report-cuda": gpu} if not gpu.empty else {}))
            text = render(views, uri, past, drift_section(pair, aa), determinism_section(repeated), gpu, standalone,
                          suite, drawn, sections, frames)
        tables.write_csv(frames, Path(tmp) / "tables")
        (Path(tmp) / "REPORT.md").write_text(text + "\n", encoding="utf-8")
        for folder in ("figures", "tables"):
            if (out_dir / folder).exists():
                shutil.rmtree(out_dir / folder)
            shutil.move(str(Path(tmp) / folder), out_dir / folder)
        os.replace(Path(tmp) / "REPORT.md", out_dir / "REPORT.md")
    return out_dir / "REPORT.md"


def report_tables(views: list[RunView], past: pd.DataFrame, suite_id: str = "") -> dict[str, pd.DataFrame]:
    """Every table the report shows, by CSV name: ``<spec>-<table>[-<device>]``, and ``report-*`` for its own."""
    out = ({"report-summary": summary(views, suite_id), "report-environment": environment(views)}
           | first_screen_tables(views))
    if past["suite"].nunique() >= 2:
        out["report-history"] = past
    for view in views:
        out |= {f"{view.name}{view.suffix}-{name}": df for name, df in tables.view_tables(view).items()}
    return out
