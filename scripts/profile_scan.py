"""Where the fused CPU scan (FusedLSTMScan) spends its time: torch.profiler over one forward and
one backward of one LSTM direction, the ops per time step and the share of op time in GEMMs
(addmm/mm), pointwise math and the rest (views, allocation, reductions).

    python scripts/profile_scan.py                       # B=64 E=128 H=256 T=256, 1 thread
    python scripts/profile_scan.py --threads 2 --hidden 128 --batch 128

Times are the profiled ops' own (top-level) CPU time; "outside ops" is the wall time of the
region that no op accounts for: the Python loop and the dispatcher between ops.
"""

import argparse
import time
from collections import Counter

import torch
from torch.profiler import ProfilerActivity, profile

from sentiment_lstm.model.cells import LSTMLayer

GEMM = {"aten::addmm", "aten::addmm_", "aten::mm", "aten::bmm"}
OTHER = {"aten::view", "aten::unbind", "aten::select", "aten::slice", "aten::t",
         "aten::reshape", "aten::as_strided", "aten::unsqueeze", "aten::transpose",
         "aten::empty", "aten::new_empty", "aten::empty_like", "aten::sum", "aten::alias",
         "aten::detach", "aten::lift_fresh", "aten::resolve_conj", "aten::resolve_neg"}


def kind(name: str) -> str:
    if name in GEMM:
        return "gemm"
    return "other" if name in OTHER or not name.startswith("aten::") else "pointwise"


def profiled(fn, T: int) -> dict:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        fn()
        wall_us = (time.perf_counter() - start) * 1e6
    # the outermost aten ops: their parent is none or the autograd.Function's own region
    top = [e for e in prof.events() if e.name.startswith("aten::") and (
        e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))]
    us = Counter()
    for e in top:
        us[kind(e.name)] += e.cpu_time_total
    names = Counter(e.name for e in top)
    return {"ops_per_step": len(top) / T, "wall_us": wall_us, "us": us, "names": names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--embed", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    T, B = args.length, args.batch
    layer = LSTMLayer(args.embed, args.hidden, False, "scan")
    x = torch.randn(T, B, args.embed, requires_grad=True)
    lengths = torch.full((B,), T)
    for _ in range(2):  # warm-up: first-call allocation and kernel selection
        layer(x, lengths)[0].sum().backward()
    holder = {}

    def forward() -> None:
        holder["out"] = layer(x, lengths)[0].sum()

    results = {"forward": profiled(forward, T), "backward": profiled(
        lambda: holder["out"].backward(), T)}
    print(f"# B={B} E={args.embed} H={args.hidden} T={T} threads={torch.get_num_threads()}")
    print("| pass | ops/step | wall ms | GEMM | pointwise | other ops | outside ops |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        wall = r["wall_us"]
        shares = [r["us"][k] / wall for k in ("gemm", "pointwise", "other")]
        print(f"| {name} | {r['ops_per_step']:.1f} | {wall / 1e3:.1f} | "
              + " | ".join(f"{s:.0%}" for s in shares) + f" | {1 - sum(shares):.0%} |")
    for name, r in results.items():
        print(f"# {name} ops per step: " + ", ".join(
            f"{n.removeprefix('aten::')} {c / T:.2f}" for n, c in r["names"].most_common()))


if __name__ == "__main__":
    main()
