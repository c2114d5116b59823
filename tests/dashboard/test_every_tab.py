"""Every tab of the run page is whole for every data kind and every state: no exception
element, and each tab holds something to read (seeded through the store, not trained)."""

from __future__ import annotations

import pytest
from dashboard_helpers import app_test
from lab_seed import KINDS, STATES, seed_run

from dashboard.runfiles import VIEWS

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
    """Each view opened in turn (the tabs build only the open one) holds something, raises
    nothing, and leaves the other views unbuilt."""
    run = seed_run(store, store.local_user(), kind, state, tmp_path)
    at = app_test("run", query={"id": run.id})
    seen = {}
    for label in VIEWS:
        at.session_state["view"] = label
        at.run()
        assert not at.exception, (label, [e.value for e in at.exception])
        tabs = tab_texts(at)
        assert list(tabs) == list(VIEWS)
        assert tabs[label], f"the {label} view of a {kind.name} run in state {state} is empty"
        others = [other for other, leaves in tabs.items() if other != label and leaves]
        assert not others, f"with {label} open, {others} were built too"
        seen[label] = tabs[label]
    kinds = {type(x).__name__ for x in seen["Samples"]}
    if state in ("DONE", "RUNNING", "EVALUATING", "CANCELLED", "FAILED"):
        assert kinds & {"Image", "PlotlyChart", "UnknownElement"}, kinds


def test_view_is_opened_from_the_url(store, tmp_path):
    """`?view=Files` opens the Files view (a link or a reload keeps the view)."""
    run = seed_run(store, store.local_user(), KINDS[2], "DONE", tmp_path)
    at = app_test("run", query={"id": run.id, "view": "Files"})
    assert not at.exception
    tabs = tab_texts(at)
    assert tabs["Files"] and not tabs["Bound"] and not tabs["Samples"]
    labels = [b.label for b in at.get("download_button")]
    assert "Config (JSON)" in labels, labels
