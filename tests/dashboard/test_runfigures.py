"""The run page's cached figures: rebuilt when a point is logged, never shown to a viewer who
may not see the run (even once another viewer has filled the cache)."""

from __future__ import annotations

import time

import pytest
from lab_seed import KINDS, seed_run

from dashboard import runfigures
from db.entities import MetricPoint
from db.errors import NotFound


def _holdout_xs(figs) -> list:
    trace = next(t for t in figs.bound.data if t.name == "K (holdout)")
    return list(trace.x)


def test_a_new_point_rebuilds_the_figures(store, tmp_path):
    user = store.local_user()
    run = seed_run(store, user, KINDS[0], "DONE", tmp_path)
    first = runfigures.bound_figures(store, run, user)
    assert runfigures.bound_figures(store, run, user) is first  # cached
    store.append_metrics(run.id, [MetricPoint("k_holdout_bits", 500, -1.0, time.time())])
    again = runfigures.bound_figures(store, run, user)
    assert 500 in _holdout_xs(again) and 500 not in _holdout_xs(first)


def test_cached_figures_keep_their_rights(store, tmp_path):
    owner = store.create_user("ada", "ada password 1")
    other = store.create_user("bob", "bobs password 1")
    run = seed_run(store, owner, KINDS[0], "DONE", tmp_path, visibility="private")
    runfigures.bound_figures(store, run, owner)  # the owner fills the cache
    with pytest.raises(NotFound):
        runfigures.bound_figures(store, run, other)
    art = store.latest_artifact(run.id, "trajectory", viewer=owner)
    assert runfigures.trajectory_figure(store, owner, art, 10) is not None
    with pytest.raises(NotFound):  # the artifact as a private run's listing names it
        store.latest_artifact(run.id, "trajectory", viewer=other)
