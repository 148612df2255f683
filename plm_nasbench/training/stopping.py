"""Stopping a resumable training on a signal without losing what it trained since its last save.

A cluster pre-empts a job with SIGTERM (SLURM, Kubernetes and Ray do, and give it a grace period before
SIGKILL), a person stops a run with Ctrl-C (SIGINT). While a training that saves its state runs, the
first of these signals is held: during a training step the loop saves its state after that step, during an
epoch's evaluation it abandons the evaluation and saves the finished epoch's training (a resumed run evaluates
it again), and then the process ends as the signal would have. Either takes about a second for MiniLM, plus
one step or one evaluation batch. A second signal ends the process at once. A signal the process ignores
(``SIG_IGN``, as for SIGINT in a job started in the background) stays ignored. Handlers can only be set in the
main thread; elsewhere (a thread pool) signals keep their usual effect.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

#: The signals held while a resumable training runs.
HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(Exception):
    """A held signal came during a part of the run that :meth:`StopRequests.abandoning` lets it cut short."""


class StopRequests:
    """A context in which SIGTERM and SIGINT ask the training loop to save and stop instead of ending it mid-step.

    ``received`` is the number of the first signal that came (None while none did); the loop saves its state and
    calls :meth:`stop`, which ends the process the way that signal would have (KeyboardInterrupt for SIGINT, the
    previous handler's effect for SIGTERM: by default the process ends with status 143). Inside
    :meth:`abandoning` a signal raises :class:`StopRequested` at once instead. With ``active=False``, or outside
    the main thread, the context changes nothing.
    """

    def __init__(self, active: bool = True) -> None:
        self.active = active
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._abandon = False

    def __enter__(self) -> StopRequests:
        self._hold_signals()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._restore()
        if self.received is not None and kind is None:  # came after the loop's last chance to save: act on it now
            signal.raise_signal(self.received)

    def _hold_signals(self) -> None:
        if not self.active or threading.current_thread() is not threading.main_thread():
            return
        for signum in HELD_SIGNALS:
            previous = signal.getsignal(signum)
            # None: a handler set outside Python, which could not be put back; SIG_IGN: the process ignores it
            if previous is not None and previous != signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._hold)

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # asked twice: stop now
            self.stop(signum)
            return
        self.received = signum
        print(f"{signal.Signals(signum).name} received: saving the training state, then stopping (send it again "
              "to stop at once and lose what was trained since the last save)", file=sys.stderr, flush=True)
        if self._abandon:
            raise StopRequested(signal.Signals(signum).name)

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    @contextmanager
    def abandoning(self) -> Iterator[None]:
        """A part of the run (an evaluation) that a held signal cuts short: it raises :class:`StopRequested`, at
        once if one came before."""
        if self.received is not None:
            raise StopRequested(signal.Signals(self.received).name)
        self._abandon = True
        try:
            yield
        finally:
            self._abandon = False

    def stop(self, signum: int | None = None) -> None:
        """End as the received signal (or ``signum``) would have without this context. Where the handler before
        it lets the process go on (a Python handler that returns), signals are held again and the run goes on."""
        signum = signum or self.received
        self._restore()
        self.received = None
        if signum is not None:
            signal.raise_signal(signum)
        self._hold_signals()
