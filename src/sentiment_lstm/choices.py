"""The closed sets of values config keys take: Hydra checks an override against them."""

from enum import Enum


class Choice(str, Enum):
    def __str__(self) -> str:  # "lstm", not "Encoder.lstm", in paths and interpolations
        return self.value


class Source(Choice):
    auto = "auto"  # local copy first, then the hub, then the official tarball
    local = "local"
    hub = "hub"
    download = "download"
    synthetic = "synthetic"  # generated long-range task (data=synthetic_long), no IMDB at all
    files = "files"  # labeled CSV / TSV / JSONL files (data=files)


class FileFormat(Choice):
    auto = "auto"  # from the extension: .csv, .tsv, .jsonl
    csv = "csv"
    tsv = "tsv"  # tab-separated without quoting, as GLUE ships them
    jsonl = "jsonl"


class ImdbLabel(Choice):  # what an IMDB review's class is
    sentiment = "sentiment"  # neg / pos
    rating = "rating"  # its star rating, 1-4 or 7-10 (data=imdb_ratings): 8 classes


class TokenizerModel(Choice):
    word = "word"
    bpe = "bpe"


class Truncate(Choice):  # what a review longer than data.max_len keeps
    head = "head"
    tail = "tail"
    head_tail = "head_tail"  # its first and last max_len/2 tokens
    none = "none"  # all of it: data.max_len is ignored


class Encoder(Choice):
    lstm = "lstm"  # the hand-written cell in cells.py
    rnn = "rnn"  # nn.RNN (tanh)
    torch_lstm = "torch_lstm"  # nn.LSTM, the speed and correctness reference


class LSTMVariant(Choice):  # the custom LSTM's gate ablations: model/variants.py
    vanilla = "vanilla"  # i, f, o gates, tanh candidate and output activation
    no_input_gate = "no_input_gate"  # i = 1
    no_forget_gate = "no_forget_gate"  # f = 1
    no_output_gate = "no_output_gate"  # o = 1
    coupled = "coupled"  # i = 1 - f
    forget_only = "forget_only"  # i = 1, o = 1 (Johnson & Zhang 2016)
    linear_input = "linear_input"  # g without tanh
    sigmoid_candidate = "sigmoid_candidate"  # g = sigmoid(.)
    linear_output = "linear_output"  # h = o * c


class Kernel(Choice):  # the custom LSTM's path over time, all of them computing the same
    auto = "auto"  # triton on CUDA where Triton is importable, else scan
    triton = "triton"  # fused Triton kernels, forward and backward (model/triton_scan.py)
    scan = "scan"  # hand-written forward and backward in torch ops (model/scan.py)
    loop = "loop"  # the autograd loop over LSTMCell.step


class Precision(Choice):
    fp32 = "fp32"
    bf16 = "bf16"  # autocast to bfloat16 (CUDA; CPUs with bf16 support)


class Pooling(Choice):
    last = "last"
    max = "max"
    mean = "mean"
    max_mean = "max_mean"  # both, concatenated


class Init(Choice):  # recurrent weights
    default = "default"  # uniform(+-1/sqrt(H)), as nn.LSTM / nn.RNN
    orthogonal = "orthogonal"  # each gate's H x H block orthogonal
