"""The package stands on its own: no paths outside the repository, the sample where afm looks for it.

The slow check (a fresh venv, a non-editable ``pip install .``, the sample and a training run from an
empty folder) is ``tests/check_install.sh``, which ``.ci/run`` runs after this suite.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import afm
from afm.checkpoint import load_model
from afm.datasets import default_frappe_root

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = ("../shared", "shared/data")  # the team's folder beside the repository: a clone has no such thing


def _shipped_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in ("afm", "app"):
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return files


def test_readme_afm_and_app_name_no_path_outside_the_repository() -> None:
    offenders = []
    for path in _shipped_files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if any(needle in line for needle in OUTSIDE):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_sample_dir_holds_the_sample_its_card_and_the_pretrained_models() -> None:
    sample_dir = afm.datasets.SAMPLE_DIR
    assert (sample_dir / "sample.csv").is_file()
    assert (sample_dir / "README.md").is_file()  # the data card
    assert (sample_dir / "planted_pairs.json").is_file()
    pretrained = sample_dir / "pretrained"
    assert (sample_dir / "salient.csv").is_file() and (sample_dir / "SALIENT.md").is_file()  # the second sample
    assert sorted(p.name for p in pretrained.glob("*.pt")) == sorted(
        f"{prefix}{task}-{kind}.pt" for prefix in ("", "salient-") for task in ("binary", "regression")
        for kind in ("afm", "fm")
    )  # fmt: skip
    model, _ = load_model(pretrained / "regression-afm.pt")
    assert model.config.kind == "afm"


def test_pyproject_ships_every_file_of_sample_data() -> None:
    """Each file in sample_data/ matches one of the package-data globs (a new kind of file needs a glob)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["afm.sample_data"] == "sample_data"
    assert "afm.sample_data" in config["packages"]
    globs = config["package-data"]["afm.sample_data"]
    folder = ROOT / "sample_data"
    files = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files
    missed = [str(f) for f in files if not any(f.match(g) and len(f.parts) == len(Path(g).parts) for g in globs)]
    assert not missed, f"sample_data files no package-data glob ships: {missed}"


def test_default_frappe_root_is_the_env_var_else_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AFM_FRAPPE", raising=False)
    assert default_frappe_root() == Path("data", "frappe")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "frappe.validation.libfm").write_text("1 0:1\n")  # where `download frappe` writes
    assert default_frappe_root() == Path("data")
    monkeypatch.setenv("AFM_FRAPPE", str(tmp_path / "elsewhere"))
    assert default_frappe_root() == tmp_path / "elsewhere"


def test_pyproject_ships_the_dashboard_and_the_console_script() -> None:
    """app/ ships as afm.app (every module and page, its Streamlit config); `afm` runs the command line."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    config = project["tool"]["setuptools"]
    assert config["package-dir"]["afm.app"] == "app" and config["package-dir"]["afm.app.pages"] == "app/pages"
    assert {"afm.app", "afm.app.pages"} <= set(config["packages"])
    globs = config["package-data"]["afm.app"]
    folder = ROOT / "app"
    files = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    shipped = [f for f in files if f.suffix == ".py" and f.parent in (Path("."), Path("pages"))]  # the modules
    shipped += [f for f in files if any(f.match(g) and len(f.parts) == len(Path(g).parts) for g in globs)]
    assert Path("pages/attention.py") in shipped and Path(".streamlit/config.toml") in shipped
    assert sorted(set(files) - set(shipped)) == [], "app/ files that the wheel would leave out"
    assert project["project"]["scripts"]["afm"] == "afm.__main__:main"
    assert "py.typed" in config["package-data"]["afm"] and (ROOT / "afm" / "py.typed").is_file()


HEAVY = ("plotly", "pandas", "streamlit", "torch", "scipy", "sklearn")


def _loaded_after(code: str) -> set[str]:
    """The heavy modules that a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))


def test_import_afm_loads_no_heavy_library_and_the_core_path_no_pandas() -> None:
    assert _loaded_after("import afm") == set()
    # the model, the trainer, checkpoints and metrics need torch, not pandas, plotly, SciPy or scikit-learn
    core = "from afm import AFM, FM, Dataset, ModelConfig, TrainConfig, fit, evaluate, load_model, save_model, predict"
    assert _loaded_after(core) == {"torch"}
    assert "plotly" in _loaded_after("import afm; afm.plots")  # loads when used


def test_every_public_name_loads_from_its_home_and_the_three_lists_agree() -> None:
    """afm.__all__, the table afm.__getattr__ reads (afm._HOMES) and the TYPE_CHECKING imports name the
    same things; each name is the object its module defines."""
    public_modules = set(afm._PUBLIC_MODULES)
    assert set(afm.__all__) == public_modules | set(afm._NAMES) and len(afm.__all__) == len(set(afm.__all__))
    for name in afm.__all__:
        value = getattr(afm, name)
        if name in public_modules:
            assert value is importlib.import_module(f"afm.{name}")
        else:
            assert value is getattr(importlib.import_module(f"afm.{afm._NAMES[name]}"), name), name
    for name in afm._SUBMODULES:  # every module, public or not: afm.kernels, afm.reproduce, ...
        assert getattr(afm, name) is importlib.import_module(f"afm.{name}")
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        afm.nonexistent  # noqa: B018
    tree = ast.parse((ROOT / "afm" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    imported: dict[str, set[str]] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        imported.setdefault(node.module or "", set()).update(a.name for a in node.names)
    assert imported.pop("") == public_modules
    assert imported == {module: set(names) for module, names in afm._HOMES.items()}
