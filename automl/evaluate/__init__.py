"""The final evaluation: after the search and the ensemble stage, the test split scored once for
the best trial, the Pareto front and the ensemble; the only code that reads test labels."""

from automl.evaluate.final import final_evaluation, final_scores
from automl.evaluate.stage import evaluate, load_test_labels, plan_subjects

__all__ = ["evaluate", "final_evaluation", "final_scores", "load_test_labels", "plan_subjects"]
