"""Training: the loss goes down, early stopping and stop requests keep the best weights, seeds repeat."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch

import afm
from afm.train import Progress, TrainConfig, evaluate, fit, fit_afm_from_fm, infer_task, roc_auc, train_pair


@pytest.fixture(scope="module")
def parts() -> list[afm.Dataset]:
    data = afm.datasets.sample("regression")
    return afm.split(data, [0.4, 0.1, 0.1], seed=0)


@pytest.fixture(scope="module")
def binary_parts() -> list[afm.Dataset]:
    return afm.split(afm.datasets.sample("binary"), [0.4, 0.1], seed=0)


def new_afm(data: afm.Dataset, **kwargs) -> afm.AFM:  # noqa: ANN003
    return afm.AFM(data.n_features, data.n_fields, embed_dim=8, attention_factor=8, **kwargs)


def test_loss_goes_down_and_beats_the_mean(parts: list[afm.Dataset]) -> None:
    train, valid, test = parts
    model = new_afm(train)
    history = fit(model, train, valid, epochs=6, batch_size=256, lr=0.02, optimizer="adam")
    losses = [e["train_loss"] for e in history.epochs]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.5 * losses[0]
    baseline = float((test.y - train.y.mean()).square().mean().sqrt())
    assert evaluate(model, test)["rmse"] < 0.8 * baseline
    assert set(history.epochs[0]) == {"epoch", "train_loss", "valid_rmse", "valid_mae", "seconds"}


def test_binary_training_and_metrics(binary_parts: list[afm.Dataset]) -> None:
    train, valid = binary_parts
    model = new_afm(train)
    fit(model, train, valid, task="binary", epochs=3, lr=0.01, optimizer="adam")
    metrics = evaluate(model, valid, "binary")
    assert metrics["auc"] > 0.8 and metrics["logloss"] < math.log(2) and metrics["accuracy"] > 0.7
    # ±1 labels read the same as 0/1
    pm = afm.Dataset(valid.idx, valid.val, valid.y * 2 - 1, valid.schema)
    assert evaluate(model, pm, "binary") == metrics


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=60), 1)  # ties included
    positive = rng.random(60) < 0.4
    pairs = [(s, t) for s, t in itertools.product(scores[positive], scores[~positive])]
    expected = np.mean([1.0 if s > t else 0.5 if s == t else 0.0 for s, t in pairs])
    assert roc_auc(scores, positive) == pytest.approx(expected)


def test_auc_is_scikit_learns_and_nan_where_undefined() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    scores, positive = np.round(rng.normal(size=500), 1), rng.random(500) < 0.3
    assert roc_auc(scores, positive) == roc_auc_score(positive, scores)
    assert roc_auc(scores, positive.astype(float)) == roc_auc(scores, positive)  # 0/1 reads as False/True
    assert np.isnan(roc_auc(scores, np.ones(500, dtype=bool)))  # one class: undefined
    assert np.isnan(roc_auc(scores, np.zeros(500, dtype=bool)))
    assert np.isnan(roc_auc(np.array([0.1, np.nan, 0.3, 0.2]), np.array([1, 0, 1, 0], dtype=bool)))
    blown = np.array([np.inf, 2.0, -np.inf, 1.0, np.inf])  # infinite logits still rank
    # positives inf, 2 against negatives -inf, 1, inf: 1 + 1 + 0.5 (inf = inf) + 1 + 1 + 0 of 6 pairs
    assert roc_auc(blown, np.array([1, 1, 0, 0, 0], dtype=bool)) == pytest.approx(4.5 / 6)


def test_regression_metrics_clip_to_the_label_range(parts: list[afm.Dataset]) -> None:
    _, valid, _ = parts
    model = new_afm(valid)
    with torch.no_grad():
        model.w0.fill_(100.0)  # every prediction far above the largest label
    metrics = evaluate(model, valid)
    y = valid.y.double().numpy()
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((y.max() - y) ** 2)))
    assert metrics["mae"] == pytest.approx(np.mean(y.max() - y))


def test_same_seed_same_numbers_other_seed_other_numbers(parts: list[afm.Dataset]) -> None:
    train, valid, _ = parts
    small = train.subset(range(3000))

    def run(seed: int) -> tuple[list[dict], afm.AFM]:
        model = new_afm(small, dropout=0.3, attention_dropout=0.1, seed=seed)
        history = fit(model, small, valid, epochs=2, seed=seed, lr=0.01, optimizer="adam")
        return [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs], model

    (h1, m1), (h2, m2), (h3, _) = run(5), run(5), run(6)
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))
    assert h1 != h3


def test_early_stopping_restores_the_best_weights(parts: list[afm.Dataset]) -> None:
    train, valid, _ = parts
    tiny = train.subset(range(300))  # overfits fast: validation error turns up
    model = afm.AFM(tiny.n_features, tiny.n_fields, embed_dim=32, attention_factor=8)
    history = fit(model, tiny, valid, epochs=60, batch_size=32, lr=0.05, optimizer="adam", patience=3)
    assert history.stopped == "early_stopping"
    rmses = [e["valid_rmse"] for e in history.epochs]
    assert history.best_epoch == int(np.argmin(rmses)) + 1 < len(rmses)
    label_range = (float(tiny.y.min()), float(tiny.y.max()))  # fit clips to the training labels' range
    assert evaluate(model, valid, label_range=label_range)["rmse"] == pytest.approx(min(rmses), abs=1e-12)


def test_callback_sees_progress_and_can_stop(parts: list[afm.Dataset]) -> None:
    train, valid, _ = parts
    seen: list[Progress] = []

    def callback(p: Progress) -> bool:
        seen.append(p)
        return p.epoch == 2 and p.batch >= 10

    model = new_afm(train)
    history = fit(model, train, valid, epochs=5, batch_size=256, callback=callback, progress_every=5)
    assert history.stopped == "callback" and len(history.epochs) == 2
    epoch_ends = [p for p in seen if p.epoch_end]
    assert len(epoch_ends) == 2 and "rmse" in epoch_ends[0].metrics
    assert len([p for p in seen if p.epoch == 1 and not p.epoch_end]) >= 5
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] <= 1
    label_range = (float(train.y.min()), float(train.y.max()))
    assert evaluate(model, valid, label_range=label_range)["rmse"] == pytest.approx(
        history.best["valid_rmse"], abs=1e-12
    )


def test_divergence_stops_and_keeps_good_weights(parts: list[afm.Dataset]) -> None:
    train, valid, _ = parts
    model = new_afm(train)
    history = fit(model, train.subset(range(2000)), valid, epochs=5, lr=1e12, optimizer="adagrad")
    assert history.stopped == "diverged"
    assert "learning rate" in history.message and "loss became" in history.message
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isfinite(evaluate(model, valid)["rmse"])


def test_l2_on_attention_shrinks_w(parts: list[afm.Dataset]) -> None:
    train, _, _ = parts
    small = train.subset(range(3000))
    norms = []
    for lam in (0.0, 1.0):
        model = new_afm(small)
        fit(model, small, epochs=2, lr=0.01, optimizer="adam", l2_attention=lam)
        norms.append(float(model.W.detach().norm()))
    assert norms[1] < 0.5 * norms[0]


def test_fm_pretraining_starts_afm_from_the_fm(parts: list[afm.Dataset]) -> None:
    """``fit_afm_from_fm``: ``train_pair`` with recipe from_fm; settings as a config and/or overrides (its older
    keyword ``fm_epochs`` is ``pretrain_epochs``)."""
    train, valid, test = parts
    small = train.subset(range(4000))
    result = fit_afm_from_fm(
        small, valid, embed_dim=8, attention_factor=4, epochs=2, fm_epochs=3, lr=0.01, optimizer="adam", patience=None
    )
    assert len(result.fm_history.epochs) == 3 and len(result.history.epochs) == 2
    assert result.history.recipe == "from_fm" and result.afm.config.attention_factor == 4
    assert isinstance(result.afm, afm.AFM) and isinstance(result.fm, afm.FM)
    # the FM was trained (beats an untrained one)
    untrained = afm.FM(small.n_features, small.n_fields, 8)
    assert evaluate(result.fm, test)["rmse"] < evaluate(untrained, test)["rmse"]
    # the AFM's validation loss starts exactly at the FM's, and never ends above it
    fm_rmse = result.fm_history.best["valid_rmse"]
    assert result.history.start["valid_rmse"] == pytest.approx(fm_rmse, rel=1e-5)
    assert result.history.best["valid_rmse"] <= fm_rmse * (1 + 1e-5)


def test_fit_keeps_the_start_when_no_epoch_beats_it(parts: list[afm.Dataset]) -> None:
    train, valid, _ = parts
    small = train.subset(range(3000))
    fm = afm.FM(small.n_features, small.n_fields, 8)
    fit(fm, small, valid, epochs=8, lr=0.02, optimizer="adam")
    model = afm.AFM.from_fm(fm, attention_factor=4)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    history = fit(model, small, valid, epochs=2, lr=5.0, optimizer="adam", patience=None)  # wrecks the weights
    assert history.best_epoch == 0 and history.best is history.start
    assert all(e["valid_rmse"] > history.start["valid_rmse"] for e in history.epochs)
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_train_pair_compares_the_afm_with_the_fm_it_started_from(parts: list[afm.Dataset]) -> None:
    train, valid, _ = parts
    small = train.subset(range(3000))
    config = TrainConfig(embed_dim=8, attention_factor=4, epochs=3)
    pair = train_pair(config, small, valid)
    fm_history, history = pair["fm"][1], pair["afm"][1]
    assert history.start["valid_rmse"] == pytest.approx(fm_history.best["valid_rmse"], rel=1e-5)
    assert history.best["valid_rmse"] <= fm_history.best["valid_rmse"] * (1 + 1e-5)
    fresh = train_pair(dataclasses.replace(config, pretrain=False), small, valid)
    assert fresh["afm"][1].start["valid_rmse"] > 2 * fm_history.best["valid_rmse"]  # a random start is far off


def test_one_set_of_defaults() -> None:
    """``fit`` re-declares no setting: its keywords are the things that are not ``TrainConfig`` fields."""
    import inspect

    from afm.cli import build_parser

    defaults = TrainConfig()
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for function in (fit, fit_afm_from_fm, train_pair, afm.train.train_model):
        declared = set(inspect.signature(function).parameters)
        assert not declared & names, (function.__name__, declared & names)
    assert list(inspect.signature(fit).parameters) == [
        "model", "train", "valid", "config", "callback", "device", "progress_every", "overrides"
    ]  # fmt: skip
    args = build_parser().parse_args(["train"])
    for f in dataclasses.fields(TrainConfig):
        assert getattr(args, f.name) == getattr(defaults, f.name), f.name


def test_fit_takes_a_config_and_the_old_keywords_as_overrides(parts: list[afm.Dataset]) -> None:
    """``fit(model, train, valid, config)``, ``fit(..., config, epochs=2)`` and the older spelling
    ``fit(..., epochs=2, lr=0.02)`` train the same: keywords are ``TrainConfig`` fields set on ``config``."""
    train, valid, _ = parts
    small = train.subset(range(1500))
    config = TrainConfig(epochs=2, lr=0.02, batch_size=128, seed=3, patience=None)

    def run(*args: object, **kwargs: object) -> list[float]:
        model = new_afm(small, seed=3)
        history = fit(model, small, valid, *args, **kwargs)
        return [e["valid_rmse"] for e in history.epochs]

    first = run(config)
    assert len(first) == 2
    assert run(dataclasses.replace(config, epochs=7), epochs=2) == first  # an override wins over the config
    assert run(epochs=2, lr=0.02, batch_size=128, seed=3, patience=None) == first  # keywords on TrainConfig()
    assert run(config, lr=0.001) != first
    with pytest.raises(TypeError, match=r"fit\(\) got unknown setting 'learning_rate'.*lr, optimizer"):
        fit(new_afm(small), small, learning_rate=0.1)
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        fit(new_afm(small), small, valid, {"epochs": 1})  # type: ignore[arg-type]


def test_task_auto_reads_the_labels(binary_parts: list[afm.Dataset], parts: list[afm.Dataset]) -> None:
    assert infer_task(binary_parts[0]) == "binary" and infer_task(parts[0]) == "regression"
    pm = binary_parts[0].subset(range(200))
    pm.y = pm.y * 2 - 1  # ±1 labels, as Frappe's
    assert infer_task(pm) == "binary"
    history = fit(new_afm(pm), pm, pm, epochs=1)  # task "auto" by default
    assert history.task == "binary" and "valid_logloss" in history.epochs[0]


def test_bad_arguments(parts: list[afm.Dataset]) -> None:
    train, _, _ = parts
    model = new_afm(train)
    with pytest.raises(ValueError, match="task must be"):
        fit(model, train, task="ranking")
    with pytest.raises(ValueError, match="optimizer must be"):
        fit(model, train, optimizer="sgd")
    with pytest.raises(ValueError, match="fields and feature ids up to .* but the afm model expects 3 fields"):
        fit(afm.AFM(100, 3), train)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none on this machine")
def test_cuda_training_matches_cpu(parts: list[afm.Dataset]) -> None:
    train, valid, _ = parts
    small = train.subset(range(4000))
    results = []
    for device in ("cpu", "cuda"):
        model = new_afm(small)
        fit(model, small, epochs=2, lr=0.01, optimizer="adam", device=device)
        results.append(evaluate(model.cpu(), valid)["rmse"])
    assert results[1] == pytest.approx(results[0], rel=1e-3)


@pytest.mark.slow
def test_same_seed_same_numbers_across_processes_with_two_threads(tmp_path) -> None:  # noqa: ANN001
    """Multi-threaded CPU kernels must not make reruns differ (index_put_'s accumulate did)."""
    import subprocess
    import sys

    script = (
        "import torch, afm; torch.set_num_threads(2)\n"
        "d = afm.datasets.sample(); tr, va = afm.split(d, [0.3, 0.1], seed=1)\n"
        "m = afm.AFM(d.n_features, d.n_fields, 16, dropout=0.2, seed=1)\n"
        "h = afm.fit(m, tr, va, seed=1, epochs=2, lr=0.01, optimizer='adam')\n"
        "print(repr([e['valid_rmse'] for e in h.epochs]), repr(float(m.V.sum())))\n"
    )
    outputs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
               for _ in range(2)]  # fmt: skip
    assert outputs[0] == outputs[1] and outputs[0].strip()


