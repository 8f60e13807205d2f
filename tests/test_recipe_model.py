"""The recipe "Add a model kind" (docs/ARCHITECTURE.md), done once: a subclass of FM with a learned scale on
its pair term, registered, reaches build_model, TrainConfig.model_config, fit, explain, checkpoints and the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import afm
from afm.cli import build_parser, main
from afm.model import FM, MODELS


class ScaledFM(FM):
    """FM whose pair term is multiplied by a learned scalar g (g = 1: exactly FM)."""

    kind = "scaledfm"

    def __init__(self, config: afm.ModelConfig) -> None:
        super().__init__(config)
        self.g = nn.Parameter(torch.ones(()))

    def _predict(self, idx: Tensor, val: Tensor | None, keep: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """As FM's, with the pair term scaled by g; ``keep`` returns the terms ``explain`` reads."""
        val = afm.model._check_inputs(idx, val, self.config.n_fields)
        linear, e = self._embed(idx, val)  # (B, F), (B, F, k)
        pooled = 0.5 * (e.sum(1).square() - e.square().sum(1))  # (B, k): sum_ij u_ij
        prediction = self.w0 + linear.sum(1) + self.g * self._dropout(pooled, self.config.dropout).sum(1)
        parts: dict[str, Tensor] = {}
        if keep:
            i, j = self.pairs.T
            interaction = torch.bmm(e, e.transpose(1, 2))[:, i, j]  # s_ij = <e_i, e_j>
            weight = self.g.expand_as(interaction)  # every pair weighed by g
            parts = {
                "linear": linear,
                "score": torch.zeros_like(weight),
                "attention": weight,
                "interaction": interaction,
            }
        return prediction, parts


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    afm.register_model(ScaledFM)
    yield
    MODELS.pop("scaledfm", None)
    afm.config.MODEL_KINDS.pop("scaledfm", None)


def test_registration_refuses_what_is_not_a_kind() -> None:
    class NoKind(FM):
        kind = ""

    with pytest.raises(TypeError, match="class attribute kind"):
        afm.register_model(NoKind)
    with pytest.raises(ValueError, match="already FM"):
        afm.register_model(type("OtherFM", (FM,), {"kind": "fm"}))


def test_a_new_kind_trains_explains_and_round_trips(parts: dict[str, afm.Dataset], tmp_path: Path) -> None:
    config = afm.TrainConfig(epochs=2, embed_dim=8)
    model_config = config.model_config("scaledfm", parts["train"])
    assert model_config.kind == "scaledfm" and model_config.attention_factor == 0  # FM's family: no attention
    model = afm.build_model(model_config)
    assert isinstance(model, ScaledFM)
    history = afm.fit(model, parts["train"], parts["valid"], config)
    assert history.epochs[-1]["valid_rmse"] < history.start["valid_rmse"]  # it learns
    assert model.g.item() != 1.0  # the new parameter is trained
    idx, val = parts["test"].idx[:64], parts["test"].val[:64]
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.explain(idx, val).total(), model(idx, val), atol=1e-5, rtol=1e-5)
    path = afm.save_model(model, tmp_path / "scaled.pt", task="regression")
    loaded, _ = afm.load_model(path)
    assert type(loaded) is ScaledFM and math.isclose(loaded.g.item(), model.g.item())
    with torch.no_grad():
        torch.testing.assert_close(loaded(idx, val), model(idx, val))


def test_the_cli_offers_and_trains_the_new_kind(tmp_path: Path) -> None:
    assert "scaledfm" in build_parser().parse_args(["train", "--model", "scaledfm"]).model
    out = tmp_path / "scaled.pt"
    assert main(["train", "--data", "sample", "--model", "scaledfm", "--epochs", "1", "--out", str(out)]) == 0
    loaded, meta = afm.load_model(out)
    assert type(loaded) is ScaledFM and meta["config"]["epochs"] == 1
