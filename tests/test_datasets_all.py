"""``load_parts``' "all" part: every row of the data, for every kind of data spec."""

from __future__ import annotations

from pathlib import Path

import torch

import afm


def write_libfm(path: Path, rows: list[tuple[float, list[int]]]) -> None:
    path.write_text("".join(f"{y:g} " + " ".join(f"{i}:1" for i in ids) + "\n" for y, ids in rows))


TRAIN = [(1, [0, 3, 6]), (-1, [1, 4, 7]), (1, [2, 5, 8]), (-1, [0, 4, 8])]
TEST = [(1, [1, 3, 9]), (-1, [2, 5, 6])]
VALID = [(1, [0, 5, 7]), (1, [1, 3, 6]), (-1, [2, 4, 9])]


def test_all_of_a_two_part_folder_is_both_parts(tmp_path: Path) -> None:
    write_libfm(tmp_path / "ml-tag.train.libfm", TRAIN)
    write_libfm(tmp_path / "ml-tag.test.libfm", TEST)
    parts = afm.datasets.load_parts(tmp_path)
    assert sorted(parts) == ["all", "test", "train"]
    everything = parts["all"]
    assert len(everything) == len(TRAIN) + len(TEST) == len(parts["train"]) + len(parts["test"])
    assert torch.equal(everything.idx, torch.cat([parts["train"].idx, parts["test"].idx]))
    assert everything.y.tolist() == [y for y, _ in TRAIN + TEST]
    assert everything.schema is parts["train"].schema  # one schema: a model of one part reads "all"


def test_all_of_a_folder_without_train_is_validation_and_test(tmp_path: Path) -> None:
    write_libfm(tmp_path / "ml-tag.validation.libfm", VALID)
    write_libfm(tmp_path / "ml-tag.test.libfm", TEST)
    parts = afm.datasets.load_parts(tmp_path, valid_fraction=0.34)
    assert sorted(parts) == ["all", "test", "train", "valid"]
    assert len(parts["all"]) == len(VALID) + len(TEST) == sum(len(parts[p]) for p in ("train", "valid", "test"))
    assert parts["all"].y.tolist() == [y for y, _ in VALID + TEST]
    # train and valid are the validation file split: together they are its rows
    split_ids = sorted(map(tuple, torch.cat([parts["train"].idx, parts["valid"].idx]).tolist()))
    assert split_ids == sorted(map(tuple, parts["all"].idx[: len(VALID)].tolist()))


def test_all_of_the_sample_is_every_row() -> None:
    parts = afm.datasets.load_parts("sample")
    assert len(parts["all"]) == 30_000 == sum(len(parts[p]) for p in ("train", "valid", "test"))
