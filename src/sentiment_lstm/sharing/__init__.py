"""Export a checkpoint for serving (ONNX) and for sharing (a Hugging Face Hub folder)."""
