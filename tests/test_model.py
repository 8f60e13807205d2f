"""AFM and FM against a naive per-sample loop written straight from eq. 6."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from afm import AFM, FM, paper_parameters


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every parameter non-trivial random values (p and b included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.5)


def naive_afm(params: dict[str, np.ndarray], idx: np.ndarray, val: np.ndarray) -> dict[str, np.ndarray]:
    """Eq. 6 sample by sample, pair by pair, in float64."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    n_samples, n_fields = idx.shape
    out = {"prediction": [], "attention": [], "interaction": [], "linear": []}
    for s in range(n_samples):
        x = val[s].astype(np.float64)
        v = p["V"][idx[s]]
        linear = p["w"][idx[s]] * x
        scores, inter, pooled_pairs = [], [], []
        for i in range(n_fields):
            for j in range(i + 1, n_fields):
                u = v[i] * v[j] * x[i] * x[j]
                if "W" in p:
                    scores.append(p["h"] @ np.maximum(p["W"] @ u + p["b"], 0.0))
                inter.append(p["p"] @ u)
                pooled_pairs.append(u)
        if "W" in p and scores:
            z = np.exp(np.array(scores) - max(scores))
            att = z / z.sum()
        else:
            att = np.ones(len(inter))
        pred = p["w0"] + linear.sum() + float(np.dot(att, inter)) if inter else p["w0"] + linear.sum()
        out["prediction"].append(pred)
        out["attention"].append(att)
        out["interaction"].append(np.array(inter))
        out["linear"].append(linear)
    return {k: np.array(v) for k, v in out.items()}


def batch(n_features: int, n_fields: int, n: int = 12, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n_features, (n, n_fields), generator=g)
    val = torch.randn(n, n_fields, generator=g) * 1.5  # real-valued x, negatives included
    return idx, val


