"""afm/settings.py: one table of environment settings, one set of parsing rules, the docs' table generated from it.

Also the guard: afm/ and app/ read no ``AFM_*`` variable except through ``afm.settings`` (the app's last direct
reads are listed in ``PENDING`` until they are wired), and every variable the project reads is in the table.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from afm import settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_DOC = ROOT / "docs" / "defaults.md"

# Pending: the files of app/ that still read AFM_* variables with os.environ themselves (AFM_WORKERS and
# AFM_JOB_CACHE_MB in jobs.py, AFM_TRACE_JOBS in training.py, and app/state.py's two, which its split moved:
# AFM_SERVER_PATHS to data_sources.py, AFM_MAX_UPLOAD_MB to widgets.py). Whoever wires one to afm.settings removes
# it here (test_the_pending_list_is_not_stale says when); once app/ is done this line reads `PENDING = set()`.
PENDING: set[str] = set()


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("word", [*settings.TRUE, *(w.upper() for w in settings.TRUE), " On ", "\tyes\n", "True"])
def test_every_true_word_is_on(word: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_TRACE_JOBS", word)  # default off
    assert settings.get("AFM_TRACE_JOBS") is True


@pytest.mark.parametrize("word", [*settings.FALSE, *(w.upper() for w in settings.FALSE), " Off ", "\tno\n", "False"])
def test_every_false_word_is_off(word: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_NATIVE", word)  # default on
    assert settings.get("AFM_NATIVE") is False


def test_the_words_are_the_documented_ones() -> None:
    assert settings.TRUE == ("1", "true", "yes", "on") and settings.FALSE == ("0", "false", "no", "off")


def test_trace_jobs_false_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bug that started this: app/training.py read AFM_TRACE_JOBS=false as on."""
    monkeypatch.setenv("AFM_TRACE_JOBS", "false")
    assert settings.get("AFM_TRACE_JOBS") is False


