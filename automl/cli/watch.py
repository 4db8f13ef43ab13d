"""``automl show NAME --watch``: the experiment's view, drawn again as it changes, until the
experiment is no longer running (or the run recording it is gone)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from rich.console import Console

from automl.store import ExperimentRecord, ExperimentStatus, Store


def watch(console: Console, store: Store, name: str,
          render: Callable[[Console, ExperimentRecord], None], interval_s: float) -> None:
    """Read experiment ``name`` every ``interval_s`` and draw it with ``render`` whenever what it
    draws changed: on a terminal the screen is cleared first; elsewhere (a file, a pipe) each
    new view follows the last under a line with the time. Returns once the experiment is no
    longer running, or its run has no live lease (its driver was killed)."""
    from automl.store.lease import is_live

    shown = None
    while True:
        exp = store.experiment(name)
        running = exp.status == ExperimentStatus.RUNNING
        # the lease is read after the record: a run that ends in between has ended in both
        gone = running and not is_live(store, name)
        with console.capture() as captured:
            render(console, exp)
        view = captured.get()
        if view != shown:
            if console.is_terminal:
                console.clear()
            elif shown is not None:
                console.rule(f"{datetime.now():%H:%M:%S}", style="dim")
            console.file.write(view)
            console.file.flush()
            shown = view
        if not running:
            return
        if gone:
            console.print(f"the run of '{name}' is gone (no live process holds it): it stays "
                          f"'running' until it is resumed (automl run FILE --resume)",
                          soft_wrap=True, markup=False)
            return
        if console.is_terminal:
            console.print(f"[dim]watching: every {interval_s:g}s until it ends (Ctrl-C "
                          "stops)[/dim]", end="\r")
        time.sleep(interval_s)
