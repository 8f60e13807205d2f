"""Building, caching and trusting the fused kernel (afm/native.py).

The flags ladder (a compiler that rejects ``-march=native``), a build that fails in any way (one
warning, then the PyTorch kernels), the cache key (the CPU on every platform), a damaged or foreign
cached library (detected before it is mapped, rebuilt once, never a crash: each case in a child
process, so a regression shows as a failed test, not a dead test run), platforms without POSIX user
ids, every vector width on this machine, and the aarch64 cross build under qemu-user where the
cross compiler and qemu are installed.

These tests need a C compiler: they skip (saying so) without one, unless ``AFM_REQUIRE_NATIVE=1``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import torch

from afm import kernels, native
from afm.model import attention_reference

ROOT = Path(__file__).resolve().parents[1]
POSIX_ONLY = pytest.mark.skipif(os.name == "nt", reason="uses a shell script as a fake compiler")


def _needs_compiler() -> str:
    if not native.enabled():
        pytest.skip("AFM_NATIVE=0: the fused kernel is switched off")
    compiler = native._compiler()
    if compiler is None:
        if native.required():
            pytest.fail("AFM_REQUIRE_NATIVE=1, but there is no C compiler (cc, gcc or clang) on PATH")
        pytest.skip("no C compiler (cc, gcc or clang) on PATH: the fused kernel cannot be built here")
    return compiler


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder and no library loaded yet (as in a new process); the ladder's own flags."""
    _needs_compiler()
    cache = tmp_path / "cache"
    monkeypatch.setenv("AFM_CACHE", str(cache))
    monkeypatch.delenv("AFM_CFLAGS", raising=False)
    monkeypatch.setattr(native, "_state", {})
    return cache


def _new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the loaded library, as a new process would."""
    monkeypatch.setattr(native, "_state", {})


def _record(cache: Path) -> dict:
    (path,) = cache.glob("_fused-*.json")
    return json.loads(path.read_text())


def _agrees_with_the_reference() -> None:
    """The loaded kernel's outputs and gradients against model.attention_reference in float64."""
    g = torch.Generator().manual_seed(11)
    e = torch.randn(23, 9, 13, generator=g)
    params = [torch.randn(*s, generator=g) for s in ((5, 13), (5,), (5,))]
    keep = (torch.rand(23, 36, generator=g) > 0.3).float() / 0.7
    results = []
    for fn, dtype in ((kernels.interaction, torch.float32), (attention_reference, torch.float64)):
        leaves = [x.to(dtype).requires_grad_() for x in (e, *params)]
        outputs = fn(*leaves, keep.to(dtype))
        total = sum((o * (i + 1)).sum() for i, o in enumerate(outputs))
        results.append(
            [o.detach().double() for o in outputs] + [x.double() for x in torch.autograd.grad(total, leaves)]
        )
    assert kernels.fused_available(e, *params)
    for ours, ref in zip(*results, strict=True):
        assert (ours - ref).abs().max() <= 2e-5 * ref.abs().max()


# ---------------------------------------------------------------------------- cache


def test_a_build_is_cached_announced_once_and_reused(fresh: Path, monkeypatch, capfd) -> None:  # noqa: ANN001
    lib = native.library()
    assert lib is not None
    record = _record(fresh)
    names = sorted(p.name for p in fresh.iterdir())
    key = record["library"].split("-")[1]
    assert names == sorted([".lock", ".writable", record["library"], f"_fused-{key}.json"])  # no temporary file
    assert "-march=native" in record["flags"] and record["size"] == (fresh / record["library"]).stat().st_size
    err = capfd.readouterr().err
    assert err.count("afm: built the fused C kernel") == 1 and "-march=native" in err
    stamp = (fresh / record["library"]).stat().st_mtime_ns
    _new_process(monkeypatch)
    assert native.library() is not None
    assert "built" not in capfd.readouterr().err  # reused: no build, no message
    assert (fresh / record["library"]).stat().st_mtime_ns == stamp
    assert native.info()["path"] == str(fresh / record["library"])


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_a_first_use_under_inference_mode_loads_the_kernel(mode: str, fresh: Path) -> None:
    """predict and evaluate run under inference_mode: a first use there must pass the self-test too."""
    with getattr(torch, mode)():
        pooled, _, _ = kernels.interaction(torch.randn(3, 4, 5), torch.randn(2, 5), torch.randn(2), torch.randn(2))
        assert native.library() is not None and pooled.shape == (3, 5)


