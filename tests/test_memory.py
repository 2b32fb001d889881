import subprocess
import sys

# A child process runs training steps of the custom LSTM on batches of changing length, as
# train.py does, and prints the page faults per step; mallopt is process-wide, hence the child.
# Its buffers are over 32 MB, where glibc's malloc by default maps and unmaps them afresh.
# The child opts out of transparent huge pages, so that a fault is one 4 KB page on every
# machine: where the kernel's THP setting is "always", 2 MB pages make a fresh mapping's
# faults few (509 per step, measured) while it is still zeroed anew each step.
CHILD = """
import ctypes, resource, sys, torch
assert ctypes.CDLL(None, use_errno=True).prctl(41, 1, 0, 0, 0) == 0  # PR_SET_THP_DISABLE
import torch.nn.functional as F
from sentiment_lstm.runtime.memory import reuse_freed_memory
from sentiment_lstm.model.classifier import SentimentClassifier
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
torch.manual_seed(0)
torch.set_num_threads(1)  # faults, not speed: and 2 threads beside a busy core crawl
torch.set_flush_denormal(True)  # speed only: the random model's gradients underflow
model = SentimentClassifier(vocab_size=100, embed_dim=32, hidden_size=128, bidirectional=True)

def step(T):
    tokens = torch.randint(1, 100, (64, T))
    logits = model(tokens, torch.full((64,), T))
    F.cross_entropy(logits, torch.randint(0, 2, (64,))).backward()

step(320)  # the longest batch first: the heap then has room for the others
lengths = [300, 200, 250, 280, 220, 260]
for T in lengths:  # oneDNN makes (and keeps) a kernel for each new shape: once, not measured
    step(T)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for T in lengths * 2:
    step(T)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / len(lengths) / 2)
"""


def faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         check=True)
    return float(out.stdout)


def test_training_steps_reuse_freed_memory_instead_of_faulting_it_in():
    default, reuse = faults_per_step("default"), faults_per_step("reuse")
    assert default > 2000  # a 39 MB gate buffer alone is ~9,600 pages of 4 KB
    assert reuse < default / 5


# A child scores one batch of the longest reviews, then a split of 40 batches of growing
# length, with freed memory kept for reuse, and prints how much each pass added to its
# resident memory. Sorted shortest first, each batch would need more room than any freed
# before it and take new memory (4.3x the one batch's, measured); longest first, the others
# fit in it.
EVAL_CHILD = """
import torch
from sentiment_lstm.data.tokenizer import EncodedSplit
from sentiment_lstm.evaluation.scoring import EVAL_BATCH, evaluate_split
from sentiment_lstm.model.classifier import SentimentClassifier
from sentiment_lstm.runtime.memory import reuse_freed_memory
assert reuse_freed_memory()
torch.manual_seed(0)
torch.set_num_threads(1)

def split_of(lengths):
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    ids = torch.randint(1, 100, (int(offsets[-1]),), dtype=torch.int32)
    return EncodedSplit(ids, offsets, torch.zeros(len(lengths), dtype=torch.long))

def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

model = SentimentClassifier(vocab_size=100, embed_dim=32, hidden_size=64, bidirectional=True)
lengths = torch.arange(100, 500, 10)
cpu = torch.device("cpu")
start = resident_mb()
evaluate_split(model, split_of(lengths[-1:].repeat(EVAL_BATCH)), 10_000, "head", cpu)
longest = resident_mb()
evaluate_split(model, split_of(lengths.repeat_interleave(EVAL_BATCH)), 10_000, "head", cpu)
print(longest - start, resident_mb() - longest)
"""


def test_scoring_batches_of_growing_length_reuses_the_longest_ones_memory():
    out = subprocess.run([sys.executable, "-c", EVAL_CHILD], capture_output=True, text=True,
                         check=True)
    longest_mb, rest_mb = map(float, out.stdout.split())
    assert rest_mb < longest_mb
