"""The Attention page's larger sections: the agreement panel and "Would another seed agree?".

Kept out of ``pages/attention.py`` so the page stays a short script; every number comes from
``afm.faithfulness``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import jobs
import numpy as np
import pandas as pd
import session
import streamlit as st
import widgets

import afm
from afm import explain, faithfulness, plots


def part_help(ws: session.Workspace) -> str:
    """Exactly which rows each part holds, in numbers."""
    sizes = {name: len(data) for name, data in ws.parts.items()}
    split = [name for name in ("train", "valid", "test") if name in sizes]
    text = f"'all' is every row of the data: {sizes['all']:,} rows"
    if ws.data_key.startswith("libfm:"):
        text += ", every row of every .libfm part file in the folder (train, validation and test files)"
    if split and sum(sizes[name] for name in split) == sizes["all"]:
        text += " = " + " + ".join(f"{name} {sizes[name]:,}" for name in split)
    return text + ". train/valid/test are the split the models were trained on."


STABILITY_SLOT = "seeds"  # the session's job slot for Would another seed agree?


def cached(name: str, key: tuple, compute):  # noqa: ANN001, ANN202 - a tiny per-session memo
    """``compute()`` once per ``key`` in this browser session (the newest 8 kept)."""
    store = session.get().remember(f"attention-cache-{name}")
    if key not in store:
        while len(store) >= 8:
            store.pop(next(iter(store)))
        store[key] = compute()
    return store[key]


def effect_panel(ws: session.Workspace, model: Any, data: afm.Dataset, exp: afm.Summary) -> afm.AttentionEffect:
    """The page's headline: what attention moves, in words, with the recipe of the model; returns the effect."""
    effect = cached("effect", (ws.token, data.name, len(data)), lambda: afm.attention_effect(model, data, exp))
    text = f"**What attention moves** (AFM trained {widgets.recipe_words(ws)}): {effect.words()}"
    if effect.negligible:
        st.warning(text + " On this data FM already has what it needs, so the attention stayed uniform.")
    else:
        st.info(text)
    return effect


def agreement_panel(
    model: Any, data: afm.Dataset, exp: afm.Explanation, n_pairs: int, effect: afm.AttentionEffect
) -> dict[str, float]:
    """The agreement figures for the model on screen, each beside its value under uniform and under permuted
    attention; none when the attention part is negligible or tied. Returns ``afm.attention_agreement``'s dict."""
    agreement = faithfulness.attention_agreement(model, data, exp)
    st.markdown("**Does attention say what matters?** For this model, beside its nulls:")
    if effect.negligible or agreement["tied"]:
        st.markdown(
            "No ranking of pairs by attention: "
            + (
                "its attention part is negligible, so this AFM predicts as its FM."
                if effect.negligible
                else "its attention is tied (uniform), and ties rank nothing."
            )  # fmt: skip
        )
        return agreement
    a = agreement
    st.metric(
        "Spearman: attention vs |contribution|",
        f"{a['spearman']:.2f}",
        help=f"Rank correlation between each field pair's mean a_ij and mean |c_ij|, over the {n_pairs} field "
        "pairs; 1 = the same order, 0 = unrelated. Under uniform attention it is undefined (every pair tied).",
    )
    st.caption(f"attention shuffled within rows: {a['spearman_permuted']:.2f} "
               f"(90% of shuffles {a['spearman_permuted_lo']:.2f} to {a['spearman_permuted_hi']:.2f})")  # fmt: skip
    st.metric(
        "Rows with the same top pair",
        f"{a['top_pair_agreement']:.1%}",
        help=f"The share of the {len(data):,} rows whose top-attention pair is also their top-|c| pair; pairs tied "
        f"for the top share the credit ({a['tied_rows']:.1%} of rows have a tie).",
    )
    st.caption(f"uniform attention: {a['top_pair_uniform']:.1%} (chance, 1/{n_pairs}); shuffled: "
               f"{a['top_pair_permuted']:.1%} ({a['top_pair_permuted_lo']:.1%}–"
               f"{a['top_pair_permuted_hi']:.1%})")  # fmt: skip
    st.metric(
        "var(log|c_ij|) explained by s_ij",
        f"{a['interaction_share']:.0%}",
        help="log|c| = log a + log|s|: var(log|s|) / var(log|c|) over every row and pair. The same share for "
        f"the attention, var(log a) / var(log|c|): {a['attention_share']:.1%}.",
    )
    return agreement


