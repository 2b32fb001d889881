"""Where and how computation runs: device and autocast, torchrun, memory reuse."""
