"""Every environment setting afm reads, in one table, parsed by one set of rules.

``get("AFM_WORKERS")`` returns a setting's typed value: its default when the variable is unset, empty or only
spaces, else the text parsed by the setting's type:

- **bool**: 1/true/yes/on or 0/false/no/off, in any case, surrounding spaces ignored;
- **int**, **float**: surrounding spaces ignored; an int also takes a whole number written as a float
  (``5e7``); a value outside the setting's bounds is refused;
- **str**, **path**: the text as written (a path may hold spaces);
- **list of paths**: ``os.pathsep``-separated (``:``, ``;`` on Windows); blank pieces are skipped.

Anything else raises a ``ValueError`` that names the variable, its value and what it takes, e.g.
``AFM_TRACE_JOBS='maybe' is not a boolean: use 1/true/yes/on or 0/false/no/off``. A mistyped setting is
refused where it is read instead of silently meaning something else (``AFM_TRACE_JOBS=false`` once turned
tracing on).

``SETTINGS`` is the table (name, type, default, meaning, where it matters); ``markdown_table()`` renders it
for docs/defaults.md, between ``<!-- generated:env-settings -->`` markers, and ``tests/test_settings.py``
fails when that block is stale: ``python -m afm.settings --write docs/defaults.md`` refills it.

Not in the table, because they are not afm's own settings: variables the code reads or sets for the platform
or for other tools, with their meaning there -- ``CC`` (the C compiler, as make reads it), ``XDG_CACHE_HOME``
(the XDG cache folder), ``USER`` / ``USERNAME`` (the login name on Windows, for a private temporary folder),
``PROCESSOR_IDENTIFIER`` (Windows' CPU description, part of the kernel's cache key), ``WORLD_SIZE``
(torchrun's process count) and ``OMP_WAIT_POLICY`` (OpenMP's, set to PASSIVE at start-up). They stay plain
``os.environ`` reads, listed in ``PLATFORM``. The CI scripts' own switches (``CI_SKIP_CROSS``, ``CI_VENV``
in .ci/run, ``CI_SKIP_INSTALL`` in tests/check_install.sh) are read by bash there and documented beside
their use.

This module imports nothing but the standard library, so ``import afm`` stays light.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = {"bool": "bool", "int": "int", "float": "float", "str": "str", "path": "path", "paths": "list of paths"}
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
BOOL_WORDS = f"{'/'.join(TRUE)} or {'/'.join(FALSE)}"
# read with os.environ directly, on purpose: the platform's and other tools' variables (see the docstring)
PLATFORM = ("CC", "XDG_CACHE_HOME", "USER", "USERNAME", "PROCESSOR_IDENTIFIER", "WORLD_SIZE", "OMP_WAIT_POLICY")
BLOCK_NAME = "env-settings"
BLOCK = re.compile(rf"(<!-- generated:{BLOCK_NAME} -->)(.*?)(<!-- /generated:{BLOCK_NAME} -->)", re.S)
WRITE_COMMAND = "python -m afm.settings --write docs/defaults.md"


@dataclass(frozen=True)
class Setting:
    """One environment variable: its type (a key of ``KINDS``), default, meaning and where it matters.

    ``default`` is the value ``get`` returns when the variable is unset or empty; None where the reader
    computes the default itself, which ``default_text`` then describes. Ints must be at least ``minimum``,
    floats greater than ``above``."""

    name: str
    kind: str
    default: Any
    meaning: str
    where: str
    minimum: int | None = None
    above: float | None = None
    default_text: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown type {self.kind!r}; use one of {sorted(KINDS)}")

    def parse(self, raw: str | None) -> Any:
        """The typed value of the text ``raw`` (None: unset), or a ValueError naming the variable."""
        if raw is None or not raw.strip():
            return self.default
        text = raw.strip()
        if self.kind == "bool":
            word = text.lower()
            if word not in TRUE + FALSE:
                raise ValueError(f"{self.name}={raw!r} is not a boolean: use {BOOL_WORDS}")
            return word in TRUE
        if self.kind == "int":
            return self._int(raw, text)
        if self.kind == "float":
            return self._float(raw, text)
        if self.kind == "path":
            return Path(raw)
        if self.kind == "paths":
            return [Path(piece) for piece in raw.split(os.pathsep) if piece.strip()]
        return raw

    def _int(self, raw: str, text: str) -> int:
        wanted = "an integer" + (f" of at least {self.minimum}" if self.minimum is not None else "")
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)  # 5e7: a whole number written as a float
            except ValueError:
                number = math.nan
            if not (math.isfinite(number) and number.is_integer()):
                raise ValueError(f"{self.name}={raw!r} is not an integer: use {wanted}") from None
            value = int(number)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{self.name}={raw!r} is out of range: use {wanted}")
        return value

    def _float(self, raw: str, text: str) -> float:
        wanted = "a number" + (f" above {self.above:g}" if self.above is not None else "")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if math.isnan(value):
            raise ValueError(f"{self.name}={raw!r} is not a number: use {wanted}")
        if self.above is not None and not value > self.above:
            raise ValueError(f"{self.name}={raw!r} is out of range: use {wanted}")
        return value

    def type_text(self) -> str:
        if self.minimum is not None:
            return f"{KINDS[self.kind]} ≥ {self.minimum}"
        if self.above is not None:
            return f"{KINDS[self.kind]} > {self.above:g}"
        return KINDS[self.kind]

    def default_for_docs(self) -> str:
        if self.default_text:
            return self.default_text
        if self.kind == "bool":
            return "`on`" if self.default else "`off`"
        if self.kind == "float":
            return f"`{self.default:g}`"
        return f"`{self.default}`" if str(self.default) else "(empty)"


_TABLE = (
    # the fused C kernel (afm/native.py)
    Setting(
        "AFM_NATIVE", "bool", True,
        "Use the fused C kernel, compiled on first use; off: the PyTorch kernels only (the same numbers, slower).",
        "`afm/native.py`: every AFM forward and backward on the CPU (training, prediction, explanations)",
    ),
    Setting(
        "AFM_REQUIRE_NATIVE", "bool", False,
        "The kernel tests fail, instead of skipping, where the fused C kernel cannot be built (`.ci/run` sets it).",
        "`afm.native.required()`: `tests/test_kernels.py`, `tests/test_native.py`",
    ),
    Setting(
        "AFM_OPENMP", "bool", True,
        "Link the fused kernel against torch's OpenMP runtime; off: build it with plain threads.",
        "`afm/native.py`: the kernel's build (part of its cache key)",
    ),
    Setting(
        "AFM_CFLAGS", "str", "",
        "Compiler flags that replace the flags ladder (`-march=native`, `-mcpu=native`, the portable baseline); "
        "they follow the tuning flags, so they may override them.",
        "`afm/native.py`: the kernel's build; `benchmarks/speed.py` sets it per row",
        default_text="(empty: the ladder)",
    ),
    Setting(
        "AFM_CACHE", "path", None,
        "The folder of the compiled kernel and its records.",
        "`afm/native.py`: the kernel's cache",
        default_text="`$XDG_CACHE_HOME/afm`, else `~/.cache/afm`",
    ),
    # files and folders
    Setting(
        "AFM_RUNS_DIR", "path", Path("runs"),
        "Where run folders are saved and listed.",
        "`afm/runs.py`: `afm train`, `afm runs`, `afm reproduce`, the dashboard's save and load",
    ),
    Setting(
        "AFM_FRAPPE", "path", None,
        "Frappe's folder when no folder is given.",
        "`afm.datasets.default_frappe_root()`: `afm reproduce`, the dashboard's default path; `benchmarks/*.py`",
        default_text="`data/frappe` (or `data/` when only it holds the parts); the benchmarks have their own",
    ),
    Setting(
        "AFM_DATA_ROOTS", "paths", None,
        "The only folders the dashboard's libFM path box may read from.",
        "`afm.datasets.data_roots()`: the dashboard's *libFM file or folder on disk* source",
        default_text="the bundled samples' folder and `data/`",
    ),
    # limits
    Setting(
        "AFM_MAX_SERVER_FILE_MB", "float", 200.0,
        "The largest libFM file (MB) read from a server path.",
        "`afm.datasets.allowed_path()`: the dashboard's libFM path box",
        above=0,
    ),
    Setting(
        "AFM_MAX_CELLS", "int", 50_000_000,
        "The budget of rows × columns for one table, checked before the table is read.",
        "`afm.data.max_cells()`: every CSV or Parquet table, from the command line or an upload",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_DECODED_MB", "int", 512,
        "The most megabytes (MiB) one table may take once decoded (8 bytes a number, a text's bytes + 8), bounded "
        "before its data is read: from a Parquet file's footer and page headers, estimated from a CSV's scan. 512: "
        "a class server of a few GB shared by ~30 sessions holds a couple of such tables at once; the load "
        "benchmark's Criteo-like tables take 412 (820k rows × 40, its upload) and 502 (1M rows, the command line); "
        "a 9 KB Parquet of 8 × 256 MB strings takes 2,048.",
        "`afm.data.Budgets`: every CSV or Parquet table, from the command line or an upload",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_COLUMNS", "int", 2000,
        "The most columns one table may have (and fields in one CSV line). 2,000: F fields make F(F-1)/2 pairs, "
        "2 million at 2,000, and every column is an option in the dashboard's column widgets (100,000 hung a session).",
        "`afm.data.Budgets`: every CSV or Parquet table, before its data is read",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_HEADER_KB", "int", 4096,
        "The most kilobytes of a table's header: a CSV's header line, a Parquet file's footer (schema and "
        "metadata, read before pyarrow parses it: the parse takes ~14× its bytes). 4096: 2,000 columns of "
        "200-character names make a 3.7 MB footer as pandas writes it and a 0.8 MB CSV header (two-byte UTF-8).",
        "`afm.data.Budgets`: every CSV or Parquet table, before its data is read",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_LINE_KB", "int", 1024,
        "The most kilobytes of one CSV line (quoted newlines stay inside their line). 1024: 2,000 columns of "
        "500 bytes; a 46 MB line was read whole before.",
        "`afm.data.Budgets`: every CSV table, from one scan before it is parsed",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_CELL_KB", "int", 64,
        "The most kilobytes of one cell (a CSV field, a Parquet text value). 64: a long paragraph of free text; "
        "a category or a number takes tens of bytes, and every value may end up in a label or a select box.",
        "`afm.data.Budgets`: every CSV or Parquet table (Parquet: from its pages' sizes, else once read)",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_NAME_CHARS", "int", 200,
        "The longest column name, in characters; a longer one is refused, never shortened or shown (a 45 MB name "
        "sent to the browser hung its tab). 200: any real name, and 2,000 of them fit the header budget.",
        "`afm.data.Budgets`: every CSV or Parquet table, before its data is read",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_UPLOAD_MB", "float", None,
        "The largest upload (MB) the dashboard accepts.",
        "`app/widgets.py` (`max_upload_bytes`): the dashboard's uploads (tables and checkpoints)",
        above=0,
        default_text="Streamlit's `server.maxUploadSize` (50 in `app/.streamlit/config.toml`)",
    ),
    # the dashboard's server
    Setting(
        "AFM_SERVER_PATHS", "bool", True,
        "Offer the dashboard's *libFM file or folder on disk* source; off for a public deployment.",
        "`app/data_sources.py`: the Data & model page's data sources",
    ),
    Setting(
        "AFM_WORKERS", "int", None,
        "Training jobs the dashboard's pool runs at once (workers × torch threads never exceed the cores).",
        "`app/jobs.py`: the server's one worker pool",
        minimum=1,
        default_text="the cores this process may use",
    ),
    Setting(
        "AFM_JOB_CACHE_MB", "int", 512,
        "Megabytes of finished jobs' model parameters the pool keeps for sessions that ask for the same job.",
        "`app/jobs.py`: the server's one worker pool",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_RUN_SECONDS", "int", 120,
        "Seconds one dashboard page run may compute (time spent waiting for a training job does not count) before "
        "it is stopped with a message. 120: the 820,000-row upload's slowest page run took about 40 s on a quiet "
        "2-core machine; a run past this ties up a server thread that the class shares.",
        "`app/limits.py`: every page run of the dashboard",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_RUN_MB", "int", 1536,
        "Megabytes the server's resident memory may grow during one page run before the run is stopped with a "
        "message. 1,536: the 820,000-row upload's pages stay under it; three such runs fit a 4 GB class server.",
        "`app/limits.py`: every page run of the dashboard (Linux, where /proc gives the resident size)",
        minimum=1,
    ),
    Setting(
        "AFM_MAX_JOB_SECONDS", "int", 900,
        "Seconds one training job may run on the server's pool; past it the job stops and keeps its best epoch. "
        "900: training AFM and FM on the 820,000-row upload takes about 4 minutes on a quiet 2-core machine.",
        "`app/limits.py`: the server's worker pool",
        minimum=1,
    ),
    Setting(
        "AFM_ORPHAN_GRACE_SECONDS", "int", 5,
        "Seconds a session may be disconnected (its tab closed, or its connection lost) before its page run "
        "and the jobs nobody else waits for are stopped. A reconnection within this time loses nothing.",
        "`app/limits.py`: page runs and jobs of a closed tab",
        minimum=0,
    ),
    Setting(
        "AFM_TRACE_JOBS", "bool", False,
        "One stderr line per followed training job (`benchmarks/load.py` reads the server's timings from them).",
        "`app/training.py`",
    ),
    # benchmarks and tests
    Setting(
        "AFM_BENCH_THREADS", "int", 2,
        "Torch threads of each speed benchmark's child process (`--threads` sets it).",
        "`benchmarks/speed.py`",
        minimum=1,
    ),
    Setting(
        "AFM_SCREENSHOTS_DIR", "path", None,
        "Where the browser tests write their screenshots (`docs/screenshots` refreshes the documentation's).",
        "`tests/browserkit.py`: `tests/test_browser.py`",
        default_text="`afm-screenshots` in the temporary folder",
    ),
    Setting(
        "AFM_E2E_FULL_TRAINING", "bool", False,
        "The browser tests train with the default knobs (10 epochs) instead of one epoch.",
        "`tests/browserkit.py`: `tests/test_browser.py`",
    ),
)  # fmt: skip
SETTINGS: dict[str, Setting] = {s.name: s for s in _TABLE}


def setting(name: str) -> Setting:
    """The table's row for ``name``; a KeyError for a name the table does not hold."""
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not an environment setting of afm (afm/settings.py lists them)") from None