def stability_section(
    ws: session.Workspace, part: str, data: afm.Dataset, n_pairs: int, planted_labels: list[str]
) -> None:
    """Train the session's configuration with several seeds and show how far the pairs keep their places."""
    st.subheader("Would another seed agree?")
    st.caption(
        "The ranking above comes from one trained model. Train the same configuration with other seeds (weights, "
        "batch order and dropout change; the data and its split do not) and see whether the pairs keep their places: "
        "each pair's mean |contribution| and mean attention across seeds with a 90% interval (the 5th to 95th "
        "percentile over seeds), its rank interval, and the mean Kendall τ between the seeds' rankings."
    )
    if "train" not in ws.parts:
        st.info("Seed stability needs a training part: load data on the **Data & model** page.")
        st.stop()
    # the settings outlive the widgets (Streamlit drops a widget's state when another page runs), so coming
    # back to the page finds the same settings and so the same results
    me = session.get()
    remembered = me.remember("stability-settings")
    left, right = st.columns(2)
    n_seeds = int(left.number_input("Seeds (0, 1, ...)", 2, 10, remembered.get("seeds", 5), key="stability-seeds"))
    epochs = int(
        right.number_input(
            "Epochs per training", 1, 200, remembered.get("epochs", min(ws.config.epochs, 200)), key="stability-epochs"
        )
    )
    remembered.update(seeds=n_seeds, epochs=epochs)
    config = dataclasses.replace(ws.config, task=ws.task, epochs=epochs, seed=0)
    key = json.dumps({"data": ws.data_key, "part": part, "config": config.to_dict()}, sort_keys=True, default=str)
    runs = me.remember("stability-runs")  # settings -> {"frames": per-seed frames, ...}
    entry = runs.get(key)
    done = [] if entry is None else [int(f["seed"].iloc[0]) for f in entry["frames"]]
    todo = [s for s in range(n_seeds) if s not in done]
    go, stop = st.columns([1, 1])
    run_clicked = go.button(
        f"Train {len(todo)} seed{'s' if len(todo) != 1 else ''}" if todo else "All seeds trained",
        key="stability-run",
        type="primary",
        disabled=not todo,
    )
    stop_clicked = stop.button("Stop", key="stability-stop", help="Stops after the seed in training; keeps the others")
    st.caption(
        f"Settings: this session's training configuration ({'FM pre-training, ' if config.pretrain else ''}"
        f"k = {config.embed_dim}, t = {config.attention_factor}, {config.optimizer}, lr {config.lr}, "
        f"batch {config.batch_size}, up to {epochs} epoch{'s' if epochs > 1 else ''}), "
        f"trained on the train part ({len(ws.parts['train']):,} rows), "
        f"pairs measured on '{part}' ({len(data):,} rows). Results are kept for this session."
    )

    if run_clicked and todo:  # a job on the server's pool, like every training (app/jobs.py)
        entry = runs.setdefault(key, {"frames": [], "seconds": 0.0})
        train, valid = ws.parts["train"], ws.parts.get("valid")

        def work(job: jobs.Job, entry: dict[str, Any] = entry, todo: list[int] = todo) -> None:
            def report(p: faithfulness.SeedProgress) -> bool:
                n = len(done) + p.done
                if p.frame is not None:
                    entry["frames"].append(p.frame)  # kept at once: a Stop keeps every finished seed
                    text = f"seed {p.seed} done ({n + 1}/{n_seeds})"
                else:
                    t = p.training
                    text = f"seed {p.seed} ({n + 1}/{n_seeds}) · epoch {t.epoch}/{t.epochs} · loss {t.train_loss:.4f}"
                return job.report((len(done) + p.fraction * len(todo)) / n_seeds, text)

            started = time.perf_counter()
            try:
                afm.seed_stability(config, train, valid, data, seeds=todo, callback=report)
            finally:  # a Stop included: count the time the finished seeds took
                entry["seconds"] += time.perf_counter() - started

        seeds_key = jobs.job_key("seeds", me.sid, key, todo)  # the frames go to this session's entry: never shared
        me.submit(STABILITY_SLOT, seeds_key, "seeds", work)
    elif stop_clicked:
        me.stop(STABILITY_SLOT)
        me.messages[STABILITY_SLOT] = (
            "Stopped: the seeds finished so far are kept; press the train button to go on with the rest."
        )
        st.rerun()  # the button and the results count the seeds that finished before the Stop took effect
    if message := me.messages.pop(STABILITY_SLOT, None):
        st.info(message)
    if me.running(STABILITY_SLOT):
        me.follow(STABILITY_SLOT)
        me.forget(STABILITY_SLOT)  # its frames are in the session's entry already
        st.rerun()  # the button and the results below show the finished seeds

    entry = runs.get(key)
    if not entry or not entry["frames"]:
        st.info(f"No seeds trained yet for these settings: press **Train {n_seeds} seeds** (one training per seed).")
        st.stop()
    frames = [f for f in entry["frames"] if int(f["seed"].iloc[0]) < n_seeds]
    stability, tau = faithfulness.stability_frame(pd.concat(frames, ignore_index=True))
    trained = len(frames)
    a, b, c = st.columns(3)
    a.metric("Seeds trained", f"{trained} / {n_seeds}", help=f"{entry['seconds']:.0f} s of training in all")
    b.metric("Mean Kendall τ between seeds (by |contribution|)", "—" if trained < 2 else f"{tau:.2f}")
    attention_tau, null = stability.attrs["attention_tau"], stability.attrs.get("attention_tau_permuted")
    c.metric(
        "Mean Kendall τ between seeds (by attention)",
        "tied: no ranking" if stability.attrs.get("attention_tied") else "—" if attention_tau is None
        else f"{attention_tau:.2f}",
        help="Under uniform attention every pair is tied: no order to compare.",
    )  # fmt: skip
    if null is not None and attention_tau is not None:
        c.caption(f"attention shuffled within rows: τ {null[1]:.2f} (90% {null[0]:.2f} to {null[2]:.2f})")
    detail = f" (τ = {tau:.2f} over the {n_pairs} field pairs; 1 = the same order every time, 0 = unrelated)."
    st.markdown(f"**In words:** {faithfulness.tau_in_words(tau)}" + (detail if trained > 1 else "."))
    if ws.is_sample:
        st.caption("Green diamonds: the pairs planted in the sample (`afm.datasets.sample_truth()`).")
    widgets.show_figure(plots.stability_plot(stability, planted_labels), "attention-stability")
    shown = stability[
        ["label", "mean_abs_contribution", "abs_contribution_lo", "abs_contribution_hi", "rank_lo", "rank_hi",
         "mean_attention", "attention_lo", "attention_hi", "attention_rank_lo", "attention_rank_hi", "seeds"]
    ]  # fmt: skip
    shown = shown.rename(columns={"label": "field pair"})
    shown.attrs = {}  # the per-seed records need not travel to the browser
    widgets.show_table(shown, "attention-stability", words=False)  # its columns name the interval ends


