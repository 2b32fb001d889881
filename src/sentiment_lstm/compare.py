"""Test accuracy per review length, side by side, for finished runs.

    python -m sentiment_lstm.compare outputs/multirun/<time>        # every run below it
    python -m sentiment_lstm.compare outputs/runs/<a> outputs/runs/<b> --out table.md
    python -m sentiment_lstm.compare docs/results/                  # any results.json copies

Runs are grouped by encoder; with several seeds a cell is mean +- std over seeds, with one
it is the accuracy and its 95% Wilson interval.
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def find_results(paths: list[str]) -> list[dict]:
    found = []
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(p.rglob("*.json"))
        for f in files:
            result = json.loads(f.read_text())
            if isinstance(result, dict) and {"encoder", "test"} <= set(result):
                found.append(result)
    return found


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
    by_model: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_model[r["encoder"]].append(r)
    models = sorted(by_model)
    buckets = list(results[0]["test"]["acc_by_len"])
    head = ["length (tokens)", "n"] + [f"{m} ({len(by_model[m])} seed"
                                       f"{'s' if len(by_model[m]) > 1 else ''})" for m in models]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for b in buckets:
        n = results[0]["test"]["acc_by_len"][b]["n"]
        cells = [_cell([r["test"]["acc_by_len"][b] for r in by_model[m]]) for m in models]
        lines.append(f"| {b} | {n} | " + " | ".join(cells) + " |")
    overall = []
    for m in models:
        accs = [100 * r["test"]["acc"] for r in by_model[m]]
        overall.append(f"**{accs[0]:.2f}**" if len(accs) == 1 else
                       f"**{statistics.mean(accs):.2f} +- {statistics.stdev(accs):.2f}**")
    lines.append(f"| all | {results[0]['test']['n']} | " + " | ".join(overall) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="run or multirun directories, or results files")
    ap.add_argument("--out", help="also write the markdown table here")
    args = ap.parse_args(argv)
    results = find_results(args.paths)
    if not results:
        print("error: no results file with test metrics under " + " ".join(args.paths),
              file=sys.stderr)
        return 2
    text = table(results)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
