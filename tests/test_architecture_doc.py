"""docs/ARCHITECTURE.md stays true: it names every module of afm/ and app/, and what it cites exists.

Checked citations are the inline code spans (`...`) of the page that are

- a file path (`afm/config.py`, `app/pages/*.py`, `app/pages/<name>.py`, `sample_data/pretrained/`): the path,
  or the glob (``<...>`` is a wildcard), must match something in the repository; a bare file name
  (`_fused.c`) must be some file's name;
- a dotted name whose first part is ``afm``, a module of afm/ or app/ (`state.workspace()`, `jobs.pool()`,
  `checkpoint._check_sizes`) or a public name of afm (`TrainConfig.from_dict`, `Explanation.pairs`): it must
  resolve. afm's names are looked up by importing afm; app's by reading the module's source (``ast``), so the
  test imports no Streamlit.

Anything else in backticks (`torch.load(...)`, `st.session_state.ws`, shapes, flags) is prose.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from functools import cache
from pathlib import Path

import pytest

import afm

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
DOTTED = re.compile(r"^([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)+)(\(\))?$")
FILE_SUFFIXES = (".py", ".c", ".toml", ".md", ".json", ".csv", ".txt", ".sh", ".pt", ".png", ".cfg")


def modules() -> list[Path]:
    """Every Python module of the library and the dashboard, pages included."""
    found = [*sorted((ROOT / "afm").glob("*.py")), *sorted((ROOT / "app").rglob("*.py"))]
    return [p for p in found if "__pycache__" not in p.parts]


def spans(text: str) -> list[str]:
    """The inline code spans of a markdown text, fenced blocks left out."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [s.strip() for s in CODE_SPAN.findall(prose)]


@cache
def _tracked_names() -> frozenset[str]:
    return frozenset(p.name for p in ROOT.rglob("*") if ".git" not in p.parts and ".venv" not in p.parts)


def _is_path(span: str) -> bool:
    return " " not in span and ("/" in span or span.endswith(FILE_SUFFIXES)) and not span.startswith(("$", "~", "-"))


def _path_exists(span: str) -> bool:
    span = re.sub(r"<[^>]+>", "*", span)  # a template: `app/pages/<name>.py` is any page
    if "/" not in span.rstrip("/"):
        return span.rstrip("/") in _tracked_names() or (ROOT / span).exists()
    if any(c in span for c in "*?["):
        return any(ROOT.glob(span))
    return (ROOT / span).exists()


@cache
def _app_module(name: str) -> Path | None:
    for folder in (ROOT / "app", ROOT / "app" / "pages"):
        if (folder / f"{name}.py").is_file():
            return folder / f"{name}.py"
    return None


def _defined_in_source(path: Path, attributes: list[str]) -> bool:
    """Whether ``path`` defines ``attributes[0]`` at top level (and, for ``Class.attr``, the class defines
    ``attr``): functions, classes, assignments, imports."""
    body = ast.parse(path.read_text()).body
    for name in attributes:
        found = None
        for node in body:
            names: list[str] = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names = [(a.asname or a.name).split(".")[0] for a in node.names]
            if name in names:
                found = node
        if found is None:
            return False
        if not isinstance(found, ast.ClassDef):
            return name == attributes[-1]
        body = found.body
    return True


def _has_attribute(obj: object, name: str) -> tuple[bool, object]:
    if hasattr(obj, name):
        return True, getattr(obj, name)
    fields = getattr(obj, "__dataclass_fields__", None)
    if fields and name in fields:  # a dataclass field without a default: no class attribute
        return True, fields[name]
    return False, None


def _resolves_in_afm(parts: list[str]) -> bool:
    obj: object = afm
    for i, name in enumerate(parts):
        ok, value = _has_attribute(obj, name)
        if not ok and isinstance(obj, type(afm)):  # a submodule not yet imported
            try:
                value = importlib.import_module(f"{obj.__name__}.{name}")
                ok = True
            except ImportError:
                ok = False
        if not ok:
            return False
        if isinstance(value, dataclasses.Field) and i < len(parts) - 1:
            return False  # a field's own attributes are not cited
        obj = value
    return True


def unresolved(text: str) -> list[str]:
    """The citations of ``text`` that name nothing that exists."""
    bad = []
    for span in spans(text):
        if _is_path(span):
            if not _path_exists(span):
                bad.append(span)
            continue
        match = DOTTED.match(span)
        if not match:
            continue
        head, rest = match[1], match[2].lstrip(".").split(".")
        if head == "afm":
            ok = _resolves_in_afm(rest)
        elif (ROOT / "afm" / f"{head}.py").is_file() or _app_module(head) or hasattr(afm, head):
            ok = (
                ((ROOT / "afm" / f"{head}.py").is_file() and _resolves_in_afm([head, *rest]))
                or (_app_module(head) is not None and _defined_in_source(_app_module(head), rest))
                or (head in afm.__all__ and _resolves_in_afm([head, *rest]))
            )
        else:
            continue  # torch.*, st.*, np.*: not ours
        if not ok:
            bad.append(span)
    return bad


def missing_modules(text: str) -> list[str]:
    """The modules of afm/ and app/ that ``text`` does not name as a code span of their path."""
    named = set(spans(text))
    return [p.relative_to(ROOT).as_posix() for p in modules() if p.relative_to(ROOT).as_posix() not in named]


def test_every_module_is_on_the_page() -> None:
    missing = missing_modules(DOC.read_text())
    assert not missing, f"docs/ARCHITECTURE.md does not name these modules (as `path`): {missing}"


def test_every_citation_exists() -> None:
    bad = unresolved(DOC.read_text())
    assert not bad, f"docs/ARCHITECTURE.md cites names or paths that do not exist: {bad}"


@pytest.mark.parametrize(
    "cited",
    [
        "`afm.no_such_function`",
        "`afm.config.no_such_knob()`",
        "`TrainConfig.no_such_field`",
        "`widgets.no_such_helper()`",
        "`training.start.oops`",
        "`checkpoint._no_such_check`",
        "`afm/no_such_module.py`",
        "`app/pages/*.rs`",
        "`no_such_file.c`",
    ],
)
def test_a_stale_citation_is_caught(cited: str) -> None:
    assert unresolved(f"Some prose with {cited} in it.") == [cited.strip("`")]


def test_real_citations_pass() -> None:
    good = (
        "`afm.config.knobs()` `TrainConfig.from_dict` `ModelConfig.kind` `Explanation.pairs` `widgets.workspace()` "
        "`caches.pool()` `checkpoint._check_sizes` `plots.MODEL_COLOURS` `KINDS` `app/pages/*.py` `_fused.c` "
        "`torch.load(..., weights_only=True)` `st.session_state.ws` `afm.datasets.SAMPLE_DIR`"
    )
    assert unresolved(good) == []


def test_a_missing_module_is_caught() -> None:
    text = DOC.read_text()
    assert missing_modules(text.replace("`app/pages/sweeps.py`", "the sweeps page")) == ["app/pages/sweeps.py"]
    assert "afm/config.py" in missing_modules("")
    assert len(missing_modules("")) == len(modules()) >= 30
