"""The "add a knob" recipe, end to end: a ``TrainConfig`` subclass declares one field with ``knob(...)`` and
overrides the hook ``fit`` calls (``optimizer_options``); nothing else is written, and the knob reaches

- the CLI: a flag of ``afm train`` with its default and help, checked by ``Knob.check`` (``build_parser`` /
  ``main`` given the subclass),
- the dashboard: ``afm.config.knobs(subclass)``, the list app/knobs.py makes its widgets and link parameters
  from, and the same validator for a link's text,
- ``fit`` (and ``train_pair``/``train_model`` above it): a fit with the subclass config trains with the value,
- checkpoints and run folders: ``to_dict`` in the metadata, ``from_dict`` back, through ``save_model`` /
  ``load_model`` and through ``afm train``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import afm
from afm.cli import build_parser, main
from afm.config import TrainConfig, knob, knobs

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class WithWeightDecay(TrainConfig):
    """The recipe's whole code: a field with its knob metadata and the hook that hands it to the optimiser."""

    weight_decay: float = knob(
        0.0,
        "Weight decay",
        "L2 penalty on every weight, applied by the optimiser",
        "float",
        bounds=(0.0, 1.0),
        symbol="wd",
        words="weight decay",
    )

    def optimizer_options(self) -> dict[str, Any]:
        return {**super().optimizer_options(), "weight_decay": self.weight_decay}


@pytest.fixture(scope="module")
def small() -> tuple[afm.Dataset, afm.Dataset]:
    train, valid = afm.split(afm.datasets.sample(), [0.05, 0.05], seed=0)
    return train, valid


def test_the_knob_reaches_the_cli_flag() -> None:
    parser = build_parser(WithWeightDecay)
    assert parser.parse_args(["train", "--weight-decay", "0.25"]).weight_decay == 0.25
    assert parser.parse_args(["train"]).weight_decay == 0.0  # the field's default
    assert build_parser(WithWeightDecay).parse_args(["stability"]).config_class is WithWeightDecay
    with pytest.raises(SystemExit):  # outside its bounds: a usage error, as a link or a widget refuses it
        parser.parse_args(["train", "--weight-decay", "1.5"])
    assert "weight_decay" not in vars(build_parser().parse_args(["train"]))  # TrainConfig itself is unchanged


def test_the_knob_reaches_the_dashboards_widget_list_and_its_words() -> None:
    by_name = {k.name: k for k in knobs(WithWeightDecay)}
    k = by_name["weight_decay"]
    assert k.widget and k.label == "Weight decay" and k.bounds == (0.0, 1.0)
    assert [name for name in by_name if name != "weight_decay"] == [k.name for k in knobs(TrainConfig)]
    assert k.check("0.5") == 0.5  # what a link's text goes through
    with pytest.raises(ValueError, match=r"weight_decay must be in \[0.0, 1.0\], got '2'"):
        k.check("2")
    config = WithWeightDecay(weight_decay=0.5)
    assert afm.config.describe(config, ["attention_factor", "weight_decay"]) == "t = 16, wd = 0.5"
    assert afm.config.differences(WithWeightDecay(), config) == ["weight_decay"]
    # the dashboard makes its widgets from knobs(afm.TrainConfig), filtered by ``widget``: a subclass's knob is
    # among them when the dashboard is given the subclass
    sys.path.insert(0, str(ROOT / "app"))
    try:
        import knobs as app_knobs  # app/knobs.py

        assert [k.name for k in app_knobs.KNOBS] == [k.name for k in knobs(TrainConfig) if k.widget]
    finally:
        sys.path.remove(str(ROOT / "app"))


def test_fit_trains_with_the_knob(small: tuple[afm.Dataset, afm.Dataset]) -> None:
    train, valid = small
    base: dict[str, Any] = dict(embed_dim=8, dropout=0.0, epochs=2, batch_size=128, lr=0.05, patience=None, seed=1)

    def trained(config: TrainConfig, **overrides: Any) -> afm.FM | afm.AFM:
        model = afm.build_model(config.model_config("fm", train))
        afm.fit(model, train, valid, config, **overrides)
        return model

    plain = trained(TrainConfig(**base))
    same = trained(WithWeightDecay(**base))  # the knob at its default: the same numbers as TrainConfig's
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), same.parameters(), strict=True))
    decayed = trained(WithWeightDecay(**base), weight_decay=0.5)  # an override of the subclass's own field
    assert float(decayed.V.detach().norm()) < 0.9 * float(plain.V.detach().norm())
    with pytest.raises(TypeError, match="weight_decay"):  # TrainConfig has no such field: the error names them
        afm.fit(afm.FM(train.n_features, train.n_fields, 8), train, weight_decay=0.5)
    # train_model and train_pair hand the subclass config on to fit
    model, _ = afm.train.train_model("fm", WithWeightDecay(**base, weight_decay=0.5), train, valid)
    assert torch.equal(model.V, decayed.V)


def test_the_knob_round_trips_through_a_checkpoint(tmp_path: Path, small: tuple[afm.Dataset, afm.Dataset]) -> None:
    train, _ = small
    config = WithWeightDecay(task="regression", weight_decay=0.3, embed_dim=4)
    model = afm.build_model(config.model_config("fm", train))
    afm.save_model(model, tmp_path / "m.pt", config=config.to_dict())
    _, meta = afm.load_model(tmp_path / "m.pt")
    assert meta["config"]["weight_decay"] == 0.3
    assert WithWeightDecay.from_dict(meta["config"]) == config
    assert TrainConfig.from_dict(meta["config"]) == TrainConfig(task="regression", embed_dim=4)  # older readers


def test_the_knob_goes_from_a_flag_through_fit_into_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``afm train`` with the subclass: the flag's value is trained with and stored, and reads back."""
    ckpt = tmp_path / "m.pt"
    argv = ["train", "--model", "fm", "--epochs", "1", "--batch-size", "2048", "-k", "4", "--weight-decay", "0.2",
            "--out", str(ckpt), "--no-run", "--quiet"]  # fmt: skip
    assert main(argv, config_class=WithWeightDecay) == 0
    capsys.readouterr()
    _, meta = afm.load_model(ckpt)
    expected = WithWeightDecay(task="regression", epochs=1, batch_size=2048, embed_dim=4, weight_decay=0.2)
    assert meta["config"] == expected.to_dict()
    assert WithWeightDecay.from_dict(meta["config"]) == expected
