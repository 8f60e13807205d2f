"""The second bundled sample ("salient", sample_data/SALIENT.md): rebuilt byte for byte, its true attention
weights, and an AFM that beats the FM on it with attention that finds the decisive pairs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import afm
from afm.train import TrainConfig, evaluate, label_range, train_pair

ROOT = Path(__file__).resolve().parent.parent


def generator():
    """sample_data/generate_salient.py as a module (the folder is not an importable package in a checkout)."""
    path = afm.datasets.SAMPLE_DIR / "generate_salient.py"
    spec = importlib.util.spec_from_file_location("generate_salient_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_check_passes_for_both_samples() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "sample_data" / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "up to date" in run.stdout


def test_the_registry_loads_both_samples() -> None:
    assert set(afm.datasets.SAMPLES) >= {"sample", "salient"}
    assert afm.datasets.sample().name == "sample (regression)"  # the old call still gives the first sample
    data = afm.datasets.sample("binary", name="salient")
    truth = afm.datasets.salient_truth()
    assert data.field_names == truth["fields"] == ["viewer", "genre", "time_slot", "device", "company", "entry"]
    assert set(data.y.unique().tolist()) == {0.0, 1.0}
    parts = afm.datasets.load_parts("salient", task="regression", seed=3)
    assert [len(parts[p]) for p in ("train", "valid", "test", "all")] == [16_000, 2_000, 2_000, 20_000]
    assert parts["train"].schema.label == "watch_score"
    with pytest.raises(ValueError, match="unknown bundled sample"):
        afm.datasets.sample(name="nope")


def test_true_weights_are_a_softmax_per_row_and_match_the_generator() -> None:
    gen = generator()
    frame = afm.datasets.sample_frame("salient")
    truth = afm.datasets.salient_truth()
    weights = afm.datasets.salient_weights(frame)
    p = len(truth["pairs"])
    assert weights.shape == (len(frame), p) == (20_000, 15)
    assert (weights >= 0).all() and np.allclose(weights.sum(1), 1.0, atol=1e-12)
    # the generator's own weights, from the rows' values: equal to the last bit
    codes = {f: frame[f].map({v: i for i, v in enumerate(values)}).to_numpy() for f, values in gen.FIELDS.items()}
    sigma, vote, gen_weights, _ = gen.pair_terms(codes)
    assert np.array_equal(weights, gen_weights)
    # ordinary rows are uniform; a decisive row puts the stored weight on its decisive pair, the rest share
    decisive = weights.max(1) > 1.0 / p + 1e-9
    assert np.allclose(weights[~decisive], 1.0 / p)
    assert np.allclose(weights[decisive].max(1), truth["decisive_weight"], atol=1e-6)
    assert decisive.sum() == sum(d["rows"] for d in truth["decisive_pairs"])
    assert abs(decisive.mean() - truth["decisive_row_share"]) < 1e-4
    # a Dataset's rows (decoded through its schema) give the same weights as the frame's
    parts = afm.datasets.load_parts("salient", seed=0)
    order = torch.randperm(20_000, generator=torch.Generator().manual_seed(0))  # split()'s shuffle
    assert np.array_equal(afm.datasets.salient_weights(parts["test"]), weights[order[-2000:].numpy()])


def test_the_truth_file_explains_the_labels() -> None:
    """bias + main effects + sum_ij w_ij g_ij from salient_truth.json alone leaves Gaussian noise of noise_std."""
    frame = afm.datasets.sample_frame("salient")
    truth = afm.datasets.salient_truth()
    weights = afm.datasets.salient_weights(frame)
    p = len(truth["pairs"])
    vote = np.zeros_like(weights)
    for taste in truth["tastes"]:
        fi, fj = taste["fields"]
        keys = frame[fi] + "|" + frame[fj]
        vote[:, taste["pair_index"]] = p * keys.map(taste["effects"]).to_numpy(dtype=float)
    for d in truth["decisive_pairs"]:
        (fi, fj), (vi, vj) = d["fields"], d["values"]
        vote[((frame[fi] == vi) & (frame[fj] == vj)).to_numpy(), d["pair_index"]] = d["verdict"]
    main = sum(frame[f].map(effects).fillna(0.0).to_numpy() for f, effects in truth["main_effects"].items())
    residual = frame["watch_score"].to_numpy() - (truth["bias"] + main + (weights * vote).sum(1))
    assert abs(residual.mean()) < 0.02 and abs(residual.std() - truth["noise_std"]) < 0.02
    assert json.loads((afm.datasets.SAMPLE_DIR / "salient_truth.json").read_text())["n_rows"] == len(frame)


def test_afm_beats_fm_and_its_attention_finds_the_decisive_pairs() -> None:
    """A brief training (10 epochs, seed 0) of the recommended recipe: the FM start, fine-tuned at lr 0.01.

    The default recipe (finetune_lr 0.001) is as good on validation but needs 65-81 epochs here; this one
    gets there in 9-21. Over seeds 0-2, trained to early stopping, its AFM reached 0.61-0.69 times the FM's
    test RMSE with a top-1 hit rate of 1.00 on every seed (chance 1/15; benchmarks/results/salient_sample);
    capped at 8-12 epochs (FM and AFM), 0.67-0.79 times and 1.00 (0.71 and 1.00 here, seed 0, 10 epochs).
    The bounds leave a wide margin: AFM below 0.9 times the FM, hit rate above 0.5 (7.5 times chance).
    """
    parts = afm.datasets.load_parts("salient", task="regression", seed=0)
    config = TrainConfig(task="regression", seed=0, finetune_lr=0.01, epochs=10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the numbers measured; and fast enough on one core (about 4 s)
    try:
        result = train_pair(config, parts["train"], parts["valid"])
    finally:
        torch.set_num_threads(threads)
    clip = label_range(parts["train"], "regression")
    rmse = {kind: evaluate(model, parts["test"], "regression", label_range=clip)["rmse"] for kind, (model, _) in
            result.items()}  # fmt: skip
    assert rmse["afm"] < 0.9 * rmse["fm"], rmse
    model = result["afm"][0]
    attention = model.explain(parts["test"].idx, None).attention.numpy()
    truth = afm.datasets.salient_weights(parts["test"])
    p = truth.shape[1]
    decisive = truth.max(1) > 1.0 / p + 1e-9
    top = attention.argmax(1)
    unique = (attention == attention.max(1, keepdims=True)).sum(1) == 1
    hit_rate = ((top == truth.argmax(1)) & unique)[decisive].mean()
    assert hit_rate > 0.5 > 7 * (1.0 / p), hit_rate
    # and the attention is peaked where the truth is, flatter elsewhere
    entropy = -(attention * np.log(attention)).sum(1) / np.log(p)
    assert entropy[decisive].mean() < entropy[~decisive].mean()
