"""Speed of the model's paths, side by side in one process: forward+backward of the custom
LSTM (fused scan, autograd loop) against nn.LSTM and nn.RNN, data preparation, and the
training loop against the bare model."""

import itertools
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

from sentiment_lstm.config import DataConfig, ModelConfig
from sentiment_lstm.data.batching import BucketBatchSampler, collate, fed_lengths, padding_fraction
from sentiment_lstm.data.tokenizer import prepare
from sentiment_lstm.model.cells import LSTM
from sentiment_lstm.model.classifier import SentimentClassifier

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # what oneDNN/MKL pick


def machine_info() -> dict:
    """What a reader needs to compare rows across machines: the CPU model, the ISA flags that
    decide which GEMM kernels run, and torch's intra-op threads."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: no flags to read
        pass
    return {"cpu": model or platform.processor() or platform.machine(),
            "isa": [f for f in ISA_FLAGS if f in flags], "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def recurrent_flops(candidate: str, B: int, E: int, H: int, T: int, layers: int,
                    bidirectional: bool) -> float:
    """Forward+backward FLOPs of a recurrent stack, counting the GEMMs only (pointwise work is
    O(T*B*H), small beside them). One direction of one layer with input size I and G gate
    blocks (4 for an LSTM, 1 for an RNN) does forward

        2 * T * B * (I + H) * G * H      (input and recurrent GEMMs, multiply-add = 2)

    and backward twice that (gradient by input/hidden and by weight), so 3x forward in all.
    Layer 0 has I = E; later layers take both directions' outputs, I = H * directions."""
    G = 1 if candidate.startswith("nn.RNN") else 4
    dirs = 2 if bidirectional else 1
    total = 0.0
    for layer in range(layers):
        n_in = E if layer == 0 else H * dirs  # the formula's I
        total += dirs * 3 * 2 * T * B * (n_in + H) * G * H
    return total


def candidates(E: int, H: int, layers: int, bidirectional: bool,
               device: torch.device) -> dict[str, nn.Module]:
    """custom_lstm takes model.kernel=auto: the C++ scan on CPU, Triton on CUDA;
    custom_lstm_scan is the Python scan, custom_lstm_autograd the autograd loop."""
    kw = dict(num_layers=layers, bidirectional=bidirectional)
    models = {"custom_lstm": LSTM(E, H, **kw), "custom_lstm_autograd": LSTM(E, H, **kw,
                                                                             kernel="loop")}
    models["custom_lstm_scan"] = LSTM(E, H, **kw, kernel="scan")
    for m in models.values():
        m.load_state_dict(models["custom_lstm"].state_dict())
    return models | {"nn.LSTM": nn.LSTM(E, H, **kw), "nn.RNN": nn.RNN(E, H, **kw)}


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
    models = {k: m.to(device) for k, m in candidates(E, H, layers, bidirectional, device).items()}
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
        flops = recurrent_flops(k, B, E, H, T, layers, bidirectional)
        rows.append({"device": device.type, "candidate": k, "B": B, "E": E, "H": H, "T": T,
                     "layers": layers, "bidirectional": bidirectional, "seconds": t,
                     "tokens_per_s": B * T / t, "gflop_per_s": flops / t / 1e9,
                     "ratio_to_nn_lstm": t / ref})
    return rows


def bench_data(path: str) -> tuple[dict, tuple]:
    """Cold (read, train tokenizer, encode) and warm (cache hit) preparation of full IMDB with
    the default data settings, and the padding left by length bucketing."""
    with tempfile.TemporaryDirectory() as cache:
        cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {"path": path, "cache_dir": cache})
        seconds = []
        for _ in range(2):
            t = time.perf_counter()
            tok, splits, _ = prepare(cfg)
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
    model's forward+backward with the custom LSTM's autograd loop (model.kernel=loop)."""
    index = list(itertools.islice(sampler, n_batches + 1))
    model_args = OmegaConf.to_container(OmegaConf.structured(ModelConfig), enum_to_str=True)
    model = SentimentClassifier(vocab_size=tok.get_vocab_size(), **model_args)
    plain = SentimentClassifier(vocab_size=tok.get_vocab_size(),
                                **(model_args | {"kernel": "loop"}))
    plain.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # as training does
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
