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
    for device in ("cpu", "cuda"):
        judged = [(v, _judged(v, device)) for v in views if device in v.devices]
        judged = [(v, rows[rows["gate"].astype(bool)]) for v, rows in judged]
        judged = [(v, rows) for v, rows in judged if not rows.empty]
        if not judged:
            out += [f"- **{device}**: no spec was judged here.", ""]
            continue
        missed = [v.name for v, rows in judged if (rows["status"] == MISSED).any()]
        p = {v.name: family.family_p(rows.itertuples()) for v, rows in judged}  # 1: nothing could fail by chance
        kept = dict(zip(p, family.suite_kept(list(p.values()), family.ERROR)))
        dropped = [name for name in missed if not kept[name]]
        text = (f"- **{device}**: {len(judged)} specs judged, {len(missed)} not reproduced at their own family "
                f"error" + (f" ({', '.join(missed)})" if missed else "") + ". A ❌ here is read at the suite's "
                f"false discovery rate: Benjamini and Hochberg over the {len(p)} specs' family p-values keeps "
                f"{sum(kept.values())} as not reproduced at {family.ERROR:.0%}, so of the specs it keeps, at most "
                f"{family.ERROR:.0%} are expected to reproduce after all (specs independent or positively "
                "dependent)")
        text += (f"; not kept: {', '.join(dropped)}." if dropped else ".")
        out += [text, ""]
    return out


def shift_text(value: float) -> str:
    """A detectable shift for the eye: 3 significant digits; inf: the check could not have failed."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "∞ (could not fail)" if math.isinf(value) else f"{value:.3g}"