# ---------------------------------------------------------------------------- the field x field heatmap

# field_pair_frame column -> the anchored colour scale of plots.anchored_range
HEAT_KINDS = {
    "mean_attention": "attention",
    "mean_contribution": "signed",
    "mean_abs_contribution": "magnitude",
    "mean_abs_attention_part": "magnitude",
    "relative_attention": "relative",
}


def changed_settings(before: Any, now: Any) -> tuple[str, str]:
    """Titles for a before/after pair of pictures: ("before: t = 16", "now: t = 8") for the settings
    (``TrainConfig`` knobs, named by their ``brief`` words) that differ, at most three named; ("before", "now")
    when none is known to."""
    if before is None or now is None:
        return "before", "now"
    changed = afm.config.differences(before, now, widget_only=False)[:3]
    if not changed:
        return "before", "now"
    return (
        f"before: {afm.config.describe(before, changed, brief=True)}",
        f"now: {afm.config.describe(now, changed, brief=True)}",
    )


def session_range(ws: session.Workspace, column: str, n_pairs: int, *values: Any) -> tuple[float, float]:
    """The heatmap's colour range for ``column``: ``plots.anchored_range`` of ``values``, widened to the range
    shown before in this session (the session's "heatmap-ranges" memo), never narrowed, so a picture after a
    live change reads on the same scale as the one before it. Relative attention is the exception: its log scale
    comes from the models on screen alone, so a real 0.999-1.001 pattern stays visible."""
    z = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values])
    if HEAT_KINDS[column] == "relative":  # its range comes from the models on screen, never from earlier ones
        return plots.anchored_range(z, "relative", n_pairs)
    store = session.get().remember("heatmap-ranges")
    key = (ws.data_key, ws.task, column, n_pairs)
    store[key] = plots.anchored_range(z, HEAT_KINDS[column], n_pairs, store.get(key))
    return store[key]


