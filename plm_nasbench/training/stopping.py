"""Stopping a resumable training on a signal without losing what it trained since its last save.

A cluster pre-empts a job with SIGTERM (SLURM, Kubernetes and Ray do, and give it a grace period before
SIGKILL), a person stops a run with Ctrl-C (SIGINT). While a training that saves its state runs, the
first of these signals is held: the loop saves its state after the step in flight (about a second for
MiniLM) and then ends the process as the signal would have. A second signal ends it at once. Handlers can only be
set in the main thread; elsewhere (a thread pool) signals keep their usual effect.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

#: The signals held while a resumable training runs.
HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
    """A context in which SIGTERM and SIGINT ask the training loop to save and stop instead of ending it mid-step.

    ``received`` is the number of the first signal that came (None while none did); the loop saves its state and
    calls :meth:`stop`, which ends the process the way that signal would have (KeyboardInterrupt for SIGINT, the
    previous handler's effect for SIGTERM: by default the process ends with status 143). With ``active=False``,
    or outside the main thread, the context changes nothing.
    """

    def __init__(self, active: bool = True) -> None:
        self.active = active
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if self.active and threading.current_thread() is threading.main_thread():
            for signum in HELD_SIGNALS:
                previous = signal.getsignal(signum)
                if previous is not None:  # None: a handler set outside Python, which could not be put back
                    self._previous[signum] = signal.signal(signum, self._hold)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._restore()
        if self.received is not None and kind is None:  # came after the loop's last chance to save: act on it now
            signal.raise_signal(self.received)

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # asked twice: stop now
            self.stop(signum)
            return
        self.received = signum
        print(f"{signal.Signals(signum).name} received: saving the training state after this step, then stopping "
              "(send it again to stop at once and lose what was trained since the last save)", file=sys.stderr,
              flush=True)

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def stop(self, signum: int | None = None) -> None:
        """End as the received signal (or ``signum``) would have without this context."""
        self._restore()
        signum = signum or self.received
        self.received = None
        if signum is not None:
            signal.raise_signal(signum)