def get(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The typed value of the setting ``name`` in ``environ`` (default: ``os.environ``), read now: its
    default when unset or empty. Raises ValueError naming the variable when its value does not parse."""
    return setting(name).parse((os.environ if environ is None else environ).get(name))


def default(name: str) -> Any:
    """The value ``get(name)`` returns when the variable is unset."""
    return setting(name).default


def values(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting's value (the first that does not parse raises)."""
    return {name: get(name, environ) for name in SETTINGS}


def markdown_table() -> str:
    """The table as Markdown: the block docs/defaults.md holds between its ``env-settings`` markers."""
    lines = ["| variable | type | default | meaning | where it matters |", "|---|---|---|---|---|"]
    for s in _TABLE:
        cells = [f"`{s.name}`", s.type_text(), s.default_for_docs(), s.meaning, s.where]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def fill(text: str) -> str:
    """``text`` with its ``env-settings`` block replaced by ``markdown_table()``; a ValueError without one."""
    if len(BLOCK.findall(text)) != 1:
        raise ValueError(f"no single <!-- generated:{BLOCK_NAME} --> ... <!-- /generated:{BLOCK_NAME} --> block")
    return BLOCK.sub(lambda m: f"{m[1]}\n{markdown_table()}\n{m[3]}", text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m afm.settings", description="afm's environment settings: print the table, or refill a document."
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", type=Path, help="refill FILE's env-settings block")
    group.add_argument("--check", metavar="FILE", type=Path, help="exit 1 when FILE's env-settings block is stale")
    group.add_argument("--values", action="store_true", help="print each setting's value in this environment")
    args = parser.parse_args(argv)
    try:
        if args.values:
            for name, value in values().items():
                print(f"{name}={value!r}")
            return 0
        if args.write is None and args.check is None:
            print(markdown_table())
            return 0
        path = args.write or args.check
        text = path.read_text(encoding="utf-8")
        filled = fill(text)
    except (OSError, ValueError) as err:
        print(f"python -m afm.settings: {err}", file=sys.stderr)
        return 2
    if filled == text:
        print(f"{path}: up to date")
        return 0
    if args.check is not None:
        print(f"{path}: the environment table is stale; run python -m afm.settings --write {path}", file=sys.stderr)
        return 1
    path.write_text(filled, encoding="utf-8")
    print(f"{path}: refilled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
