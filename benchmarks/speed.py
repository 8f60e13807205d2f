"""AFM speed against the peers (torchfm, deepctr-torch), side by side on Frappe.

    pip install -r requirements-bench.txt          # the peers; this script installs nothing
    python benchmarks/speed.py                     # Frappe table, 5 rounds (about 8 minutes)
    python benchmarks/speed.py --scaling           # + throughput against F and k (synthetic data)
    AFM_CFLAGS="-march=x86-64-v3" python benchmarks/speed.py      # an AVX2 build of the fused kernel
    python benchmarks/speed.py --only afm,torchfm-afm,deepctr-afm --rounds 3   # fewer rows, quicker
    python benchmarks/speed.py --build=-march=x86-64-v3 --build=-O3 --build=pytorch   # + more builds

Every implementation gets the same data (the Frappe validation file as training data, the test
file for quality), the same batches (one seeded order), k=16, t=16, batch 2048, Adam (lr 0.01),
log loss, 2 threads (``--threads``). Each measurement runs in a fresh process (so peak RSS is its own), and the
rounds alternate the implementations so that machine drift hits all alike; the table shows the
median over rounds (prediction and explanation: each round's median of 5 passes). Ours is trained
by ``afm.fit``, predicts with ``afm.predict`` and explains with ``afm.explain_dataset``; ``afm``
starts p at ones (the authors' code), ``afm-p-normal`` draws it as deepctr-torch does. The peers
run in a plain PyTorch loop over the same batches (their own models, our loop: no handicap);
``deepctr-afm-fit`` is deepctr-torch through its own ``fit``/``predict``, as its users run it.
Under the table, one line per model of ours says whether issue 6's targets hold: 3x the fastest
peer in training, prediction and explanation (FM: at least torchfm's FM), test AUC within 0.005
of that peer, peak RSS no higher.

The header names the CPU and its vector extensions, and the fused kernel's build: its flags
(``AFM_CFLAGS`` sets them), the vector width and block it was compiled with, and whether it runs on
torch's OpenMP pool; and the load average seen by each measurement (other jobs skew the figures).
The parent builds the kernel before the first round, so no measurement includes a build.

``--build FLAGS`` (repeatable) adds a row ``afm [FLAGS]``: ``afm`` trained with the kernel built
with ``AFM_CFLAGS=FLAGS`` (``--build pytorch``: ``AFM_NATIVE=0``, the PyTorch kernels), in the same
alternating rounds, so that builds and peers are compared under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAPPE = Path(os.environ.get("AFM_FRAPPE") or ROOT.parent / "shared" / "data" / "frappe")
IMPLEMENTATIONS = ["afm", "afm-p-normal", "torchfm-afm", "deepctr-afm", "deepctr-afm-fit", "fm", "torchfm-fm"]
AFM_PEERS = ("torchfm-afm", "deepctr-afm", "deepctr-afm-fit")
PEERS = {"afm": AFM_PEERS, "afm-p-normal": AFM_PEERS, "fm": ("torchfm-fm",)}
REPEATS = 5  # prediction and explanation: the median of this many passes over the test file, per round
THREADS = int(os.environ.get("AFM_BENCH_THREADS", "2"))  # --threads sets it for the children
TARGET = {"afm": 3.0, "afm-p-normal": 3.0, "fm": 1.0}  # issue 6: AFM 3x the fastest peer, FM at least torchfm


# ---------------------------------------------------------------------------- one measurement (child)


def _load(fields: int | None, k: int) -> tuple:
    import torch

    import afm

    if fields is None:
        parts = afm.datasets.frappe(FRAPPE)
        return parts["validation"], parts["test"]
    # synthetic Criteo-like data: `fields` fields of 1,000 values each, a few planted pairs
    g = torch.Generator().manual_seed(0)
    n, per = 16_384, 1000  # 8 batches: enough to time, small enough for k=256 with F=39 (P=741)
    local = torch.randint(0, per, (n + 4_096, fields), generator=g)
    idx = local + torch.arange(fields) * per
    signal = ((local[:, 0] % 7) - 3) * ((local[:, 1] % 5) - 2) + ((local[:, 2] % 3) - 1) * 2.0
    y = (signal + torch.randn(len(idx), generator=g) > 0).float() * 2 - 1
    specs = [afm.FieldSpec(f"f{j}", "ids", j * per, per) for j in range(fields)]
    data = afm.Dataset(idx, torch.ones(idx.shape), y, afm.Schema(specs))
    return data.subset(range(n)), data.subset(range(n, len(idx)))


def _base(impl: str) -> str:
    """``afm [FLAGS]`` -> ``afm``: an extra build of the fused kernel measures as ``afm``."""
    return impl.split(" [")[0]


def _build_env(impl: str) -> dict[str, str]:
    """The environment of an ``afm [FLAGS]`` row: AFM_CFLAGS=FLAGS, or AFM_NATIVE=0 for ``[pytorch]``."""
    if " [" not in impl:
        return {}
    flags = impl.split(" [", 1)[1].rstrip("]")
    return {"AFM_NATIVE": "0"} if flags == "pytorch" else {"AFM_CFLAGS": flags}


def measure(impl: str, epochs: int, fields: int | None, k: int, batch: int) -> dict:
    import resource

    import numpy as np
    import torch

    import afm

    torch.set_num_threads(THREADS)
    # The first torch.optim.Adam of a process imports torch._dynamo (about 3 s here): a one-time
    # cost of the process, not of training, so every implementation pays it before its timer.
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    train, test = _load(fields, k)
    t = 16
    result: dict = {"impl": impl, "rows": len(train), "fields": train.n_fields, "k": k}
    label, impl = impl, _base(impl)
    if impl in PEERS:  # ours
        if impl == "fm":
            model = afm.FM(train.n_features, train.n_fields, k, seed=0)
        else:  # afm-p-normal: p drawn as deepctr-torch draws it, instead of the authors' ones
            p_init = "normal" if impl == "afm-p-normal" else "ones"
            model = afm.AFM(train.n_features, train.n_fields, k, t, seed=0, p_init=p_init)
        start = time.perf_counter()
        afm.fit(model, train, task="binary", epochs=epochs, batch_size=batch, lr=0.01, optimizer="adam", seed=0)
        result["train_seconds"] = time.perf_counter() - start
        predict = lambda: afm.predict(model, test, batch_size=batch)  # noqa: E731
        if impl != "fm":
            afm.explain_dataset(model, test)  # warm-up; its default batch size, as users call it
            result["explain_seconds"] = statistics.median(
                _timed(lambda: afm.explain_dataset(model, test)) for _ in range(REPEATS)
            )
    elif impl == "deepctr-afm-fit":  # deepctr-torch through its own training API, as its users run it
        model, to_input = _peer("deepctr-afm", train, k, t)
        names = [f.name for f in train.schema.fields]
        x_train = {n: to_input(train)[:, j].numpy() for j, n in enumerate(names)}
        x_test = to_input(test)
        model.compile(torch.optim.Adam(model.parameters(), lr=0.01), "binary_crossentropy")
        start = time.perf_counter()
        model.fit(x_train, (train.y > 0).float().numpy(), batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
        result["train_seconds"] = time.perf_counter() - start
        test_inputs = {n: x_test[:, j].numpy() for j, n in enumerate(names)}

        def predict() -> torch.Tensor:
            probs = torch.as_tensor(model.predict(test_inputs, batch_size=batch)).squeeze(-1).double()
            return torch.logit(probs.clamp(1e-7, 1 - 1e-7))
    else:
        model, to_input = _peer(impl, train, k, t)
        x_train, y_train = to_input(train), (train.y > 0).float()
        x_test = to_input(test)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        loss_fn = torch.nn.BCELoss()  # the peers' models end in a sigmoid
        order = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(len(train), generator=order)
            for s in range(0, len(train), batch):
                rows = perm[s : s + batch]
                loss = loss_fn(model(x_train[rows]).squeeze(-1), y_train[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
        result["train_seconds"] = time.perf_counter() - start

        @torch.inference_mode()
        def predict() -> torch.Tensor:
            model.eval()
            probs = torch.cat([model(x_test[s : s + batch]).squeeze(-1) for s in range(0, len(test), batch)])
            return torch.logit(probs.clamp(1e-7, 1 - 1e-7))

    predict()  # warm-up
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        logits = predict()
        seconds.append(time.perf_counter() - start)
    result["predict_seconds"] = statistics.median(seconds)
    positive = (test.y > 0).numpy()
    result["auc"] = afm.train.roc_auc(logits.double().numpy(), positive)
    p = np.clip(1 / (1 + np.exp(-logits.double().numpy())), 1e-7, 1 - 1e-7)
    result["logloss"] = float(-np.mean(np.where(positive, np.log(p), np.log(1 - p))))
    result["train_per_s"] = len(train) * epochs / result["train_seconds"]
    result["predict_per_s"] = len(test) / result["predict_seconds"]
    if "explain_seconds" in result:
        result["explain_per_s"] = len(test) / result["explain_seconds"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["load"] = _load_average()
    if impl in PEERS:  # ours: which kernel ran
        info = afm.native.info()
        result["kernel"] = f"{' '.join(info['flags'])}; width {info['vector_width']}" if info else "PyTorch"
    result["impl"] = label
    return result


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return float("nan")


def _timed(action) -> float:  # noqa: ANN001
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _peer(impl: str, train, k: int, t: int):  # noqa: ANN001, ANN202
    import numpy as np
    import torch

    offsets = torch.tensor([f.offset for f in train.schema.fields])
    sizes = [f.size for f in train.schema.fields]
    if impl.startswith("torchfm"):
        if not hasattr(np, "long"):
            np.long = np.int64  # torchfm 0.7.0 still uses np.long, removed in NumPy 2
        from torchfm.model.afm import AttentionalFactorizationMachineModel
        from torchfm.model.fm import FactorizationMachineModel

        torch.manual_seed(0)
        if impl == "torchfm-afm":
            model = AttentionalFactorizationMachineModel(sizes, embed_dim=k, attn_size=t, dropouts=(0.0, 0.0))
        else:
            model = FactorizationMachineModel(sizes, embed_dim=k)
        return model, lambda data: data.idx - offsets  # torchfm adds the field offsets itself
    from deepctr_torch.inputs import SparseFeat
    from deepctr_torch.models import AFM as DeepCTRAFM

    torch.manual_seed(0)
    columns = [SparseFeat(f.name, f.size, embedding_dim=k) for f in train.schema.fields]
    model = DeepCTRAFM(columns, columns, attention_factor=t, afm_dropout=0.0, task="binary", device="cpu", seed=0)
    return model, lambda data: (data.idx - offsets).float()  # deepctr takes per-field ids as floats


# ---------------------------------------------------------------------------- driver (parent)


def run_child(impl: str, epochs: int, fields: int | None, k: int, batch: int) -> dict:
    args = [sys.executable, __file__, "--child", impl, "--epochs", str(epochs), "--k", str(k), "--batch", str(batch)]
    if fields is not None:
        args += ["--fields", str(fields)]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **_build_env(impl)})
    if out.returncode != 0:
        raise RuntimeError(f"{impl} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_table(results: list[dict]) -> dict[str, dict]:
    by_impl: dict[str, list[dict]] = {}
    for r in results:
        by_impl.setdefault(r["impl"], []).append(r)
    keys = ["train_per_s", "predict_per_s", "explain_per_s", "peak_rss_mb", "auc", "logloss", "load"]
    return {
        impl: {k: statistics.median(r[k] for r in rs) for k in keys if k in rs[0]} | {"n": len(rs)}
        for impl, rs in by_impl.items()
    }


def frappe_table(rounds: int, epochs: int, implementations: list[str]) -> str:
    results = []
    for r in range(rounds):
        order = implementations if r % 2 == 0 else implementations[::-1]  # alternate against drift
        for impl in order:
            results.append(run_child(impl, epochs, None, 16, 2048))
            print(f"round {r + 1}: {impl} done", file=sys.stderr, flush=True)
    table = median_table(results)
    lines = [
        f"Frappe: train on frappe.validation.libfm (57,722 rows), test on frappe.test.libfm (28,860 rows); "
        f"k=16, t=16, batch 2048, Adam lr 0.01, log loss, {epochs} epochs, {THREADS} threads; "
        f"median of {rounds} rounds.",
        "",
        "| implementation | train samples/s | predict samples/s | explain samples/s | peak RSS (MB) | test AUC "
        "| test log loss | train × fastest peer | predict × fastest peer | explain × fastest peer's predict "
        "| load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for impl, m in table.items():
        peers = {p: table[p] for p in PEERS.get(_base(impl), ()) if p in table}
        ours = bool(peers)
        best_train = max(peers.values(), key=lambda p: p["train_per_s"]) if ours else None
        best_predict = max(p["predict_per_s"] for p in peers.values()) if ours else None
        ratios = {}
        if ours:
            ratios = {
                "train": m["train_per_s"] / best_train["train_per_s"],
                "predict": m["predict_per_s"] / best_predict,
            }
            if "explain_per_s" in m:
                ratios["explain"] = m["explain_per_s"] / best_predict
        cells = [
            impl,
            f"{m['train_per_s']:,.0f}",
            f"{m['predict_per_s']:,.0f}",
            f"{m['explain_per_s']:,.0f}" if "explain_per_s" in m else "—",
            f"{m['peak_rss_mb']:.0f}",
            f"{m['auc']:.4f}",
            f"{m['logloss']:.4f}",
            *(f"{ratios[key]:.2f}×" if key in ratios else "—" for key in ("train", "predict", "explain")),
            f"{m['load']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if ours:
            name = next(p for p, v in peers.items() if v is best_train)
            auc_gap = m["auc"] - best_train["auc"]
            rss_gap = m["peak_rss_mb"] - best_train["peak_rss_mb"]
            goal = TARGET[_base(impl)]
            checks = [f"{key} {value:.2f}× {'≥' if value >= goal else '<'} {goal:g}" for key, value in ratios.items()]
            checks.append(f"AUC {auc_gap:+.4f} ({'within' if auc_gap >= -0.005 else 'NOT within'} 0.005)")
            checks.append(f"peak RSS {rss_gap:+.0f} MB ({'no higher' if rss_gap <= 0 else 'higher'})")
            verdicts.append(f"- {impl} against the fastest peer in training, {name}: " + "; ".join(checks))
    return "\n".join(lines + [""] + verdicts)


def scaling_table(rounds: int) -> str:
    lines = [
        f"Scaling (synthetic Criteo-like data, 16,384 training rows, batch 2048, 1 epoch, {THREADS} threads; "
        f"median of {rounds}): train samples/s",
        "",
        "| F | P = F(F-1)/2 | k | afm | torchfm-afm | deepctr-afm | afm × fastest peer |",
        "|---|---|---|---|---|---|---|",
    ]
    for fields, k in [(10, 16), (20, 16), (39, 16), (39, 64), (39, 256)]:
        results = []
        for r in range(rounds):
            for impl in ("afm", "torchfm-afm", "deepctr-afm") if r % 2 == 0 else ("deepctr-afm", "torchfm-afm", "afm"):
                results.append(run_child(impl, 1, fields, k, 2048))
        m = median_table(results)
        peer = max(m["torchfm-afm"]["train_per_s"], m["deepctr-afm"]["train_per_s"])
        lines.append(
            f"| {fields} | {fields * (fields - 1) // 2} | {k} | {m['afm']['train_per_s']:,.0f} | "
            f"{m['torchfm-afm']['train_per_s']:,.0f} | {m['deepctr-afm']['train_per_s']:,.0f} | "
            f"{m['afm']['train_per_s'] / peer:.2f}× |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def main() -> None:
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--scaling", action="store_true", help="also the F / k scaling table")
    parser.add_argument("--scaling-rounds", type=int, default=1, help="rounds per scaling cell (default 1)")
    parser.add_argument("--only", help=f"comma-separated implementations (default: all of {','.join(IMPLEMENTATIONS)})")
    parser.add_argument(
        "--build", action="append", default=[], metavar="FLAGS",
        help="also afm with the kernel built with AFM_CFLAGS=FLAGS ('pytorch': AFM_NATIVE=0); repeatable",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=THREADS, help="torch threads per measurement (default 2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--fields", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=2048, help=argparse.SUPPRESS)
    args = parser.parse_args()
    THREADS = args.threads
    os.environ["AFM_BENCH_THREADS"] = str(THREADS)  # the children's
    if args.child:
        print(json.dumps(measure(args.child, args.epochs, args.fields, args.k, args.batch)))
        return
    if not FRAPPE.is_dir():
        sys.exit(f"{FRAPPE}: the Frappe files are needed (see ../shared/data/frappe/README.md)")
    implementations = args.only.split(",") if args.only else IMPLEMENTATIONS
    unknown = set(implementations) - set(IMPLEMENTATIONS)
    if unknown:
        sys.exit(f"--only: unknown implementations {sorted(unknown)}; choose from {IMPLEMENTATIONS}")
    print(time.strftime("%Y-%m-%d"), "·", _machine())
    builds = [f"afm [{flags}]" for flags in args.build]
    print(_kernel(builds))
    print(f"load average (1 min) at the start: {_load_average():.1f}")
    print()
    print(frappe_table(args.rounds, args.epochs, implementations + builds))
    if args.scaling:
        print()
        print(scaling_table(args.scaling_rounds))


def _kernel(builds: list[str]) -> str:
    """The CPU, its vector extensions and each fused kernel build (built here, before any timing)."""
    import afm

    lines = [f"CPU: {afm.native.cpu_description()}"]
    for impl in ["afm", *builds]:
        saved = dict(os.environ)
        os.environ.update(_build_env(impl))
        afm.native._state.clear()  # as a new process: this build's library
        try:
            info, why = afm.native.info(), afm.native.unavailable_reason()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        if not info:
            lines.append(f"{impl}: PyTorch kernels ({why or 'no fused kernel'})")
        else:
            threads = "torch's OpenMP pool" if info["openmp"] else "plain threads"
            lines.append(
                f"{impl}: fused kernel, {info['compiler_version']}, flags {' '.join(info['flags'])}; "
                f"vector width {info['vector_width']} floats, blocks of {info['pair_block']} pairs "
                f"x {info['vectors_across']} vectors; {threads}"
            )
    afm.native._state.clear()
    return "\n".join(lines)


def _machine() -> str:
    import platform

    import torch

    import afm

    cpu = afm.native.cpu_description().split(" (")[0]
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()}, Python {python}, torch {torch.__version__}"


if __name__ == "__main__":
    main()
