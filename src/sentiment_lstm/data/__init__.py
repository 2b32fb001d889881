"""IMDB and other text sources, the synthetic long-range task, tokenizer, batching."""
