"""The hand-written LSTM (cell -> layer -> stack), its fused paths, and the classifier."""
