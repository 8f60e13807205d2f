"""Train the small AFM and FM that the dashboard loads at start, so every page has content.

    python sample_data/pretrain.py

Writes sample_data/pretrained/{regression,binary}-{afm,fm}.pt with the default ``TrainConfig``
(README, "Defaults") on the seed-0 80/10/10 split of the sample, through ``afm.train_pair``: the FM,
then the AFM that starts exactly at it. The same split, settings and code as the dashboard's Train
button.
"""

from __future__ import annotations

from pathlib import Path

import torch

import afm
from afm.train import TrainConfig, evaluate, train_pair

OUT = Path(__file__).resolve().parent / "pretrained"


def main() -> None:
    torch.set_num_threads(2)
    for task in ("regression", "binary"):
        parts = afm.datasets.load_parts("sample", task=task, seed=0)
        config = TrainConfig(task=task)
        for kind, (model, history) in train_pair(config, parts["train"], parts["valid"]).items():
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
