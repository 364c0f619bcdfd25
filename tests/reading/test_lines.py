"""The books' printed lines, parsed exactly; anything else is one line naming what was not understood."""

from __future__ import annotations

import pytest

from harness.reading.lines import LineError, Printed, parse, parse_line


def test_train_ch5():
    got = parse_line("epoch 5, loss 0.0012, train acc 0.891, test acc 0.859, time 2.8 sec")
    assert [(p.label, p.value, p.at, p.format) for p in got] == [
        ("loss", 0.0012, 5, "train_ch5"), ("train acc", 0.891, 5, "train_ch5"), ("test acc", 0.859, 5, "train_ch5"),
        ("time", 2.8, 5, "train_ch5")]


def test_train_ch6_and_its_throughput():
    got = parse(["loss 0.469, train acc 0.823, test acc 0.779", "66920.4 examples/sec on cuda:0", "",
                 "training on  cuda"])
    assert got == [Printed("loss", 0.469, None, "train_ch6", "loss 0.469, train acc 0.823, test acc 0.779"),
                   Printed("train acc", 0.823, None, "train_ch6", "loss 0.469, train acc 0.823, test acc 0.779"),
                   Printed("test acc", 0.779, None, "train_ch6", "loss 0.469, train acc 0.823, test acc 0.779"),
                   Printed("examples/sec", 66920.4, None, "throughput", "66920.4 examples/sec on cuda:0")]


@pytest.mark.parametrize("line,label,value,at", [
    ("epoch 10, loss 0.113", "loss", 0.113, 10), ("Step 20, loss 0.003", "loss", 0.003, 20),
    ("  epoch 2,   loss 6.422 ", "loss", 6.422, 2)])
def test_the_edge_kernels_lines(line, label, value, at):
    (p,) = parse_line(line)
    assert (p.label, p.value, p.at, p.format) == (label, value, at, "edge")


def test_a_printed_kernel():
    got = parse_line("tensor([[ 1.0010, -0.9739]])")
    assert [(p.label, p.value) for p in got] == [("weight 0", 1.001), ("weight 1", -0.9739)]


@pytest.mark.parametrize("line", ["loss 0.469, train acc 0.823", "epoch 5, loss 0.0012, train acc 0.891",
                                  "test acc 0.779", "loss: 0.469", "tensor([1.0, -1.0])", "hello"])
def test_anything_else_is_one_line_naming_it(line):
    with pytest.raises(LineError) as err:
        parse([line])
    assert repr(" ".join(line.split()))[:40] in str(err.value) and "\n" not in str(err.value)


def test_nothing_to_check_says_so():
    with pytest.raises(LineError, match="no printed line given"):
        parse(["", "training on  cuda"])
