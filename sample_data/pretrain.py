"""Train the small AFMs and FMs that the dashboard loads at start, so every page has content.

    python sample_data/pretrain.py

Writes sample_data/pretrained/{regression,binary}-{afm,fm}.pt (the pairs sample) and
salient-{regression,binary}-{afm,fm}.pt (the salient sample) with the default ``TrainConfig`` on the seed-0
80/10/10 split of each sample, through ``afm.train_pair``: the FM, then the AFM by the default recipe. The
same split, settings and code as the dashboard's Train button.
"""

from __future__ import annotations

from pathlib import Path

import torch

import afm
from afm.train import TrainConfig, evaluate, train_pair

OUT = Path(__file__).resolve().parent / "pretrained"


def main() -> None:
    torch.set_num_threads(2)
    for name in afm.datasets.SAMPLES:
        for task in ("regression", "binary"):
            parts = afm.datasets.load_parts(name, task=task, seed=0)
            config = TrainConfig(task=task)
            for kind, (model, history) in train_pair(config, parts["train"], parts["valid"]).items():
                metrics = {p: evaluate(model, parts[p], task) for p in ("valid", "test")}
                stem = f"{task}-{kind}" if name == "sample" else f"{name}-{task}-{kind}"
                path = afm.save_model(
                    model,
                    OUT / f"{stem}.pt",
                    task=task,
                    schema=parts["train"].schema.to_dict(),
                    config=config.to_dict(),
                    history=history.to_dict(),
                    metrics=metrics,
                    data=name,
                )
                print(f"{path.name}: test {metrics['test']}" + (f" ({history.recipe})" if history.recipe else ""))


if __name__ == "__main__":
    main()
