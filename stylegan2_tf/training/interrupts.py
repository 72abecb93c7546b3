"""Ctrl-C and SIGTERM that end a training loop between two steps instead of inside one."""

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DeferredInterrupts:
    """Within `with`, the first SIGINT / SIGTERM is recorded instead of raised.

    The loop checks `requested` after each step, writes its snapshot and calls
    `stop()`, which raises what the signal would have raised: KeyboardInterrupt
    for Ctrl-C, SystemExit(128 + signum) for SIGTERM (exit codes 130 / 143). A
    second signal raises at once. Disabled, or outside the main thread (where
    Python cannot set handlers), signals keep their usual effect.
    """

    def __init__(self, log, enabled=True):
        self.log = log
        self.enabled = enabled
        self.signum = None
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._record) for signum in SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _record(self, signum, frame):
        if self.requested:
            self.__exit__()
            self._raise(signum)
        self.signum = signum
        self.log(f"{signal.Signals(signum).name}: finishing this step and writing a snapshot "
                 "(interrupt again to stop at once)")

    def stop(self):
        """Raises the recorded interrupt."""
        self.__exit__()
        self._raise(self.signum)

    @staticmethod
    def _raise(signum):
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)
