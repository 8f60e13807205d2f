"""afm dashboard: train or load an AFM, see its attention, compare with FM, turn the knobs live.

streamlit run app/streamlit_app.py   (from the repository), or `afm dashboard` (installed: afm/app)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# OpenMP threads that spin while they wait lose most of their time when sessions share the cores
# (a 2-epoch training took 40 s spinning against 7 s passive on a busy 2-core machine): set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

# The dashboard's modules import each other by plain names (`import state`): this folder goes on the path,
# in the repository (app/) and installed (afm/app/) alike. In the repository the folder above holds `afm`,
# which then imports even without `pip install -e .`; installed, the folder above is the package itself,
# whose modules must not become top-level names.
HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent) if (HERE.parent / "afm" / "__init__.py").is_file() else (HERE,):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Presentation mode (?present=1 or the sidebar toggle): larger type, the sidebar folded away, and pages that
# put their main figure above the fold at 1024 × 768 (a classroom projector).
PRESENT_CSS = """<style>
html { font-size: 19px; }
[data-testid="stMainBlockContainer"] { padding-top: 2.6rem; padding-bottom: 1rem; }
h1 { font-size: 1.9rem !important; padding: 0 0 0.3rem 0 !important; }
h2, h3 { padding: 0.3rem 0 0.2rem 0 !important; }
</style>"""
linked_present = st.query_params.get("present", "0").strip().lower() in ("1", "true", "yes", "on")
st.set_page_config(
    page_title="afm: Attentional Factorization Machines",
    page_icon=":material/hub:",
    layout="wide",
    initial_sidebar_state="collapsed" if linked_present else "auto",
)
import attention_sections  # noqa: E402  (needs the path set up above)
import caches  # noqa: E402
import limits  # noqa: E402
import session  # noqa: E402
import sweep_sections  # noqa: E402
import training  # noqa: E402
import widgets  # noqa: E402

# Once per server: the optimiser warm-up, torch's threads (the pool's workers times threads never exceed the
# cores) and gc.freeze of everything imported so far (caches.warm_up says why).
caches.warm_up()
training.capture_link()  # a shared link's settings, read before any page rewrites the URL

PAGES = [
    st.Page("pages/data_model.py", title="Data & model", icon=":material/tune:", default=True),
    st.Page("pages/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("pages/explain.py", title="Explain a prediction", icon=":material/search:"),
    st.Page("pages/compare.py", title="AFM vs FM", icon=":material/compare_arrows:"),
    st.Page("pages/sweeps.py", title="Sweeps", icon=":material/show_chart:"),
    st.Page("pages/how_afm_works.py", title="How AFM works", icon=":material/school:"),
]
# the job slot each page follows itself (its progress bar): the sidebar does not refresh for that one
FOLLOWS = {"Data & model": training.SLOT, "Sweeps": sweep_sections.SLOT, "Attention": attention_sections.STABILITY_SLOT}


def present_to_url() -> None:
    """The toggle's new state into the URL, so a copied link keeps presentation mode on or off."""
    if session.widget("present-toggle"):
        st.query_params["present"] = "1"
    else:
        st.query_params.pop("present", None)


page = st.navigation(PAGES)
with st.sidebar:
    st.markdown("**afm** · Attentional Factorization Machines (Xiao et al., IJCAI 2017)")
    # a job of this session running elsewhere refreshes it; the Data & model page refreshes it after a training
    widgets.show_status(st.empty(), following=FOLLOWS.get(page.title))
    present = st.toggle(
        "Presentation mode",
        value=linked_present,
        key="present-toggle",
        help="For a projector: larger type and figures, fewer words above the main figure. In a link: ?present=1",
        on_change=present_to_url,
    )
session.get().present = present  # read by widgets.show_figure and the pages
if present:
    st.markdown(PRESENT_CSS, unsafe_allow_html=True)
with limits.guard():  # a run past this server's time or memory bound stops with a message (app/limits.py)
    page.run()
