"""Figures as matplotlib Figure objects (no pyplot, no display): accuracy per length bucket,
curves against position, runs compared by length."""

import math
import statistics
from pathlib import Path

from matplotlib.figure import Figure

from sentiment_lstm.reports.tables import by_model


def position_figure(curves: dict, label: str, log: bool = False) -> Figure:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    for name, values in curves.items():
        ax.plot(values.tolist(), label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("position in the review (tokens)")
    ax.set_ylabel(label)
    ax.legend()
    fig.tight_layout()
    return fig


def length_figure(table: dict[str, dict]) -> Figure:
    names = list(table)
    accs = [100 * r["acc"] if r["n"] else 0.0 for r in table.values()]
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    bars = ax.bar(names, accs, color="#4c72b0")
    for bar, row in zip(bars, table.values()):
        if row["n"] and not math.isnan(row["acc"]):
            ax.annotate(f"n={row['n']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_xlabel("review length (tokens)")
    ax.set_ylabel("accuracy (%)")
    fig.tight_layout()
    return fig


def plot_by_length(results: list[dict], path: Path) -> None:
    """Accuracy against review length, one line per encoder, with a band: +- one std over
    seeds, or the 95% Wilson interval for a single seed."""
    buckets = list(results[0]["test"]["acc_by_len"])
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for model, rs in by_model(results).items():
        xs, mean, lo, hi = [], [], [], []
        for k, b in enumerate(buckets):
            rows = [r["test"]["acc_by_len"][b] for r in rs if r["test"]["acc_by_len"][b]["n"]]
            if not rows:
                continue
            accs = [100 * row["acc"] for row in rows]
            m = statistics.mean(accs)
            half = statistics.stdev(accs) if len(accs) > 1 else None
            xs.append(k)
            mean.append(m)
            lo.append(m - half if half is not None else 100 * rows[0]["ci95"][0])
            hi.append(m + half if half is not None else 100 * rows[0]["ci95"][1])
        line, = ax.plot(xs, mean, marker="o", label=f"{model} ({len(rs)} seed(s))")
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
    counts = [results[0]["test"]["acc_by_len"][b]["n"] for b in buckets]
    ax.set_xticks(range(len(buckets)), [f"{b}\nn={n}" for b, n in zip(buckets, counts)],
                  fontsize=8)
    ax.set_xlabel("review length (tokens, before truncation)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def confusion_figure(matrix: list[list[int]], labels: list[str]) -> Figure:
    """Counts, rows the true class and columns the predicted one."""
    fig = Figure(figsize=(3.6, 3.2))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    for r, row in enumerate(matrix):
        for c, n in enumerate(row):
            ax.text(c, r, str(n), ha="center", va="center",
                    color="white" if n > max(map(max, matrix)) / 2 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return fig
