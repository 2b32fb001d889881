"""Scoring, metrics, per-review predictions, gate diagnostics, speed benchmarks."""
