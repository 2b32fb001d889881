"""Test accuracy per review length, side by side, for finished runs.

    python -m sentiment_lstm.compare outputs/multirun/<time>        # every run below it
    python -m sentiment_lstm.compare outputs/runs/<a> outputs/runs/<b> --out table.md
    python -m sentiment_lstm.compare outputs/multirun/<time> --plot by_length.png
    python -m sentiment_lstm.compare docs/lstm_vs_rnn/              # copies of run folders

Runs are grouped by encoder; with several seeds a cell is mean +- std over seeds, with one
it is the accuracy and its 95% Wilson interval. Runs that kept their `test_predictions.csv`
are also paired per bucket (McNemar's exact test, per seed, seeds matched by number). A
TensorBoard custom_scalars layout overlaying the runs per length bucket is written into the
first directory given (or --tensorboard DIR).
"""

import argparse
import itertools
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from sentiment_lstm.checkpoint import CheckpointError, load_predictions  # noqa: E402
from sentiment_lstm.metrics import bucketize, mcnemar  # noqa: E402
from sentiment_lstm.tracking import write_length_layout  # noqa: E402


def find_results(paths: list[str]) -> list[dict]:
    """Every results.json-like file with test metrics, and every `evaluate --out` report of
    the IMDB test split; `predictions` is added from the run's test_predictions.csv when it is
    there."""
    found = []
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(p.rglob("*.json"))
        for f in files:
            try:
                result = json.loads(f.read_text())
            except ValueError as e:  # UnicodeDecodeError too
                raise CheckpointError(f"{f}: not a JSON file ({e})") from None
            if not isinstance(result, dict):
                continue
            if result.get("data") == "imdb/test" and "encoder" in result:  # evaluate's report
                result = {"encoder": result["encoder"], "seed": result["seed"], "test": result}
            if {"encoder", "test"} <= set(result):
                predictions = f.with_name("test_predictions.csv")
                if predictions.is_file():
                    result["predictions"] = load_predictions(predictions)
                found.append(result)
    return found


def by_model(results: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        grouped[r["encoder"]].append(r)
    return dict(sorted(grouped.items()))


def _cell(rows: list[dict]) -> str:
    accs = [100 * r["acc"] for r in rows if r["n"]]
    if not accs:
        return "-"
    if len(accs) == 1:
        lo, hi = rows[0]["ci95"]
        return f"{accs[0]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{statistics.mean(accs):.1f} +- {statistics.stdev(accs):.1f}"


def table(results: list[dict]) -> str:
    """A markdown table: one row per length bucket plus `all`, one column per encoder."""
    models = by_model(results)
    buckets = list(results[0]["test"]["acc_by_len"])
    head = ["length (tokens)", "n"] + [f"{m} ({len(rs)} seed{'s' if len(rs) > 1 else ''})"
                                       for m, rs in models.items()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b in buckets:
        n = results[0]["test"]["acc_by_len"][b]["n"]
        cells = [_cell([r["test"]["acc_by_len"][b] for r in rs]) for rs in models.values()]
        lines.append(f"| {b} | {n} | " + " | ".join(cells) + " |")
    overall = []
    for rs in models.values():
        accs = [100 * r["test"]["acc"] for r in rs]
        overall.append(f"**{accs[0]:.2f}**" if len(accs) == 1 else
                       f"**{statistics.mean(accs):.2f} +- {statistics.stdev(accs):.2f}**")
    lines.append(f"| all | {results[0]['test']['n']} | " + " | ".join(overall) + " |")
    return "\n".join(lines)


def paired(results: list[dict]) -> str:
    """Per pair of encoders and length bucket: how many reviews only one of them got right
    (summed over matched seeds) and McNemar's p-value, the largest over the seeds."""
    models = {m: {r["seed"]: r for r in rs if "predictions" in r}
              for m, rs in by_model(results).items()}
    buckets = list(results[0]["test"]["acc_by_len"])
    edges = [int(b.split("-")[0]) for b in buckets]
    sections = []
    for a, b in itertools.combinations(models, 2):
        seeds = sorted(models[a].keys() & models[b].keys())
        if not seeds:
            continue
        lines = [f"McNemar, {a} vs {b}, seeds {', '.join(map(str, seeds))} (p: largest over "
                 "seeds)", "", f"| length (tokens) | only {a} right | only {b} right | p |",
                 "|---|---|---|---|"]
        tests = [[] for _ in buckets]
        for s in seeds:
            ra, rb = models[a][s], models[b][s]
            which = bucketize(ra["predictions"]["lengths"], edges)
            for k in range(len(buckets)):
                keep = which == k
                tests[k].append(mcnemar(ra["predictions"]["correct"][keep],
                                        rb["predictions"]["correct"][keep]))
        for name, ts in zip(buckets, tests):
            lines.append(f"| {name} | {sum(t['b'] for t in ts)} | {sum(t['c'] for t in ts)} | "
                         f"{max(t['p'] for t in ts):.2g} |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def plot(results: list[dict], path: Path) -> None:
    """Accuracy against review length, one line per encoder, with a band: +- one std over
    seeds, or the 95% Wilson interval for a single seed."""
    buckets = list(results[0]["test"]["acc_by_len"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
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
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="run or multirun directories, or results files")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--plot", help="write accuracy against length as a PNG here")
    ap.add_argument("--tensorboard", help="write the custom_scalars layout here (default: the "
                                          "first directory given)")
    args = ap.parse_args(argv)
    try:
        results = find_results(args.paths)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not results:
        print("error: no results file with test metrics under " + " ".join(args.paths),
              file=sys.stderr)
        return 2
    text = "\n\n".join(filter(None, [table(results), paired(results)]))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.plot:
        plot(results, Path(args.plot))
    layout_dir = args.tensorboard or next((p for p in args.paths if Path(p).is_dir()), None)
    if layout_dir:
        write_length_layout(layout_dir, list(results[0]["test"]["acc_by_len"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
