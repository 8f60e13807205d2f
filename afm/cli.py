"""Command line: ``afm train | evaluate | explain | predict | stability | runs | reproduce | download | dashboard``
(the ``afm`` console script, or ``python -m afm``).

Bad arguments and bad files give one line on stderr and exit status 2, never a traceback.
Distributed training: ``torchrun --standalone --nproc_per_node 2 -m afm train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import torch

from . import datasets
from .attention import AttentionEffect, attention_effect
from .checkpoint import atomic_write, load_model, save_model
from .config import Knob, TrainConfig, knobs
from .data import Dataset, Schema
from .explain import PAIR_SEP, explain_batches, feature_pair_frame, field_pair_frame, pair_names, summarize
from .faithfulness import SeedProgress, attention_agreement, deletion_curve, seed_stability, tau_in_words
from .metrics import TASKS
from .model import AFM, FM, MODELS
from .runs import list_runs, runs_dir, save_run
from .summary import SAMPLE_CELLS, SAMPLE_ROWS
from .train import Progress, evaluate, init_distributed, label_range, resolve_task, train_model

EXIT_USAGE = 2


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _one_line(text: str) -> str:
    """``text`` with every non-printable character (newlines, carriage returns...) escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def _csv_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


_positive_int.__name__ = "positive integer"
_positive_float.__name__ = "positive number"
_fraction.__name__ = "fraction in [0, 1)"


def _add_data_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        default=None if required else "sample",
        required=required,
        help="'sample' (the bundled data), a .libfm file, a folder of *.train/validation/test.libfm parts, "
        "or a CSV/Parquet table" + ("" if required else " (default: sample)"),
    )
    g.add_argument("--label", help="label column of a CSV/Parquet table")
    g.add_argument("--categorical", type=_csv_list, help="categorical columns of a table, comma-separated")
    g.add_argument("--numeric", type=_csv_list, help="numeric columns of a table, comma-separated")
    g.add_argument("--fields", type=_csv_list, help="field names of a .libfm file, comma-separated, in position order")
    g.add_argument("--valid-fraction", type=_fraction, default=0.1, help="rows held out for validation (default 0.1)")
    g.add_argument("--test-fraction", type=_fraction, default=0.1, help="rows held out for testing (default 0.1)")


def knob_type(k: Knob) -> Callable[[str], Any]:
    """The argparse ``type=`` of knob ``k``'s flag: ``Knob.check``, the validator the dashboard's widgets and
    links use too, so the CLI refuses the same values with the same message (argparse puts "argument --flag:"
    before it)."""

    def convert(text: str) -> Any:
        try:
            return k.check(text)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = k.name
    return convert


def add_config_flags(parser: argparse.ArgumentParser, config_class: type = TrainConfig) -> None:
    """One flag per training knob, generated from ``config_class``'s fields (``afm.config.knobs``):
    ``--name-with-dashes``, its type, choices, default and help all come from the field, and every value is
    checked by ``Knob.check`` (``knob_type``). ``config_class`` is also stored as the parsed arguments'
    ``config_class``, so the command builds that class (``config_from_args``)."""
    name = "afm.TrainConfig" if config_class is TrainConfig else config_class.__name__
    group = parser.add_argument_group(f"training settings ({name})")
    for k in knobs(config_class):
        flags = (*k.flags, k.flag)
        shown = (
            "on" if k.default is True else "off" if k.default is False else "none" if k.default is None else k.default
        )
        allowed = f"; {k.bounds[0]:g} to {k.bounds[1]:g}" if k.bounds else ""
        none = ", or none" if k.optional and k.default is not None else ""
        help_text = f"{k.help} ({shown}{allowed}{none})"
        if k.type is bool:
            group.add_argument(*flags, dest=k.name, action=argparse.BooleanOptionalAction, default=k.default,
                               help=help_text)  # fmt: skip
        else:
            metavar = "{" + ",".join(map(str, k.choices)) + "}" if k.kind == "choice" and k.choices else None
            group.add_argument(*flags, dest=k.name, type=knob_type(k), default=k.default, metavar=metavar,
                               help=help_text)  # fmt: skip
    parser.set_defaults(config_class=config_class)


def config_from_args(args: argparse.Namespace, **changes: Any) -> TrainConfig:
    """The training configuration the flags describe (of the class ``add_config_flags`` was given), with
    ``changes`` set (e.g. the task, once resolved from the data)."""
    config_class = getattr(args, "config_class", TrainConfig)
    config: TrainConfig = config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)})
    return config.replace(**changes)


