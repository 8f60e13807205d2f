"""Whole-data explanations in bounded memory: running sums per pair plus a seeded row sample.

``explain.explain_dataset`` keeps every term of every row: [N, P] tensors, which on Criteo-like data
(39 fields, P = 741 pairs, a million rows) is gigabytes. ``summarize`` walks the data batch by batch
(``explain_batches``) and keeps only

- **exact aggregates**, in float64: per pair the sums of a_ij, a'_ij, s_ij, c_ij and |c_ij| and the
  spread of a_ij (Chan's pairwise update of the sum of squared deviations); per field the sum of the
  linear terms w_i x_i; the sum of the predictions; the bias w0 and the row count;
- **a seeded sample of rows** (``sample_rows``, by default 20,000, or fewer on wide data so that the
  sample holds at most ``SAMPLE_CELLS`` rows × pairs: 5,398 rows at 39 fields; chosen by ``torch.randperm`` with
  ``seed``), explained in full (``Summary.sample``, an ``Explanation``) with the rows themselves
  (``Summary.sample_data``). What needs per-row values reads the sample: quantiles of a_ij, feature
  pairs, the row-by-row agreement figures and the deletion curves. With ``len(data) <= sample_rows``
  the sample is every row, in order, and everything is exact.

Memory: O(P) for the sums plus O(sample_rows · P) for the sample plus one batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from . import kernels
from .data import Dataset
from .model import AFM, FM, ROW_FIELDS, Explanation

SAMPLE_ROWS = 20_000
SAMPLE_CELLS = 4_000_000  # rows x pairs of the default sample: its four [rows, P] float32 terms stay ~64 MB


def default_sample_rows(n_fields: int) -> int:
    """``SAMPLE_ROWS``, or fewer when the data is wide: at most ``SAMPLE_CELLS`` rows × pairs, at least 1,000."""
    pairs = max(n_fields * (n_fields - 1) // 2, 1)
    return int(min(SAMPLE_ROWS, max(1_000, SAMPLE_CELLS // pairs)))


# the per-pair sums Summary keeps, by the Explanation attribute they sum ("abs_<name>": |<name>|)
PAIR_SUMS = (
    "attention", "score", "interaction", "contribution", "abs_contribution",
    "uniform_part", "attention_part", "abs_attention_part",
)  # fmt: skip
# the per-row sums Summary keeps (floats): over rows of the row's attention part Σ_ij (a_ij − 1/P) s_ij, of
# its uniform part Σ_ij s_ij / P and of its pair term Σ_ij c_ij: |.| and, for the pair term, its square
ROW_SUMS = ("abs_attention_total", "abs_uniform_total", "pair_total", "pair_total_sq")


def explain_batches(model: AFM | FM, data: Dataset, batch_size: int | None = None) -> Iterator[tuple[int, Explanation]]:
    """``(first_row, Explanation)`` for consecutive batches of ``data``, in eval mode.

    ``batch_size`` None picks one that bounds the memory of a batch (see ``auto_batch_size``).
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = batch_size or auto_batch_size(model)
    all_ones = data.one_hot()  # one-hot data: nothing to scale by x_i
    try:
        for start in range(0, len(data), rows):
            end = start + rows
            val = None if all_ones else data.val[start:end].to(device)
            yield start, model.explain(data.idx[start:end].to(device), val)
    finally:
        model.train(was_training)


