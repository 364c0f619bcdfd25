"""The edge-kernel report: every seed's loss curve, and the learned kernel and bias."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from harness.kinds.base import Located

if TYPE_CHECKING:
    from harness.reading.view import RunView


def locate(view: RunView, device: str, label: str, at: int | None, form: str) -> Located | None:
    """An edge-kernel line's number among the run's: the loss at the last step or a checkpoint, a kernel's weight."""
    seeds = view.measured.get(device, {})
    settings = view.spec["settings"]
    if label.startswith("weight "):
        i = int(label.split()[1])
        flat = [[w for row in m["kernel"] for w in row] for m in seeds.values()]
        if not flat or i >= len(flat[0]):
            return Located(label, why=f"the learned kernel has {len(flat[0]) if flat else 0} weights")
        return Located(f"kernel weight {i}", tuple(f[i] for f in flat))
    if label != "loss" or at is None:
        return None
    if at == settings["steps"]:
        return Located("final_loss", tuple(float(m["final_loss"]) for m in seeds.values()))
    if at in settings.get("checkpoints", []):
        i = settings["checkpoints"].index(at)
        return Located(f"loss_at_checkpoints[{i}]", tuple(float(m["loss_at_checkpoints"][i]) for m in seeds.values()))
    return Located("loss", why=f"step {at}: the run records the loss at its last step and its checkpoints "
                               f"({', '.join(map(str, settings.get('checkpoints', [])))})")


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
