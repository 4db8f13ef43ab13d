"""Distillation: students that learn from the experiment's ensemble (or best trial).

:mod:`automl.distill.settings` checks the ``distillation:`` section, :mod:`automl.distill.teacher`
chooses the teacher and predicts the training inputs with it, :mod:`automl.distill.student`
trains a student on labels and teacher predictions with the ordinary trial code, and
:mod:`automl.distill.stage` runs the students as Ray Tune trials.
"""

from automl.distill.settings import DistillationSettings, StudentSpace, resolve_distillation
from automl.distill.stage import check_distillation_data, distillation_stage

__all__ = ["DistillationSettings", "StudentSpace", "check_distillation_data", "distillation_stage",
           "resolve_distillation"]
