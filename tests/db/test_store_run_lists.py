"""Run lists filtered in SQL (db/store_run_lists.py), on SQLite and PostgreSQL: every filter,
the counts and the choices keep a member's private runs from the others; a page of runs
costs the same few queries whatever its size."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from db.access import SYSTEM
from db.errors import InvalidInput
from db.store import Store
from db.store_run_lists import NO_DATASET, RunFilter


def config(data: str | None) -> dict:
    return {"data": {"name": data}, "train": {"steps": 5}} if data else {"train": {"steps": 5}}


@pytest.fixture
def team(store: Store):  # noqa: ANN201
    alice = store.create_user("alice", "correct horse")
    bob = store.create_user("bob", "battery staple")
    admin = store.create_user("root", "admin password", is_admin=True)
    secret, _ = store.create_run(  # alice's private run: its name, tag, data set are hers
        config("secretdata"), owner_id=alice.id, name="hidden 100%_x", tags=["secret", "paper"]
    )
    shared, _ = store.create_run(
        config("swissroll"), owner_id=alice.id, name="shared one", tags=["paper"]
    )
    store.set_visibility(shared.id, "team", viewer=alice)
    bobs, _ = store.create_run(config(None), owner_id=bob.id, name="Bob's", tags=["draft"])
    return store, alice, bob, admin, secret, shared, bobs


def ids(runs) -> set[str]:  # noqa: ANN001
    return {r.id for r in runs}


def test_every_filter_keeps_private_runs_private(team) -> None:
    store, alice, bob, admin, secret, shared, bobs = team
    for where in (
        RunFilter(),
        RunFilter(search="hidden"),
        RunFilter(search=secret.id[:6]),
        RunFilter(tags=["secret"]),
        RunFilter(tags=["paper"]),
        RunFilter(datasets=["secretdata"]),
        RunFilter(states=["QUEUED"]),
        RunFilter(ids=[secret.id]),
    ):
        assert secret.id not in ids(store.list_runs(viewer=bob, where=where)), where
        assert secret.id in ids(store.list_runs(viewer=alice, where=where)), where
        assert secret.id in ids(store.list_runs(viewer=admin, where=where)), where
        assert store.count_runs(viewer=bob, where=where) == len(
            store.list_runs(viewer=bob, where=where)
        )
    facets = store.run_facets(viewer=bob)
    assert (facets.total, facets.active) == (2, 2)
    assert "secretdata" not in facets.datasets and "secret" not in facets.tags
    assert facets.datasets == [NO_DATASET, "swissroll"] and facets.tags == ["draft", "paper"]
    assert secret.id not in {run_id for run_id, _ in store.queue_order(viewer=bob)}
    everything = store.run_facets(viewer=admin)
    assert everything.total == 3 and "secretdata" in everything.datasets
    assert "secret" in everything.tags and everything.newest == bobs.created_at


def test_filters_match_in_sql(team) -> None:
    store, alice, bob, admin, secret, shared, bobs = team
    seen = SYSTEM

    def found(**kw) -> set[str]:  # noqa: ANN003
        return ids(store.list_runs(viewer=seen, where=RunFilter(**kw)))

    assert found(search="HIDDEN") == {secret.id}  # any case
    assert found(search="100%_") == {secret.id} and found(search="0%x") == set()  # literal
    assert found(search=shared.id[3:9]) == {shared.id}  # part of the id
    assert found(tags=["secret", "draft"]) == {secret.id, bobs.id}  # any of the tags
    assert found(datasets=["swissroll"]) == {shared.id}
    assert found(datasets=[NO_DATASET]) == {bobs.id}
    assert found(datasets=["swissroll", NO_DATASET], tags=["paper"]) == {shared.id}
    assert found(states=["DONE"]) == set()
    with pytest.raises(InvalidInput, match="state"):
        store.list_runs(viewer=seen, where=RunFilter(states=["done"]))
    listed = store.list_runs(viewer=seen, where=RunFilter())
    assert [r.id for r in listed] == [bobs.id, shared.id, secret.id]  # newest first
    assert listed[2].tags == ("paper", "secret") and listed[2].owner == "alice"
    assert listed[2] == store.get_run(secret.id, viewer=seen)  # the same entity as one read
    page = store.list_runs(viewer=seen, where=RunFilter(), limit=2, offset=1)
    assert [r.id for r in page] == [shared.id, secret.id]


def test_a_page_costs_the_same_queries_whatever_its_size(store: Store) -> None:
    """No query per row (owner, tags): 40 runs are read with as many statements as 2."""
    owner = store.local_user()
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    def selects(n: int) -> int:
        statements.clear()
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            runs = store.list_runs(viewer=owner, limit=n)
            store.run_facets(viewer=owner)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
        assert len(runs) == n and all(r.tags == ("a", "b") for r in runs)
        return len(statements)

    for i in range(40):
        store.create_run(config("swissroll"), owner_id=owner.id, name=f"r{i}", tags=["b", "a"])
    assert selects(40) == selects(2) == 5  # runs, their tags; counts, data sets, tags


def test_gallery_and_queue_counts_filtered_in_sql(team) -> None:
    """The gallery narrowed by a run filter (data set, runs with samples) still shows a
    member only what they may see; queued jobs are counted per queue."""
    store, alice, bob, admin, secret, shared, bobs = team
    for run in (secret, shared):
        store.put_artifact(
            run.id, "gallery", b"x" * 10, key=f"g-{run.id}.npy", media_type="x/y", step=1
        )
    samples = RunFilter(with_kinds=["gallery"])
    assert ids(store.list_runs(viewer=bob, where=samples)) == {shared.id}
    assert ids(store.list_runs(viewer=alice, where=samples)) == {secret.id, shared.id}
    got = store.gallery(viewer=bob, kind="gallery", where=RunFilter(datasets=["secretdata"]))
    assert got == []
    got = store.gallery(viewer=alice, kind="gallery", where=RunFilter(datasets=["secretdata"]))
    assert [a.run_id for a in got] == [secret.id]
    assert [a.run_id for a in store.gallery(viewer=bob, kind="gallery")] == [shared.id]
    assert store.queued_per_queue() == {"gpu": 3}
    store.request_cancel(bobs.id, viewer=bob)
    assert store.queued_per_queue() == {"gpu": 2}


def test_a_rights_check_reads_the_run_row_only(store: Store) -> None:
    """Reading an artifact checks its run (one SELECT of the artifact, one of the run): the
    run's tags are not loaded along with every rights check and lease update."""
    owner = store.local_user()
    run, _ = store.create_run(config("swissroll"), owner_id=owner.id, tags=["a", "b"])
    art = store.put_artifact(run.id, "gallery", b"xyz", key="g.npy", media_type="x/y", step=1)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        assert store.get_artifact(art.id, viewer=owner).run_id == run.id
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len(statements) == 2, statements
    assert store.get_run(run.id, viewer=owner).tags == ("a", "b")  # still there when read
