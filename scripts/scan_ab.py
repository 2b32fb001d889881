"""The fused CPU scan of the working tree against scan.py at a git revision, interleaved in one
process (so machine load hits both alike), with nn.LSTM as the common yardstick; and whether
the two give bit-identical outputs and gradients.

    python scripts/scan_ab.py --before HEAD --threads 1                    # B=64 E=128 H=256
    python scripts/scan_ab.py --before HEAD --hidden 128 --batch 128 --bidirectional
"""

import argparse
import statistics
import subprocess
import types

import torch
from torch import Tensor, nn

from sentiment_lstm.evaluation.speed import fwd_bwd, timed
from sentiment_lstm.model import cells


def scan_at(rev: str) -> type:
    src = subprocess.run(["git", "show", f"{rev}:src/sentiment_lstm/model/scan.py"],
                         capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("scan_at_rev")
    exec(compile(src, f"{rev}:scan.py", "exec"), module.__dict__)
    return module.FusedLSTMScan


class WithScan(nn.Module):
    """The LSTM, run with another FusedLSTMScan in place of the current one."""

    def __init__(self, lstm: cells.LSTM, scan: type):
        super().__init__()
        self.lstm, self.scan = lstm, scan

    def forward(self, x: Tensor, lengths: Tensor):
        current, cells.FusedLSTMScan = cells.FusedLSTMScan, self.scan
        try:
            return self.lstm(x, lengths)
        finally:
            cells.FusedLSTMScan = current


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="HEAD")
    for name, default in (("batch", 64), ("embed", 128), ("hidden", 256), ("length", 256),
                          ("repeats", 7), ("warmup", 2), ("threads", 1)):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--bidirectional", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    T, B, E, H = args.length, args.batch, args.embed, args.hidden
    after = cells.LSTM(E, H, bidirectional=args.bidirectional)
    before = cells.LSTM(E, H, bidirectional=args.bidirectional)
    before.load_state_dict(after.state_dict())
    models = {"before": WithScan(before, scan_at(args.before)), "after": after,
              "nn.LSTM": nn.LSTM(E, H, bidirectional=args.bidirectional)}
    x = torch.randn(T, B, E, requires_grad=True)
    lengths = torch.full((B,), T)
    lengths[::3] = T // 2  # some padding, so the masked branch runs too
    grads = {}
    for k in ("before", "after"):
        x.grad = None
        out = models[k](x, lengths)[0]
        out.sum().backward()
        grads[k] = [out.detach(), x.grad.clone(), *(p.grad.clone() for p in
                                                     models[k].parameters())]
    identical = all(torch.equal(a, b) for a, b in zip(grads["before"], grads["after"]))
    runs = {k: (lambda m=m: m(x, lengths)[0].sum().backward()) for k, m in models.items()
            if k != "nn.LSTM"} | {"nn.LSTM": fwd_bwd(models["nn.LSTM"], x, lengths)}
    for _ in range(args.warmup):
        for run in runs.values():
            run()
    times = {k: [] for k in runs}
    cpu = torch.device("cpu")
    for _ in range(args.repeats):  # interleaved: load hits every candidate alike
        for k, run in runs.items():
            times[k].append(timed(run, cpu))
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}  # least disturbed by other jobs
    print(f"# B={B} E={E} H={H} T={T} bidirectional={args.bidirectional} "
          f"threads={torch.get_num_threads()} repeats={args.repeats}; before = {args.before}")
    for k, t in med.items():
        print(f"{k:>8} median {t:8.4f} s  x nn.LSTM {t / med['nn.LSTM']:.3f}   "
              f"min {low[k]:8.4f} s  x nn.LSTM {low[k] / low['nn.LSTM']:.3f}")
    print(f"after / before: median {med['after'] / med['before']:.3f}, "
          f"min {low['after'] / low['before']:.3f}; "
          f"outputs and gradients bit-identical: {identical}")


if __name__ == "__main__":
    main()
