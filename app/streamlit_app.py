"""afm dashboard (placeholder until the dashboard issue): shows that the package loads."""

import streamlit as st

import afm

st.set_page_config(page_title="afm: Attentional Factorization Machines", layout="wide")
st.title("afm: Attentional Factorization Machines")
st.write(f"afm {afm.__version__} is installed. The dashboard pages arrive with the dashboard issue.")
