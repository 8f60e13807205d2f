"""The fused C kernel (``_fused.c``): compiled once per machine, checked, then loaded through ctypes.

``library()`` returns the loaded library, or None where it cannot be had (``AFM_NATIVE=0``, no C
compiler, a failed build, a library that fails its checks); callers then use the PyTorch kernels,
which compute the same numbers more slowly. Anything that goes wrong here ends in that fallback
with one warning, never in an exception or a crash of the caller. The one exception: an ``AFM_NATIVE``
that is not a boolean (``AFM_NATIVE=maybe``) raises a ValueError naming it (``afm.settings``).

Build: the first rung of a flags ladder that the compiler accepts and whose library runs here:
``-march=native``, then ``-mcpu=native`` (clang for ARM and Apple clang reject ``-march=native``),
then a portable baseline with no target flag. ``AFM_CFLAGS`` replaces the ladder (e.g.
``AFM_CFLAGS="-march=x86-64-v3"``, an AVX2 build; ``AFM_CFLAGS=-O3``, the baseline alone); its flags
follow the tuning ones, which they may override. ``AFM_OPENMP=0`` builds without OpenMP (plain threads).
Each new build prints one line on stderr saying which flags it used. Right after linking, the
library runs a small forward and backward pass in a child process (``afm_probe``), so flags this
CPU cannot execute reject the build instead of killing the caller with an illegal instruction.

Cache: ``AFM_CACHE``, else ``$XDG_CACHE_HOME/afm``, else ``~/.cache/afm``; a private folder in the
temporary directory where that is read-only. Files are named by a key that hashes the source,
the flags ladder, the compiler and its version, the CPU (``platform.machine()`` and, from
/proc/cpuinfo, the model name, flags, ARM's Features and CPU part, ...) and the OpenMP runtime.
Beside the library, a record ``_fused-<key>.json`` (written last, atomically) names it and gives
its size and SHA-256, the flags used and the vector width.

Files that never change: a build links in a fresh temporary folder of its own (``.build-*``) and publishes
the library by an atomic rename under a name that contains its SHA-256 (``_fused-<key>-<sha>.so``); a
published file is never written again (a damaged one is replaced by a rename, a new file). No process
maps a published file: each reads it, checks the bytes against the record, writes them to a new file of
its own (``.load-*``, created exclusively), checks that, and loads that private copy, which it deletes
right after loading (POSIX: the mapping outlives the name; Windows keeps a loaded DLL, so there later
processes delete it). Truncating or overwriting a published library in place (which used to kill every
process running it with SIGBUS) therefore harms no running process; the next one to start sees the
damage and rebuilds. One process builds at a time per cache folder (a lock on ``.lock``: ``flock`` on
POSIX, ``msvcrt.locking`` on Windows; where neither works, builds race, and the last record wins);
a process that waited uses the library just built, and a build removes every other library of its
record: a rejected one, a loser's, one a garbage record had named.

Trust: the bytes loaded must match the record's size and hash (checked on this process's copy, which
no other process writes: a truncated library can kill a process with SIGBUS when mapped); once loaded
the library must speak this interface and come from this source (``_bridge.declare``) and agree with the
maths, written out in plain PyTorch, on a small forward and backward (``self_test``). A library that fails
is deleted and rebuilt once; if the new one fails too, the PyTorch kernels are used.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import platform
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import _bridge, settings

SOURCE = Path(__file__).with_name("_fused.c")
# -ffp-contract=fast: fused multiply-adds (ISO C mode turns them off); -fopenmp-simd: the simd
# pragmas only, no OpenMP runtime (that is linked separately, see _compile).
TUNING = ["-O3", "-ffp-contract=fast", "-fno-math-errno", "-fopenmp-simd"]
REQUIRED = ["-fPIC", "-std=c11", "-pthread"]  # always added, AFM_CFLAGS or not
LADDER = [["-march=native"], ["-mcpu=native"], []]  # target flags, best first; [] = the portable baseline
SUFFIX = ".dll" if os.name == "nt" else ".so"
CPUINFO = "/proc/cpuinfo"
LOCK_WAIT = 900.0  # seconds to wait for another process's build before building without the lock
STALE = {".load-": 3600.0, ".build-": 86400.0}  # leftovers (a killed process's) older than this are removed

_lock = threading.Lock()
_state: dict[str, Any] = {}


class BuildError(RuntimeError):
    """No rung of the ladder gave a library that runs here."""


def enabled() -> bool:
    """False when the environment says ``AFM_NATIVE=0`` (use the PyTorch kernels only)."""
    return bool(settings.get("AFM_NATIVE"))


def required() -> bool:
    """``AFM_REQUIRE_NATIVE=1``: the kernel tests fail, instead of skipping, when there is no kernel."""
    return bool(settings.get("AFM_REQUIRE_NATIVE"))


def cache_dir() -> Path:
    folder = settings.get("AFM_CACHE")
    if folder is not None:
        return Path(folder)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "afm"


def flag_ladder() -> list[list[str]]:
    """The compile flags to try, best first. ``AFM_CFLAGS`` replaces the ladder with one rung: its flags
    follow the tuning ones, so they can also override those (``-O2``, ``-ffp-contract=off``)."""
    custom = str(settings.get("AFM_CFLAGS")).strip()
    if custom:
        return [[*TUNING, *shlex.split(custom, posix=os.name != "nt"), *REQUIRED]]
    return [[*TUNING, *target, *REQUIRED] for target in LADDER]


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


# ---------------------------------------------------------------------------- the CPU


def _cpuinfo() -> dict[str, list[str]]:
    """/proc/cpuinfo's fields (each with the distinct values over all cores); {} where there is none."""
    fields: dict[str, list[str]] = {}
    try:
        with open(CPUINFO, encoding="utf-8", errors="replace") as f:
            for line in f:
                name, sep, value = line.partition(":")
                if sep:
                    values = fields.setdefault(name.strip(), [])
                    if value.strip() not in values:
                        values.append(value.strip())
    except OSError:
        pass
    return fields