def test_explain_dataset_same_terms_whatever_the_batching(parts: list[afm.Dataset]) -> None:
    """The default (one large batch here) and small batches give the same explanation, and it adds up."""
    train = parts[0]
    model = afm.AFM(train.n_features, train.n_fields, 8, 4, seed=1)
    whole = afm.explain_dataset(model, train)
    batched = afm.explain_dataset(model, train, batch_size=97)
    for name in ("prediction", "linear", "score", "attention", "interaction", "contribution"):
        torch.testing.assert_close(getattr(whole, name), getattr(batched, name), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(whole.total(), whole.prediction, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(whole.prediction, afm.predict(model, train), rtol=1e-5, atol=1e-6)
    rows = afm.explain.auto_batch_size(model)
    assert len(train) <= rows  # one batch for this small set
    wide = afm.AFM(100, 39, 64, 16)  # P = 741 pairs: fewer rows per batch, within the budget
    assert 256 <= afm.explain.auto_batch_size(wide) < rows
    assert afm.explain.auto_batch_size(wide) * 741 * 4 * 6 <= 256 * 2**20


def test_train_pair_warm_starts_from_given_weights() -> None:
    """``warm``: the FM (and an AFM of the same t) start from given models; the start is evaluated, so the
    warm-started models are never worse on validation than the models they started from."""
    parts = afm.datasets.load_parts("sample", seed=0)
    base = afm.TrainConfig(epochs=2)
    first = afm.train_pair(base, parts["train"], parts["valid"])
    moved = dataclasses.replace(base, dropout=0.3)
    warm = {kind: model for kind, (model, _) in first.items()}
    second = afm.train_pair(moved, parts["train"], parts["valid"], warm=warm)
    clip = afm.label_range(parts["train"])
    for kind, (model, history) in second.items():
        before = afm.evaluate(warm[kind], parts["valid"], label_range=clip)["rmse"]
        assert history.start["valid_rmse"] == pytest.approx(before, rel=1e-6)  # it started at the given weights
        assert afm.evaluate(model, parts["valid"], label_range=clip)["rmse"] <= before + 1e-9
        assert model is not warm[kind] and model.config.dropout == 0.3