def test_switched_off_builds_nothing_and_says_nothing(fresh: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AFM_NATIVE", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.library() is None
    assert not fresh.exists() and native.info() == {}
    assert "AFM_NATIVE=0" in native.unavailable_reason()


# ---------------------------------------------------------------------------- the flags ladder


def _fake_compiler(tmp_path: Path, rejects: list[str]) -> Path:
    """A wrapper around the real compiler that fails, as old clang does, on any of ``rejects``."""
    real = shutil.which(native._compiler())
    script = tmp_path / "fake-cc"
    checks = "".join(
        f'    [ "$a" = "{flag}" ] && {{ echo "clang: error: the clang compiler does not support \'{flag}\'" >&2; '
        "exit 1; }\n"
        for flag in rejects
    )
    script.write_text(f'#!/bin/sh\nfor a in "$@"; do\n{checks}done\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return script


@POSIX_ONLY
@pytest.mark.slow
def test_a_compiler_rejecting_march_native_builds_with_mcpu_and_the_kernel_tests_pass(fresh: Path, tmp_path) -> None:  # noqa: ANN001
    """As clang for aarch64 and Apple clang <= 14 do: the next rung (-mcpu=native) builds, and the kernel
    tests pass with that library (run in a child process with that compiler and a new cache)."""
    fake = _fake_compiler(tmp_path, ["-march=native"])
    env = {**os.environ, "CC": str(fake), "AFM_CACHE": str(fresh), "AFM_REQUIRE_NATIVE": "1"}
    env.pop("AFM_CFLAGS", None)
    tests = "float64_reference or wide_score or nan_like_torch or expanded or the_bridge_checks"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_kernels.py", "-k", tests],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout
    record = _record(fresh)
    assert "-mcpu=native" in record["flags"] and "-march=native" not in record["flags"]
    assert len(record["rejected"]) == 1 and "does not support '-march=native'" in record["rejected"][0]


@POSIX_ONLY
def test_a_compiler_rejecting_both_native_flags_builds_the_portable_baseline(
    fresh: Path, tmp_path, monkeypatch, capfd
) -> None:  # noqa: ANN001, E501
    monkeypatch.setenv("CC", str(_fake_compiler(tmp_path, ["-march=native", "-mcpu=native"])))
    assert native.library() is not None
    _agrees_with_the_reference()
    flags = _record(fresh)["flags"]
    assert not any(f.startswith(("-march", "-mcpu")) for f in flags) and "-O3" in flags
    err = capfd.readouterr().err
    assert err.count("afm: built the fused C kernel") == 1 and err.count("rejected") == 2


@POSIX_ONLY
def test_a_compiler_that_fails_gives_one_warning_and_the_pytorch_kernels(fresh: Path, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    broken = tmp_path / "broken-cc"
    broken.write_text(
        '#!/bin/sh\n[ "$1" = "--version" ] && { echo "broken 1.0"; exit 0; }\necho "internal error" >&2\nexit 1\n'
    )
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    with pytest.warns(RuntimeWarning, match="no flags gave a working library") as caught:
        assert native.library() is None
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked again: no second warning, no second build
        assert native.library() is None
    with torch.no_grad():  # and the model still computes, with the PyTorch kernels
        e, W, b, h = torch.randn(4, 5, 6), torch.randn(3, 6), torch.randn(3), torch.randn(3)
        for ours, ref in zip(kernels.interaction(e, W, b, h), attention_reference(e, W, b, h), strict=True):
            torch.testing.assert_close(ours, ref)


def test_any_exception_around_the_compiler_becomes_the_fallback(fresh: Path, monkeypatch) -> None:  # noqa: ANN001
    def explode(compiler: str) -> str:
        raise ValueError("an unexpected failure")

    monkeypatch.setattr(native, "_compiler_version", explode)
    with pytest.warns(RuntimeWarning, match="ValueError: an unexpected failure") as caught:
        assert native.library() is None
    assert len(caught) == 1


def test_the_cflags_variable_replaces_the_ladder(fresh: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AFM_CFLAGS", "-O2 -DAFM_VL=8 -DAFM_PB=4")
    assert native.library() is not None
    _agrees_with_the_reference()
    info = native.info()
    assert info["flags"] == [*native.TUNING, "-O2", "-DAFM_VL=8", "-DAFM_PB=4", *native.REQUIRED]
    assert (info["vector_width"], info["pair_block"]) == (8, 4)


def test_a_library_the_cpu_cannot_run_is_rejected_by_its_probe(tmp_path: Path) -> None:
    """afm_probe runs in a child process right after a build: an illegal instruction there rejects the flags."""
    compiler = _needs_compiler()
    for body, expected in (("__builtin_trap(); return 0;", "does not run on this CPU"), ("return 4;", "exit 4")):
        source, lib = tmp_path / "probe.c", tmp_path / f"probe-{len(body)}{native.SUFFIX}"
        source.write_text(f"int afm_probe(void) {{ {body} }}\n")
        subprocess.run([compiler, "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
        assert expected in native._probe(str(lib))


def test_a_rung_whose_probe_fails_gives_way_to_the_next(fresh: Path, monkeypatch) -> None:  # noqa: ANN001
    calls = []
    real = native._probe

    def first_fails(lib: str) -> str | None:
        calls.append(lib)
        return "it does not run on this CPU (SIGILL in its probe)" if len(calls) == 1 else real(lib)

    monkeypatch.setattr(native, "_probe", first_fails)
    assert native.library() is not None
    record = _record(fresh)
    assert "-mcpu=native" in record["flags"] and "SIGILL" in record["rejected"][0]


# ---------------------------------------------------------------------------- the cache key

ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""


def test_the_cache_key_tells_cpus_apart_on_arm_and_x86(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """aarch64's /proc/cpuinfo has no "model name" or "flags": its Features and CPU part must count."""
    compiler = _needs_compiler()
    identities, keys = [], []
    x86 = "model name\t: A\nflags\t\t: sse2 avx2\n"
    for text in (
        ARM,
        ARM.replace("0xd0c", "0xd40"),
        ARM.replace("asimddp", "asimddp sve"),
        x86,
        x86.replace("avx2", "avx2 avx512f"),
    ):
        (tmp_path / "cpuinfo").write_text(text)
        monkeypatch.setattr(native, "CPUINFO", str(tmp_path / "cpuinfo"))
        identities.append(native.cpu_identity())
        keys.append(native._key(compiler, None)[0])
    assert "CPU part: 0xd0c" in identities[0] and "Features: fp asimd" in identities[0]
    assert platform.machine() in identities[0]
    assert len(set(identities)) == len(set(keys)) == 5
    monkeypatch.setenv("AFM_CFLAGS", "-march=x86-64-v3")
    assert native._key(compiler, None)[0] != keys[-1]  # the flags count
    monkeypatch.setattr(native, "_compiler_version", lambda c: "cc 99.0")
    assert native._key(compiler, None)[0] != keys[-1]  # the compiler's version counts
    assert native._key(compiler, "/lib/libgomp.so.1")[0] != native._key(compiler, None)[0]  # OpenMP or not


def test_a_cpu_description_names_the_vector_extensions(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    (tmp_path / "cpuinfo").write_text(ARM.replace("asimddp", "asimddp sve"))
    monkeypatch.setattr(native, "CPUINFO", str(tmp_path / "cpuinfo"))
    assert native.cpu_description().endswith("vector extensions: asimd asimdhp asimddp sve)")


# ---------------------------------------------------------------------------- a damaged cache: never a crash

CHILD = """
import json, sys
from afm import native
lib = native.library()
print(json.dumps({"loaded": lib is not None, "why": native.unavailable_reason(), "info": native.info()}))
"""


def _child(cache: Path) -> tuple[dict, str]:
    env = {**os.environ, "AFM_CACHE": str(cache)}
    env.pop("AFM_CFLAGS", None)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, f"the process died (exit {out.returncode}):\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def _replace(path: Path, data: bytes) -> None:
    """Write a new file over ``path`` (a new inode: this process may have the old one mapped)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _foreign(tmp_path: Path, compiler: str, case: str) -> bytes:
    """A well-formed library that is not this source's: another source version, or not afm at all."""
    if case == "another source version":
        flags = native.flag_ladder()[-1]
        lib, why = native._compile(compiler, flags, None, "0123456789abcdef", str(tmp_path))
        assert lib, why
        return Path(lib).read_bytes()
    source, lib = tmp_path / "other.c", tmp_path / f"other{native.SUFFIX}"
    source.write_text("int afm_abi(void) { return 2; }\n")  # one right name, the rest missing
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
    return lib.read_bytes()


DAMAGE = ["random bytes", "truncated to 1000 bytes", "truncated to 28516 bytes", "empty", "another source version",
          "another library", "a garbage record", "the library deleted"]  # fmt: skip


@pytest.mark.parametrize("case", DAMAGE)
@pytest.mark.slow
def test_a_damaged_cached_library_is_detected_and_rebuilt_never_a_crash(case: str, fresh: Path, tmp_path) -> None:  # noqa: ANN001
    compiler = _needs_compiler()
    assert native.library() is not None  # the good library, cached
    record_path = next(fresh.glob("_fused-*.json"))
    record = json.loads(record_path.read_text())
    lib = fresh / record["library"]
    good = lib.read_bytes()
    if case == "random bytes":
        _replace(lib, os.urandom(len(good)))
    elif case.startswith("truncated"):
        _replace(lib, good[: int(case.split()[2])])  # 1000 and 28516 bytes gave SIGBUS (exit 135) before
    elif case == "empty":
        _replace(lib, b"")
    elif case.startswith("another"):  # a consistent record for a foreign library: only loading can tell
        data = _foreign(tmp_path, compiler, case)
        _replace(lib, data)
        record.update(size=len(data), sha256=native._sha256(lib))
        record_path.write_text(json.dumps(record))
    elif case == "a garbage record":
        record_path.write_text("{not json")
    else:
        lib.unlink()
    result, err = _child(fresh)
    assert result["loaded"], result["why"]
    assert "Fatal Python error" not in err and err.count("afm: built the fused C kernel") == 1
    if case != "a garbage record":  # a garbage record is no record: a plain build
        assert "(rebuilt: " in err
    new = fresh / result["info"]["library"]
    assert new.read_bytes() == good or native._sha256(new) == result["info"]["sha256"]
    if case.startswith("another"):
        assert ("built from another version of _fused.c" in err) == (case == "another source version")


@pytest.mark.slow
def test_a_library_failing_its_self_test_is_rebuilt_once_then_left(fresh: Path, monkeypatch) -> None:  # noqa: ANN001
    """The self-test (a small forward and backward against a plain PyTorch reference) decides: a cached library
    that fails it is deleted and rebuilt once; when the new one fails too, the PyTorch kernels are used."""
    assert native.library() is not None
    builds = []
    real_build = native._build
    monkeypatch.setattr(native, "_build", lambda *a: builds.append(a) or real_build(*a))

    def wrong(lib) -> None:  # noqa: ANN001
        raise AssertionError("pooled differs from the PyTorch kernels by 1")

    failures = ["once"]
    monkeypatch.setattr(native, "self_test", lambda lib: failures and wrong(failures.pop()))
    _new_process(monkeypatch)
    assert native.library() is not None and len(builds) == 1  # the cached one failed: rebuilt, trusted
    monkeypatch.setattr(native, "self_test", wrong)
    _new_process(monkeypatch)
    with pytest.warns(RuntimeWarning, match="failed its checks .*pooled differs") as caught:
        assert native.library() is None
    assert len(caught) == 1 and len(builds) == 2  # the cached one failed, its one rebuild failed: fallback
    assert not list(fresh.glob("_fused-*"))  # neither is left to fail again


# ---------------------------------------------------------------------------- a cache changed under a running process

RUNNER = """
import sys, time, torch
from afm import kernels, native
from afm.model import attention_reference
assert native.library() is not None, native.unavailable_reason()
g = torch.Generator().manual_seed(5)
e, W, b, h = torch.randn(64, 10, 16, generator=g), *(torch.randn(*s, generator=g) for s in ((8, 16), (8,), (8,)))
leaves = [x.double().requires_grad_() for x in (e, W, b, h)]
outputs = attention_reference(*leaves)
total = sum((o * (i + 1)).sum() for i, o in enumerate(outputs))
expected = [o.detach() for o in outputs] + list(torch.autograd.grad(total, leaves))

def run():
    assert kernels.fused_available(e, W, b, h)
    leaves = [x.clone().requires_grad_() for x in (e, W, b, h)]
    outputs = kernels.interaction(*leaves)
    grads = torch.autograd.grad(sum((o * (i + 1)).sum() for i, o in enumerate(outputs)), leaves)
    for ours, ref in zip([*outputs, *grads], expected, strict=True):
        assert (ours.double() - ref).abs().max() <= 2e-5 * ref.abs().max(), "wrong numbers"

for _ in range(20):
    run()
print("loaded", flush=True)
sys.stdin.readline()  # the test damages the published library, then says so
calls, started = 0, time.perf_counter()
while time.perf_counter() - started < float(sys.argv[1]):
    run()
    calls += 1
print(f"ok {calls}", flush=True)
"""


def _env(cache: Path) -> dict[str, str]:
    env = {**os.environ, "AFM_CACHE": str(cache)}
    env.pop("AFM_CFLAGS", None)
    return env


def _libraries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob(f"_fused-*{native.SUFFIX}"))


@pytest.mark.parametrize("damage", ["truncated in place", "overwritten in place", "deleted"])
@pytest.mark.slow
def test_a_running_process_survives_its_published_library_being_damaged(damage: str, fresh: Path) -> None:
    """Before: the process mapped the published file itself, and a truncation in place killed it (SIGBUS, exit 135)
    at its next kernel call. Now it runs a private copy: the published file is nobody's mapping."""
    assert native.library() is not None  # built and published
    published = Path(native.info()["path"])
    child = subprocess.Popen([sys.executable, "-c", RUNNER, "3"], cwd=ROOT, env=_env(fresh), text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        line = child.stdout.readline()
        assert line.strip() == "loaded", line + child.communicate(timeout=60)[1][-3000:]
        size = published.stat().st_size
        if damage == "deleted":
            published.unlink()
        else:
            with open(published, "r+b") as f:  # the same file (inode), changed in place
                f.truncate(1000)
                f.flush()
                os.fsync(f.fileno())
                if damage == "overwritten in place":
                    f.seek(0)
                    f.write(os.urandom(size))
        child.stdin.write("damaged\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, f"the process died (exit {child.returncode}):\n{err[-3000:]}"
    assert out.startswith("ok ") and int(out.split()[1]) > 10, out + err[-3000:]
    assert "afm: built" not in err and "Fatal Python error" not in err  # it used the library it had
    result, err = _child(fresh)  # a new process: the damage is detected, the library rebuilt, never a crash
    assert result["loaded"], result["why"]
    assert err.count("afm: built the fused C kernel") == 1 and "(rebuilt: " in err
    assert _libraries(fresh) == [result["info"]["library"]]


def test_the_loaded_library_is_a_private_copy_that_leaves_no_file(fresh: Path) -> None:
    """The kernel is mapped from a copy of its own (checked after copying), never from the published file."""
    assert native.library() is not None
    published = native.info()["path"]
    assert sorted(p.name for p in fresh.iterdir() if not p.name.startswith("_fused-")) == [".lock", ".writable"]
    if os.path.exists("/proc/self/maps"):
        with open("/proc/self/maps") as f:
            mapped = {line.split(maxsplit=5)[-1].strip() for line in f if "_fused-" in line or ".load-" in line}
        assert published not in mapped and mapped, mapped
        assert all(path.endswith("(deleted)") for path in mapped), mapped  # unlinked once loaded


@pytest.mark.slow
def test_concurrent_builds_leave_one_library_for_the_record(fresh: Path) -> None:
    """Several processes start on an empty cache at once: one builds (the others wait for it and use its
    library), and exactly one library is left, the one the record names."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=ROOT,
            env=_env(fresh),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(3)
    ]
    results = [(child.communicate(timeout=600), child.returncode) for child in children]
    for (out, err), code in results:
        assert code == 0, f"a process died (exit {code}):\n{err[-3000:]}"
        assert json.loads(out.strip().splitlines()[-1])["loaded"], err[-3000:]
    assert sum(err.count("afm: built the fused C kernel") for (_, err), _ in results) == 1
    record = _record(fresh)
    assert _libraries(fresh) == [record["library"]]
    assert sorted(p.name for p in fresh.iterdir() if not p.name.startswith("_fused-")) == [".lock", ".writable"]


@pytest.mark.parametrize("lock", ["no lock on this platform", "the lock never comes free"])
@pytest.mark.slow
def test_concurrent_builds_without_a_lock_leave_one_library_for_the_record(lock: str, fresh: Path, monkeypatch) -> None:  # noqa: ANN001, E501
    """Where the platform has no file lock (or another build holds it past LOCK_WAIT), builds can race: the last
    record wins and the build that published it removes every other library of that record (here: the
    loser's, under another name)."""
    monkeypatch.setattr(native, "_try_lock", lambda fd: None if lock.startswith("no lock") else False)
    monkeypatch.setattr(native, "LOCK_WAIT", 0.2)
    compiler = _needs_compiler()
    key, _ = native._key(compiler, native._openmp())
    fresh.mkdir(parents=True)
    loser = fresh / f"_fused-{key}-{'0' * 16}{native.SUFFIX}"  # the other build's library, published first
    loser.write_bytes(b"another build")
    assert native.library() is not None
    assert _libraries(fresh) == [_record(fresh)["library"]]


@pytest.mark.slow
def test_a_replaced_record_leaves_no_stale_library(fresh: Path, monkeypatch) -> None:  # noqa: ANN001
    """A rejected library, or one a garbage record no longer names, is removed when the new record is written;
    so is a library of that record under an older naming scheme."""
    assert native.library() is not None
    record_path = next(fresh.glob("_fused-*.json"))
    key = record_path.stem.split("-")[1]
    good = (fresh / _record(fresh)["library"]).read_bytes()
    old_style = fresh / f"_fused-{key}-0123456789ab{native.SUFFIX}"  # the uuid-named libraries of before
    old_style.write_bytes(good)
    record_path.write_text("{not json")  # the record no longer names its library: a new build
    _new_process(monkeypatch)
    assert native.library() is not None
    assert _libraries(fresh) == [_record(fresh)["library"]]
    record = _record(fresh)
    (fresh / record["library"]).write_bytes(good[:1000])  # damaged: rejected, rebuilt, replaced
    _new_process(monkeypatch)
    assert native.library() is not None
    assert _libraries(fresh) == [_record(fresh)["library"]] and _record(fresh)["build_id"] != record["build_id"]


def test_leftovers_of_killed_processes_are_swept_and_recent_ones_kept(tmp_path: Path) -> None:
    """A private copy or a build folder a killed process left is removed once old; a recent one may belong
    to a process about to load or publish it, and stays."""
    old, recent = native.time.time() - 2 * max(native.STALE.values()), native.time.time()
    for name, stamp in ((".load-old.so", old), (".load-new.so", recent), (".build-old", old), (".build-new", recent)):
        path = tmp_path / name
        if name.startswith(".build-"):
            path.mkdir()
            (path / "fused.o").write_bytes(b"x")
        else:
            path.write_bytes(b"x")
        os.utime(path, (stamp, stamp))
    (tmp_path / "_fused-0123456789abcdef.json").write_text("{}")  # anything else: never touched
    os.utime(tmp_path / "_fused-0123456789abcdef.json", (old, old))
    native._sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".build-new", ".load-new.so", "_fused-0123456789abcdef.json"]


# ---------------------------------------------------------------------------- platforms


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_read_only_cache_builds_in_a_private_temp_folder(tmp_path: Path, fresh: Path, monkeypatch) -> None:  # noqa: ANN001
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AFM_CACHE", str(blocker / "afm"))  # cannot be created
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert native.library() is not None
    folder = tmp_path / "tmp" / f"afm-{os.getuid()}"
    assert Path(native.info()["path"]).parent == folder and stat.S_IMODE(folder.stat().st_mode) == 0o700
    _new_process(monkeypatch)
    assert native.library() is not None  # reused
    folder.chmod(0o777)  # a folder others can write: its library is not trusted
    _new_process(monkeypatch)
    with pytest.warns(RuntimeWarning, match="not private to this user"):
        assert native.library() is None


def test_without_posix_user_ids_the_kernel_still_loads(tmp_path: Path, fresh: Path, monkeypatch) -> None:  # noqa: ANN001
    """Windows has no os.getuid: deciding whether the kernel is used must not need it (it raised
    AttributeError where the cache folder was read-only)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("AFM_CACHE", str(blocker / "afm"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("USERNAME", "Ada Lovelace")
    monkeypatch.delattr(os, "getuid", raising=False)
    assert native.library() is not None
    assert Path(native.info()["path"]).parent == tmp_path / "tmp" / "afm-Ada_Lovelace"
    _new_process(monkeypatch)
    assert native.library() is not None


def _x86_flags() -> list[tuple[str, int]]:
    """(flags, the vector width they should give) for the x86 builds this CPU can run."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    cpu = native.cpu_description()
    cases = [("-O3", 4)]  # the portable baseline: SSE2
    if " avx2" in cpu and " fma" in cpu:
        cases.append(("-march=x86-64-v3", 8))  # AVX2
    if " avx512f" in cpu and " avx512bw" in cpu and " avx512vl" in cpu:
        cases.append(("-march=x86-64-v4", 16))  # AVX-512
    return cases


@pytest.mark.parametrize(("flags", "width"), _x86_flags())
@pytest.mark.slow
def test_each_instruction_set_builds_its_own_width_and_passes(flags: str, width: int, fresh: Path, monkeypatch) -> None:  # noqa: ANN001, E501
    """The vector width follows the target: 4 floats on SSE2, 8 on AVX2, 16 on AVX-512."""
    monkeypatch.setenv("AFM_CFLAGS", flags)
    assert native.library() is not None
    assert native.info()["vector_width"] == width
    _agrees_with_the_reference()


def _run_kernel_check(command: list[str], compiler: str, flags: list[str], tmp_path: Path) -> str:
    exe = tmp_path / "kernel_check"
    build = [compiler, "-O3", "-std=c11", "-pthread", "-ffp-contract=fast", "-fno-math-errno", *flags]
    out = subprocess.run([*build, str(ROOT / "tests" / "kernel_check.c"), "-o", str(exe), "-lm"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run = subprocess.run([*command, str(exe)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "all ok" in run.stdout, run.stdout + run.stderr
    return run.stdout


@pytest.mark.parametrize(
    "flags", ["-march=native", "", "-DAFM_VL=8 -DAFM_PB=8 -DAFM_QB=1", "-DAFM_VL=16 -DAFM_PB=4 -DAFM_QB=2"]
)
@pytest.mark.slow
def test_the_c_check_passes_on_this_machine(flags: str, tmp_path: Path) -> None:
    """tests/kernel_check.c: the kernel against a scalar double reference, in C alone (no ctypes)."""
    compiler = _needs_compiler()
    _run_kernel_check([], compiler, flags.split(), tmp_path)


AARCH64_CC, QEMU = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")


@pytest.mark.skipif(not (AARCH64_CC and QEMU), reason="needs aarch64-linux-gnu-gcc and qemu-aarch64 "
                    "(apt-get install gcc-aarch64-linux-gnu qemu-user)")  # fmt: skip
@pytest.mark.parametrize("flags", ["-march=armv8-a", "-mcpu=neoverse-n1", "-march=armv8.2-a+sve"])
def test_the_aarch64_build_passes_under_qemu(flags: str, tmp_path: Path) -> None:
    """A cross build for 64-bit ARM (NEON; SVE code where the target has it), run by qemu-user."""
    out = _run_kernel_check([QEMU], AARCH64_CC, ["-static", flags], tmp_path)
    assert "vector width 8" in out
