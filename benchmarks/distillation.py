"""Distillation: the ensemble's accuracy in one small model, at the small model's latency?

For each seed, on digits: one ``automl.run`` searches wide MLPs (the teachers' space), fits the
ensemble and runs the distillation stage, whose students are small MLPs (one hidden layer of 16
to 32 units, at most ``STUDENT_PARAMS`` parameters) learning from the ensemble; a second run
searches the students' space alone, as many trials, with no teacher (no ensemble, no
distillation): its best trial is "the best single trial of the student's size trained without a
teacher". Reported side by side, from each run's final evaluation (the test split, scored once):
test accuracy of the teacher ensemble, of the best student and of the best teacher-less small
trial, and each one's parameters and CPU latency (one thread, batch 1 and batch 64, measured in
this process, one after the other, on the models rebuilt from their checkpoints:
``automl.export.trained_model``; the ensemble as the module its export would be). ``gap closed``
is (student - small) / (ensemble - small) test accuracy: 1 means the student matched the
ensemble, 0 that the teacher did not help.

    python -m benchmarks.distillation [--quick] [--seeds N]

Full mode (3 seeds: 10 teacher trials, 6 students, 6 teacher-less small trials each): about
8 minutes on 2 shared cores; ``--quick`` (1 seed, 3 + 2 + 2 trials of 3 epochs): under a minute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.harness import environment_line, start_ray

SLOTS = 2
STUDENT_PARAMS = 3000
STUDENTS = {"mlp": {"depth": 1, "width": {"low": 16, "high": 32}, "dropout": 0.0}}


@dataclass
class Row:
    seed: int
    teacher: str
    ensemble_acc: float
    student_acc: float
    small_acc: float
    ensemble_params: float
    student_params: float
    small_params: float
    latency: dict[str, tuple[float, float]]  # name -> (batch 1 ms, batch 64 ms)

    @property
    def gap_closed(self) -> float:
        gap = self.ensemble_acc - self.small_acc
        return (self.student_acc - self.small_acc) / gap if gap > 0 else float("nan")


def experiment(seed: int, quick: bool, distill: bool) -> dict:
    epochs = 3 if quick else 15
    trials = (3 if quick else 10) if distill else (2 if quick else 6)
    doc = {
        "name": f"distill-{'teacher' if distill else 'small'}-s{seed}",
        "seed": seed,
        "dataset": "digits",
        "architecture": ({"mlp": {"depth": [1, 2], "width": {"low": 128, "high": 512,
                                                             "log": True}}}
                         if distill else STUDENTS),
        "constraints": {} if distill else {"params": {"max": STUDENT_PARAMS}},
        "training": {"epochs": epochs, "fine_tune_epochs": 0, "lr": {"low": 1e-3, "high": 1e-2,
                                                                     "log": True},
                     "batch_size": [32, 64], "optimizer": "adam"},
        "search": {"num_trials": trials, "sampler": "tpe", "startup_trials": 4,
                   "early_stopping": "none", "max_concurrent": SLOTS},
        "ensemble": {"candidates": 5} if distill else False,
    }
    if distill:
        doc["distillation"] = {"trials": 2 if quick else 6, "architecture": STUDENTS,
                               "constraints": {"params": {"max": STUDENT_PARAMS}}}
    if not doc["constraints"]:
        del doc["constraints"]
    return doc


def run_seed(tmp: Path, seed: int, quick: bool) -> Row:
    import automl
    from automl.distill.teacher import choose_teacher
    from automl.export import trained_model
    from automl.multitask import task_for
    from automl.plugin_manager import plugin_source, rebuild_plugins
    from automl.results import best_of, best_student_of
    from automl.store import Store
    from automl.weighted_models import weighted_models
    from automl_plugins.metrics.latency import measure_latency_ms

    db = f"sqlite:///{tmp}/bench.db"
    names = []
    for distill in (True, False):
        doc = experiment(seed, quick, distill)
        path = tmp / f"{doc['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        result = automl.run(str(path), db=db, artifacts=str(tmp / "runs"))
        assert result.status == "completed", result.status
        names.append(doc["name"])
    registry = rebuild_plugins(plugin_source([], autoload=False)).registry
    with Store(db, create=False) as store:
        teacher_exp, small_exp = (store.experiment(n) for n in names)
    evaluation, small_evaluation = teacher_exp.evaluation, small_exp.evaluation
    assert evaluation is not None and small_evaluation is not None
    student, small = best_student_of(teacher_exp), best_of(small_exp)
    assert student is not None and small is not None, "no student or no small trial completed"
    teacher = choose_teacher(teacher_exp)
    assert teacher is not None
    scores = {"ensemble": evaluation.ensemble() or evaluation.best(),
              "student": evaluation.distilled(), "small": small_evaluation.best()}
    from automl.export import trial_spec, checkpoint_dir

    spec = trial_spec(teacher_exp, checkpoint_dir(teacher_exp, student), registry)
    by_number = {t.number: t for t in teacher_exp.trials}
    members = [trained_model(teacher_exp, by_number[n], registry, spec) for n in teacher.members]
    models = {
        "ensemble": weighted_models([m for m, _ in members], teacher.weights,
                                    task_for(spec, registry), spec, [f for _, f in members]),
        "student": trained_model(teacher_exp, student, registry, spec)[0],
        "small": trained_model(small_exp, small, registry, spec)[0],
    }
    latency = {name: (measure_latency_ms(model.eval(), spec, 1),
                      measure_latency_ms(model.eval(), spec, 64))
               for name, model in models.items()}
    params = {name: float(sum(p.numel() for p in model.parameters()))
              for name, model in models.items()}
    return Row(seed, teacher.describe(), scores["ensemble"].metrics["test/accuracy"],
               scores["student"].metrics["test/accuracy"],
               scores["small"].metrics["test/accuracy"], params["ensemble"], params["student"],
               params["small"], latency)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, tiny budgets")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    print(environment_line("distillation"))
    start_ray(SLOTS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-distill-") as tmp:
        for seed in seeds:
            rows.append(run_seed(Path(tmp), seed, args.quick))
            print(f"seed {seed}: teacher {rows[-1].teacher}", flush=True)
    print()
    print("model                       test accuracy  params   latency ms b=1  b=64")
    for name, label in (("ensemble", "teacher ensemble"), ("student", "distilled student"),
                        ("small", "small, no teacher")):
        for row in rows:
            acc = getattr(row, f"{name}_acc")
            size = getattr(row, f"{name}_params")
            b1, b64 = row.latency[name]
            print(f"{label:<20} seed {row.seed}   {acc:.4f}  {size:>8.0f}   {b1:12.3f}  "
                  f"{b64:6.3f}")
    print()
    print("median over seeds: test accuracy ensemble / student / small "
          f"{median([r.ensemble_acc for r in rows]):.4f} / "
          f"{median([r.student_acc for r in rows]):.4f} / "
          f"{median([r.small_acc for r in rows]):.4f}; gap closed "
          f"{median([r.gap_closed for r in rows]):.2f}; latency b=1 ensemble / student "
          f"{median([r.latency['ensemble'][0] for r in rows]):.3f} / "
          f"{median([r.latency['student'][0] for r in rows]):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
