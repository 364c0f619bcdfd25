"""The calibration report: each verdict's rate per (noise, truth) against its nominal rate; families of claims
against the family's error; suites against the suite's false discovery rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from harness.reading.view import RunView

HEADERS = {  # the table's columns, and their headers as harness.judging.calibration.table logs them
    "noise": "noise",
    "independent_rounds": "independent rounds",
    "truth_over_bound": "truth / bound",
    "trials": "trials",
    "reproduced_fraction": "reproduced (fraction)",
    "not_reproduced_fraction": "not reproduced (fraction)",
    "inconclusive_fraction": "inconclusive (fraction)",
    "wrong_verdict": "wrong verdict",
    "worst_wrong_fraction": "worst wrong (fraction)",
    "nominal_fraction": "nominal (fraction)",
    "monte_carlo_se_fraction": "Monte-Carlo se (fraction)",
    "median_rounds_to_decision": "median rounds to a decision",
}


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """The rule's rates per (noise, truth), the families and the suites, read back from the first unit (a store
    written before families were simulated has the first table only)."""
    device = view.devices[0]
    seed = next(iter(view.measured[device]))
    out = {"calibration": view.table("calibration", device, seed).rename(columns={v: k for k, v in HEADERS.items()})}
    if "family_sizes" in view.spec.get("settings", {}):  # the run simulated families and suites
        out |= {name: view.table(name, device, seed) for name in ("families", "suites")}
    return out


def _words(df: pd.DataFrame) -> dict[str, str]:
    """Column headers for the eye: snake_case words, ``_fraction`` dropped (the cells are percentages)."""
    return {c: c.removesuffix("_fraction").replace("_", " ") for c in df.columns}


def section(view: RunView) -> str:
    """The rates tables and what they show."""
    from harness.reading.markdown import md_table, percent, sig

    found = tables(view)
    df = found["calibration"]
    policy = view.spec.get("timing", {})
    frac = percent(1)
    shown = md_table(df.drop(columns=["trials"]), headers=HEADERS, fmt={
        "truth_over_bound": sig(3), "reproduced_fraction": frac, "not_reproduced_fraction": frac,
        "inconclusive_fraction": frac, "worst_wrong_fraction": frac, "nominal_fraction": frac,
        "monte_carlo_se_fraction": percent(2), "median_rounds_to_decision": sig(3)})
    parts = [
        "### The rule on synthetic rounds", "",
        f"{int(df['trials'].iloc[0]):,} runs of the timing rule per row, under this spec's timing policy (first look "
        f"after {policy.get('rounds')} rounds, then one more round at a time up to {policy.get('max_rounds')}), "
        "against the claim `ratio >= bound`, with the true median round at `truth / bound` times the bound. On the "
        "bound (1) both decisive verdicts are wrong; above it, *not reproduced* is; below it, *reproduced*. Each "
        "wrong rate is to be set against its nominal rate (half the error the confidence leaves) give or take its "
        "Monte-Carlo standard error; the last column is what an honest verdict costs in rounds. The AR(1) rows break "
        "the rule's one assumption, rounds independent of each other (each round keeps a share phi of the last "
        "one's noise): they are shown for information and left out of the worst rates judged above.", "",
        shown, ""]
    fam = found.get("families")
    if fam is not None:
        pct = {c: frac for c in fam.columns if c.endswith("_fraction")}
        parts += [
            "### Families of claims", "",
            "A spec's claims judged together, as a spec run judges them: each claim's p-value, then Holm's "
            "step-down at the family's error. *draws*: printed draws each against "
            f"{int(view.spec.get('settings', {}).get('family_seeds', 3))} seeds of its own metric (normal, the book's "
            "run one more draw); *timings*: claims `ratio >= bound` on their rounds under the sequential rule, every "
            "true median on its bound (where either decisive verdict is wrong). *correlated*: the claims of one run "
            "(loss, train and test accuracy) correlated as the spec's `correlation` says, in blocks of three. Shift "
            "*0*: every claim holds, so *false not reproduced* (some claim called not reproduced) is to stay within "
            "the family's error at every size, give or take three Monte-Carlo standard errors; *detectable*: the "
            "book's mean of one claim lies that claim's detectable shift away, and *caught* is to come out near 80%, "
            "the rate the shift is defined by.", "",
            md_table(fam, fmt=pct, headers=_words(fam)), ""]
    su = found.get("suites")
    if su is not None:
        pct = {c: frac for c in su.columns if c.endswith("_fraction") or c == "false_discovery_rate"}
        parts += [
            "### Suites of specs", "",
            "Specs of six correlated draws each, some with one claim off by its detectable shift. Each spec's family "
            "p-value goes through Benjamini and Hochberg's step-up at the suite's error: *false discovery rate* is "
            "the mean share of the specs kept as not reproduced whose claims all hold, to stay within the suite's "
            "error; *some true spec not reproduced* is what the suite would show without the step, each spec at its "
            "own family error.", "",
            md_table(su, fmt=pct, headers=_words(su)), ""]
    return "\n".join(parts)