def auto_batch_size(model: AFM | FM, budget_bytes: int = 128 * 2**20) -> int:
    """Rows per explanation batch whose working memory stays within ``budget_bytes``.

    The kernel layer says what a row costs: AFM's fused kernel keeps only [B, P] results per batch;
    the PyTorch kernels (and FM's explanation) also form the [B, P, k] pair vectors.
    """
    c = model.config
    params = (model.V, model.W, model.b, model.h) if isinstance(model, AFM) else ()  # FM: no fused kernel
    per_row = kernels.bytes_per_row(c.n_fields, c.embed_dim, *params)
    return int(min(max(budget_bytes // per_row, 256), 1 << 20))


@dataclass
class Summary:
    """What ``summarize`` keeps of a whole-data explanation: exact float64 sums and a row sample.

    Per pair (arrays [P], pairs in triu order as ``pairs`` [P, 2]): ``sums[name]`` for ``name`` in
    ``PAIR_SUMS`` (a_ij, a'_ij, s_ij, c_ij, |c_ij| summed over all ``rows``) and ``attention_m2``
    (Σ (a_ij − mean a_ij)²); the split of c_ij into ``uniform_part`` (s_ij / P) and ``attention_part``
    ((a_ij − 1/P) s_ij, and its absolute value). Per row, summed over rows: ``row_sums`` (``ROW_SUMS``: the
    |attention part| and |uniform part| of each prediction, the pair term and its square; see ``row_mean``
    and ``pair_term_std``). Per field: ``linear_sum`` [F] (Σ w_i x_i). ``prediction_sum``, ``bias``
    (w0). ``sample``: the ``Explanation`` of rows ``sample_index`` (int64 [S], ascending) of the data,
    ``sample_data`` those rows. Every pair occurs in every row, so each pair's count is ``rows``.
    """

    rows: int
    pairs: Tensor
    bias: float
    sums: dict[str, np.ndarray]
    attention_m2: np.ndarray
    linear_sum: np.ndarray
    prediction_sum: float
    sample: Explanation
    sample_index: Tensor
    sample_data: Dataset
    row_sums: dict[str, float] = dataclasses.field(default_factory=dict)

    def row_mean(self, name: str) -> float:
        """The mean over all rows of a per-row sum (``ROW_SUMS``), e.g. ``"abs_attention_total"``: the mean
        |attention part| of a prediction."""
        if name not in self.row_sums:
            raise ValueError(f"no row sum named {name!r}; have {sorted(self.row_sums)}")
        return self.row_sums[name] / self.rows

    @property
    def pair_term_std(self) -> float:
        """The spread (population standard deviation) over all rows of the pair term Σ_ij c_ij."""
        mean = self.row_mean("pair_total")
        return float(np.sqrt(max(self.row_mean("pair_total_sq") - mean * mean, 0.0)))

    def mean(self, name: str) -> np.ndarray:
        """The mean over all rows of a per-pair sum (``PAIR_SUMS``) or of ``"linear"`` (per field), float64."""
        if name == "linear":
            return self.linear_sum / self.rows
        if name not in self.sums:
            raise ValueError(f"no sum named {name!r}; have 'linear' and {sorted(self.sums)}")
        return self.sums[name] / self.rows

    @property
    def std_attention(self) -> np.ndarray:
        """Per pair, the population standard deviation of a_ij over all rows [P]."""
        return np.sqrt(np.maximum(self.attention_m2 / self.rows, 0.0))

    @property
    def mean_prediction(self) -> float:
        return self.prediction_sum / self.rows

    @property
    def sample_rows(self) -> int:
        return int(self.sample_index.numel())

    @property
    def exact(self) -> bool:
        """True when the sample is every row (then the per-row figures are exact too)."""
        return self.sample_rows == self.rows

    def sample_note(self) -> str:
        """How the per-row figures were computed, in words (for captions and CLI output)."""
        if self.exact:
            return f"computed on all {self.rows:,} rows"
        return f"computed on a seeded sample of {self.sample_rows:,} of {self.rows:,} rows"

    @classmethod
    def from_explanation(cls, explanation: Explanation, data: Dataset) -> Summary:
        """The summary of a whole-data ``Explanation`` (of every row of ``data``): the sample is every row."""
        n = explanation.attention.shape[0]
        if n != len(data):
            raise ValueError(f"the explanation has {n} rows, the data {len(data)}")
        if n == 0:
            raise ValueError("cannot summarise an empty explanation")
        acc = _Sums(explanation.attention.shape[1], explanation.linear.shape[1])
        acc.add(explanation)
        exp = _on_cpu(explanation)
        return acc.summary(exp, float(exp.bias), torch.arange(n), data)


class _Sums:
    """Running float64 sums over batches of an Explanation (the aggregates of ``Summary``)."""

    def __init__(self, n_pairs: int, n_fields: int) -> None:
        self.rows = 0
        self.sums = {name: np.zeros(n_pairs) for name in PAIR_SUMS}
        self.attention_m2 = np.zeros(n_pairs)
        self.linear_sum = np.zeros(n_fields)
        self.row_sums = dict.fromkeys(ROW_SUMS, 0.0)
        self.prediction_sum = 0.0
        self.pairs: Tensor | None = None

    def add(self, e: Explanation) -> None:
        b = e.attention.shape[0]
        if b == 0:
            return
        self.pairs = e.pairs.cpu()
        # NumPy, not torch: its column sums into float64 are about 20 times faster here (no float64 copy)
        attention, contribution = _numpy(e.attention), _numpy(e.contribution)
        uniform, moved = _numpy(e.uniform_part), _numpy(e.attention_part)

        def total(x: np.ndarray) -> np.ndarray:
            return x.sum(axis=0, dtype=np.float64)

        batch = {
            "attention": total(attention),
            "score": total(_numpy(e.score)),
            "interaction": total(_numpy(e.interaction)),
            "contribution": total(contribution),
            "abs_contribution": total(np.abs(contribution)),
            "uniform_part": total(uniform),
            "attention_part": total(moved),
            "abs_attention_part": total(np.abs(moved)),
        }
        per_row = {  # (B,) in float64: a row's totals
            "attention": np.sum(moved, axis=1, dtype=np.float64),
            "uniform": np.sum(uniform, axis=1, dtype=np.float64),
            "pair": np.sum(contribution, axis=1, dtype=np.float64),
        }
        self.row_sums["abs_attention_total"] += float(np.abs(per_row["attention"]).sum())
        self.row_sums["abs_uniform_total"] += float(np.abs(per_row["uniform"]).sum())
        self.row_sums["pair_total"] += float(per_row["pair"].sum())
        self.row_sums["pair_total_sq"] += float(np.square(per_row["pair"]).sum())
        # Chan et al.'s update: merge this batch's sum of squared deviations with the running one. The
        # deviations are float32 (a - mean of nearly equal numbers: exact), their squares summed in float64.
        batch_mean = batch["attention"] / b
        deviation = attention - batch_mean.astype(np.float32)
        batch_m2 = total(np.square(deviation, out=deviation))
        if self.rows:
            delta = batch_mean - self.sums["attention"] / self.rows
            self.attention_m2 += batch_m2 + delta**2 * self.rows * b / (self.rows + b)
        else:
            self.attention_m2 = batch_m2
        for name, value in batch.items():
            self.sums[name] += value
        self.linear_sum += total(_numpy(e.linear))
        self.prediction_sum += float(np.sum(_numpy(e.prediction), dtype=np.float64))
        self.rows += b

    def summary(self, sample: Explanation, bias: float, index: Tensor, data: Dataset) -> Summary:
        assert self.pairs is not None
        return Summary(
            rows=self.rows,
            pairs=self.pairs,
            bias=bias,
            sums=self.sums,
            attention_m2=self.attention_m2,
            linear_sum=self.linear_sum,
            prediction_sum=self.prediction_sum,
            sample=sample,
            sample_index=index,
            sample_data=data.subset(index, name=data.name) if len(index) < len(data) else data,
            row_sums=self.row_sums,
        )


def sample_index(n_rows: int, sample_rows: int = SAMPLE_ROWS, seed: int = 0) -> Tensor:
    """The rows ``summarize`` keeps: all of them when ``n_rows <= sample_rows``, else ``sample_rows`` rows
    drawn without replacement by a generator seeded with ``seed``; int64, ascending."""
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be >= 1, got {sample_rows}")
    if n_rows <= sample_rows:
        return torch.arange(n_rows)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n_rows, generator=generator)[:sample_rows].sort().values


def summarize(
    model: AFM | FM,
    data: Dataset,
    sample_rows: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
) -> Summary:
    """Explain every row of ``data`` batch by batch and keep a ``Summary``: exact float64 sums per pair and
    per field, and the full ``Explanation`` of a seeded sample of ``sample_rows`` rows (all rows when there
    are no more; None: ``default_sample_rows``). Nothing of size [N, P] is held: memory is the sums, the
    sample and one batch.
    """
    if len(data) == 0:
        raise ValueError("cannot explain an empty dataset")
    sample_rows = default_sample_rows(data.n_fields) if sample_rows is None else sample_rows
    index = sample_index(len(data), sample_rows, seed)
    acc: _Sums | None = None
    kept: dict[str, Tensor] = {}
    bias, uniform_weight, pairs = 0.0, torch.tensor(1.0), torch.empty(0, 2, dtype=torch.long)
    for start, e in explain_batches(model, data, batch_size):
        if acc is None:  # the first batch says the shapes
            acc = _Sums(e.attention.shape[1], e.linear.shape[1])
            bias, uniform_weight, pairs = float(e.bias), e.uniform_weight.cpu(), e.pairs.cpu()
            kept = {name: _empty_like(getattr(e, name), len(index)) for name in ROW_FIELDS}
        acc.add(e)
        end = start + e.attention.shape[0]
        lo, hi = (int(v) for v in torch.searchsorted(index, torch.tensor([start, end])))
        if hi > lo:
            local = (index[lo:hi] - start).to(e.attention.device)
            for name in ROW_FIELDS:
                kept[name][lo:hi] = getattr(e, name)[local].cpu()
    assert acc is not None  # data is not empty
    sample = Explanation(bias=torch.tensor(bias), pairs=pairs, uniform_weight=uniform_weight, **kept)
    return acc.summary(sample, bias, index, data)


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _empty_like(x: Tensor, rows: int) -> Tensor:
    return torch.empty((rows, *x.shape[1:]), dtype=x.dtype)


def _on_cpu(exp: Explanation) -> Explanation:
    return Explanation(**{f.name: getattr(exp, f.name).cpu() for f in dataclasses.fields(exp)})


def as_summary(model: AFM | FM, data: Dataset, explanation: Explanation | Summary | None = None) -> Summary:
    """``explanation`` as a ``Summary``: a Summary as it is, a whole-data ``Explanation`` (of every row of
    ``data``) summed up, None: ``summarize(model, data)`` (streaming, bounded memory)."""
    if isinstance(explanation, Summary):
        return explanation
    if explanation is not None:
        return Summary.from_explanation(explanation, data)
    return summarize(model, data)
