"""The verdicts one level up, as the report states them: each spec's family per device, what its timing claims' rounds
say of their independence and what the family's adjustment cost them, and the suite's error per device.

Read from the recorded verdict rows alone (``harness.judging.family`` decided them when the spec ran); the suite's
step is taken here, over the specs the report shows.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.judging import family
from harness.judging.verdict import MISSED, SKIPPED
from harness.reading.view import RunView

DOUBTFUL = 0.01  # a runs-test p-value below this: the rounds' independence is doubtful


def _judged(view: RunView, device: str) -> pd.DataFrame:
    v = view.verdicts
    return v[(v["device"] == device) & (v["status"] != SKIPPED)]


def error(view: RunView) -> float:
    """The spec's family error (``family_error``; the default where a run predates it)."""
    return float(view.spec.get("family_error", family.ERROR))


def family_lines(view: RunView) -> list[str]:
    """Per device: how many claims the family holds and at what error, how many checks decide by their own rule, the
    family p-value; for timing claims, their rounds' independence; weak checks named."""
    out = []
    for device in view.devices:
        rows = _judged(view, device)
        gating = rows[rows["gate"].astype(bool)]
        members = gating[gating["family"] > 0]
        rules = gating[gating["family"] == 0]
        if members.empty:
            text = (f"**{device}**: every gating claim here is an exact or point check ({len(rules)}), decided by its "
                    "own rule; no claim spends a family error.")
        else:
            p, many = family.family_p(gating.itertuples()), len(members) > 1
            text = (f"**{device}**: {len(members)} gating claim{'s' * many} judged at a level "
                    f"{'share' if many else 'has'} the family's {error(view):.0%} by Holm (family p-value {p:.2g}: the "
                    f"spec is not reproduced here when it is at most {error(view):.0%})")
            if len(rules):
                verb = "s decide by their" if len(rules) > 1 else " decides by its"
                text += f"; {len(rules)} exact or point check{verb} own rule"
            text += "."
        weak = gating[gating["weak"].astype(bool)]
        if not weak.empty:
            text += " Weak (detectable shift above the spec's `useful`): " + ", ".join(
                f"{r.ref} {r.metric} {r.expected}" for r in weak.itertuples()) + "."
        out += [text, ""]
        out += _independence(rows, device)
    return out


def _independence(rows: pd.DataFrame, device: str) -> list[str]:
    """The rounds of each gating timing claim: lag-1 autocorrelation and runs test, doubtful below ``DOUBTFUL``."""
    timed = rows[rows["gate"].astype(bool) & rows["runs_p"].notna()] if "runs_p" in rows else rows.iloc[:0]
    if timed.empty:
        return []
    parts = [f"{r.metric} (lag-1 autocorrelation {r.lag1:.2f}, runs test p {r.runs_p:.2g}"
             + (": independence doubtful, the interval's guarantee may not hold)" if r.runs_p < DOUBTFUL else ")")
             for r in timed.itertuples()]
    return [f"Rounds on {device}, the timing rule's assumption of independent rounds: " + "; ".join(parts) + ".", ""]


def adjustment_cost(view: RunView) -> list[str]:
    """What the family's adjustment cost the timing rule, per device and seed: the round at which each claim's own
    interval had decided, against the round the family's levels stopped at, and those rounds' seconds."""
    out = []
    for device in view.devices:
        rows = _judged(view, device)
        if not (rows["gate"].astype(bool) & rows["runs_p"].notna()).any():
            continue  # no gating timing claim here: the rule bought nothing
        for seed, m in view.measured[device].items():
            info = m.get("rounds_info") or {}
            if "alone" not in info or not info.get("rounds"):
                continue
            rounds, alone = int(info["rounds"]), int(info["alone"] or 0)
            if not alone:
                out.append(f"{device}, seed {seed}: {rounds} rounds; no look decided every claim even on its own "
                           "interval.")
            else:
                extra_s = info["seconds"] - (info.get("alone_seconds") or 0)
                out.append(f"{device}, seed {seed}: each claim's own interval had decided after {alone} rounds; the "
                           f"family's levels stopped at {rounds}: the adjustment cost {rounds - alone} rounds "
                           f"({extra_s:.1f} s).")
    return ["What the family cost the timing rule: " + " ".join(out), ""] if out else []


