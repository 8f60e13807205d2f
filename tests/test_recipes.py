"""The AFM recipes (from FM, from scratch, auto) and a Stop during the FM that keeps an AFM."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import afm
from afm.config import RECIPES
from afm.train import TrainConfig, evaluate, train_model, train_pair


@pytest.fixture(scope="module")
def parts() -> dict[str, afm.Dataset]:
    parts = afm.datasets.load_parts("sample", task="regression", seed=0)
    return {"train": parts["train"].subset(torch.arange(4000)), "valid": parts["valid"]}


@pytest.fixture(scope="module")
def config() -> TrainConfig:
    return TrainConfig(task="regression", epochs=2, embed_dim=4, attention_factor=4, batch_size=512, patience=None)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.fixture(scope="module")
def trained(parts, config) -> dict[str, dict]:
    return {r: train_pair(dataclasses.replace(config, recipe=r), parts["train"], parts["valid"]) for r in RECIPES}


def test_from_fm_starts_exactly_at_the_fm(trained, parts) -> None:
    fm, fm_history = trained["from_fm"]["fm"]
    model, history = trained["from_fm"]["afm"]
    assert history.recipe == "from_fm" and fm_history.recipe == ""
    # the AFM's starting weights were evaluated: equal to the FM's best validation loss
    assert history.start["valid_rmse"] == pytest.approx(fm_history.best["valid_rmse"], rel=1e-5)
    assert history.best["valid_rmse"] <= history.start["valid_rmse"]


def test_scratch_trains_a_fresh_afm_at_scratch_lr(trained, parts, config) -> None:
    model, history = trained["scratch"]["afm"]
    assert history.recipe == "scratch"
    # the same as a fresh AFM of these settings trained at scratch_lr, p from p_init
    fresh = afm.build_model(dataclasses.replace(config, recipe="scratch").model_config("afm", parts["train"]))
    assert fresh.config.p_init == config.p_init
    afm.fit(fresh, parts["train"], parts["valid"], task="regression", epochs=2, batch_size=512, lr=config.scratch_lr,
            patience=None, seed=config.seed)  # fmt: skip
    assert same_weights(model, fresh)
    # train_model("afm") with recipe scratch is the same training without an FM
    alone, alone_history = train_model("afm", dataclasses.replace(config, recipe="scratch"), parts["train"],
                                       parts["valid"])  # fmt: skip
    assert same_weights(alone, model) and alone_history.recipe == "scratch"
    # pretrain=False is the older spelling of recipe scratch
    assert dataclasses.replace(config, pretrain=False).afm_recipe == "scratch"


def test_auto_keeps_the_better_recipe_on_validation(trained) -> None:
    losses = {r: trained[r]["afm"][1].best["valid_rmse"] for r in ("from_fm", "scratch")}
    better = min(losses, key=losses.get)
    model, history = trained["auto"]["afm"]
    assert history.recipe == better
    assert same_weights(model, trained[better]["afm"][0])
    assert f"auto: kept {better}" in history.message
    assert (
        f"from_fm {losses['from_fm']:.4f}" in history.message and f"scratch {losses['scratch']:.4f}" in history.message
    )
    # the FM is trained once and is the same in every recipe
    assert same_weights(trained["auto"]["fm"][0], trained["from_fm"]["fm"][0])


def test_a_stop_during_the_fm_keeps_an_afm_started_exactly_at_it(parts, config) -> None:
    calls = {"n": 0}

    def stop_in_the_fm(progress: afm.Progress) -> bool:
        calls["n"] += 1
        return progress.model.config.kind == "fm" and progress.epoch_end  # Stop after the FM's first epoch

    result = train_pair(config, parts["train"], parts["valid"], callback=stop_in_the_fm)
    fm, fm_history = result["fm"]
    model, history = result["afm"]
    assert fm_history.stopped == "callback" and len(fm_history.epochs) == 1
    assert history.stopped == "fm_stopped" and history.epochs == [] and history.recipe == "from_fm"
    assert "stopped during the FM" in history.message and "epoch 1" in history.message
    data = parts["valid"]
    torch.testing.assert_close(model(data.idx, data.val), fm(data.idx, data.val), rtol=1e-5, atol=1e-5)
    assert evaluate(model, data, "regression")["rmse"] == pytest.approx(history.start["valid_rmse"], rel=1e-5)


def test_recipe_is_a_knob_with_a_flag_and_a_checked_value() -> None:
    from afm.config import knobs

    knob = {k.name: k for k in knobs()}["recipe"]
    assert knob.choices == RECIPES and knob.afm_only
    with pytest.raises(ValueError, match="recipe must be one of"):
        knob.check("warm")
    assert TrainConfig.from_dict({"recipe": "auto", "pretrain": True}).afm_recipe == "auto"
