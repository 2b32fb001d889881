"""TensorBoard tracking, figures, and comparison tables."""