def previous_frame(ws: session.Workspace, part: str, data: afm.Dataset) -> pd.DataFrame | None:
    """The field-pair frame of the AFM the session had before its last change of models, on ``data``;
    None when there is none or it does not fit the data."""
    model = ws.previous_models.get("afm")
    if model is None or model is ws.models.get("afm"):
        return None
    try:
        data.check_fits(model)
    except ValueError:
        return None
    return cached("previous-frame", (id(model), ws.data_key, part), lambda: afm.field_pair_frame(model, data))


def planted_fields(ws: session.Workspace) -> list[tuple[str, str]]:
    """The sample's planted field pairs (``afm.datasets.sample_truth()``); none for other data."""
    return [tuple(p["fields"]) for p in afm.datasets.sample_truth()] if ws.is_sample else []


def heatmap_section(
    ws: session.Workspace, part: str, data: afm.Dataset, frame: pd.DataFrame, value_name: str, column: str, short: str
) -> None:
    """The field x field heatmap of ``column`` with numbers in its cells on the session's anchored colour scale,
    the previous models' heatmap beside it after a change of models, planted pairs framed, and a note when
    the signed mean hides cancelling effects."""
    n_pairs = len(frame)
    present = session.get().present
    matrix = explain.field_pair_matrix(frame, column)
    before = previous_frame(ws, part, data)
    before_matrix = explain.field_pair_matrix(before, column) if before is not None else None
    zrange = session_range(ws, column, n_pairs, matrix, *([] if before_matrix is None else [before_matrix]))
    options = {
        "kind": HEAT_KINDS[column],
        "zrange": zrange,
        "n_pairs": n_pairs,
        "support": explain.field_pair_matrix(frame, "support"),
        "value_name": short,
        "planted": planted_fields(ws),
        "text_size": 12 if before is not None else 14 if present else None,  # side by side: narrower cells
    }
    rows = f"{len(data):,} rows ({part})"
    if before_matrix is None:
        fig = plots.pair_heatmap(matrix, f"AFM: {value_name} over {rows}", **options)
        if present:
            fig.update_layout(height=440)
        widgets.show_figure(fig, "attention-heatmap")
    else:
        then, now = changed_settings(ws.previous_config, ws.config)
        title = f"AFM: {value_name} over {rows}, before and after the last change"
        fig = plots.before_after_heatmap(before_matrix, matrix, (then, now), title, **options)
        fig.update_layout(height=520 if present else 500)
        widgets.show_figure(fig, "attention-heatmap")
        st.caption("Left: the models before the last change; right: now. One colour scale for both.")
    if column == "mean_contribution":
        hidden = plots.cancelling_pairs(frame)
        if len(hidden):
            listed = "; ".join(
                f"**{widgets.literal(r.label)}** (mean c_ij {r.mean_contribution:+.4f}, mean |c_ij| "
                f"{r.mean_abs_contribution:.4f})"
                for r in hidden.head(5).itertuples()
            ) + (
                f"; and {len(hidden) - 5} more: " + widgets.literal(", ".join(hidden["label"].iloc[5:]), 400)
                if len(hidden) > 5
                else ""
            )
            st.warning(
                "The signed mean hides effects that cancel: among the 10 pairs with the largest mean |c_ij|, "
                f"these push some rows up and others down, so their mean is near 0 (white) although they move "
                f"predictions: {listed}. Colour by mean |contribution| to see their size."
            )