def build_parser(config_class: type = TrainConfig, prog: str = "python -m afm") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Attentional Factorization Machines: train, inspect, predict.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train an AFM or FM", description="Train an AFM or FM and save a checkpoint.")
    _add_data_args(t)
    t.add_argument(
        "--model", choices=sorted(MODELS), default="afm", help="model to train (default afm; afm.model.register_model)"
    )
    add_config_flags(t, config_class)
    o = t.add_argument_group("device")
    o.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    out = t.add_argument_group("output")
    out.add_argument("--out", type=Path, help="checkpoint file to write")
    out.add_argument("--runs-dir", help="where run folders go (default runs/ or $AFM_RUNS_DIR)")
    out.add_argument("--run-name", help="name of the run folder (default: time and model)")
    out.add_argument("--no-run", action="store_true", help="do not write a run folder")
    out.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="metrics of a checkpoint", description="Metrics of a checkpoint on data.")
    e.add_argument("--checkpoint", type=Path, required=True, help="checkpoint file")
    _add_data_args(e)
    e.add_argument("--part", choices=["all", "train", "valid", "test"], default="test", help="which part (test)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")

    x = sub.add_parser("explain", help="top field and feature pairs", description="Which pairs a model relies on.")
    x.add_argument("--checkpoint", type=Path, required=True, help="checkpoint file")
    _add_data_args(x)
    x.add_argument("--part", choices=["all", "train", "valid", "test"], default="all", help="which part (all)")
    x.add_argument("--top", type=_positive_int, default=10, help="rows per table (default 10)")
    x.add_argument("--min-count", type=_positive_int, default=5, help="feature pairs seen at least this often (5)")
    x.add_argument("--csv", action="store_true", help="print CSV instead of tables")
    x.add_argument(
        "--sample-rows",
        type=_positive_int,
        default=None,
        help="field-pair means are exact over every row; feature pairs, per-row agreement and deletion use a "
        f"seeded sample of this many rows (default {SAMPLE_ROWS}, fewer on wide data: at most {SAMPLE_CELLS:,} "
        "rows x pairs; all rows when there are fewer)",
    )
    x.add_argument("--sample-seed", type=int, default=0, help="seed of that sample (default 0)")
    x.add_argument(
        "--deletion",
        action="store_true",
        help="also how far attention agrees with |contribution|, and the deletion curves: remove each row's top "
        "1..10 pairs by |contribution|, by attention and at random (a removed pair is masked out of the softmax and "
        "the pooling, as if it did not exist) and show the mean |change| of the predictions and the metric; with "
        "--csv, print only the curves' CSV",
    )

    pr = sub.add_parser("predict", help="predictions with per-pair contributions", description="Predict rows.")
    pr.add_argument("--checkpoint", type=Path, required=True, help="checkpoint file")
    _add_data_args(pr, required=True)
    pr.add_argument("--out", type=Path, required=True, help="CSV to write")

    st = sub.add_parser(
        "stability",
        help="would another seed agree? field pairs across seeds",
        description="Train the same configuration with several seeds and report, per field pair, the mean and 90%% "
        "interval (5th-95th percentile) across seeds of its mean |contribution| and mean attention, its rank "
        "interval, and the mean Kendall tau between the seeds' rankings.",
    )
    _add_data_args(st)
    st.add_argument("--seeds", type=_positive_int, default=5, help="trainings, with seeds --seed, --seed + 1, ... (5)")
    st.add_argument("--part", choices=["all", "train", "valid", "test"], default="all", help="rows to measure (all)")
    st.add_argument("--csv", action="store_true", help="print CSV instead of a table (tau goes to stderr)")
    st.add_argument("--quiet", action="store_true", help="no progress lines")
    st.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    add_config_flags(st, config_class)

    r = sub.add_parser("runs", help="list saved runs", description="List the run folders.")
    r.add_argument("--runs-dir", help="runs directory (default runs/ or $AFM_RUNS_DIR)")

    rp = sub.add_parser(
        "reproduce",
        help="the paper's experiments on Frappe and the sample (runs benchmarks/reproduce.py of a checkout)",
        description="Run the AFM paper's experiments (Table 2, dropout / t / lambda sweeps, per-epoch curves) on "
        "Frappe (when present: --frappe, else $AFM_FRAPPE, else data/frappe or data/, where `download frappe` "
        "writes) and the bundled sample; writes CSVs and plotly figures.",
    )
    rp.add_argument("--quick", action="store_true", help="a smoke test: few values, 2 epochs (a few minutes)")
    rp.add_argument("--out", type=Path, help="output folder (default runs/reproduce-<time>)")
    rp.add_argument(
        "--frappe",
        type=Path,
        help="folder with frappe.validation/test.libfm (default $AFM_FRAPPE, else data/frappe or data/: "
        "`python -m afm download frappe` writes data/)",
    )

    d = sub.add_parser("download", help="fetch Frappe or MovieLens-tag", description="Download a data set (internet).")
    d.add_argument("name", choices=["frappe", "movielens_tag"])
    d.add_argument("--root", type=Path, default=Path("data"), help="folder to write to (default data/)")

    sub.add_parser(
        "dashboard",
        help="start the dashboard (Streamlit)",
        description=f"Start the dashboard: streamlit run {app_dir() / 'streamlit_app.py'} with this Python. "
        "Every further argument goes to streamlit run, e.g. --server.port 8600 or --server.address 0.0.0.0; "
        "Streamlit prints the address to open.",
        usage=f"{prog} dashboard [-h] [streamlit run options ...]",
    )
    return parser


