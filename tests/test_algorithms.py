"""Sampler and scheduler names: defined once (automl.search.algorithms), used by config
validation and by the search."""

from __future__ import annotations

import typing

import pytest

from automl.config.models import SearchConfig
from automl.scheduler import make_sampler, make_scheduler
from automl.search.algorithms import SAMPLERS, SCHEDULERS
from automl.space import ObjectiveSpec


def test_config_validation_accepts_exactly_the_names_of_the_tables():
    fields = SearchConfig.model_fields
    assert typing.get_args(fields["sampler"].annotation) == tuple(SAMPLERS)
    assert typing.get_args(fields["early_stopping"].annotation) == tuple(SCHEDULERS)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_name_builds_a_seeded_optuna_sampler(name):
    import optuna

    sampler = make_sampler(name, 3, SearchConfig(sampler=name), multi_objective=False)
    assert isinstance(sampler, optuna.samplers.BaseSampler)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_early_stopping_name_builds_its_scheduler(name):
    search = SearchConfig(early_stopping=name)
    scheduler = make_scheduler(search, ObjectiveSpec("accuracy", "max"), max_t=11, epochs=10)
    assert (scheduler is None) == (name == "none")
    assert make_scheduler(search, ObjectiveSpec("accuracy", "max"), max_t=2, epochs=10) is None


def test_an_unknown_name_lists_the_valid_ones():
    search = SearchConfig().model_copy(update={"sampler": "tpee"})
    with pytest.raises(ValueError, match="unknown sampler 'tpee'; valid: tpe, random"):
        make_sampler("tpee", 0, search, False)
