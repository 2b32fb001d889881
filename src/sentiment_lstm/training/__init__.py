"""Training as named steps over a named state: trainer, schedule, resume, signals."""
