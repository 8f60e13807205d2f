"""Train the small AFM and FM that the dashboard loads at start, so every page has content.

    python sample_data/pretrain.py

Writes sample_data/pretrained/{regression,binary}-{afm,fm}.pt with the default ``TrainConfig``
(k=16, t=16, dropout 0.2, Adam lr 0.01, batch 256, 10 epochs) on the seed-0 80/10/10 split of
the sample: the same split, settings and code as the dashboard's Train button.
"""

from __future__ import annotations

from pathlib import Path

import torch

import afm
from afm.train import TrainConfig, evaluate, train_model

OUT = Path(__file__).resolve().parent / "pretrained"


def main() -> None:
    torch.set_num_threads(2)
    for task in ("regression", "binary"):
        parts = afm.datasets.load_parts("sample", task=task, seed=0)
        config = TrainConfig(task=task)
        for kind in ("fm", "afm"):
            model, history = train_model(kind, config, parts["train"], parts["valid"])
            metrics = {p: evaluate(model, parts[p], task) for p in ("valid", "test")}
            path = afm.save_model(
                model,
                OUT / f"{task}-{kind}.pt",
                task=task,
                schema=parts["train"].schema.to_dict(),
                config=config.to_dict(),
                history=history.to_dict(),
                metrics=metrics,
                data="sample",
            )
            print(f"{path.name}: test {metrics['test']}")


if __name__ == "__main__":
    main()
