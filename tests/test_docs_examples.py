"""Every example in README.md and docs/ runs: each ```python and ```bash / ```sh / ```shell block is a test.

A Python block runs in a fresh interpreter (``python -c``), a shell block under ``bash -euo pipefail``, each
with a time limit, in a fresh copy of the working tree (the files git tracks or would track), so that an
example which writes ``afm.pt``, a run folder or a refilled document never touches the checkout. The copy is
first on ``PYTHONPATH`` and ``python`` is this interpreter. Frappe, where the team has it
(``../shared/data/frappe`` beside the repository), is linked in as ``data/frappe``, where
``python -m afm download frappe`` puts it on a user's machine. Until the ``afm`` console script is installed,
``afm`` in a shell block runs ``python -m afm`` (the same command).

An HTML comment on the line above a block (blank lines between are allowed) changes how it runs:

    <!-- not run: starts a server -->                skipped, with that reason
    <!-- slow: trains on the sample, 1 minute -->     marked ``slow``: in the whole suite, not the quick subset
    <!-- long: the full reproduce, 30 minutes -->    marked ``long``: runs only under ``-m long``
    <!-- needs frappe: reads data/frappe -->         skipped where Frappe is absent
    <!-- slow, needs frappe: the full reproduce -->  keys combine

Other comments (``<!-- generated:... -->``) are left alone; a comment that starts like one of these keys but
does not parse, or that sits above no runnable block, fails ``test_markers_are_well_formed``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAPPE = ROOT.parent / "shared" / "data" / "frappe"
LANGUAGES = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
KEYS = ("not run", "slow", "long", "needs frappe")
MARKER = re.compile(r"^<!--\s*(?P<keys>[a-z ]+(?:\s*,\s*[a-z ]+)*?)\s*:\s*(?P<reason>\S.*?)\s*-->$")
LOOKS_LIKE_A_MARKER = re.compile(r"^<!--\s*(not\b|slow\b|long\b|needs\b)")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<info>[^\s`]*)")
QUICK_SECONDS = 300  # a quick block takes seconds; this allows for a busy 2-core machine
SLOW_SECONDS = 3 * 3600


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str  # "python" or "bash"
    code: str
    keys: frozenset[str] = frozenset()
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Marker:
    path: Path
    line: int
    text: str
    keys: frozenset[str] | None  # None: it does not parse
    reason: str
    block: Block | None  # the runnable block it sits above, if any


def parse(path: Path) -> tuple[list[Block], list[Marker]]:
    """The runnable blocks of one markdown file, and the marker comments found in it."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    markers: list[Marker] = []
    pending: Marker | None = None  # a marker waiting for the next non-blank line
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        opening = FENCE.match(line)
        if opening:
            fence, indent = opening["fence"], len(opening["indent"])
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(fence[0] * len(fence)):
                end += 1
            body = "\n".join(text[indent:] if text[:indent].strip() == "" else text for text in lines[i + 1 : end])
            language = LANGUAGES.get(opening["info"].lower())
            block = None
            if language:
                keys = pending.keys if pending and pending.keys else frozenset()
                block = Block(path, i + 1, language, body + "\n", keys, pending.reason if pending else "")
                blocks.append(block)
            if pending:
                markers.append(Marker(pending.path, pending.line, pending.text, pending.keys, pending.reason, block))
                pending = None
            i = end + 1
            continue
        if stripped:
            if pending:  # a marker followed by something other than a block
                markers.append(pending)
                pending = None
            if LOOKS_LIKE_A_MARKER.match(stripped):
                match = MARKER.match(stripped)
                keys = None
                if match:
                    found = frozenset(k.strip() for k in match["keys"].split(","))
                    keys = found if found <= set(KEYS) else None
                pending = Marker(path, i + 1, stripped, keys, match["reason"] if match else "", None)
        i += 1
    if pending:
        markers.append(pending)
    return blocks, markers


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in parse(path)[0]]


