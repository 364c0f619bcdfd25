"""The calibration report: each verdict's rate per (noise, truth), against its nominal rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from harness.reading.view import RunView

HEADERS = {  # the table's columns, and their headers as harness.judging.calibration.table logs them
    "noise": "noise",
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
    """The verdicts' rates per (noise, truth), read back from the first unit."""
    device = view.devices[0]
    logged = view.table("calibration", device, next(iter(view.measured[device])))
    return {"calibration": logged.rename(columns={v: k for k, v in HEADERS.items()})}


def section(view: RunView) -> str:
    """The rates table and what it shows."""
    from harness.reading.markdown import md_table, percent, sig

    df = tables(view)["calibration"]
    policy = view.spec.get("timing", {})
    frac = percent(1)
    shown = md_table(df.drop(columns=["trials"]), headers=HEADERS, fmt={
        "truth_over_bound": sig(3), "reproduced_fraction": frac, "not_reproduced_fraction": frac,
        "inconclusive_fraction": frac, "worst_wrong_fraction": frac, "nominal_fraction": frac,
        "monte_carlo_se_fraction": percent(2), "median_rounds_to_decision": sig(3)})
    return "\n".join([
        "### The rule on synthetic rounds", "",
        f"{int(df['trials'].iloc[0]):,} runs of the timing rule per row, under this spec's timing policy (first look "
        f"after {policy.get('rounds')} rounds, then one more round at a time up to {policy.get('max_rounds')}), "
        "against the claim `ratio >= bound`, with the true median round at `truth / bound` times the bound. On the "
        "bound (1) both decisive verdicts are wrong; above it, *not reproduced* is; below it, *reproduced*. Each "
        "wrong rate is to be set against its nominal rate (half the error the confidence leaves) give or take its "
        "Monte-Carlo standard error; the last column is what an honest verdict costs in rounds.", "",
        shown, ""])