# ---------------------------------------------------------------------------- helpers


def _parts(args: argparse.Namespace, task: str, schema: Schema | None = None) -> dict[str, Dataset]:
    return datasets.load_parts(
        args.data,
        task=task,
        label=args.label,
        categorical=args.categorical,
        numeric=args.numeric,
        fields=args.fields,
        schema=schema,
        valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction,
        seed=getattr(args, "seed", 0),
    )


def _format(metrics: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "n")


class _Bar:
    """A progress line on stderr: a bar on a terminal, one line per epoch otherwise."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.tty = label, quiet, sys.stderr.isatty()

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        label = self.label
        if self.label == "afm" and isinstance(p.model, FM):
            label = "fm (pre-training)"
        if p.epoch_end:
            line = f"{label} epoch {p.epoch}/{p.epochs} loss {p.train_loss:.4f} {_format(p.metrics)}"
            print(("\r" if self.tty else "") + line.ljust(78), file=sys.stderr, flush=True)
        elif self.tty:
            filled = int(30 * p.fraction)
            bar = "#" * filled + "." * (30 - filled)
            print(f"\r{label} [{bar}] {100 * p.fraction:5.1f}% loss {p.train_loss:.4f}", end="", file=sys.stderr)


def _load_checkpoint(path: Path) -> tuple[AFM | FM, dict[str, Any], Schema | None, str]:
    model, meta = load_model(path)
    schema = Schema.from_dict(meta["schema"]) if isinstance(meta.get("schema"), dict) else None
    return model, meta, schema, str(meta.get("task", "regression"))


# ---------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> None:
    rank, world = init_distributed(args.device)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError("--device cuda: no CUDA device is available on this machine")
    if world > 1 and args.device.startswith("cuda"):
        args.device = f"cuda:{rank % torch.cuda.device_count()}"
    parts = _parts(args, "regression" if args.task == "auto" else args.task)
    train, valid, test = parts["train"], parts.get("valid"), parts.get("test")
    config = config_from_args(args, task=resolve_task(args.task, train))
    task = config.task
    quiet = args.quiet or rank != 0
    started = time.perf_counter()
    model, history = train_model(args.model, config, train, valid, callback=_Bar(args.model, quiet), device=args.device)
    seconds = time.perf_counter() - started
    if rank != 0:
        return
    model.cpu()
    metrics: dict[str, dict[str, float]] = {}
    if valid is not None:
        metrics["valid"] = evaluate(model, valid, task, label_range=label_range(train, task))
    if test is not None:
        metrics["test"] = evaluate(model, test, task, label_range=label_range(train, task))
    # the configuration as every entry point stores it (the dashboard too): TrainConfig.to_dict()
    settings = config.to_dict()
    meta = {"task": task, "schema": train.schema.to_dict(), "config": settings, "data": args.data, "seconds": seconds}
    if history.stopped == "diverged":
        print(f"afm: warning: {history.message}", file=sys.stderr)
    if args.out:
        save_model(model, args.out, metrics=metrics, history=history.to_dict(), **meta)
    run = None
    if not args.no_run:
        run = save_run(
            {args.model: (model, history)},
            name=args.run_name,
            root=args.runs_dir,
            config=settings,
            metrics={args.model: {f"{p}_{k}": v for p, m in metrics.items() for k, v in m.items() if k != "n"}},
            metadata=meta,
        )
    best = {None: "", 0: " (no epoch beat the start: kept the starting weights)"}.get(
        history.best_epoch, f" (best epoch {history.best_epoch})"
    )
    summary = " | ".join(f"{part} {_format(m)}" for part, m in metrics.items()) or "no validation data"
    where = ", ".join(str(p) for p in (args.out, run) if p)
    print(
        f"{args.model}: {summary}{best}; {len(history.epochs)} epochs in {seconds:.1f} s"
        + (f"; saved {where}" if where else "")
    )


def _part(args: argparse.Namespace, task: str, schema: Schema | None, model: AFM | FM) -> Dataset:
    parts = _parts(args, task, schema)
    if args.part not in parts:
        raise CLIError(f"--data {args.data} has no {args.part!r} part (it has {sorted(parts)})")
    data = parts[args.part]
    data.check_fits(model)
    return data


def cmd_evaluate(args: argparse.Namespace) -> None:
    model, meta, schema, task = _load_checkpoint(args.checkpoint)
    data = _part(args, task, schema, model)
    metrics = evaluate(model, data, task)
    # NaN predictions make every metric NaN (AUC is NaN for data of one class too: left out)
    bad = [name for name, value in metrics.items() if name != "auc" and not math.isfinite(value)]
    if bad:
        raise CLIError(
            f"{args.checkpoint}: the model's predictions on {data.name} are not finite (NaN or infinity): "
            f"its {bad[0]} is {metrics[bad[0]]}"
        )
    print(
        json.dumps(metrics)
        if args.json
        else f"{args.checkpoint.name} on {data.name} ({len(data)} rows): {_format(metrics)}"
    )


def cmd_explain(args: argparse.Namespace) -> None:
    model, meta, schema, task = _load_checkpoint(args.checkpoint)
    data = _part(args, task, schema, model)
    summary = summarize(model, data, sample_rows=args.sample_rows, seed=args.sample_seed)  # never [rows, pairs]
    _require_finite(args.checkpoint, data, summary.prediction_sum, *summary.sums.values(), summary.linear_sum)
    fields = field_pair_frame(model, data, summary=summary).sort_values("rank").head(args.top)
    features = feature_pair_frame(model, data, args.top, args.min_count, summary=summary)
    effect = attention_effect(model, data, summary)
    field_cols = ["label", "mean_abs_contribution", "mean_contribution", "mean_uniform_part",
                  "mean_attention_part", "mean_abs_attention_part", "relative_attention", "mean_attention"]  # fmt: skip
    feature_cols = ["label", "count", "mean_abs_contribution", "mean_contribution", "mean_attention"]
    curve = deletion_curve(model, data, 10, task=task, explanation=summary) if args.deletion else None
    if args.csv and curve is not None:
        sys.stdout.write(curve.to_csv(index=False, float_format="%.6g"))
        return
    if args.csv:
        out = pd.concat(
            [fields[field_cols].assign(level="field"), features[feature_cols].assign(level="feature")],
            ignore_index=True,
        )
        sys.stdout.write(out[["level", *feature_cols]].to_csv(index=False, float_format="%.6g"))
        return
    print(f"What attention moves ({data.name}, {len(data)} rows): {effect.words()}\n")
    print(f"Top field pairs by mean |contribution| ({data.name}, {len(data)} rows)")
    print(fields[field_cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nTop feature pairs (seen at least {args.min_count} times; {summary.sample_note()})")
    print(features[feature_cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if curve is not None:
        if not summary.exact:
            print(f"\nAgreement per row and deletion: {summary.sample_note()}")
        _print_deletion(curve, attention_agreement(model, data, summary), effect)


def _require_finite(checkpoint: Path, data: Dataset, *values: Any) -> None:
    """A CLIError when any of ``values`` (sums over the data's rows) is NaN or infinite: one non-finite prediction
    makes its sums so, and an explanation of it would be numbers without meaning."""
    if not all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in values):
        raise CLIError(
            f"{checkpoint}: the model's predictions on {data.name} are not finite (NaN or infinity): nothing to explain"
        )


def _print_deletion(curve: pd.DataFrame, agreement: dict[str, Any], effect: AttentionEffect) -> None:
    order = [r for r in ("contribution", "attention", "random", "permuted") if r in set(curve["ranking"])]
    metric = TASKS[curve.attrs["task"]].label(curve.attrs["metric"])
    if effect.negligible or agreement["tied"]:
        print(
            "\nNo ranking of pairs by attention: "
            + ("the attention part is negligible (see above)" if effect.negligible else "the attention is tied")
        )
        order = [r for r in order if r not in ("attention", "permuted")]
    else:
        a = agreement
        print(
            f"\nAttention vs |contribution|: Spearman {a['spearman']:.3f} over the {a['pairs']} field pairs "
            f"(attention shuffled within rows: {a['spearman_permuted']:.3f}, 90% {a['spearman_permuted_lo']:.3f} to "
            f"{a['spearman_permuted_hi']:.3f}); the top-attention pair is the top-|c| pair in "
            f"{a['top_pair_agreement']:.1%} of the rows (uniform attention {a['top_pair_uniform']:.1%}; shuffled "
            f"{a['top_pair_permuted']:.1%}, 90% {a['top_pair_permuted_lo']:.1%} to {a['top_pair_permuted_hi']:.1%}; "
            f"ties shared: {a['tied_rows']:.1%} of rows tied at the top); var(log|c|) from s_ij "
            f"{a['interaction_share']:.1%}, from a_ij {a['attention_share']:.1%}"
        )
    print("\nDeletion: each row's top m pairs removed (masked out of the softmax and the pooling, as if absent)")
    for column, title in (("mean_abs_change", "mean |change of the prediction|"), ("mean_metric", metric)):
        table = curve.pivot(index="removed", columns="ranking", values=column)[order]
        print(f"{title}, pairs chosen by:")
        print(table.reset_index().to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def cmd_stability(args: argparse.Namespace) -> None:
    parts = _parts(args, "regression" if args.task == "auto" else args.task)
    if args.part not in parts:
        raise CLIError(f"--data {args.data} has no {args.part!r} part (it has {sorted(parts)})")
    train, valid, data = parts["train"], parts.get("valid"), parts[args.part]
    config = config_from_args(args, task=resolve_task(args.task, train))
    seeds = [args.seed + n for n in range(args.seeds)]
    started = time.perf_counter()

    def report(p: SeedProgress) -> None:
        if p.frame is not None and not args.quiet:
            took = time.perf_counter() - started
            print(f"seed {p.seed} trained ({p.done + 1}/{p.seeds}, {took:.1f} s so far)", file=sys.stderr, flush=True)

    frame, tau = seed_stability(config, train, valid, data, seeds, report, device=args.device)
    planted = set()
    if args.data == "sample":
        planted = {PAIR_SEP.join(p["fields"]) for p in datasets.sample_truth()}
        frame.insert(1, "planted", frame["label"].isin(planted))
    attention_tau = frame.attrs["attention_tau"] if frame.attrs["attention_tau"] is not None else float("nan")
    summary = (
        f"mean Kendall tau between the {len(seeds)} seeds' rankings: by |contribution| {tau:.3f} "
        f"({tau_in_words(tau)}); by attention {attention_tau:.3f}"
    )
    if args.csv:
        sys.stdout.write(frame.to_csv(index=False, float_format="%.6g"))
        print(summary, file=sys.stderr)
        return

    def interval(lo: str, hi: str) -> list[str]:
        return [f"[{a:.4f}, {b:.4f}]" for a, b in zip(frame[lo], frame[hi], strict=True)]

    def ranks(lo: str, hi: str) -> list[str]:
        return [f"{a}-{b}" if a != b else f"{a}" for a, b in zip(frame[lo], frame[hi], strict=True)]

    table = pd.DataFrame(
        {
            "field pair": frame["label"] + ["  *" if label in planted else "" for label in frame["label"]],
            "mean |c|": frame["mean_abs_contribution"].map(lambda v: f"{v:.4f}"),
            "90% interval": interval("abs_contribution_lo", "abs_contribution_hi"),
            "rank": ranks("rank_lo", "rank_hi"),
            "mean a": frame["mean_attention"].map(lambda v: f"{v:.4f}"),
            "90% interval ": interval("attention_lo", "attention_hi"),
            "rank by a": ranks("attention_rank_lo", "attention_rank_hi"),
        }
    )
    print(
        f"Field pairs across {len(seeds)} seeds ({data.name}, {len(data)} rows; 90% interval: 5th-95th percentile "
        "over seeds; rank 1 = largest)" + ("; * = planted in the sample" if planted else "")
    )
    print(table.to_string(index=False))
    print(summary)


def cmd_predict(args: argparse.Namespace) -> None:
    model, meta, schema, task = _load_checkpoint(args.checkpoint)
    args.part = "all"
    data = _part(args, task, schema, model)
    names = pair_names(data.field_names, model.pairs.cpu())
    binary = task == "binary"

    def write(f: Any) -> None:  # batch by batch: the CSV grows, memory does not
        for start, exp in explain_batches(model, data):
            finite = torch.isfinite(exp.prediction)
            if not bool(finite.all()):  # never a CSV of NaN: the temporary file is removed, no output is left
                row = start + int((~finite).nonzero()[0, 0])
                raise CLIError(
                    f"{args.checkpoint}: the model's prediction for row {row:,} of {data.name} is not finite "
                    f"(NaN or infinity): nothing written to {args.out}"
                )
            frame = pd.DataFrame({"prediction": exp.prediction.cpu().numpy()})
            if binary:
                frame["probability"] = torch.sigmoid(exp.prediction).cpu().numpy()
            frame["bias"] = float(exp.bias)
            frame["linear"] = exp.linear.sum(1).cpu().numpy()
            pairs = pd.DataFrame(exp.contribution.cpu().numpy(), columns=[f"contribution: {n}" for n in names])
            frame = pd.concat([frame, pairs], axis=1)
            frame.index += start
            text = frame.to_csv(index_label="row", header=start == 0, float_format="%.6g")
            f.write(text.encode())

    atomic_write(args.out, write)
    print(f"wrote {len(data)} predictions with {len(names)} pair contributions to {args.out}")


def cmd_runs(args: argparse.Namespace) -> None:
    frame = list_runs(args.runs_dir)
    if frame.empty:
        print(f"no runs in {runs_dir(args.runs_dir)}")
    else:
        print(frame.drop(columns="path").to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def cmd_reproduce(args: argparse.Namespace) -> None:
    """The paper's reproduction is an experiment runner, not library code: it lives in the repository's
    benchmarks/reproduce.py (the experiment definitions it runs are ``afm.reproduce``'s). From a checkout this
    command runs it; an installed package without the repository says where it is."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "reproduce.py"
    if not script.is_file():
        raise CLIError("the paper's reproduction runs from a checkout of the repository: benchmarks/reproduce.py")
    sys.path.insert(0, str(script.parent))  # its neighbours (reproduce_report) import by plain names
    spec = importlib.util.spec_from_file_location("afm_benchmarks_reproduce", script)
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    argv = [*(["--quick"] if args.quick else []), *(["--out", str(args.out)] if args.out else [])]
    argv += ["--frappe", str(args.frappe)] if args.frappe else []
    code = runner.main(argv, prog="afm reproduce")
    if code:
        raise SystemExit(code)


def cmd_download(args: argparse.Namespace) -> None:
    for path in datasets.download(args.name, args.root):
        print(f"wrote {path}")


def app_dir() -> Path:
    """The dashboard's folder: the copy installed inside the package (``afm/app``, from the repository's
    top-level ``app/`` by pyproject's package-dir mapping), else, in a source checkout or an editable
    install, that top-level folder itself (as ``afm.datasets.SAMPLE_DIR`` finds the sample)."""
    installed = Path(__file__).resolve().parent / "app"
    return installed if (installed / "streamlit_app.py").is_file() else Path(__file__).resolve().parent.parent / "app"


def cmd_dashboard(args: argparse.Namespace) -> None:
    script = app_dir() / "streamlit_app.py"
    if not script.is_file():
        raise CLIError(f"the dashboard is not installed: no {script}")
    command = [sys.executable, "-m", "streamlit", "run", str(script), *args.streamlit_args]
    if os.name == "posix":  # streamlit takes this process over: Ctrl-C and kill reach it, its exit status is ours
        os.execv(sys.executable, command)
    else:  # Windows has no exec that keeps the console
        raise SystemExit(subprocess.call(command))


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "explain": cmd_explain,
    "predict": cmd_predict,
    "stability": cmd_stability,
    "runs": cmd_runs,
    "reproduce": cmd_reproduce,
    "download": cmd_download,
    "dashboard": cmd_dashboard,
}


def main(argv: list[str] | None = None, prog: str = "python -m afm", config_class: type = TrainConfig) -> int:
    """Run one command; returns the exit status. ``config_class``: the training configuration the flags of
    ``train`` and ``stability`` come from and that they train with (a ``TrainConfig`` subclass adds knobs)."""
    parser = build_parser(config_class, prog=prog)
    args, extra = parser.parse_known_args(argv)  # only dashboard takes arguments of its own (streamlit's)
    if extra and args.command != "dashboard":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.streamlit_args = extra
    try:
        COMMANDS[args.command](args)
    except (CLIError, ValueError, ConnectionError, OSError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"afm {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"afm {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
