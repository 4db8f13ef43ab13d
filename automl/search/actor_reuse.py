"""Keep concurrency when Ray Tune reuses actors: never throw away an actor that is already starting.

With ``reuse_actors=True`` Ray Tune (checked on 2.9 to 2.60) gives a trial that waits for its new
actor any cached actor that frees up first, and removes the new actor, even when that actor already
holds its resources and its worker process is starting. That is harmless while idle workers are
pooled, but after a worker process dies (a trial killed, out of memory) every new actor needs a new
process, which takes longer than a short trial. Then each finishing trial's actor goes to the
waiting trial, the starting process is killed, a new one is requested for the next trial, and so
on: from the first lost worker to the end of the search only one trial runs at a time
(``max_concurrent: 2`` measured as 1 in every reproduction, issue 10 item 6).

:func:`install` wraps ``TuneController._maybe_reuse_cached_actor`` so that a trial whose actor has
its resources and is starting keeps that actor; the cached actor stays in Tune's cache for the next
trial the searcher suggests, or is flushed by Tune once nothing is staged. A trial whose actor still
waits for resources is left to Tune's own logic (reusing then frees a resource request, not a
starting process), so a cached actor never sits on resources that a waiting actor needs.

The patch reads private attributes of Tune's controller and actor manager. If a Ray release renames them the
wrapper falls back to Tune's behaviour unchanged; ``tests/test_actor_reuse.py`` then fails on the
measured concurrency, not silently.
"""

from __future__ import annotations

import functools
from typing import Any

_MARK = "_automl_keeps_starting_actors"


def install() -> bool:
    """Patch Tune's controller in this process (idempotent); False if this Ray has no such method."""
    try:
        from ray.tune.execution.tune_controller import TuneController
    except ImportError:  # pragma: no cover - a Ray without the controller module
        return False
    original = getattr(TuneController, "_maybe_reuse_cached_actor", None)
    if original is None:
        return False
    if getattr(original, _MARK, False):
        return True

    @functools.wraps(original)
    def _maybe_reuse_cached_actor(self: Any, trial: Any) -> bool:
        actor = getattr(self, "_trial_to_actor", {}).get(trial)
        if actor is not None and trial not in getattr(self, "_resetting_trials", ()) \
                and is_starting(self, actor):
            return False
        return original(self, trial)

    setattr(_maybe_reuse_cached_actor, _MARK, True)
    TuneController._maybe_reuse_cached_actor = _maybe_reuse_cached_actor  # type: ignore[method-assign]
    return True


def is_starting(controller: Any, tracked_actor: Any) -> bool:
    """Whether the actor holds its resources and was created, but has not reported ready yet."""
    manager = getattr(controller, "_actor_manager", None)
    created = getattr(manager, "is_actor_started", None)  # Ray's "started": created, not failed
    ready = getattr(controller, "_started_actors", None)  # the controller's: on_start has run
    if created is None or ready is None:
        return False
    return bool(created(tracked_actor)) and tracked_actor not in ready
