"""afm dashboard: train or load an AFM, see its attention, compare with FM, turn the knobs live.

streamlit run app/streamlit_app.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# OpenMP threads that spin while they wait lose most of their time when sessions share the cores
# (a 2-epoch training took 40 s spinning against 7 s passive on a busy 2-core machine): set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):  # `state` beside this file; `afm` even without `pip install -e .`
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

st.set_page_config(page_title="afm: Attentional Factorization Machines", page_icon=":material/hub:", layout="wide")
# Two training threads per session: the machine this targets has 2 cores, and several sessions share it.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

import state  # noqa: E402  (needs the path set up above)

PAGES = [
    st.Page("pages/data_model.py", title="Data & model", icon=":material/tune:", default=True),
    st.Page("pages/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("pages/explain.py", title="Explain a prediction", icon=":material/search:"),
    st.Page("pages/compare.py", title="AFM vs FM", icon=":material/compare_arrows:"),
    st.Page("pages/sweeps.py", title="Sweeps", icon=":material/show_chart:"),
    st.Page("pages/how_afm_works.py", title="How AFM works", icon=":material/school:"),
]

with st.sidebar:
    st.markdown("**afm** · Attentional Factorization Machines (Xiao et al., IJCAI 2017)")
    state.show_status(st.empty())  # the Data & model page refreshes it after training or loading
st.navigation(PAGES).run()
