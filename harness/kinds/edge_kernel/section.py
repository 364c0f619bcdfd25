"""The edge-kernel report: every seed's loss curve, and the learned kernel and bias."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from harness.reading.view import RunView


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """The learned kernel and bias of every (device, seed), with the loss before and after training."""
    rows = [{"device": device, "seed": int(seed), "initial_loss": m["initial_loss"], "final_loss": m["final_loss"],
             "kernel": json.dumps(m["kernel"]), "bias": m["bias"], "kernel_max_abs_error": m["kernel_max_abs_error"]}
            for device in view.devices for seed, m in view.measured[device].items()]
    return {"learned": pd.DataFrame(rows)}


def loss_figure(view: RunView) -> str:
    """Every seed's loss curve on a log scale, with the losses the page printed at its checkpoints."""
    import matplotlib.pyplot as plt

    from harness.reading.figures import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for device in view.devices:
        for seed in view.measured[device]:
            curve = view.series("loss", device, seed)
            ax.plot(curve["step"], curve["value"], marker=".", label=f"seed {seed} ({device})")
    settings = view.spec["settings"]
    for ref in view.spec["references"]:
        if ref["metric"] == "loss_at_checkpoints" and ref.get("near"):
            ax.plot(settings["checkpoints"], ref["near"], "kx", markersize=9, mew=2,
                    label=f"printed in {ref['source']}")
            break
    ax.set(yscale="log", xlabel="step", ylabel="summed squared error",
           title=f"{view.name}: {settings.get('image', 'edge')} image, lr {settings['lr']}, "
                 f"target {settings['target_kernel']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, view, "loss", f"loss curves of {view.name}")


def section(view: RunView) -> str:
    """The loss curves, and the learned kernel and bias."""
    from harness.reading.markdown import md_table, sig

    shown = md_table(tables(view)["learned"],
                     fmt={"initial_loss": sig(4), "final_loss": sig(4), "bias": sig(), "kernel_max_abs_error": sig()},
                     headers={"initial_loss": "initial loss", "final_loss": "final loss",
                              "kernel_max_abs_error": "max |kernel - K|"})
    return "\n".join(["### Loss curves and learned parameters", "", loss_figure(view), "", shown])
