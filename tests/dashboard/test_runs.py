"""Runs page: the table, filters, selection, comparison, cancel, re-run and delete."""

from __future__ import annotations

from dashboard_helpers import app_test, make_run, texts

from db.access import SYSTEM


def _select(at, rows: list[int]):
    at.session_state["runs_table"] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return at.run()


def _button(at, label: str):
    for b in at.button:
        if b.label == label:
            return b
    raise AssertionError(f"no button {label!r}: {[b.label for b in at.button]}")


def test_table_lists_runs_with_state_and_queue_position(store, queue):
    user = store.local_user()
    make_run(store, user, name="finished")
    make_run(store, user, "digits-smoke", state="RUNNING", name="training")
    make_run(store, user, state="QUEUED", name="waiting")
    make_run(store, user, state="FAILED", name="broken")
    at = app_test("runs")
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["name"]) == {"finished", "training", "waiting", "broken"}
    waiting = table[table["name"] == "waiting"].iloc[0]
    assert waiting["queue"] == "1" and waiting["state"] == "queued"
    assert table[table["name"] == "finished"].iloc[0]["progress"] == 1.0
    at.multiselect(key="runs_states").set_value(["FAILED"]).run()
    assert list(at.dataframe[0].value["name"]) == ["broken"]
    at.multiselect(key="runs_states").set_value([]).run()
    at.text_input(key="runs_search").set_value("train").run()
    assert list(at.dataframe[0].value["name"]) == ["training"]


def test_compare_shows_overlaid_curves_and_differences(store, queue):
    user = store.local_user()
    make_run(store, user, name="a")
    make_run(store, user, "heartbeat-smoke", name="b")
    at = app_test("runs")
    _select(at, [0, 1])
    assert not at.exception
    assert "Comparing 2 runs" in texts(at)
    diff = at.dataframe[1].value
    assert "diffusion.kind" in diff.index and "data.name" in diff.index
    assert len(at.get("plotly_chart")) == 1


def test_cancel_rerun_delete(store, queue):
    user = store.local_user()
    queued = make_run(store, user, state="QUEUED", name="waiting")
    at = app_test("runs")
    _select(at, [0])
    _button(at, "Cancel").click()
    at.run()
    assert store.get_run(queued.id, viewer=SYSTEM).state == "CANCELLED"
    _select(at, [0])
    _button(at, "Re-run").click()
    at.run()
    assert len(queue) == 1
    runs = store.list_runs(viewer=SYSTEM)
    assert len(runs) == 2 and any(r.parent_id == queued.id for r in runs)
    at.text_input(key="runs_search").set_value(queued.id).run()
    _select(at, [0])
    _button(at, "Delete for good").click()
    at.run()
    assert not at.exception
    assert queued.id not in [r.id for r in store.list_runs(viewer=SYSTEM)]


def test_tags_and_share_link(store, queue):
    user = store.local_user()
    run = make_run(store, user, name="tag me")
    at = app_test("runs")
    _select(at, [0])
    at.text_input(key="runs_tag_text").set_value("baseline")
    _button(at, "Add tag").click()
    at.run()
    assert store.get_run(run.id, viewer=SYSTEM).tags == ("baseline",)
    _select(at, [0])
    _button(at, "Share link").click()
    at.run()
    assert any("/shared?token=" in c.value for c in at.code)


def test_no_runs_yet(store):
    at = app_test("runs")
    assert "No runs yet" in texts(at)