@pytest.mark.parametrize("value", ["maybe", "2", "-1", "enabled", "y", "n", "1.0", "onn"])
def test_a_bad_boolean_names_the_variable_the_value_and_the_words(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_TRACE_JOBS", value)
    expected = f"AFM_TRACE_JOBS={value!r} is not a boolean: use 1/true/yes/on or 0/false/no/off"
    with pytest.raises(ValueError) as info:
        settings.get("AFM_TRACE_JOBS")
    assert str(info.value) == expected


def test_the_message_of_the_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_TRACE_JOBS", "maybe")
    message = r"^AFM_TRACE_JOBS='maybe' is not a boolean: use 1/true/yes/on or 0/false/no/off$"
    with pytest.raises(ValueError, match=message):
        settings.get("AFM_TRACE_JOBS")


@pytest.mark.parametrize(("text", "value"), [("3", 3), (" 4 ", 4), ("16\n", 16), ("1e1", 10), ("12.0", 12)])
def test_ints_parse(text: str, value: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_WORKERS", text)
    result = settings.get("AFM_WORKERS")
    assert result == value and isinstance(result, int)


def test_a_budget_written_as_a_float_still_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_CELLS", "5e7")  # accepted before the table; kept
    assert settings.get("AFM_MAX_CELLS") == 50_000_000


@pytest.mark.parametrize("text", ["three", "2.5", "1e400", "nan", "inf", "0x10", "4 workers"])
def test_a_malformed_int_names_the_variable(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_WORKERS", text)
    with pytest.raises(ValueError) as info:
        settings.get("AFM_WORKERS")
    assert str(info.value) == f"AFM_WORKERS={text!r} is not an integer: use an integer of at least 1"


@pytest.mark.parametrize("text", ["0", "-3", " -1 "])
def test_an_int_below_its_bound_names_the_variable(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_JOB_CACHE_MB", text)
    with pytest.raises(ValueError) as info:
        settings.get("AFM_JOB_CACHE_MB")
    assert str(info.value) == f"AFM_JOB_CACHE_MB={text!r} is out of range: use an integer of at least 1"


@pytest.mark.parametrize(("text", "value"), [("0.001", 0.001), (" 50 ", 50.0), ("1e3", 1000.0), ("inf", float("inf"))])
def test_floats_parse(text: str, value: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_UPLOAD_MB", text)
    assert settings.get("AFM_MAX_UPLOAD_MB") == value


@pytest.mark.parametrize(
    ("text", "problem"),
    [("big", "is not a number"), ("nan", "is not a number"), ("0", "is out of range"), ("-5", "is out of range")],
)
def test_a_bad_float_names_the_variable(text: str, problem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_MAX_SERVER_FILE_MB", text)
    with pytest.raises(ValueError) as info:
        settings.get("AFM_MAX_SERVER_FILE_MB")
    assert str(info.value) == f"AFM_MAX_SERVER_FILE_MB={text!r} {problem}: use a number above 0"


def test_paths_and_lists_of_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFM_RUNS_DIR", "my runs")
    assert settings.get("AFM_RUNS_DIR") == Path("my runs")
    monkeypatch.setenv("AFM_DATA_ROOTS", os.pathsep.join(["/a", " ", "/b c", ""]))
    assert settings.get("AFM_DATA_ROOTS") == [Path("/a"), Path("/b c")]
    monkeypatch.setenv("AFM_DATA_ROOTS", os.pathsep)  # only separators: no folder at all (as before the table)
    assert settings.get("AFM_DATA_ROOTS") == []
    monkeypatch.setenv("AFM_CFLAGS", " -O2 -DAFM_VL=8 ")
    assert settings.get("AFM_CFLAGS") == " -O2 -DAFM_VL=8 "  # as written; afm/native.py splits it


@pytest.mark.parametrize("name", list(settings.SETTINGS))
def test_the_default_when_unset_and_when_empty(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = settings.SETTINGS[name].default
    monkeypatch.delenv(name, raising=False)
    assert settings.get(name) == expected == settings.default(name)
    for empty in ("", "   ", "\t"):
        monkeypatch.setenv(name, empty)
        assert settings.get(name) == expected


def test_the_defaults_did_not_change() -> None:
    assert {name: s.default for name, s in settings.SETTINGS.items()} == {
        "AFM_NATIVE": True,
        "AFM_REQUIRE_NATIVE": False,
        "AFM_OPENMP": True,
        "AFM_CFLAGS": "",
        "AFM_MAX_DECODED_MB": 512,
        "AFM_MAX_COLUMNS": 2000,
        "AFM_MAX_HEADER_KB": 4096,
        "AFM_MAX_LINE_KB": 1024,
        "AFM_MAX_CELL_KB": 64,
        "AFM_MAX_NAME_CHARS": 200,
        "AFM_CACHE": None,
        "AFM_RUNS_DIR": Path("runs"),
        "AFM_FRAPPE": None,
        "AFM_DATA_ROOTS": None,
        "AFM_MAX_SERVER_FILE_MB": 200.0,
        "AFM_MAX_CELLS": 50_000_000,
        "AFM_MAX_UPLOAD_MB": None,
        "AFM_SERVER_PATHS": True,
        "AFM_WORKERS": None,
        "AFM_JOB_CACHE_MB": 512,
        "AFM_MAX_RUN_SECONDS": 120,
        "AFM_MAX_RUN_MB": 1536,
        "AFM_MAX_JOB_SECONDS": 900,
        "AFM_ORPHAN_GRACE_SECONDS": 5,
        "AFM_TRACE_JOBS": False,
        "AFM_BENCH_THREADS": 2,
        "AFM_SCREENSHOTS_DIR": None,
        "AFM_E2E_FULL_TRAINING": False,
    }
    for s in settings.SETTINGS.values():  # a computed default (None) says in the docs what it is
        assert s.default is not None or s.default_text, s.name


def test_server_paths_keeps_on_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for word, value in (("on", True), ("off", False), ("OFF", False), ("no", False), ("1", True)):
        monkeypatch.setenv("AFM_SERVER_PATHS", word)
        assert settings.get("AFM_SERVER_PATHS") is value


def test_an_explicit_environment_and_all_values() -> None:
    assert settings.get("AFM_WORKERS", {"AFM_WORKERS": "2"}) == 2
    assert settings.values({}) == {name: s.default for name, s in settings.SETTINGS.items()}
    with pytest.raises(ValueError, match="AFM_OPENMP='sometimes'"):
        settings.values({"AFM_OPENMP": "sometimes"})


def test_an_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="AFM_NO_SUCH is not an environment setting"):
        settings.get("AFM_NO_SUCH")


def test_every_setting_is_described() -> None:
    for s in settings.SETTINGS.values():
        assert s.name.startswith("AFM_") and s.kind in settings.KINDS, s.name
        assert s.meaning.endswith(".") and s.where, s.name
        assert (s.minimum is not None) == (s.kind == "int"), s.name  # every int has its bound
        assert (s.above is not None) == (s.kind == "float"), s.name
    with pytest.raises(ValueError, match="unknown type"):
        settings.Setting("AFM_X", "complex", 0, "x.", "nowhere")


def test_what_the_table_cites_exists() -> None:
    """The repository paths (`app/jobs.py`, `benchmarks/*.py`) and afm names (`afm.data.max_cells()`) that the
    meaning and where-it-matters columns cite."""
    import importlib

    for s in settings.SETTINGS.values():
        for span in re.findall(r"`([^`]+)`", s.meaning + " " + s.where):
            if re.fullmatch(r"afm(\.\w+)+(\(\))?", span):
                module, _, name = span.removesuffix("()").rpartition(".")
                assert hasattr(importlib.import_module(module), name), f"{s.name} cites {span}"
            elif "/" in span and not span.startswith(("-", "$", "~", "..")):
                assert any(ROOT.glob(span)), f"{s.name} cites {span}, which is not in the repository"


# ---------------------------------------------------------------------------- the library reads through it


def test_the_library_follows_the_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from afm import data, datasets, native, runs

    monkeypatch.setenv("AFM_NATIVE", "off")
    assert native.enabled() is False and "AFM_NATIVE=0" in native.unavailable_reason()
    monkeypatch.setenv("AFM_NATIVE", "Yes")
    assert native.enabled() is True
    monkeypatch.setenv("AFM_NATIVE", "maybe")
    with pytest.raises(ValueError, match="AFM_NATIVE='maybe' is not a boolean"):
        native.enabled()
    monkeypatch.setenv("AFM_REQUIRE_NATIVE", "false")
    assert native.required() is False
    monkeypatch.setenv("AFM_REQUIRE_NATIVE", "true")
    assert native.required() is True
    monkeypatch.setenv("AFM_CACHE", str(tmp_path / "cache"))
    assert native.cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("AFM_CFLAGS", "-O2")
    assert native.flag_ladder() == [[*native.TUNING, "-O2", *native.REQUIRED]]
    monkeypatch.setenv("AFM_OPENMP", "no")
    assert native._openmp() is None

    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    assert runs.runs_dir() == tmp_path / "runs"
    monkeypatch.setenv("AFM_RUNS_DIR", "")
    assert runs.runs_dir() == Path("runs")

    monkeypatch.setenv("AFM_MAX_CELLS", "1000")
    assert data.max_cells() == 1000
    assert data.DEFAULT_MAX_CELLS == settings.default("AFM_MAX_CELLS")
    monkeypatch.setenv("AFM_MAX_CELLS", "lots")
    with pytest.raises(ValueError, match="AFM_MAX_CELLS='lots' is not an integer"):
        data.max_cells()

    monkeypatch.setenv("AFM_FRAPPE", str(tmp_path / "frappe"))
    assert datasets.default_frappe_root() == tmp_path / "frappe"
    monkeypatch.setenv("AFM_DATA_ROOTS", str(tmp_path))
    assert datasets.data_roots() == [tmp_path.resolve()]
    monkeypatch.delenv("AFM_DATA_ROOTS")
    assert datasets.data_roots() == [datasets.SAMPLE_DIR.resolve(), Path("data").resolve()]
    (tmp_path / "a.libfm").write_text("1 0:1\n" * 1000)  # about 7 KB
    assert datasets.MAX_SERVER_FILE_MB == settings.default("AFM_MAX_SERVER_FILE_MB")
    monkeypatch.setenv("AFM_MAX_SERVER_FILE_MB", "0.001")
    with pytest.raises(ValueError, match="over 0.001 MB"):
        datasets.allowed_path(str(tmp_path / "a.libfm"), [tmp_path])
    monkeypatch.setenv("AFM_MAX_SERVER_FILE_MB", "-1")
    with pytest.raises(ValueError, match="AFM_MAX_SERVER_FILE_MB='-1' is out of range"):
        datasets.allowed_path(str(tmp_path / "a.libfm"), [tmp_path])


def test_importing_the_settings_loads_nothing_heavy() -> None:
    heavy = "{'torch', 'numpy', 'pandas', 'plotly', 'streamlit'}"
    code = f"import sys, afm.settings; print(sorted({heavy} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- the docs' table


def test_the_docs_table_is_the_generated_one() -> None:
    text = DEFAULTS_DOC.read_text(encoding="utf-8")
    assert f"<!-- generated:{settings.BLOCK_NAME} -->" in text, "docs/defaults.md lacks the env-settings block"
    assert settings.fill(text) == text, f"docs/defaults.md's environment table is stale: run {settings.WRITE_COMMAND}"


def test_the_table_names_every_setting_once() -> None:
    table = settings.markdown_table()
    rows = [line for line in table.splitlines()[2:]]
    assert [re.match(r"\| `(\w+)` \|", row)[1] for row in rows] == list(settings.SETTINGS)  # type: ignore[index]
    assert all(row.count(" | ") == 4 for row in rows)  # five cells, no stray pipe
    assert "| `AFM_TRACE_JOBS` | bool | `off` |" in table and "| `AFM_WORKERS` | int ≥ 1 |" in table


def test_the_command_refills_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n<!-- generated:env-settings -->\nold\n<!-- /generated:env-settings -->\nafter\n")
    assert settings.main(["--check", str(page)]) == 1
    assert f"run python -m afm.settings --write {page}" in capsys.readouterr().err
    assert settings.main(["--write", str(page)]) == 0
    assert page.read_text() == f"# Page\n\n<!-- generated:env-settings -->\n{settings.markdown_table()}\n" + (
        "<!-- /generated:env-settings -->\nafter\n"
    )
    assert settings.main(["--check", str(page)]) == 0
    (tmp_path / "bare.md").write_text("no block\n")
    assert settings.main(["--write", str(tmp_path / "bare.md")]) == 2
    assert "no single <!-- generated:env-settings -->" in capsys.readouterr().err
    assert settings.main([]) == 0 and capsys.readouterr().out.strip() == settings.markdown_table()


# ---------------------------------------------------------------------------- the guard


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def env_reads(source: str) -> list[tuple[int, str | None]]:
    """(line, variable name) of each environment access by name in ``source``: ``os.environ[...]``,
    ``os.environ.get/setdefault/pop(...)``, ``os.getenv(...)``, ``... in os.environ``; the name is None where it
    is not a string literal (a read through a variable, as ``_env_int(name)`` did)."""
    found: list[tuple[int, str | None]] = []

    def key(node: ast.AST | None) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            reads = isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault", "pop")
            if (reads and _is_environ(func.value)) or (  # type: ignore[union-attr]
                (isinstance(func, ast.Attribute) and func.attr == "getenv")
                or (isinstance(func, ast.Name) and func.id == "getenv")
            ):
                found.append((node.lineno, key(node.args[0] if node.args else None)))
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            found.append((node.lineno, key(node.slice)))
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
                found.append((node.lineno, key(node.left)))
    return found


def offending_reads(path: Path) -> list[str]:
    """The reads of ``path`` that bypass afm.settings: an AFM_* name, or a name that is not a literal."""
    return [
        f"{path.relative_to(ROOT).as_posix()}:{line}: {name or '(a name in a variable)'}"
        for line, name in env_reads(path.read_text(encoding="utf-8"))
        if name is None or name.startswith("AFM_")
    ]


def library_and_app() -> list[Path]:
    files = [*sorted((ROOT / "afm").rglob("*.py")), *sorted((ROOT / "app").rglob("*.py"))]
    return [p for p in files if "__pycache__" not in p.parts and p != ROOT / "afm" / "settings.py"]


def test_the_guard_sees_every_kind_of_read() -> None:
    source = (
        "import os\nfrom os import environ, getenv\n"
        "a = os.environ.get('AFM_A')\nb = os.environ['AFM_B']\nc = 'AFM_C' in os.environ\nd = os.getenv('AFM_D')\n"
        "e = getenv(name)\nf = environ.get(name, 1)\ng = os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')\n"
        "h = {**os.environ, 'AFM_H': '1'}\n"  # a child's environment: not a read
    )
    assert sorted(env_reads(source)) == [
        (3, "AFM_A"), (4, "AFM_B"), (5, "AFM_C"), (6, "AFM_D"), (7, None), (8, None), (9, "OMP_WAIT_POLICY"),
    ]  # fmt: skip


def test_afm_and_app_read_afm_variables_only_through_the_settings() -> None:
    bad = [read for path in library_and_app() for read in offending_reads(path) if read.split(":")[0] not in PENDING]
    assert not bad, f"read these through afm.settings.get (and add new ones to its table): {bad}"


def test_the_pending_list_is_not_stale() -> None:
    stale = [name for name in sorted(PENDING) if not (ROOT / name).is_file() or not offending_reads(ROOT / name)]
    assert not stale, f"{stale} no longer read AFM_* variables directly: remove them from PENDING in this file"


def test_other_variables_are_the_platform_ones() -> None:
    """The reads left to os.environ are the ones afm/settings.py's docstring lists (settings.PLATFORM)."""
    others = {
        f"{path.relative_to(ROOT).as_posix()}: {name}"
        for path in library_and_app()
        for _, name in env_reads(path.read_text(encoding="utf-8"))
        if name is not None and not name.startswith("AFM_") and name not in settings.PLATFORM
    }
    assert not others, f"add these to afm.settings' table, or to its PLATFORM list saying why: {sorted(others)}"


def test_every_variable_the_project_reads_is_in_the_table() -> None:
    """Python reads in afm/, app/, benchmarks/ and tests/, and the AFM_* names of the CI and install scripts."""
    python = [
        *library_and_app(),
        *sorted((ROOT / "benchmarks").rglob("*.py")),
        *sorted((ROOT / "tests").glob("*.py")),
    ]
    names = {name for path in python for _, name in env_reads(path.read_text(encoding="utf-8")) if name}
    for script in [ROOT / ".ci" / "run", *sorted((ROOT / "tests").glob("*.sh"))]:
        names |= set(re.findall(r"\b(AFM_[A-Z0-9_]+)=", script.read_text(encoding="utf-8")))
    missing = {n for n in names if n.startswith("AFM_")} - set(settings.SETTINGS)
    assert not missing, f"add these to afm/settings.py's table: {sorted(missing)}"
