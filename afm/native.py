"""The fused C kernel (``_fused.c``): compiled once per machine, loaded through ctypes.

``library()`` returns the loaded library, or None where it cannot be had (no C compiler, a
failed build, ``AFM_NATIVE=0`` in the environment); callers then use the PyTorch kernels, which
compute the same numbers more slowly. The build takes about a second and lands in a cache folder
(``AFM_CACHE``, else ``$XDG_CACHE_HOME/afm``, else ``~/.cache/afm``; a private folder in the
temporary directory where that is read-only), named by a hash of the source, the flags, the
compiler and the CPU, and written atomically, so that concurrent first uses are safe.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

SOURCE = Path(__file__).with_name("_fused.c")
# -ffp-contract=fast: fused multiply-adds (ISO C mode turns them off); -fopenmp-simd: the simd
# pragmas only, no OpenMP runtime (that is linked separately, see _build).
FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno", "-fopenmp-simd", "-fPIC", "-std=c11"]
FLAGS += ["-pthread"]

_lock = threading.Lock()
_state: dict[str, object] = {}

_f32 = ctypes.POINTER(ctypes.c_float)
_i64 = ctypes.c_int64


def enabled() -> bool:
    """False when the environment says ``AFM_NATIVE=0`` (use the PyTorch kernels only)."""
    return os.environ.get("AFM_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    if os.environ.get("AFM_CACHE"):
        return Path(os.environ["AFM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "afm"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        import platform

        return platform.processor() + platform.machine()


def _loaded_openmp() -> str | None:
    """The GNU OpenMP runtime this process (torch) has loaded, if any: linking the kernel against
    that very file makes its threads torch's own thread pool instead of a second, competing one."""
    try:
        with open("/proc/self/maps") as f:
            paths = {ln.split()[-1] for ln in f if "libgomp" in ln and ln.rstrip().endswith(".so.1")}
    except OSError:
        return None
    return sorted(paths)[0] if len(paths) == 1 else None


def _check_private(path: Path, others: int) -> None:
    """Refuse a file or folder that another user owns or may write (a library is code we run)."""
    info = os.lstat(path)
    if info.st_uid != os.getuid() or stat.S_ISLNK(info.st_mode) or info.st_mode & others:
        raise RuntimeError(
            f"{path} is not private to this user (owner uid {info.st_uid}, mode {oct(info.st_mode & 0o777)}); "
            "not loading a library from it"
        )


def _private_temp_folder() -> Path:
    """``$TMPDIR/afm-<uid>``, created with mode 700, and refused unless it is this user's alone."""
    folder = Path(tempfile.gettempdir()) / f"afm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    _check_private(folder, 0o077)
    return folder


def _build(compiler: str) -> Path:
    import torch  # noqa: F401  (loads torch's OpenMP runtime, which the kernel links against)

    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    openmp = _loaded_openmp()
    parts = [SOURCE.read_text(), " ".join(FLAGS), version, _cpu(), openmp or "pthreads"]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    name = f"_fused-{key}.so"
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        target = cache_dir() / name
        if target.exists():
            return target
        os.close(os.open(target.parent / ".writable", os.O_CREAT | os.O_WRONLY, 0o644))
    except OSError:  # a read-only home: a private folder in the temporary directory instead
        target = _private_temp_folder() / name
        if target.exists():
            _check_private(target, 0o022)
            return target
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as tmp:
        obj, lib = os.path.join(tmp, "fused.o"), os.path.join(tmp, "fused.so")
        compile_flags = [*FLAGS, "-fopenmp", "-DAFM_OPENMP"] if openmp else FLAGS
        link = [compiler, "-shared", "-pthread", "-o", lib, obj, "-lm"]
        if openmp:  # the runtime's own file, and where to find it at load time
            link += [openmp, f"-Wl,-rpath,{os.path.dirname(openmp)}"]
        for command in ([compiler, *compile_flags, "-c", "-o", obj, str(SOURCE)], link):
            out = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                raise RuntimeError(f"building {SOURCE.name} failed: {out.stderr.strip()[-2000:]}")
        os.chmod(lib, 0o755)
        os.replace(lib, target)  # atomic: a concurrent build of the same source lands on the same name
    return target


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.afm_forward.restype = ctypes.c_int
    lib.afm_forward.argtypes = [_f32, _i64, _i64, _i64, _i64, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32]
    lib.afm_forward.argtypes += [ctypes.c_int]
    lib.afm_backward.restype = ctypes.c_int
    lib.afm_backward.argtypes = [_f32, _i64, _i64, _i64, _i64, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32]
    lib.afm_backward.argtypes += [_f32, _f32, _f32, _f32, ctypes.c_int]
    return lib


def library() -> ctypes.CDLL | None:
    """The fused kernel, built on first use; None (with one warning saying why) when unavailable."""
    if not enabled():
        return None
    if "lib" in _state:
        return _state["lib"]  # type: ignore[return-value]
    with _lock:
        if "lib" not in _state:
            lib, why = None, ""
            compiler = _compiler()
            if compiler is None:
                why = "no C compiler (cc, gcc or clang) on PATH"
            else:
                try:
                    lib = _declare(ctypes.CDLL(str(_build(compiler))))
                except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                    why = str(err)
            if lib is None:
                warnings.warn(
                    f"afm: the fused C kernel is unavailable ({why}); using the slower PyTorch kernels",
                    RuntimeWarning,
                    stacklevel=2,
                )
            _state["lib"] = lib
    return _state["lib"]  # type: ignore[return-value]


def pointer(tensor: object) -> ctypes._Pointer | None:  # type: ignore[name-defined]
    """A float pointer to a contiguous float32 CPU tensor's memory (None for None)."""
    if tensor is None:
        return None
    return ctypes.cast(tensor.data_ptr(), _f32)  # type: ignore[attr-defined]
