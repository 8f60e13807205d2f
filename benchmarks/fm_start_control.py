"""Is the FM-started AFM's gain attention? A control: ``python benchmarks/fm_start_control.py``.

For the sample (both labels) and Frappe binary (validation file split 80/20, seed 0; test file): train
an FM with the defaults (afm.TrainConfig), then from its best weights (a) an AFM that starts exactly
at it (AFM.from_fm) and (b) the same FM, continued; both with the default ``finetune_lr``. If (a) and
(b) end alike, the AFM's gain over the FM is the second, slower phase of training, not attention.
Prints validation and test loss and the AFM's attention entropy over log P (1 = uniform).
"""

from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path

import torch

import afm
from afm.model import AFM, FM

FRAPPE = Path(os.environ.get("AFM_FRAPPE", Path(__file__).resolve().parents[2] / "shared" / "data" / "frappe"))


def entropy(model: AFM, data: afm.Dataset) -> float:
    a = afm.explain_dataset(model, data).attention.double().clamp_min(1e-30)
    return float((-(a * a.log()).sum(1)).mean() / math.log(a.shape[1]))


def main() -> None:
    torch.set_num_threads(1)
    d = afm.TrainConfig()
    sets = {f"sample-{t}": afm.datasets.load_parts("sample", task=t) for t in ("regression", "binary")}
    if (FRAPPE / "frappe.validation.libfm").is_file():
        files = afm.datasets.frappe(FRAPPE)
        train, valid = afm.split(files["validation"], [0.8, 0.2], seed=0)
        sets["frappe-binary"] = {"train": train, "valid": valid, "test": files["test"]}
    else:
        print(f"Frappe skipped: no {FRAPPE}/frappe.validation.libfm", file=sys.stderr)
    print("| data | loss | FM | FM continued | AFM from FM | AFM entropy / log P |")
    print("|---|---|---|---|---|---|")
    for name, parts in sets.items():
        train, valid, test = parts["train"], parts["valid"], parts["test"]
        fm = FM(d.model_config("fm", train))
        history = afm.fit(fm, train, valid)
        task, loss = history.task, history.monitor
        clip = afm.label_range(train, task)
        continued = copy.deepcopy(fm)
        afm.fit(continued, train, valid, lr=d.finetune_lr)
        model = AFM.from_fm(copy.deepcopy(fm), d.attention_factor, d.dropout, d.attention_dropout, seed=d.seed)
        afm.fit(model, train, valid, lr=d.finetune_lr)
        scores = [
            " / ".join(f"{afm.evaluate(m, p, task, label_range=clip)[loss]:.4f}" for p in (valid, test))
            for m in (fm, continued, model)
        ]
        row = [name, f"valid / test {loss}", *scores, f"{entropy(model, test):.4f}"]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
