"""Warm start on digits: a search seeded from a related earlier experiment against a cold one.

The related experiment is experiments/digits_wide.yaml's wide space run once with another seed
(``--source-seed``, default 100: another train/val/test split, another sampler and training
seeds) and its full trial budget: "the same problem searched before, on other rows". Then, for
each seed, the same space runs twice with a smaller budget (``--trials``, default 16):

(a) cold: the experiment file as is (TPE + ASHA, 8 random startup trials);
(b) warm: the same plus ``search.warm_start: {from: [source], top_k: 3}``: the source's three best
    configurations run first and its finished trials are the sampler's starting history.

Times are seconds from the experiment row's creation (after Ray is up; Ray is started once and
not counted; the source run is not counted either: it is the earlier experiment a user already
has). The chosen trial at each point is the best completed trial by validation accuracy, and
time/trials to target is when its *test* accuracy (scored after the run from the stored test
predictions, as in benchmarks/search_efficiency.py) first reaches the target.

    python -m benchmarks.warm_start [--quick] [--seeds N] [--trials N]

Full mode (3 seeds, 16 trials each, a 40-trial source): about 5 minutes on 2 idle cores;
``--quick`` (1 seed, 4 trials, a 6-trial source): about 1 minute.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.harness import environment_line, start_ray
from benchmarks.search_efficiency import (
    EXPERIMENT, SLOTS, STRICT, TARGET, Run, fmt_s, print_per_seed, print_summary, run_automl,
)


def print_ratios(cold: list[Run], warm: list[Run]) -> None:
    """Per seed, warm / cold time to the target; where cold never reached it, an upper bound
    (warm's time over cold's whole search), as benchmarks/search_efficiency.py does."""
    for target in (TARGET, STRICT):
        per_seed, ratios = [], []
        for a, b in zip(cold, warm):
            ta, tb = a.time_to(target), b.time_to(target)
            ka, kb = a.trials_to(target), b.trials_to(target)
            if math.isinf(tb):
                ratio = "warm never reached it" + ("" if math.isinf(ta) else "; cold did")
            elif math.isinf(ta):
                ratio = f"< {tb / a.wall:.2f} (cold never reached it in {a.wall:.0f} s)"
                ratios.append(tb / a.wall)
            else:
                ratio = f"{tb / ta:.2f}"
                ratios.append(tb / ta)
            per_seed.append(f"seed {a.seed}: {ratio}; cold {fmt_s(ta)} s / {ka or '-'} trials, "
                            f"warm {fmt_s(tb)} s / {kb or '-'} trials")
        reached = (f"reached by cold {sum(not math.isinf(r.time_to(target)) for r in cold)}"
                   f"/{len(cold)}, by warm {sum(not math.isinf(r.time_to(target)) for r in warm)}"
                   f"/{len(warm)}")
        overall = f"median {statistics.median(ratios):.2f}" if ratios else "n/a"
        print(f"time to {target} test accuracy, warm / cold (< 1: the warm start is faster; "
              f"bounds count as their value): {overall}; {reached}")
        for line in per_seed:
            print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 4 trials, a 6-trial source (a smoke check)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--trials", type=int, default=None, help="trials per run (default 16)")
    parser.add_argument("--source-seed", type=int, default=100)
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    trials = args.trials or (4 if args.quick else 16)
    source_trials = 6 if args.quick else 40

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    print(environment_line("warm_start"))
    print(f"{EXPERIMENT.name}: source seed {args.source_seed} with {source_trials} trials; "
          f"then {trials} trials a run, {SLOTS} at a time, seeds 0..{seeds - 1}")
    started = time.perf_counter()
    print(f"embedded Ray start: {start_ray(SLOTS):.1f} s (once, not counted)", flush=True)
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="automl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        source = run_automl(EXPERIMENT, tmp, "source", "ws-source", args.source_seed,
                            {"num_trials": source_trials})
        print(f"source: {source.trials} trials in {source.wall:.0f} s", flush=True)
        for seed in range(seeds):
            a = run_automl(EXPERIMENT, tmp, "(a) cold", f"ws-cold-s{seed}", seed,
                           {"num_trials": trials})
            b = run_automl(EXPERIMENT, tmp, "(b) warm from the source", f"ws-warm-s{seed}", seed,
                           {"num_trials": trials,
                            "warm_start": {"from": ["ws-source"], "top_k": 3}})
            cold.append(a)
            warm.append(b)
            print(f"seed {seed}: cold {a.wall:.0f} s, warm {b.wall:.0f} s", flush=True)
    ray.shutdown()
    groups = {cold[0].method: cold, warm[0].method: warm}
    print()
    print_summary(groups)
    print()
    print_ratios(cold, warm)
    print()
    print_per_seed(groups)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