@pytest.mark.parametrize("n_fields", [2, 3, 7])
def test_afm_matches_naive_loop(n_fields: int) -> None:
    model = AFM(40, n_fields, embed_dim=5, attention_factor=4).eval()
    randomise(model)
    idx, val = batch(40, n_fields)
    ref = naive_afm(paper_parameters(model), idx.numpy(), val.numpy())
    exp = model.explain(idx, val)
    np.testing.assert_allclose(model(idx, val).detach().numpy(), ref["prediction"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(exp.prediction.numpy(), ref["prediction"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(exp.attention.numpy(), ref["attention"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(exp.interaction.numpy(), ref["interaction"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(exp.linear.numpy(), ref["linear"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(exp.contribution.numpy(), ref["attention"] * ref["interaction"], rtol=1e-4, atol=1e-5)


def test_fm_matches_naive_loop_and_closed_form() -> None:
    model = FM(30, 6, embed_dim=4).eval()
    randomise(model, seed=1)
    idx, val = batch(30, 6)
    params = paper_parameters(model)
    ref = naive_afm(params, idx.numpy(), val.numpy())
    out = model(idx, val).detach().numpy()
    np.testing.assert_allclose(out, ref["prediction"], rtol=1e-4, atol=1e-5)
    # closed form 0.5 sum_f [(sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2], in float64
    v = params["V"][idx.numpy()].astype(np.float64) * val.numpy()[..., None]
    closed = 0.5 * ((v.sum(1) ** 2) - (v**2).sum(1)).sum(1)
    closed += params["w0"] + (params["w"][idx.numpy()] * val.numpy()).sum(1)
    np.testing.assert_allclose(out, closed, rtol=1e-4, atol=1e-5)
    exp = model.explain(idx, val)
    assert torch.equal(exp.attention, torch.ones_like(exp.attention))
    np.testing.assert_allclose(exp.interaction.numpy(), ref["interaction"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [AFM, FM])
def test_explanation_is_additive_and_forward_agrees_exactly(cls: type) -> None:
    model = cls(50, 5, embed_dim=6).eval()
    randomise(model, seed=2)
    idx, val = batch(50, 5, n=64)
    exp = model.explain(idx, val)
    assert torch.equal(exp.prediction, model(idx, val).detach())  # one code path
    torch.testing.assert_close(exp.total(), exp.prediction, rtol=1e-5, atol=1e-5)
    assert exp.pairs.tolist() == torch.triu_indices(5, 5, 1).T.tolist()
    block = exp.rows(slice(10, 20))  # a row block: views of every per-row term, the same bias and pairs
    for name in ("prediction", "linear", "score", "attention", "interaction", "contribution"):
        assert torch.equal(getattr(block, name), getattr(exp, name)[10:20])
        assert getattr(block, name).data_ptr() == getattr(exp, name)[10:20].data_ptr()
    assert block.bias is exp.bias and block.pairs is exp.pairs
    torch.testing.assert_close(block.total(), exp.prediction[10:20], rtol=1e-5, atol=1e-5)
    picked = exp.rows(torch.tensor([3, 0]))
    assert torch.equal(picked.contribution, exp.contribution[[3, 0]])
    assert exp.attention.shape == exp.contribution.shape == (64, 10)


def test_attention_is_a_distribution_and_stable() -> None:
    model = AFM(20, 6, embed_dim=4, attention_factor=3).eval()
    randomise(model, seed=4)
    with torch.no_grad():
        model.h.mul_(1e4)  # huge scores: a naive exp would overflow
    idx, val = batch(20, 6, n=32)
    att = model.explain(idx, val * 10).attention
    assert torch.isfinite(att).all()
    assert (att >= 0).all()
    torch.testing.assert_close(att.sum(1), torch.ones(32))


def test_val_none_means_ones() -> None:
    model = AFM(20, 4).eval()
    randomise(model)
    idx, _ = batch(20, 4)
    torch.testing.assert_close(model(idx), model(idx, torch.ones(idx.shape)))


def test_one_field_predicts_bias_plus_linear() -> None:
    for model in (AFM(10, 1).eval(), FM(10, 1).eval()):
        randomise(model, seed=5)
        idx, val = batch(10, 1)
        expected = model.w0 + model.w[idx[:, 0]] * val[:, 0]
        torch.testing.assert_close(model(idx, val), expected)
        exp = model.explain(idx, val)
        assert exp.contribution.shape == (12, 0)
        torch.testing.assert_close(exp.total(), exp.prediction)


def test_gradients_reach_every_parameter() -> None:
    model = AFM(30, 4, embed_dim=4, attention_factor=3, dropout=0.1, attention_dropout=0.1)
    randomise(model, seed=6)
    idx, val = batch(30, 4)
    model(idx, val).square().sum().backward()
    for name in ("w0", "w", "V", "W", "b", "h", "p"):
        grad = getattr(model, name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_initialisation_as_the_papers_code() -> None:
    model = AFM(5000, 3, embed_dim=16, attention_factor=8, seed=7)
    assert model.w0.item() == 0 and torch.equal(model.w, torch.zeros(5000))
    assert torch.equal(model.p.detach(), torch.ones(16))
    assert abs(model.V.std().item() - 0.01) < 0.001
    assert abs(model.h.std().item() - 1.0) < 0.6  # 8 draws of N(0, 1)
    again = AFM(5000, 3, embed_dim=16, attention_factor=8, seed=7)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)  # seeded
    other = AFM(5000, 3, embed_dim=16, attention_factor=8, seed=8)
    assert not torch.equal(model.V, other.V)


def test_paper_parameters_shapes() -> None:
    afm_params = paper_parameters(AFM(9, 3, embed_dim=4, attention_factor=2))
    assert {k: v.shape for k, v in afm_params.items()} == {
        "w0": (),
        "w": (9,),
        "V": (9, 4),
        "W": (2, 4),
        "b": (2,),
        "h": (2,),
        "p": (4,),
    }
    fm_params = paper_parameters(FM(9, 3, embed_dim=4))
    assert set(fm_params) == {"w0", "w", "V", "p"}
    assert np.array_equal(fm_params["p"], np.ones(4))


def test_from_fm_starts_exactly_at_the_fm() -> None:
    fm = FM(25, 4, embed_dim=6, dropout=0.3)
    randomise(fm, seed=8)
    model = AFM.from_fm(fm, attention_factor=5, seed=1)
    assert model.config.dropout == 0.3 and model.config.attention_factor == 5
    for name in ("w0", "w", "V"):
        assert torch.equal(getattr(model, name), getattr(fm, name))
    # neutral attention (h = 0: a_ij = 1/P) and p = P * 1 undo each other
    assert torch.equal(model.h.detach(), torch.zeros(5)) and torch.equal(model.p.detach(), torch.full((6,), 6.0))
    idx, val = batch(25, 4)
    fm.eval(), model.eval()
    torch.testing.assert_close(model(idx, val), fm(idx, val), rtol=1e-5, atol=1e-6)
    e_fm, e_afm = fm.explain(idx, val), model.explain(idx, val)
    torch.testing.assert_close(e_afm.attention, torch.full_like(e_afm.attention, 1 / 6))
    torch.testing.assert_close(e_afm.contribution, e_fm.contribution, rtol=1e-5, atol=1e-6)


def test_from_fm_attention_learns_from_the_first_step() -> None:
    fm = FM(25, 4, embed_dim=6)
    randomise(fm, seed=3)
    model = AFM.from_fm(fm, attention_factor=5, seed=1)
    idx, val = batch(25, 4)
    model.train()
    model(idx, val).square().sum().backward()
    assert model.h.grad is not None and float(model.h.grad.abs().sum()) > 0  # h = 0 still gets a gradient


def test_dropout_only_in_training() -> None:
    model = AFM(30, 5, dropout=0.5, attention_dropout=0.5)
    randomise(model)
    idx, val = batch(30, 5)
    model.train()
    torch.manual_seed(0)
    a = model(idx, val)
    torch.manual_seed(1)
    b = model(idx, val)
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model(idx, val), model(idx, val))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dropout": 1.0}, "dropout"),
        ({"attention_dropout": -0.1}, "attention_dropout"),
        ({"attention_factor": 0}, "attention_factor"),
        ({"embed_dim": 0}, "embed_dim"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AFM(10, 3, **kwargs)


def test_bad_input_shapes() -> None:
    model = AFM(10, 3)
    with pytest.raises(ValueError, match=r"idx must have shape \[B, 3\]"):
        model(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="val must have the shape"):
        model(torch.zeros(4, 3, dtype=torch.long), torch.ones(4, 2))


def test_sizes_by_keyword_by_position_and_a_config_build_the_same_model() -> None:
    from afm import ModelConfig

    readme = AFM(n_features=100, n_fields=4, embed_dim=8, attention_factor=4)  # README's first example
    config = ModelConfig("afm", 100, 4, embed_dim=8, attention_factor=4)
    assert readme.config == config
    for model in (
        AFM(100, 4, 8, 4),
        AFM(config),
        AFM(config=config),
        AFM(100, n_fields=4, embed_dim=8, attention_factor=4),
    ):
        assert model.config == config
        for name in ("w0", "w", "V", "W", "b", "h", "p"):  # the same seed: the same weights
            assert torch.equal(getattr(model, name), getattr(readme, name)), name
    idx, val = batch(100, 4)
    assert readme(idx, val).shape == (12,)
    assert AFM(n_features=9, n_fields=3, dropout=0.2, seed=4, p_init="normal").config == ModelConfig(
        "afm", 9, 3, dropout=0.2, seed=4, p_init="normal"
    )
    fm = FM(n_features=30, n_fields=6, embed_dim=4, dropout=0.1, seed=2)
    assert fm.config == ModelConfig("fm", 30, 6, embed_dim=4, attention_factor=0, dropout=0.1, seed=2)
    assert FM(30, 6, 4, 0.1, seed=2).config == fm.config == FM(fm.config).config == FM(config=fm.config).config


@pytest.mark.parametrize("model_class", [AFM, FM], ids=["AFM", "FM"])
def test_a_config_and_sizes_together_or_neither_is_a_clear_error(model_class: type) -> None:
    from afm import ModelConfig

    config = ModelConfig(model_class.__name__.lower(), 10, 3)
    name = model_class.__name__
    with pytest.raises(TypeError, match=rf"{name}\(config\) takes no other settings, got embed_dim, n_fields"):
        model_class(config, n_fields=3, embed_dim=4)
    with pytest.raises(TypeError, match="takes no other settings, got n_features"):
        model_class(config=config, n_features=10)
    with pytest.raises(TypeError, match="missing n_features and n_fields"):
        model_class()
    with pytest.raises(TypeError, match="missing n_fields"):
        model_class(n_features=10)
    with pytest.raises(TypeError, match="missing n_features"):
        model_class(n_fields=3, embed_dim=4)
    with pytest.raises(TypeError, match="n_features twice"):
        model_class(10, 3, n_features=10)


def test_p_init_normal_draws_p_and_changes_nothing_else() -> None:
    ones = AFM(30, 5, embed_dim=8, attention_factor=4, seed=7)
    normal = AFM(30, 5, embed_dim=8, attention_factor=4, seed=7, p_init="normal")
    for name in ("w0", "w", "V", "W", "b", "h"):  # the default stream is untouched
        assert torch.equal(getattr(ones, name), getattr(normal, name)), name
    assert torch.equal(ones.p, torch.ones(8))
    assert not torch.equal(normal.p, ones.p)
    assert 0.2 < normal.p.std().item() < 0.9  # N(0, 2/(k+1)): std 0.49 for k=8
    again = AFM(30, 5, embed_dim=8, attention_factor=4, seed=7, p_init="normal")
    assert torch.equal(again.p, normal.p)  # seeded
    assert normal.config.p_init == "normal"
    with pytest.raises(ValueError, match="p_init must be one of"):
        AFM(30, 5, p_init="zeros")


def test_p_init_survives_checkpoints_and_old_configs_load(tmp_path) -> None:  # noqa: ANN001
    from afm import build_model, load_model, save_model

    model = AFM(30, 5, embed_dim=8, attention_factor=4, seed=7, p_init="normal")
    save_model(model, tmp_path / "m.pt")
    loaded, _ = load_model(tmp_path / "m.pt")
    assert loaded.config.p_init == "normal" and torch.equal(loaded.p, model.p)
    old = model.config.to_dict()
    del old["p_init"]  # a checkpoint written before p_init existed
    assert build_model(old).config.p_init == "ones"


FRAPPE = Path(__file__).resolve().parents[2] / "shared" / "data" / "frappe"


@pytest.mark.skipif(not (FRAPPE / "frappe.test.libfm").is_file(), reason="needs ../shared/data/frappe (team data)")
@pytest.mark.parametrize("kernel", ["default", "pytorch"])
def test_from_fm_predicts_as_the_fm_on_frappe(kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import afm

    if kernel == "pytorch":
        monkeypatch.setattr(afm.kernels.native, "library", lambda: None)
    test = afm.datasets.frappe(FRAPPE)["test"].subset(range(4096))
    fm = FM(test.n_features, test.n_fields, embed_dim=16)
    afm.fit(fm, test.subset(range(2048)), epochs=2, lr=0.01, task="binary")
    model = AFM.from_fm(fm, attention_factor=16, seed=3)
    p_fm, p_afm = afm.train.predict(fm, test), afm.train.predict(model, test)
    assert float(p_fm.abs().max()) > 1.0  # a trained FM, not a near-zero one
    torch.testing.assert_close(p_afm, p_fm, rtol=1e-5, atol=1e-5)
