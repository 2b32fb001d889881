"""Forward+backward time of the custom LSTM against nn.LSTM (padded input) and nn.RNN;
custom_lstm is the fused path (FusedLSTMScan), custom_lstm_autograd the plain autograd loop.

    python -m sentiment_lstm.bench                          # B=64 E=128 H=256, T=128,256,512
    python -m sentiment_lstm.bench --layers 2 --bidirectional --json bench.json
    python -m sentiment_lstm.bench --bf16                   # also bf16 autocast
    python -m sentiment_lstm.bench --data-path aclImdb_v1.tar.gz --lengths   # data prep only
    python -m sentiment_lstm.bench --data-path aclImdb_v1.tar.gz --predict outputs/runs/<run>
    python -m sentiment_lstm.bench --data-path aclImdb_v1.tar.gz --lengths --loop --reuse-memory

Candidates run interleaved in one process after a warm-up, so machine noise hits them alike;
the ratio to nn.LSTM is the number to compare across machines. CUDA is timed with events.
"""

import argparse
import itertools
import json
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor, nn

from sentiment_lstm.batching import BucketBatchSampler, collate, fed_lengths, padding_fraction
from sentiment_lstm.cells import LSTM
from sentiment_lstm.config import DataConfig, ModelConfig
from sentiment_lstm.memory import reuse_freed_memory
from sentiment_lstm.models import SentimentClassifier
from sentiment_lstm.tokenizer import prepare


def candidates(E: int, H: int, layers: int, bidirectional: bool) -> dict[str, nn.Module]:
    kw = dict(num_layers=layers, bidirectional=bidirectional)
    fused = LSTM(E, H, **kw)
    autograd = LSTM(E, H, **kw, fused=False)
    autograd.load_state_dict(fused.state_dict())
    return {"custom_lstm": fused, "custom_lstm_autograd": autograd,
            "nn.LSTM": nn.LSTM(E, H, **kw), "nn.RNN": nn.RNN(E, H, **kw)}


def fwd_bwd(model: nn.Module, x: Tensor, lengths: Tensor,
            bf16: bool = False) -> Callable[[], None]:
    def run() -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x, lengths)[0] if isinstance(model, LSTM) else model(x)[0]
        out.float().sum().backward()
    return run


def timed(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(device: torch.device, B: int, E: int, H: int, T: int, layers: int,
          bidirectional: bool, repeats: int, warmup: int, bf16: bool = False) -> list[dict]:
    torch.manual_seed(0)
    models = {k: m.to(device) for k, m in candidates(E, H, layers, bidirectional).items()}
    x = torch.randn(T, B, E, device=device, requires_grad=True)
    lengths = torch.full((B,), T, device=device)
    runs = {k: fwd_bwd(m, x, lengths) for k, m in models.items()}
    if bf16:  # trainer.precision=bf16: autocast around the forward (oneDNN has no CPU bf16 LSTM)
        runs |= {f"{k}+bf16": fwd_bwd(models[k], x, lengths, bf16=True)
                 for k in ("custom_lstm", "nn.LSTM", "nn.RNN")
                 if not (k == "nn.LSTM" and device.type == "cpu")}
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):  # interleaved: noise hits every candidate alike
        for k, run in runs.items():
            times[k].append(timed(run, device))
    ref = statistics.median(times["nn.LSTM"])
    rows = []
    for k, ts in times.items():
        t = statistics.median(ts)
        rows.append({"device": device.type, "candidate": k, "B": B, "E": E, "H": H, "T": T,
                     "layers": layers, "bidirectional": bidirectional, "seconds": t,
                     "tokens_per_s": B * T / t, "ratio_to_nn_lstm": t / ref})
    return rows


def bench_data(path: str) -> tuple[dict, tuple]:
    """Cold (read, train tokenizer, encode) and warm (cache hit) preparation of full IMDB with
    the default data settings, and the padding left by length bucketing."""
    with tempfile.TemporaryDirectory() as cache:
        cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {"path": path, "cache_dir": cache})
        seconds = []
        for _ in range(2):
            t = time.perf_counter()
            tok, splits = prepare(cfg)
            seconds.append(time.perf_counter() - t)
    sampler = BucketBatchSampler(fed_lengths(splits["train"].lengths, cfg.max_len, cfg.truncate),
                                 cfg.batch_size, cfg.pool_batches)
    report = {"prepare_cold_s": seconds[0], "prepare_warm_s": seconds[1],
              "padding_fraction": padding_fraction(splits["train"], sampler, cfg.max_len,
                                                   cfg.truncate)}
    return report, (cfg, tok, splits["train"], sampler)


