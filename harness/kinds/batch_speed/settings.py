"""The batch-speed kind's settings and metric table.

Without torch: validating a spec reads this, not the measurement (``measure``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from harness.kinds.base import Metric
from harness.schema import Strict


class Settings(Strict):
    model: Literal["lenet_pad2_avg", "lenet_pad2_max", "lenet_nopad_max"] = "lenet_pad2_avg"
    batch_sizes: list[int] = Field(default=[1, 2, 4, 10, 16, 32, 64, 128, 256, 512, 1024], min_length=2)
    lr: float = Field(default=0.9, gt=0, le=10)
    epoch_examples: int = Field(default=50_000, ge=1, le=60_000, description="examples in the page's epoch")
    full_examples: int = Field(default=60_000, ge=1, le=60_000, description="the whole Fashion-MNIST training set")
    warmup_updates: int = Field(default=3, ge=1, le=1000)
    round_time: float = Field(default=0.25, gt=0, le=60,
                              description="seconds of timed updates per batch size in each round")
    full_epoch_batches: list[int] = Field(default_factory=list,
                                          description="batch sizes whose whole epoch is also run and timed")
    full_epoch_max_s: float = Field(default=60.0, ge=0, le=600,
                                    description="skip that real epoch where the estimate is above this")
    threads: int | None = Field(default=None, ge=1, le=1024,
                                description="CPU threads for torch (default: torch's own choice, all cores)")
    data_dir: str | None = None

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, sizes: list[int]) -> list[int]:
        if any(b < 1 or b > 60_000 for b in sizes):
            raise ValueError("batch sizes must lie in [1, 60000]")
        if sizes != sorted(set(sizes)):
            raise ValueError("batch sizes must be increasing without repeats")
        if 1 not in sizes or 10 not in sizes:
            raise ValueError("batch sizes must include 1 and 10, the page's two settings")
        return sizes

    @model_validator(mode="after")
    def _full_epochs(self) -> Settings:
        extra = sorted(set(self.full_epoch_batches) - set(self.batch_sizes))
        if extra:
            raise ValueError(f"full_epoch_batches {extra} are not in batch_sizes")
        return self


def _ratio(name: str, meaning: str, headline: bool = False) -> Metric:
    """A ratio of two batch sizes' times on one machine: either side may move it, so neither way is better."""
    return Metric(name, "x", "none", meaning, timed=True, headline=headline)


METRICS: tuple[Metric, ...] = (
    _ratio("epoch_ratio_1_over_10", "seconds of an epoch at batch 1 over those at batch 10, within each round",
           headline=True),
    _ratio("update_growth_1_to_10", "seconds of one update at batch 10 over one at batch 1, within each round"),
    _ratio("update_time_growth", "seconds of one update at the largest batch over the smallest's, within each round"),
    _ratio("update_growth_per_batch_growth", "update_time_growth over the batch's growth (largest / smallest)"),
    Metric("epoch_s_b1", "s", "lower", "seconds of an epoch at batch 1, extrapolated from seconds per update",
           timed=True),
    Metric("epoch_s_b10", "s", "lower", "seconds of an epoch at batch 10, extrapolated from seconds per update",
           timed=True),
    Metric("examples_per_s_max", "ex/s", "higher", "the most examples per second over the batch sizes, each round",
           timed=True),
    Metric("best_batch", "", "none", "the batch size with the most examples per second (pooled rounds)"),
    Metric("batch_max", "", "none", "the largest batch size timed"),
    Metric("update_s.b{batch}", "s", "lower", "seconds of one update at that batch size, in each round and pooled",
           timed=True),
    Metric("examples_per_s.b{batch}", "ex/s", "higher", "examples per second at that batch size: batch / update_s",
           derived_from="update_s.b{batch}"),
    Metric("examples_per_s", "ex/s", "higher", "series: examples per second, one point per batch size (step: batch)"),
    Metric("update_s", "s", "lower", "series: seconds of one update, one point per batch size (step: batch)"),
    Metric("epoch_s", "s", "lower", "series: seconds of an epoch (extrapolated), one point per batch size"),
)
