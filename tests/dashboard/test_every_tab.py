"""Every tab of the run page is whole for every data kind and every state: no exception
element, and each tab holds something to read (seeded through the store, not trained)."""

from __future__ import annotations

import pytest
from dashboard_helpers import app_test
from lab_seed import KINDS, STATES, seed_run

# Each kind done, and each other state on a different kind (6 + 5 runs, every kind and state)
CASES = [(k, "DONE") for k in KINDS] + [
    (KINDS[(i + 2) % len(KINDS)], s) for i, s in enumerate(x for x in STATES if x != "DONE")
]


def tab_texts(at) -> dict[str, list]:
    """Each tab's label and the elements inside it (recursively)."""
    out = {}
    for tab in at.tabs:
        leaves = []
        stack = list(tab.children.values())
        while stack:
            node = stack.pop()
            kids = getattr(node, "children", None)
            if kids:
                stack.extend(kids.values())
            else:
                leaves.append(node)
        out[tab.label] = leaves
    return out


@pytest.mark.parametrize("kind,state", CASES, ids=[f"{k.name}-{s.lower()}" for k, s in CASES])
def test_every_tab_is_whole(store, tmp_path, kind, state):
    run = seed_run(store, store.local_user(), kind, state, tmp_path)
    at = app_test("run", query={"id": run.id})
    assert not at.exception, [e.value for e in at.exception]
    tabs = tab_texts(at)
    assert list(tabs) == ["Bound", "Samples", "Files", "Notes, tags, sharing"]
    for label, leaves in tabs.items():
        assert leaves, f"the {label} tab of a {kind.name} run in state {state} is empty"
    kinds = {type(x).__name__ for x in tabs["Samples"]}
    if state in ("DONE", "RUNNING", "EVALUATING", "CANCELLED", "FAILED"):
        assert kinds & {"Image", "PlotlyChart", "UnknownElement"}, kinds