# the fields that tell CPUs apart: x86 (model name, flags, ...), ARM (Features, CPU part, ...), RISC-V (isa)
_IDENTITY = ("vendor_id", "cpu family", "model", "model name", "flags", "Features", "CPU implementer",
             "CPU architecture", "CPU variant", "CPU part", "CPU revision", "isa", "uarch", "cpu model")  # fmt: skip


def _sysctl(*names: str) -> str:
    try:
        out = subprocess.run(["sysctl", "-n", *names], capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_identity() -> str:
    """Everything that decides which instructions a library built here may use: part of the cache key."""
    info = _cpuinfo()
    parts = [platform.system(), platform.machine(), platform.processor(), str(sys.maxsize)]
    parts += [f"{name}: {' | '.join(sorted(info[name]))}" for name in _IDENTITY if name in info]
    if platform.system() == "Darwin":
        parts.append(_sysctl("machdep.cpu.brand_string", "machdep.cpu.features", "hw.cpufamily"))
    if os.name == "nt":
        parts.append(os.environ.get("PROCESSOR_IDENTIFIER", ""))
    return "\n".join(parts)


_VECTOR = ("sse2", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16",
           "amx_tile", "asimd", "asimdhp", "asimddp", "sve", "sve2", "sme", "v", "zvl")  # fmt: skip


def cpu_description() -> str:
    """The CPU's model and its vector extensions, in one line (for benchmark headers)."""
    info = _cpuinfo()
    model = (info.get("model name") or info.get("cpu model") or [""])[0]
    if not model and platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string")
    model = model or platform.processor() or "unknown CPU"
    flags = set(" ".join(info.get("flags", []) + info.get("Features", [])).split())
    vector = [name for name in _VECTOR if name in flags]
    return f"{model} ({platform.machine()}; vector extensions: {' '.join(vector) or 'unknown'})"


# ---------------------------------------------------------------------------- the cache folder


def _loaded_openmp() -> str | None:
    """The GNU OpenMP runtime this process (torch) has loaded, if any: linking the kernel against
    that very file makes its threads torch's own thread pool instead of a second, competing one."""
    try:
        with open("/proc/self/maps") as f:
            paths = {ln.split()[-1] for ln in f if "libgomp" in ln and ln.rstrip().endswith(".so.1")}
    except OSError:
        return None
    return sorted(paths)[0] if len(paths) == 1 else None


def _openmp() -> str | None:
    """The OpenMP runtime to link (torch's own), or None: plain threads (``AFM_OPENMP=0``, macOS, Windows)."""
    if not settings.get("AFM_OPENMP"):
        return None
    import torch  # noqa: F401  (loads torch's OpenMP runtime, which the kernel links against)

    return _loaded_openmp()


def _user() -> str:
    """This user's id where the platform has one (POSIX), else the login name (Windows)."""
    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        return str(getuid())
    name = os.environ.get("USERNAME") or os.environ.get("USER") or "user"
    return "".join(c if c.isalnum() else "_" for c in name)


def _check_private(path: Path, others: int) -> None:
    """Refuse a file or folder that another user owns or may write (a library is code we run). Where
    the platform has no user ids (Windows: the temporary folder is the user's own), only links are refused."""
    info = os.lstat(path)
    getuid = getattr(os, "getuid", None)
    foreign = getuid is not None and (info.st_uid != getuid() or info.st_mode & others)
    if stat.S_ISLNK(info.st_mode) or foreign:
        raise RuntimeError(
            f"{path} is not private to this user (owner uid {info.st_uid}, mode {oct(info.st_mode & 0o777)}); "
            "not loading a library from it"
        )


def _private_temp_folder() -> Path:
    """``$TMPDIR/afm-<uid>``, created with mode 700, and refused unless it is this user's alone."""
    folder = Path(tempfile.gettempdir()) / f"afm-{_user()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    _check_private(folder, 0o077)
    return folder


def _cache_folder() -> tuple[Path, bool]:
    """(folder, private): the cache folder, or the private temporary one where that is read-only."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(folder / ".writable", os.O_CREAT | os.O_WRONLY, 0o644))
        return folder, False
    except OSError:
        return _private_temp_folder(), True


# ---------------------------------------------------------------------------- build


def _compiler_version(compiler: str) -> str:
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).strip()


def _first_version_line(compiler: str) -> str:
    lines = _compiler_version(compiler).splitlines()
    return lines[0] if lines else "?"


def _key(compiler: str, openmp: str | None) -> tuple[str, str]:
    """(cache key, source id): the key names the files; the source id is compiled into the library."""
    source = SOURCE.read_bytes()
    source_id = hashlib.sha256(source + str(_bridge.ABI).encode()).hexdigest()[:16]
    parts = [source_id, json.dumps(flag_ladder()), shutil.which(compiler) or compiler, _compiler_version(compiler)]
    parts += [cpu_identity(), openmp or "pthreads"]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16], source_id


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if "error" in ln.lower()] or text.strip().splitlines()
    return (lines[0] if lines else "no output")[:300]


_PROBE = "import ctypes, sys; sys.exit(ctypes.CDLL(sys.argv[1]).afm_probe())"


def _probe(lib: str) -> str | None:
    """Run the library's self-contained forward and backward in a child process: None when it passes,
    else why not (an illegal instruction there is a rejected build here, not a dead process)."""
    if not sys.executable:
        return None
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE, lib], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as err:
        return f"its probe could not run ({err})"
    if out.returncode == 0:
        return None
    if out.returncode < 0:
        import signal

        try:
            name = signal.Signals(-out.returncode).name
        except ValueError:
            name = f"signal {-out.returncode}"
        return f"it does not run on this CPU ({name} in its probe)"
    return f"its probe failed (exit {out.returncode}: {_first_line(out.stderr) if out.stderr else 'wrong numbers'})"


def _compile(compiler: str, flags: list[str], openmp: str | None, source_id: str, tmp: str) -> tuple[str | None, str]:
    """(path of the linked library in ``tmp``, "") or (None, why not) for one rung of the ladder."""
    obj, lib = os.path.join(tmp, "fused.o"), os.path.join(tmp, f"fused{SUFFIX}")
    defines = [f'-DAFM_SOURCE_ID="{source_id}"'] + (["-fopenmp", "-DAFM_OPENMP"] if openmp else [])
    link = [compiler, "-shared", "-pthread", "-o", lib, obj, "-lm"]
    if openmp:  # the runtime's own file, and where to find it at load time
        link += [openmp, f"-Wl,-rpath,{os.path.dirname(openmp)}"]
    for command in ([compiler, *flags, *defines, "-c", "-o", obj, str(SOURCE)], link):
        out = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            return None, f"{'compiling' if '-c' in command else 'linking'} failed: {_first_line(out.stderr)}"
    problem = _probe(lib)
    return (None, f"built, but {problem}") if problem else (lib, "")


def _replace(source: Path, target: Path) -> None:
    """``os.replace``, retried for a second where Windows refuses while another process has ``target`` open."""
    for attempt in range(20):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 19:
                raise
            time.sleep(0.05)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # already gone, or in use (Windows): removed by a later process


def _library_name(key: str, digest: str) -> str:
    """A published library's name: its record's key and its own content (a name is never rewritten)."""
    return f"_fused-{key}-{digest[:16]}{SUFFIX}"


def _remove_others(folder: Path, key: str, keep: str) -> None:
    """Remove every library of record ``key`` but ``keep`` (the one the record names). Safe while other
    processes run: no process maps a published library (each loads a private copy)."""
    for path in folder.glob(f"_fused-{key}-*{SUFFIX}"):
        if path.name != keep:
            _unlink(path)


def _build(
    compiler: str, folder: Path, key: str, source_id: str, openmp: str | None, why: str | None
) -> tuple[dict, bytes]:
    """Build with the first rung of the ladder that works; publish the library, then its record, then
    remove the record's other libraries. (The record, the library's bytes.)"""
    started = time.perf_counter()
    rejected: list[str] = []
    with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as tmp:
        for flags in flag_ladder():
            lib, problem = _compile(compiler, flags, openmp, source_id, tmp)
            if lib is not None:
                break
            rejected.append(f"{' '.join(flags)}: {problem}")
        else:
            raise BuildError("no flags gave a working library: " + "; ".join(rejected))
        data = Path(lib).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        name = _library_name(key, digest)
        # published by a rename of a file no other process has seen: readers see the whole library or none
        os.chmod(lib, 0o755)
        if _read_checked(folder / name, len(data), digest)[0] is None:  # not already there, byte for byte
            _replace(Path(lib), folder / name)
        record = {
            "library": name, "size": len(data), "sha256": digest, "flags": flags,
            "compiler": shutil.which(compiler) or compiler, "compiler_version": _first_version_line(compiler),
            "openmp_runtime": openmp, "source_id": source_id, "rejected": rejected,
            "built": time.strftime("%Y-%m-%d %H:%M"), "build_id": uuid.uuid4().hex,
        }  # fmt: skip
        record_tmp = Path(tmp) / "record.json"
        record_tmp.write_text(json.dumps(record, indent=1))
        _replace(record_tmp, _record_path(folder, key))  # last: a record always names a complete library
    _remove_others(folder, key, name)
    seconds = time.perf_counter() - started
    note = f" (rebuilt: {why})" if why else ""
    skipped = "".join(f"; rejected {r}" for r in rejected)
    sys.stderr.write(
        f"afm: built the fused C kernel in {seconds:.1f} s with {' '.join(flags)}{note}{skipped}; cached in {folder}\n"
    )
    return record, data


def _record_path(folder: Path, key: str) -> Path:
    return folder / f"_fused-{key}.json"


def _read_record(folder: Path, key: str) -> dict | None:
    try:
        record = json.loads(_record_path(folder, key).read_text())
    except (OSError, ValueError):
        return None
    fields = (("library", str), ("size", int), ("sha256", str), ("flags", list))
    ok = isinstance(record, dict) and all(isinstance(record.get(name), kind) for name, kind in fields)
    return record if ok else None


def _read_checked(path: Path, size: int, digest: str) -> tuple[bytes | None, str]:
    """(the file's bytes, "") when they are ``size`` bytes with this SHA-256, else (None, what is wrong).
    Reads, never maps: a file truncated meanwhile gives a short read, not a SIGBUS."""
    try:
        with open(path, "rb") as f:
            data = f.read(size + 1)  # a longer file is wrong anyway: never read more than one byte past
    except OSError as err:
        return None, f"{path.name} cannot be read ({err.strerror or err})"
    if len(data) != size:
        more = "more than " if len(data) > size else ""
        return None, f"{path.name} has {more}{len(data)} bytes, its record says {size} (truncated or replaced)"
    if hashlib.sha256(data).hexdigest() != digest:
        return None, f"{path.name} does not match its recorded SHA-256 (damaged or replaced)"
    return data, ""


def _read_library(folder: Path, key: str, record: dict, private: bool) -> tuple[bytes | None, str]:
    """(the library's bytes, "") when they are exactly what its record describes; else (None, what is wrong)."""
    name = record["library"]
    if Path(name).name != name or not name.startswith("_fused-") or not name.endswith(SUFFIX):
        return None, f"its record names {name!r}"
    path = folder / name
    if private:
        try:
            _check_private(_record_path(folder, key), 0o022)
            _check_private(path, 0o022)
        except OSError as err:  # gone (another process rebuilt it meanwhile): a build, not a failure
            return None, f"{name} cannot be read ({err.strerror or err})"
    return _read_checked(path, record["size"], record["sha256"])


def _private_copy(folder: Path, data: bytes, record: dict) -> Path:
    """A new file (``.load-*``, created exclusively, this process's alone) holding ``data``, checked once
    written. No other process writes it; whatever happens to the published library, this file stays as
    checked. Raises OSError where it cannot be made (a full disk): not the library's fault."""
    handle, name = tempfile.mkstemp(prefix=".load-", suffix=SUFFIX, dir=folder)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.chmod(path, 0o700)
        if _read_checked(path, record["size"], record["sha256"])[0] is None:
            raise OSError(errno.EIO, f"the private copy of {record['library']} differs from it after writing")
    except BaseException:
        _unlink(path)
        raise
    return path


def _load(copy: Path, name: str, source_id: str) -> tuple[ctypes.CDLL | None, str]:
    """(the library, "") once the private copy ``copy`` is loaded, declared and passes the self-test;
    (None, why) otherwise. The copy is deleted right after loading where the platform allows (POSIX:
    the mapping outlives the name; Windows refuses while the DLL is loaded: ``_sweep`` removes it later)."""
    try:
        try:
            handle = ctypes.CDLL(str(copy))
        finally:
            _unlink(copy)
        lib = _bridge.declare(handle, source_id)
        self_test(lib)
        return lib, ""
    except Exception as err:  # noqa: BLE001  (a foreign library can fail in any way: none may escape)
        return None, f"{name} failed its checks ({type(err).__name__}: {err})"


def self_test(lib: Any) -> None:
    """A small forward and backward of ``lib`` against AFM's interaction written out in plain PyTorch (float64,
    autograd's gradients; ``model.attention_reference``'s maths), with an attention-dropout mask and all three
    output gradients; raises ``AssertionError`` where they disagree. ``library()`` runs it on every library
    before trusting it. The kernels' own tests hold the PyTorch kernels to the same reference."""
    import torch

    # the first kernel call may come from inside torch.inference_mode or no_grad (afm.predict, evaluate): the
    # check needs ordinary tensors and autograd, whatever the caller's mode
    with torch.inference_mode(False), torch.enable_grad():
        g = torch.Generator().manual_seed(0)
        batch, n_fields, k, t = 5, 6, 19, 11  # not multiples of any vector width: the padding is exercised
        n_pairs = n_fields * (n_fields - 1) // 2
        e = torch.randn(batch, n_fields, k, generator=g)
        W, b, h, p = (torch.randn(*shape, generator=g) for shape in ((t, k), (t,), (t,), (k,)))
        keep = (torch.rand(batch, n_pairs, generator=g) > 0.3).float() / 0.7
        upstream = [torch.randn(batch, k, generator=g), torch.randn(batch, n_pairs, generator=g)]
        upstream.append(torch.randn(batch, n_pairs, generator=g))
        ours = _bridge.forward(lib, e, W, b, h, keep, p, threads=2)
        ours_grads = _bridge.backward(lib, e, W, b, h, keep, ours[2], upstream[0], upstream[1], upstream[2], threads=2)
        leaves = [x.double().requires_grad_() for x in (e, W, b, h)]
        e64, W64, b64, h64 = leaves
        i, j = torch.triu_indices(n_fields, n_fields, 1)
        u = e64[:, i] * e64[:, j]  # (B, P, k): u_ij = e_i * e_j
        score = torch.relu(u @ W64.T + b64) @ h64  # (B, P): a'_ij = h^T ReLU(W u_ij + b)
        attention = torch.softmax(score, dim=1)  # (B, P): a_ij
        pooled = ((attention * keep.double()).unsqueeze(2) * u).sum(1)  # (B, k): sum_ij keep_ij a_ij u_ij
        outputs = (pooled, score, attention)
        total = torch.stack([(o * g_.double()).sum() for o, g_ in zip(outputs, upstream, strict=True)]).sum()
        grads = torch.autograd.grad(total, leaves)
        expected = [*outputs, u @ p.double(), *grads]
        names = ["pooled", "score", "attention", "interaction", "grad e", "grad W", "grad b", "grad h"]
        for name, a, ref in zip(names, [*ours, *ours_grads], expected, strict=True):
            if a is None:  # the interaction, which comes back because p was given
                raise AssertionError(f"{name} did not come back")
            ref = ref.detach()
            error = (a.double() - ref).abs().max().item()
            if not error <= 1e-4 * (ref.abs().max().item() + 1e-6):  # NaN fails too
                raise AssertionError(f"{name} differs from the reference by {error:.3g}")


def _discard(folder: Path, key: str, record: dict) -> None:
    """Remove a library that failed, and its record unless another process has replaced it meanwhile."""
    if _read_record(folder, key) == record:
        _unlink(_record_path(folder, key))
    _unlink(folder / Path(record["library"]).name)


def _sweep(folder: Path) -> None:
    """Remove what killed processes left: private copies (``.load-*``) and build folders (``.build-*``)
    older than ``STALE``. Nothing younger is touched: another process may be about to load or publish it."""
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        prefix = next((p for p in STALE if entry.name.startswith(p)), None)
        try:
            if prefix is None or now - entry.stat(follow_symlinks=False).st_mtime < STALE[prefix]:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass  # in use (a loaded DLL on Windows) or already gone


def _try_lock(fd: int) -> bool | None:
    """Take the build lock on ``fd`` without waiting: True (taken), False (another process holds it),
    None (this platform or file system has no such lock)."""
    if sys.platform == "win32":
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # one byte at offset 0
            return True
        except OSError as err:
            return False if err.errno in (errno.EACCES, errno.EDEADLK) else None
    else:
        try:
            import fcntl
        except ImportError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as err:
            return False if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES) else None


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[bool]:
    """Hold the cache folder's build lock (``.lock``; released by the system if this process dies), waiting
    up to ``LOCK_WAIT`` seconds for another process's build. Yields whether it is held: where there is no
    lock, or the wait ran out, the caller goes on without it (builds may then race: the last record wins)."""
    try:
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield False
        return
    locked = False
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            taken = _try_lock(fd)
            if taken is not False or time.monotonic() > deadline:
                locked = bool(taken)
                break
            time.sleep(0.05)
        yield locked
    finally:
        if locked:
            with contextlib.suppress(OSError):
                _unlock(fd)
        os.close(fd)


def _obtain() -> tuple[ctypes.CDLL | None, str]:
    """The checked library, building (or rebuilding once) where needed; (None, why) when there is none."""
    compiler = _compiler()
    if compiler is None:
        return None, "no C compiler (cc, gcc or clang) on PATH"
    openmp = _openmp()
    folder, private = _cache_folder()
    key, source_id = _key(compiler, openmp)
    _sweep(folder)
    problems: list[str] = []

    def use(record: dict, data: bytes | None = None) -> ctypes.CDLL | None:
        """Load a private copy of ``record``'s library (``data``: its bytes, just built) or note why not."""
        if data is None:
            data, problem = _read_library(folder, key, record, private)
            if data is None:
                problems.append(problem)
                return None
        lib, problem = _load(_private_copy(folder, data, record), record["library"], source_id)
        if lib is None:
            problems.append(problem)
            return None
        _state["info"] = {**record, **_bridge.describe(lib), "path": str(folder / record["library"])}
        return lib

    cached = _read_record(folder, key)
    if cached is not None and (lib := use(cached)) is not None:
        return lib, ""  # the usual case: no lock, no build
    with _build_lock(folder):
        current = _read_record(folder, key)  # another process may have built while this one waited
        if current is not None and current != cached and (lib := use(current)) is not None:
            return lib, ""
        if current is not None:
            _discard(folder, key, current)  # it failed its checks: gone with its library
        record, data = _build(compiler, folder, key, source_id, openmp, problems[-1] if problems else None)
        if (lib := use(record, data)) is not None:
            return lib, ""
        _discard(folder, key, record)  # a library just built failed its checks: another build would not help
    return None, "; ".join(problems)


def library() -> ctypes.CDLL | None:
    """The fused kernel, built on first use; None (with one warning saying why) when unavailable."""
    if not enabled():
        return None
    if "lib" in _state:
        return _state["lib"]
    with _lock:
        if "lib" not in _state:
            try:
                lib, why = _obtain()
            except Exception as err:  # noqa: BLE001  (any failure here means: use the PyTorch kernels)
                lib, why = None, f"{type(err).__name__}: {err}"
            if lib is None:
                warnings.warn(
                    f"afm: the fused C kernel is unavailable ({why}); using the slower PyTorch kernels",
                    RuntimeWarning,
                    stacklevel=2,
                )
            _state["lib"], _state["why"] = lib, why
    return _state["lib"]


def unavailable_reason() -> str:
    """Why ``library()`` is None ("" when it is not, or before it was asked)."""
    if not enabled():
        return "AFM_NATIVE=0 switches it off"
    return _state.get("why", "")


def info() -> dict[str, Any]:
    """What the loaded kernel is: flags, vector width, pair block, OpenMP, compiler, CPU, path ({} if none)."""
    if library() is None:
        return {}
    return {**_state.get("info", {}), "cpu": cpu_description()}