def bench_loop(cfg, tok, train, sampler, n_batches: int = 30) -> dict:
    """Training-loop tokens/s (collate, step, optimizer, clipping) against the model's own
    forward+backward tokens/s on the same real IMDB batches, default model settings; and the
    model's forward+backward with the custom LSTM's autograd loop (model.fused=false)."""
    index = list(itertools.islice(sampler, n_batches + 1))
    model_args = OmegaConf.to_container(OmegaConf.structured(ModelConfig), enum_to_str=True)
    model = SentimentClassifier(vocab_size=tok.get_vocab_size(), **model_args)
    plain = SentimentClassifier(vocab_size=tok.get_vocab_size(), **(model_args | {"fused": False}))
    plain.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # as train.py
    ready = [collate(train, i, cfg.max_len, cfg.truncate) for i in index]

    def pure(net: SentimentClassifier = model) -> None:
        for b in ready[1:]:
            F.cross_entropy(net(b.tokens, b.lengths), b.labels).backward()

    def loop() -> None:
        for i in index[1:]:
            b = collate(train, i, cfg.max_len, cfg.truncate)
            logits = model(b.tokens, b.lengths)
            loss = F.cross_entropy(logits, b.labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss.item(), (logits.argmax(1) == b.labels).sum().item()

    for net in (model, plain):
        F.cross_entropy(net(ready[0].tokens, ready[0].lengths), ready[0].labels).backward()
    tokens = sum(int(b.lengths.sum()) for b in ready[1:])
    cpu = torch.device("cpu")
    pure_s = timed(pure, cpu)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    loop_s = timed(loop, cpu)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    plain_s = timed(lambda: pure(plain), cpu)
    return {"pure_tokens_per_s": tokens / pure_s, "loop_tokens_per_s": tokens / loop_s,
            "loop_over_pure": pure_s / loop_s, "pure_autograd_lstm_tokens_per_s": tokens / plain_s,
            "fused_speedup": plain_s / pure_s, "loop_page_faults_per_step": faults / n_batches}


def bench_predict(checkpoint: str, path: str, n: int = 5000) -> dict:
    """Batch-mode predict throughput (tokenizing included) on n IMDB test reviews."""
    from pathlib import Path

    from sentiment_lstm import data
    from sentiment_lstm.predict import load_classifier

    texts = data.read(data.local_source(Path(path)))["test"][0]
    texts = texts[:: max(1, len(texts) // n)][:n]  # both labels, every length
    clf = load_classifier(checkpoint, "cpu")
    clf.predict(texts[:256])  # warm-up
    t = time.perf_counter()
    clf.predict(texts)
    seconds = time.perf_counter() - t
    return {"predict_reviews": len(texts), "predict_s": seconds,
            "predict_reviews_per_s": len(texts) / seconds}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--embed", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--lengths", type=int, nargs="*", default=[128, 256, 512])
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    ap.add_argument("--bf16", action="store_true", help="also time bf16 autocast")
    ap.add_argument("--data-path", help="also time data preparation of this IMDB tarball")
    ap.add_argument("--loop", action="store_true",
                    help="with --data-path: training-loop against pure model tokens/s")
    ap.add_argument("--reuse-memory", action="store_true",
                    help="keep freed memory for reuse, as training does (memory.py)")
    ap.add_argument("--predict", metavar="CHECKPOINT",
                    help="with --data-path: predict throughput of this checkpoint")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    if args.reuse_memory:  # process-wide and for good: compare it across processes
        reuse_freed_memory()
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    machine = {"cpu": platform.processor() or platform.machine(),
               "threads": torch.get_num_threads(), "torch": torch.__version__,
               "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
               "reuse_memory": args.reuse_memory}
    print(f"# {machine}")
    print(f"{'device':>6} {'T':>5} {'candidate':>25} {'seconds':>9} {'tokens/s':>10} "
          f"{'x nn.LSTM':>9}")
    rows = []
    for device in devices:
        for T in args.lengths:
            for row in bench(device, args.batch, args.embed, args.hidden, T, args.layers,
                             args.bidirectional, args.repeats, args.warmup, args.bf16):
                rows.append(row)
                print(f"{row['device']:>6} {T:>5} {row['candidate']:>25} {row['seconds']:>9.4f} "
                      f"{row['tokens_per_s']:>10.0f} {row['ratio_to_nn_lstm']:>9.2f}")
    report = {"machine": machine, "rows": rows}
    if args.data_path:
        report["data"], prepared = bench_data(args.data_path)
        if args.loop:
            report["data"] |= bench_loop(*prepared)
        if args.predict:
            report["data"] |= bench_predict(args.predict, args.data_path)
        print(" ".join(f"{k} {v:.3f}" for k, v in report["data"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
