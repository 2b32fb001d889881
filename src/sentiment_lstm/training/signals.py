"""The signal flag that makes training stop after the current step and save."""

import signal


class StopSignal:
    """SIGINT / SIGTERM set a flag; training stops after the current step and saves."""

    def __init__(self):
        self.received: int | None = None

    def __enter__(self) -> "StopSignal":
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
