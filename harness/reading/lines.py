"""The lines the books' training code prints, parsed exactly: what a learner pastes from a notebook.

``train_ch5`` (Dive-into-DL-PyTorch): ``epoch 5, loss 0.0012, train acc 0.891, test acc 0.859, time 2.8 sec``;
``train_ch6`` (d2l): ``loss 0.469, train acc 0.823, test acc 0.779`` and ``66920.4 examples/sec on cuda:0``;
the edge kernel's ``epoch 10, loss 0.113`` (d2l) or ``Step 20, loss 0.003`` (the port) and a printed kernel
(``tensor([[ 1.0010, -0.9739]])``). Anything else is a one-line error naming what was not understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
FORMATS = {
    "train_ch5": re.compile(rf"epoch (\d+), loss ({NUMBER}), train acc ({NUMBER}), test acc ({NUMBER}), "
                            rf"time ({NUMBER}) sec"),
    "train_ch6": re.compile(rf"loss ({NUMBER}), train acc ({NUMBER}), test acc ({NUMBER})"),
    "throughput": re.compile(rf"({NUMBER}) examples/sec on (\S+)"),
    "edge": re.compile(rf"(epoch|Step|step|batch) (\d+), loss ({NUMBER})"),
    "tensor": re.compile(rf"tensor\(\[\[\s*({NUMBER}(?:,\s*{NUMBER})*)\s*\]\]\)"),
}


class LineError(ValueError):
    """A pasted line the parser does not understand; the message is one line naming it."""


@dataclass(frozen=True)
class Printed:
    """One number a line carries: its label as printed (``test acc``, ``loss``, ``examples/sec``, ``weight 0`` of a
    kernel), the epoch or step it was printed at (None: the final one), the format it came in, and the line itself.
    Which of a run's metrics it is, is the kind's to say (``Kind.locate``)."""

    label: str
    value: float
    at: int | None
    format: str
    line: str


def parse_line(line: str) -> list[Printed]:
    """The numbers of one printed line, in the first format it matches exactly (blank lines give none)."""
    text = " ".join(line.split())
    if not text or text.startswith("training on"):
        return []
    if m := FORMATS["train_ch5"].fullmatch(text):
        epoch = int(m.group(1))
        return [Printed(q, float(m.group(i)), epoch, "train_ch5", text)
                for q, i in (("loss", 2), ("train acc", 3), ("test acc", 4), ("time", 5))]
    if m := FORMATS["train_ch6"].fullmatch(text):
        return [Printed(q, float(m.group(i)), None, "train_ch6", text)
                for q, i in (("loss", 1), ("train acc", 2), ("test acc", 3))]
    if m := FORMATS["throughput"].fullmatch(text):
        return [Printed("examples/sec", float(m.group(1)), None, "throughput", text)]
    if m := FORMATS["edge"].fullmatch(text):
        return [Printed("loss", float(m.group(3)), int(m.group(2)), "edge", text)]
    if m := FORMATS["tensor"].fullmatch(text):
        return [Printed(f"weight {i}", float(v), None, "tensor", text) for i, v in enumerate(m.group(1).split(","))]
    shown = text if len(text) <= 60 else text[:57] + "..."
    raise LineError(f"not a line the books print: {shown!r} (known: train_ch5's 'epoch 5, loss 0.0012, train acc "
                    "0.891, test acc 0.859, time 2.8 sec', train_ch6's 'loss 0.469, train acc 0.823, test acc 0.779' "
                    "and '66920.4 examples/sec on cuda:0', the edge kernel's 'epoch 10, loss 0.113' and "
                    "'tensor([[ 1.0010, -0.9739]])')")


def parse(lines: list[str]) -> list[Printed]:
    """Every number of every line, in order; the first line not understood is the error."""
    out = [p for line in lines for p in parse_line(line)]
    if not out:
        raise LineError("no printed line given: pass --line 'loss 0.469, train acc 0.823, test acc 0.779' or --from")
    return out