def _param(block: Block) -> object:
    marks = []
    if "not run" in block.keys:
        marks.append(pytest.mark.skip(reason=f"not run: {block.reason}"))
    # Every example runs in a process of its own (an interpreter and afm's imports: 1-4 s each, about 100 s for
    # them all), so all are in the whole suite and none in the quick subset; a "slow" one also gets the long
    # timeout.
    marks.append(pytest.mark.slow)
    if "long" in block.keys:
        marks.append(pytest.mark.long)
    return pytest.param(block, marks=marks, id=block.name)


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the working tree (git's tracked and untracked-but-not-ignored files)."""
    tree = tmp_path_factory.mktemp("docs-examples") / "tree"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    return tree


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for PATH in which ``afm`` is ``python -m afm``, until the console script is installed."""
    folder = tmp_path_factory.mktemp("docs-bin")
    if not shutil.which("afm", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")):
        script = folder / "afm"
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m afm "$@"\n')
        script.chmod(0o755)
    return folder


def run_block(block: Block, work: Path, path_dirs: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AFM_RUNS_DIR", "AFM_FRAPPE", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join([*map(str, path_dirs), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(work)
    if block.language == "python":
        command = [sys.executable, "-c", block.code]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    timeout = SLOW_SECONDS if block.keys & {"slow", "long"} else QUICK_SECONDS
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("block", [_param(b) for b in all_blocks()])
def test_example_runs(
    block: Block, pristine: Path, stand_ins: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if "long" in block.keys and "long" not in (request.config.getoption("markexpr") or ""):
        pytest.skip(f"long ({block.reason}): run with -m long")
    work = tmp_path / "tree"
    shutil.copytree(pristine, work, symlinks=True)
    if "needs frappe" in block.keys:
        if not (FRAPPE / "frappe.validation.libfm").is_file():
            pytest.skip(f"needs Frappe ({block.reason}); not found at {FRAPPE}")
    if (FRAPPE / "frappe.validation.libfm").is_file():
        (work / "data").mkdir(exist_ok=True)
        (work / "data" / "frappe").symlink_to(FRAPPE)
    done = run_block(block, work, [stand_ins])
    numbered = "\n".join(f"{n:3d}  {line}" for n, line in enumerate(block.code.splitlines(), 1))
    assert done.returncode == 0, (
        f"{block.name} ({block.language}) exited with {done.returncode}\n{numbered}\n"
        f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}"
    )


# ---------------------------------------------------------------------------- the collector itself


def test_markers_are_well_formed() -> None:
    problems = []
    for path in documents():
        for marker in parse(path)[1]:
            where = f"{path.relative_to(ROOT)}:{marker.line}"
            if marker.keys is None:
                problems.append(f"{where}: {marker.text!r} does not parse (keys: {', '.join(KEYS)}; then ': reason')")
            elif marker.block is None:
                problems.append(f"{where}: {marker.text!r} is not directly above a python or shell block")
    assert not problems, "\n".join(problems)


def test_every_document_is_scanned_and_blocks_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in documents()}
    assert {"README.md", "docs/ARCHITECTURE.md", "docs/REPRODUCTION.md"} <= names
    blocks = all_blocks()
    assert sum(b.path.name == "README.md" for b in blocks) >= 3
    assert {b.language for b in blocks} == {"python", "bash"}


SAMPLE = """\
Text.

<!-- not run: starts a server -->
```bash
streamlit run app/streamlit_app.py
```

<!-- slow, needs frappe: trains on Frappe -->

```python
print(1)
```

- in a list:

  ```sh
  echo indented
  ```

```text
not code
```

<!-- generated:bench-x -->
<!-- slow because -->
<!-- not run: above nothing runnable -->
```text
x
```
"""


def test_the_parser_reads_markers_fences_and_indentation(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(SAMPLE)
    blocks, markers = parse(doc)
    assert [(b.line, b.language, b.keys) for b in blocks] == [
        (4, "bash", frozenset({"not run"})),
        (10, "python", frozenset({"slow", "needs frappe"})),
        (16, "bash", frozenset()),
    ]
    assert blocks[0].reason == "starts a server" and blocks[1].code == "print(1)\n"
    assert blocks[2].code == "echo indented\n"
    bad = [m for m in markers if m.keys is None or m.block is None]
    assert [m.line for m in bad] == [25, 26]  # "slow because" does not parse; the last is above a text block


def test_a_failing_block_fails(tmp_path: Path) -> None:
    for language, code in (("python", "raise SystemExit(3)\n"), ("bash", "false\necho never\n")):
        done = run_block(Block(tmp_path / "x.md", 1, language, code), tmp_path, [])
        assert done.returncode != 0 and "never" not in done.stdout
    ok = run_block(Block(tmp_path / "x.md", 1, "bash", "python -c 'import sys; print(sys.executable)'\n"), tmp_path, [])
    assert ok.returncode == 0 and Path(ok.stdout.strip()) == Path(sys.executable)
