"""A run's metrics as CSV and JSON, from the store and from `difflab export`."""

from __future__ import annotations

import csv
import io
import json
import time

from db.entities import MetricPoint
from db.export import metrics_csv, metrics_json


def test_csv_and_json_hold_every_point(store):
    user = store.local_user()
    run, _ = store.create_run({"name": "r", "train": {"steps": 3}}, owner_id=user.id)
    now = time.time()
    points = [MetricPoint("loss_bits", s, 3.0 - s, now + s) for s in (1, 2, 3)]
    points += [MetricPoint("k_holdout_bits", 3, float("nan"), now)]
    points += [MetricPoint("beta", 3, None, now, (0.1, 0.2))]
    store.append_metrics(run.id, points)
    rows = list(csv.DictReader(io.StringIO(metrics_csv(store, run.id, viewer=user))))
    assert [(r["metric"], int(r["step"]), r["value"]) for r in rows] == [
        ("k_holdout_bits", 3, "nan"),
        ("loss_bits", 1, "2.0"),
        ("loss_bits", 2, "1.0"),
        ("loss_bits", 3, "0.0"),
    ]
    doc = json.loads(metrics_json(store, run.id, viewer=user))  # strict JSON: no NaN token
    assert doc["run"]["id"] == run.id and doc["run"]["config"]["train"]["steps"] == 3
    assert [p["value"] for p in doc["metrics"]["loss_bits"]] == [2.0, 1.0, 0.0]
    assert doc["metrics"]["k_holdout_bits"][0]["value"] == "nan"
    assert doc["metrics"]["beta"][0]["vector"] == [0.1, 0.2]


def test_difflab_export_writes_the_same_csv(store, tmp_path, monkeypatch, capsys):
    if store.dialect != "sqlite":
        return  # the command reads the database named by the environment; one is enough
    from difflab.cli import main

    user = store.local_user()
    run, _ = store.create_run({"name": "r"}, owner_id=user.id)
    store.append_metrics(run.id, [MetricPoint("loss_bits", 1, 0.5, time.time())])
    monkeypatch.setenv("DIFFLAB_DATABASE_URL", store.url)
    monkeypatch.setenv("DIFFLAB_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    out = tmp_path / "m.csv"
    assert main(["export", run.id, "--out", str(out)]) == 0
    assert out.read_text() == metrics_csv(store, run.id, viewer=user)
    assert main(["export", run.id, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["run"]["id"] == run.id
    assert main(["export", "nosuchrun"]) == 2
