"""The progress text of a posterior job says each thing once."""

from __future__ import annotations

from dashboard.widgets import job_line


def test_the_workers_line_is_not_repeated():
    assert job_line("inpaint", "RUNNING", "inpaint: running") == "inpaint: running"
    assert job_line("denoise", "RUNNING", "denoise: loading the model") == (
        "denoise: loading the model"
    )
    assert job_line("evaluate", "RUNNING", "evaluating the test set: t 3 of 20") == (
        "evaluate: running (evaluating the test set: t 3 of 20)"
    )
    assert job_line("sample", "QUEUED", "") == "sample: queued"