def truth_section(ws: session.Workspace, data: afm.Dataset, exp: afm.Summary) -> None:
    """On the salient sample: the AFM's attention against the true per-row pair weights of its recipe."""
    st.subheader("Attention against the truth")
    truth = afm.datasets.salient_weights(exp.sample_data)  # the rows the summary explained in full
    found = cached("truth", (ws.token, data.name, len(data)), lambda: afm.attention.truth_recovery(exp.sample, truth))
    st.caption(
        f"The salient sample was generated with known weights: in {found['decisive_rows']:,} of these "
        f"{found['rows']:,} rows one decisive pair of values takes most of the row's weight (sample_data/SALIENT.md). "
        "Does the AFM's attention find it? Beside each figure: the same with each row's attention shuffled."
    )
    a, b, c = st.columns(3)
    a.metric("Decisive rows whose top-attention pair is the true one", f"{found['hit_rate']:.1%}")
    a.caption(f"chance 1/P = {found['chance']:.1%}; shuffled {found['hit_permuted']:.1%} "
              f"({found['hit_permuted_lo']:.1%}–{found['hit_permuted_hi']:.1%})")  # fmt: skip
    b.metric("P·a_ij of the decisive pair (1 = uniform)", f"{found['dominant_relative']:.2f}")
    c.metric("Attention entropy / log P: decisive rows", f"{found['entropy_decisive']:.2f}")
    c.caption(f"other rows: {found['entropy_other']:.2f} (1 = uniform)")


def sample_and_pair_picker(ws: session.Workspace) -> tuple[str, int, int, list[str]]:
    """How AFM works' pickers: the part, a row of it and a pair of its fields (by default the pair that moves that
    row's prediction most, the one worth explaining), kept in the link. Stops the page when there are no pairs."""
    left, middle, right = st.columns(3)
    with left:
        part = widgets.part_picker(ws, "how_part", "test", "Part of the data", key="how-part")
    data = ws.parts[part]
    linked_row = widgets.query_value("how_row", 0, int, lo=0, hi=len(data) - 1)
    row = int(middle.number_input("Sample (row index)", 0, len(data) - 1, linked_row, 1, key=f"how-row-{part}"))
    idx, val = data.idx[row : row + 1], data.val[row : row + 1]  # (1, F)
    exp = ws.models["afm"].explain(idx, val)
    pair_labels = widgets.pair_label_list(ws)
    if not pair_labels:
        st.info("This data has a single field, so there are no pairs to attend to.")
        st.stop()
    default_pair = int(exp.contribution[0].abs().argmax())
    linked_pair = widgets.query_value("how_pair", default_pair, int, lo=0, hi=len(pair_labels) - 1)
    pair = right.selectbox(
        "Pair (i, j)",
        range(len(pair_labels)),
        index=linked_pair,
        format_func=pair_labels.__getitem__,
        key="how-pair",
    )
    widgets.set_query(how_row=row, how_pair=pair)
    return part, row, pair, pair_labels
