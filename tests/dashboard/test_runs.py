"""Runs page: the table, filters, selection, comparison, cancel, re-run and delete."""

from __future__ import annotations

import json

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
    charts = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert charts[1:] == ["step 30"] and "Latest samples" in texts(at)  # side by side


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


def test_columns_any_config_field_sorted_and_kept_in_the_address(store, queue):
    user = store.local_user()
    a = make_run(store, user, name="a")  # k_holdout at step 30: -2.1 + 1.5 = -0.6
    b = make_run(store, user, "heartbeat-smoke", name="b")
    at = app_test("runs")
    table = at.dataframe[0].value
    assert {"K holdout (bits)", "K - L_null (bits)", "diffusion.T", "queue"} <= set(table.columns)
    assert str(at.query_params["cols"]).split(",")[:3] == ["name", "state", "progress"]
    at.multiselect(key="runs_columns").set_value(["name", "train.lr", "diffusion.T"]).run()
    at.selectbox(key="runs_sort_by").set_value("diffusion.T").run()
    table = at.dataframe[0].value
    assert list(table.columns) == ["name", "train.lr", "diffusion.T"]
    T = {r.name: r.config["diffusion"]["T"] for r in (a, b)}
    assert list(table["name"]) == sorted(T, key=T.get)
    at.toggle(key="runs_desc").set_value(True).run()
    assert list(at.dataframe[0].value["name"]) == sorted(T, key=T.get, reverse=True)
    assert str(at.query_params["cols"]) == "name,train.lr,diffusion.T"
    assert str(at.query_params["sort"]) == "diffusion.T" and str(at.query_params["desc"]) == "1"
    # a bookmarked address opens the same view
    from dashboard_helpers import APP
    from streamlit.testing.v1 import AppTest

    again = AppTest.from_file(str(APP), default_timeout=30)  # Runs is the default page
    again.query_params.update({"cols": "name,diffusion.T", "sort": "diffusion.T", "desc": "1"})
    again.run()
    assert list(again.dataframe[0].value.columns) == ["name", "diffusion.T"]
    assert list(again.dataframe[0].value["name"]) == sorted(T, key=T.get, reverse=True)
    # selection follows the sorted order
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert f"**1 selected:** {sorted(T, key=T.get, reverse=True)[0]}" in texts(at)


def test_bound_columns_are_rounded_to_their_standard_error():
    import datetime as dt

    from dashboard.tables import runs_frame
    from db.entities import Run

    now = dt.datetime.now(dt.UTC)
    run = Run(
        "r1",
        "r",
        1,
        "o",
        None,
        {"diffusion": {"T": 5}},
        "DONE",
        "private",
        (),
        "",
        None,
        "cpu",
        None,
        None,
        None,
        None,
        10,
        10,
        10,
        None,
        None,
        None,
        False,
        None,
        now,
        now - dt.timedelta(minutes=3),
        now,
        now,
    )
    metrics = {"r1": {"k_holdout_bits": -4.082279178605771, "k_holdout_stderr_bits": 0.0213}}
    frame = runs_frame(
        [run], columns=["K holdout (bits)", "duration (min)", "diffusion.T"], metrics=metrics
    )
    assert frame.iloc[0].tolist() == [-4.08, 3.0, 5]


def test_one_read_per_render_filters_in_the_database_and_more_rows(store, queue, monkeypatch):
    """The page reads the runs once per render (not once for the filters and again for the
    table), asks the database for the filtered ones, lists the newest page and offers more."""
    from dashboard.tables import RUNS_PAGE
    from db.store import Store
    from db.store_run_lists import RunFilter

    user = store.local_user()
    for i in range(RUNS_PAGE + 1):
        store.create_run({"data": {"name": "swissroll"}}, owner_id=user.id, name=f"run {i:03d}")
    make_run(store, user, "digits-smoke", state="QUEUED", name="the digits one")
    reads: list[RunFilter] = []
    list_runs = Store.list_runs

    def counted(self, **kw):
        reads.append(kw.get("where"))
        return list_runs(self, **kw)

    monkeypatch.setattr(Store, "list_runs", counted)
    from dashboard_helpers import APP
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=30)  # Runs is the default page
    at.run()
    assert len(reads) == 1 and len(at.dataframe[0].value) == RUNS_PAGE
    assert f"The newest {RUNS_PAGE} of {RUNS_PAGE + 2} matching runs" in texts(at)
    assert at.dataframe[0].value["queue"].iloc[0] == "1"  # its place among every queued run
    reads.clear()
    at.multiselect(key="runs_datasets").set_value(["digits"]).run()
    assert len(reads) == 1 and reads[0].datasets == ["digits"]
    assert list(at.dataframe[0].value["name"]) == ["the digits one"]
    assert "matching runs" not in texts(at)
    at.multiselect(key="runs_datasets").set_value([]).run()
    _button(at, "Show more").click()
    at.run()
    assert len(at.dataframe[0].value) == RUNS_PAGE + 2 and "matching runs" not in texts(at)


def test_default_columns_fit_the_table_at_1280_px():
    """At a 1280 x 800 window the table is 818 px wide beside the sidebar (measured in
    headless Chromium); the default columns' fixed widths, with the row-selection column,
    must fit, or the last header is cut (as "K - L_null (bits)" was at Streamlit's
    "small" width)."""
    from dashboard import tables

    config = tables.column_config()
    assert set(tables.DEFAULT_COLUMNS) <= set(config)
    widths = [tables.COLUMN_LOOK[c][1] for c in tables.DEFAULT_COLUMNS]
    assert 33 + sum(widths) <= 818
    for key in tables.DEFAULT_COLUMNS:
        label, width, _ = tables.COLUMN_LOOK[key]
        assert 8 * len(label) + 16 <= width, (key, label, width)  # ~8 px a character
