"""Gallery: samples of every run you may see, filtered by data set and run, a page of
thumbnails at a time; open one to see it full size."""

from __future__ import annotations

import streamlit as st

from dashboard.gallery import GALLERY_KINDS, PAGE_SIZE, GalleryItem, gallery_page, picture
from dashboard.services import get_store, require_user
from dashboard.widgets import enlarge, run_label
from db.store_run_lists import RunFilter

user = require_user()
store = get_store()

st.title("Gallery")
left, right = st.columns(2)
chosen_data = left.multiselect(
    "Data set", store.run_facets(viewer=user).datasets, key="gallery_data"
)
with_samples = RunFilter(datasets=chosen_data, with_kinds=GALLERY_KINDS)
runs = store.list_runs(viewer=user, where=with_samples, limit=1000)  # the runs with samples
chosen_runs = right.multiselect("Run", runs, format_func=run_label, key="gallery_runs")
if chosen_runs:
    with_samples = RunFilter(ids=[r.id for r in chosen_runs])
page = st.session_state.setdefault("gallery_page", 0)
items, more = gallery_page(store, user, with_samples, page)


@st.dialog("Sample", width="large")
def full_size(item: GalleryItem) -> None:
    data = picture(store, user, item, thumbnail=False)
    if data is None:
        st.warning("This image could not be read.")
    else:
        st.image(enlarge(data, 512), caption=item.caption, width="content")
        st.download_button(
            "Download (PNG, full size)",
            data,
            file_name=f"{item.run.id}-{item.artifact.key.rsplit('.', 1)[0]}.png",
            mime="image/png",
            icon=":material/download:",
            key=f"gallery_dl_{item.artifact.id}",
        )
    st.page_link("views/run.py", label="Open its run", query_params={"id": item.run.id})


if not items:
    st.info("No samples yet. Galleries appear while runs train.")
else:
    columns = st.columns(4)
    for i, item in enumerate(items):
        with columns[i % 4]:
            thumb = picture(store, user, item, thumbnail=True)
            if thumb is not None:
                st.image(thumb, caption=item.caption, width="stretch")
            if st.button(
                "Full size", key=f"gallery_open_{item.artifact.id}", icon=":material/zoom_in:"
            ):
                full_size(item)
prev, info, nxt = st.columns([1, 2, 1])
if prev.button("Previous page", disabled=page == 0, key="gallery_prev"):
    st.session_state.gallery_page = max(0, page - 1)
    st.rerun()
info.caption(f"Page {page + 1} · {PAGE_SIZE} per page")
if nxt.button("Next page", disabled=not more, key="gallery_next"):
    st.session_state.gallery_page = page + 1
    st.rerun()
