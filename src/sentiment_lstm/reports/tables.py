"""Finished runs read back and laid side by side: accuracy per length bucket by model (the
encoder, plus the variant for a gate ablation: `lstm:coupled`), McNemar per bucket between
models, and evaluate's console report."""

import itertools
import json
import statistics
from collections import defaultdict
from pathlib import Path

from sentiment_lstm.checkpoint import CheckpointError
from sentiment_lstm.evaluation.metrics import bucketize, mcnemar
from sentiment_lstm.evaluation.predictions import load_predictions


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
                result = {"encoder": result["encoder"], "seed": result["seed"], "test": result,
                          "variant": result.get("variant", "vanilla")}
            if "encoder" in result and result.get("test"):  # a run without test: "test": null
                predictions = f.with_name("test_predictions.csv")
                if predictions.is_file():
                    result["predictions"] = load_predictions(predictions)
                found.append(result)
    return found


def model_name(result: dict) -> str:
    """"lstm", "rnn", ... or "lstm:<variant>" for a gate ablation (runs without a variant
    predate them: vanilla)."""
    variant = result.get("variant", "vanilla")
    return result["encoder"] if variant == "vanilla" else f"{result['encoder']}:{variant}"


def by_model(results: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        grouped[model_name(r)].append(r)
    return dict(sorted(grouped.items()))


def pairs(models: list[str]) -> list[tuple[str, str]]:
    """Every pair of models; with gate ablations among them, each model against the vanilla
    LSTM only (what an ablation asks, and 9 pairs instead of 45)."""
    if "lstm" in models and any(":" in m for m in models):
        return [("lstm", m) for m in models if m != "lstm"]
    return list(itertools.combinations(models, 2))


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
    """Per pair of models (pairs()) and length bucket: how many reviews only one of them got right
    (summed over matched seeds) and McNemar's p-value, the largest over the seeds."""
    models = {m: {r["seed"]: r for r in rs if "predictions" in r}
              for m, rs in by_model(results).items()}
    buckets = list(results[0]["test"]["acc_by_len"])
    edges = [int(b.split("-")[0]) for b in buckets]
    sections = []
    for a, b in pairs(list(models)):
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


def format_report(report: dict, labels: list[str]) -> str:
    """evaluate's console report: accuracy and macro-F1, per class precision / recall / F1,
    the confusion matrix and accuracy per length bucket."""
    w = max(7, *map(len, labels))
    lines = [f"accuracy {100 * report['acc']:.2f}%  macro-F1 {report['macro_f1']:.4f}  "
             f"(n={report['n']})", "",
             f"{'class':>{w}} {'n':>7} {'precision':>9} {'recall':>7} {'f1':>7}"]
    lines += [f"{name:>{w}} {c['n']:>7} {c['precision']:>9.4f} {c['recall']:>7.4f} "
              f"{c['f1']:>7.4f}" for name, c in report["per_class"].items()]
    lines += ["", "confusion (rows true, columns predicted)",
              " " * (w + 2) + " ".join(f"{name:>{w}}" for name in labels)]
    lines += [f"  {labels[i]:>{w}} " + " ".join(f"{v:>{w}}" for v in row)
              for i, row in enumerate(report["confusion"])]
    lines += ["", f"{'length':>10} {'n':>6} {'acc %':>7}  95% interval"]
    for bucket, row in report["acc_by_len"].items():
        if row["n"]:
            lo, hi = row["ci95"]
            lines.append(f"{bucket:>10} {row['n']:>6} {100 * row['acc']:>7.2f}  "
                         f"[{100 * lo:.1f}, {100 * hi:.1f}]")
    return "\n".join(lines)
