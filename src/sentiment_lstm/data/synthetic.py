"""The controlled long-range task: one cue word decides the label, distractors follow."""

import random

from sentiment_lstm.data.types import Texts

CUES = (("awful", "terrible", "boring", "hated", "worst"),  # label 0
        ("great", "wonderful", "superb", "loved", "excellent"))  # label 1
DISTRACTORS = ("the", "a", "movie", "film", "plot", "actor", "scene", "story", "it", "was",
               "and", "of", "to", "in", "that", "this", "with", "for", "as", "on", "its", "he",
               "she", "they", "one", "two", "then", "some", "time", "so", "just")


def synthetic_long(reviews: int, min_distance: int, max_distance: int, noise: float,
                   seed: int) -> dict[str, Texts]:
    """The "I .... I .... I like the movie" case made controllable: each sequence is a cue
    word that decides the label, then a uniform number of distractor words in
    [min_distance, max_distance]: neutral words, and with probability `noise` a cue word of
    random sentiment that must not override the first. Length buckets are distance buckets."""
    rng = random.Random(seed)

    def distractor() -> str:
        return rng.choice(CUES[rng.randrange(2)]) if rng.random() < noise else \
            rng.choice(DISTRACTORS)

    out = {}
    for split in ("train", "test"):
        labels = [i % 2 for i in range(reviews)]
        texts = [" ".join([rng.choice(CUES[y])] + [
            distractor() for _ in range(rng.randint(min_distance, max_distance))])
            for y in labels]
        out[split] = (texts, labels)
    return out