def suite_lines(views: list[RunView]) -> list[str]:
    """Per device: the specs judged, the not reproduced at their own family error, and those Benjamini and Hochberg
    keeps across the suite at its false discovery rate."""
    out = []
    for device, judged, missed, kept in _suite(views):
        if not judged:
            out += [f"- **{device}**: no spec was judged here.", ""]
            continue
        out += [f"- **{device}**: {judged} specs judged, {len(missed)} not reproduced at their own family error"
                + (f" ({', '.join(missed)})" if missed else "") + f"; Benjamini and Hochberg over the {judged} specs' "
                f"family p-values keeps {kept} as not reproduced at a {family.ERROR:.0%} false discovery rate (of the "
                f"specs it keeps, at most {family.ERROR:.0%} are expected to reproduce after all; specs independent or "
                "positively dependent).", ""]
    return out


def suite_error(views: list[RunView]) -> str:
    """The first screen's line on the suite's error: per device, the specs not reproduced and those the suite's
    false discovery rate keeps."""
    parts = []
    for device, judged, missed, kept in _suite(views):
        if judged:
            parts.append(f"{device}: {len(missed)} of {judged} specs not reproduced, {kept} kept at the suite's "
                         f"{family.ERROR:.0%} false discovery rate")
    return ("**The error of a ❌.** Each spec's ❌ is at most a 5% family-wise chance when all its claims hold (Holm); "
            "across the suite, Benjamini and Hochberg over the specs' family p-values keeps a ❌ at a 5% false "
            "discovery rate. " + ("; ".join(parts) + "." if parts else "No spec was judged."))


def _suite(views: list[RunView]) -> list[tuple[str, int, list[str], int]]:
    """Per device: how many specs were judged, which were not reproduced, how many of those the suite keeps."""
    out = []
    for device in ("cpu", "cuda"):
        judged = [(v, _judged(v, device)) for v in views if device in v.devices]
        judged = [(v, rows[rows["gate"].astype(bool)]) for v, rows in judged]
        judged = [(v, rows) for v, rows in judged if not rows.empty]
        missed = [v.name + v.suffix for v, rows in judged if (rows["status"] == MISSED).any()]
        p = {v.name + v.suffix: family.family_p(rows.itertuples()) for v, rows in judged}  # 1: nothing could fail
        kept = dict(zip(p, family.suite_kept(list(p.values()), family.ERROR)))
        out.append((device, len(judged), missed, sum(kept[name] for name in missed)))
    return out


def forest(view: RunView) -> str:
    """A forest plot of the spec's printed draws: each draw, the seeds' mean and prediction interval, and the band
    of book means its check could not tell from the seeds' (mean +- detectable shift); empty where it has none."""
    import matplotlib.pyplot as plt

    from harness.reading.figures import save_figure

    v = view.verdicts
    draws = v[v["claimed"].notna() & v["low"].notna() & (v["status"] != SKIPPED)].reset_index(drop=True)
    if draws.empty:
        return ""
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.38 * len(draws)))
    y = list(range(len(draws)))[::-1]
    shift = draws["detectable_shift"].where(draws["detectable_shift"].abs() < 10 * (draws["high"] - draws["low"]))
    ax.barh(y, 2 * shift, left=draws["estimate"] - shift, height=0.6, color="0.9",
            label="mean +- detectable shift (could not be told apart)")
    ax.errorbar(draws["estimate"], y, xerr=[draws["estimate"] - draws["low"], draws["high"] - draws["estimate"]],
                fmt="o", color="C0", capsize=3, label="seeds' mean, 95% prediction interval")
    ax.plot(draws["claimed"], y, "x", color="C3", ms=8, mew=2, label="printed (mean of draws)")
    ax.set_yticks(y, [f"{r.ref} {r.metric} {r.device}" + ("" if r.gate else " (info)") for r in draws.itertuples()],
                  fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"{view.name}: printed draws against the seeds", fontsize=9)
    return ("The printed draws at a glance; the grey band holds the book means its check would miss more than 20% of "
            "the time (within the detectable shift of the seeds' mean):\n\n"
            + save_figure(fig, view, "draws", f"printed draws of {view.name} against its seeds"))


def shift_text(value: float) -> str:
    """A detectable shift for the eye: 3 significant digits; inf: the check could not have failed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "∞ (could not fail)" if math.isinf(value) else f"{value:.3g}"
