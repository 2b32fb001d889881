import json
import subprocess
import sys

# A child process runs training steps of the custom LSTM on batches of changing length, as
# train.py does, with freed memory kept for reuse, and prints the page faults of each step;
# mallopt is process-wide, hence the child. Its buffers are over 32 MB, where glibc's malloc
# by default maps and unmaps them afresh, or takes them from a heap it trims: how many pages a
# default step faults depends on the heap's state (measured without reuse, 6 runs: 2 to 10 of
# the 12 steps faulted over 4 MB in 5 of them, 35,000 to 108,000 pages in all; in one, 1 step
# and 1,090 pages), so the test holds the steady state with reuse to a bound instead of a
# comparison: once the heap has settled, a step takes no fresh memory.
# The child opts out of transparent huge pages, so that a fault is one 4 KB page on every
# machine: where the kernel's THP setting is "always", 2 MB pages make a fresh mapping's
# faults few (509 per step, measured) while it is still zeroed anew each step.
CHILD = """
import ctypes, json, resource, torch
assert ctypes.CDLL(None, use_errno=True).prctl(41, 1, 0, 0, 0) == 0  # PR_SET_THP_DISABLE
import torch.nn.functional as F
from sentiment_lstm.runtime.memory import reuse_freed_memory
from sentiment_lstm.model.classifier import SentimentClassifier
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
# Not measured: oneDNN makes (and keeps) a kernel for each new shape, and the reused heap
# settles in the second pass (in its first, one step faulted 1,280-14,400 pages, 5 runs).
for T in lengths * 2:
    step(T)
faults = []
for T in lengths * 2:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step(T)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def test_training_steps_reuse_freed_memory_instead_of_faulting_it_in():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True)
    faults = json.loads(out.stdout)
    # Measured: no step faulted over 4 MB (a 39 MB gate buffer alone is ~9,600 pages of 4 KB),
    # or in a third of runs one, the heap settling late (up to 7,000 pages).
    assert sum(pages > 1024 for pages in faults) <= 1, faults


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
