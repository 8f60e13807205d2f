"""A knob's words live in its metadata only (afm/config.py ``knob(...)``): the settings line (``describe``),
titles (``Knob.brief``), figure and table words (``afm.plots.words``) and the long description all come from
there. Also ``TrainConfig.replace`` (how ``fit`` applies its keywords) and ``Knob.check``'s edge cases."""

from __future__ import annotations

import pytest

from afm import plots
from afm.config import TrainConfig, describe, differences, knob_of, knobs, overridden

WIDGET_KNOBS = [k for k in knobs() if k.widget]


def old_app_describe(config: TrainConfig, names: list[str] | None = None) -> str:
    """app/training.py's ``describe`` as it was before the words moved into the knobs (the reference)."""
    short = {"attention_factor": "t", "embed_dim": "k", "l2_attention": "λ"}
    names = names or [k.name for k in WIDGET_KNOBS]
    labels = {k.name: k.label for k in WIDGET_KNOBS}
    return ", ".join(f"{short.get(n, labels.get(n, n).split(':')[0].lower())} = {getattr(config, n)}" for n in names)


def test_describe_is_the_dashboards_settings_line() -> None:
    config = TrainConfig(attention_factor=8, dropout=0.1, patience=None, finetune_lr=None)
    assert describe(config, ["attention_factor", "dropout"]) == "t = 8, dropout on the interaction layer = 0.1"
    assert describe(config) == old_app_describe(config)
    for k in WIDGET_KNOBS:
        assert describe(config, [k.name]) == old_app_describe(config, [k.name]), k.name
    assert describe(config, ["task"]) == "task = auto"  # a knob without a widget, named on request
    assert describe(config, ["attention_factor", "dropout", "lr"], brief=True) == (
        "t = 8, dropout = 0.1, learning rate = 0.01"
    )


def test_titles_name_a_knob_briefly() -> None:
    brief = {k.name: k.brief for k in knobs()}
    assert brief["attention_factor"] == "t" and brief["embed_dim"] == "k" and brief["l2_attention"] == "λ"
    assert brief["dropout"] == "dropout" and brief["attention_dropout"] == "attention dropout"
    assert brief["optimizer"] == "optimiser" and brief["pretrain"] == "FM pre-training" and brief["seed"] == "seed"
    assert differences(TrainConfig(), TrainConfig(dropout=0.3, seed=2)) == ["dropout", "seed"]
    assert differences(TrainConfig(), TrainConfig(task="binary")) == []  # the task has no widget
    assert differences(TrainConfig(), TrainConfig(task="binary"), widget_only=False) == ["task"]


def test_figures_take_a_knobs_words_from_the_knob() -> None:
    assert not set(plots.WORDS) & {k.name for k in knobs()}, "a knob's words belong in its knob(...) metadata"
    for k in knobs():
        assert plots.words(k.name) == k.words
    assert plots.words("attention_factor") == "attention factor t" and plots.words("l2_attention") == "λ (L2 on W)"
    assert plots.words("lr") == "learning rate" and plots.words("embed_dim") == "embedding size k"
    assert plots.words("valid_rmse") == "validation RMSE"  # the other columns as before


def test_the_sweep_pages_descriptions_are_the_knobs() -> None:
    assert knob_of("dropout").description == "Dropout on the pairwise-interaction layer (AFM and FM)"
    assert knob_of("attention_factor").description == "Attention factor t, the attention network's hidden size (AFM)"
    assert knob_of("l2_attention").description == "λ, the L2 penalty on the attention network's W (AFM)"
    assert knob_of("attention_dropout").description == "Dropout on the attention weights (AFM)"
    assert knob_of("epochs").description == "Epoch cap: early stopping (patience) usually ends training first"
    assert knob_of("dropout").flag == "--dropout" and knob_of("l2_attention").flag == "--l2-attention"
    with pytest.raises(KeyError, match="no knob 'momentum'"):
        knob_of("momentum")


def test_replace_names_an_unknown_setting_and_the_valid_ones() -> None:
    config = TrainConfig()
    assert config.replace() is config and config.replace(lr=0.1).lr == 0.1 and config.lr == 0.01
    with pytest.raises(TypeError, match=r"TrainConfig got unknown setting 'learning_rate': .*lr, optimizer"):
        config.replace(learning_rate=0.1)
    with pytest.raises(TypeError, match=r"fit\(\) got unknown settings 'a', 'b'"):
        overridden(config, {"a": 1, "b": 2}, "fit")


def test_the_fm_epoch_cap() -> None:
    assert TrainConfig(epochs=9).fm_epochs == 9
    assert TrainConfig(epochs=9, pretrain_epochs=4).fm_epochs == 4
    assert TrainConfig(epochs=9, pretrain_epochs=4, recipe="scratch").fm_epochs == 9  # no AFM starts from it
    assert TrainConfig(epochs=9, pretrain_epochs=4, pretrain=False).fm_epochs == 9


def test_check_takes_none_for_optional_knobs_and_whole_numbers_for_ints() -> None:
    assert knob_of("patience").check("none") is None and knob_of("finetune_lr").check("None") is None
    with pytest.raises(ValueError, match="epochs must be a whole number, got 'none'"):
        knob_of("epochs").check("none")
    assert knob_of("epochs").check(4.0) == 4 and knob_of("epochs").check("4") == 4
    with pytest.raises(ValueError, match="epochs must be a whole number, got 4.5"):
        knob_of("epochs").check(4.5)
    with pytest.raises(ValueError, match="lr must be a number, got 'fast'"):
        knob_of("lr").check("fast")
    with pytest.raises(ValueError, match=r"dropout must be in \[0.0, 0.9\], got '0.95'"):
        knob_of("dropout").check("0.95")
