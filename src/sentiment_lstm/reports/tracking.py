"""The only module that talks to TensorBoard."""

from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from sentiment_lstm.reports.figures import confusion_figure, length_figure, position_figure


class Tracker:
    """Scalars named split/metric[/bucket], a per-length figure and the hparams entry."""

    def __init__(self, log_dir: str | Path | None, purge_step: int | None = None):
        """log_dir None (a torchrun rank other than 0): every call does nothing. A resumed
        run passes purge_step, its checkpoint's step + 1: its new event file starts with a
        session start at that step, and TensorBoard, reading the folder's files in order,
        drops the earlier files' events from that step on (logged after the checkpoint by
        a process that was then killed), so no step shows twice."""
        self.writer = None if log_dir is None else SummaryWriter(log_dir=str(log_dir),
                                                                 purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if not self.writer:
            return
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def by_length(self, split: str, table: dict[str, dict], step: int) -> None:
        """`{split}/acc_by_len/<bucket>` scalars and a bar chart of accuracy per bucket."""
        if not self.writer:
            return
        for bucket, row in table.items():
            if row["n"]:
                self.writer.add_scalar(f"{split}/acc_by_len/{bucket}", row["acc"], step)
        self.writer.add_figure(f"{split}/acc_by_len", length_figure(table), step)

    def hparams(self, params: dict, metrics: dict[str, float]) -> None:
        """One hparams entry in this run's own event file (add_hparams would open a new run).
        Each metric must also be logged as a scalar under the same tag."""
        if not self.writer:
            return
        clean = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                 for k, v in params.items()}
        for summary in hparams(clean, metrics):
            self.writer.file_writer.add_summary(summary)

    def diagnostics(self, report: dict[str, dict], step: int) -> None:
        """diagnostics.probe's report: gate histograms, curves against position as figures,
        and ||dL/dh_t|| as scalars at five fixed positions."""
        if not self.writer:
            return
        for name, row in report.items():
            for gate in ("input", "forget_all", "output"):
                if gate in row:
                    self.writer.add_histogram(f"diag/gates/{name}/{gate.split('_')[0]}",
                                              row[gate], step)
            T = len(row["grad_h"])
            for t in sorted({0, T // 4, T // 2, 3 * T // 4, T - 1}):
                self.writer.add_scalar(f"diag/grad_h/{name}/t{t:04d}", row["grad_h"][t], step)
        for key, label in (("grad_h", "mean ||dL/dh_t||"), ("forget", "mean forget gate"),
                           ("cell_norm", "mean ||c_t||")):
            curves = {name: row[key] for name, row in report.items() if key in row}
            if curves:
                self.writer.add_figure(f"diag/{key}_by_position",
                                       position_figure(curves, label, log=key == "grad_h"), step)

    def pr_curves(self, split: str, labels: torch.Tensor, probs: torch.Tensor,
                  names: list[str], step: int) -> None:
        """`{split}/pr_curve/<class>`: each class against the rest, labels (N,), probs (N, C)."""
        if not self.writer:
            return
        for c, name in enumerate(names):
            self.writer.add_pr_curve(f"{split}/pr_curve/{name}", labels == c, probs[:, c],
                                     step)

    def confusion(self, split: str, matrix: list[list[int]], names: list[str],
                  step: int) -> None:
        if self.writer:
            self.writer.add_figure(f"{split}/confusion", confusion_figure(matrix, names), step)

    def text(self, tag: str, markdown: str, step: int) -> None:
        if self.writer:
            self.writer.add_text(tag, markdown, step)

    def flush(self) -> None:
        """Write the queued events out: before a checkpoint, so that the event file holds
        every step the checkpoint has done, whatever kills the process next."""
        if self.writer:
            self.writer.flush()

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def write_length_layout(log_dir: str | Path, buckets: list[str]) -> None:
    """A custom_scalars layout (TensorBoard's CUSTOM SCALARS tab) that overlays every run
    below log_dir: one chart per length bucket, and the validation curves."""
    layout = {"test accuracy by review length": {
        b: ["Multiline", [f"test/acc_by_len/{b}$"]] for b in buckets},
        "validation": {"val/acc": ["Multiline", ["val/acc$"]],
                       "val/loss": ["Multiline", ["val/loss$"]]}}
    with SummaryWriter(log_dir=str(log_dir)) as writer:
        writer.add_custom_scalars(layout)
