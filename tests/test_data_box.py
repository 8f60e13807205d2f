"""The server's libFM box stays inside its data folders (issue 27, item 3): every file a folder resolves to is
resolved itself and must lie under a root, the size cap applies to each part and to a folder's total, and messages
name paths below their data folder, never the server's absolute paths. Through the library
(``afm.datasets.allowed_path`` / ``load_parts(..., roots=...)``) and through the dashboard (AppTest)."""

from __future__ import annotations

import builtins
import io
import os
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import afm
import afm.data
from afm import datasets

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app" / "streamlit_app.py")
# one Frappe row: one id in each of the ten fields' ranges (afm.datasets.FRAPPE_FIELDS)
ROW = "1 0:1 957:1 5039:1 5046:1 5053:1 5055:1 5058:1 5060:1 5069:1 5149:1\n"
LINK_WORDS = "data/frappe/frappe.validation.libfm is a link to a file outside the data folders"


def literal(text: str) -> str:
    """How the dashboard shows a message (app/session.py ``literal``: Markdown marks escaped)."""
    sys.path.insert(0, str(ROOT / "app"))
    try:
        import session
    finally:
        sys.path.remove(str(ROOT / "app"))
    return session.literal(text, 400)


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A data root ``data`` with a Frappe folder (a train part), and a ``secret`` folder outside every root that
    holds a valid part: what a link in the folder may point at."""
    root, secret = tmp_path / "data", tmp_path / "secret"
    (root / "frappe").mkdir(parents=True)
    secret.mkdir()
    (root / "frappe" / "frappe.train.libfm").write_text(ROW * 40)
    (secret / "frappe.validation.libfm").write_text(ROW * 30)
    return {"root": root, "folder": root / "frappe", "secret": secret}


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file opened from now on, resolved: through open(), Path.read_bytes/read_text/open and the libFM
    reader's own read (afm.data._read_text)."""
    seen: list[Path] = []

    def note(path: object) -> None:
        if isinstance(path, str | os.PathLike):
            seen.append(Path(os.path.realpath(path)))

    real_open, real_io_open, real_read = builtins.open, io.open, afm.data._read_text
    real_path_open = Path.open

    def spy_open(file: object, *args: object, **kwargs: object) -> object:
        note(file)
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    def spy_io_open(file: object, *args: object, **kwargs: object) -> object:
        note(file)
        return real_io_open(file, *args, **kwargs)  # type: ignore[call-overload]

    def spy_path_open(self: Path, *args: object, **kwargs: object) -> object:
        note(self)
        return real_path_open(self, *args, **kwargs)  # type: ignore[arg-type]

    def spy_read(path: object) -> str:
        note(path)
        return real_read(path)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_io_open)
    monkeypatch.setattr(Path, "open", spy_path_open)
    monkeypatch.setattr(afm.data, "_read_text", spy_read)
    return seen


def refused(call: object) -> str:
    with pytest.raises(ValueError) as info:
        call()  # type: ignore[operator]
    return str(info.value)


def no_absolute_path(text: str, tmp_path: Path) -> None:
    assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, text


# ---------------------------------------------------------------------------- the library


def test_a_part_linked_outside_the_roots_is_refused_and_never_opened(
    layout: dict[str, Path], opened: list[Path], tmp_path: Path
) -> None:
    root, folder, secret = layout["root"], layout["folder"], layout["secret"]
    (folder / "frappe.validation.libfm").symlink_to(secret / "frappe.validation.libfm")
    opened.clear()
    for call in (
        lambda: datasets.allowed_path(str(folder), [root]),
        lambda: datasets.load_parts(str(folder), roots=[root]),
        lambda: datasets.load_parts("data/frappe", roots=[root]),  # as messages name it
        lambda: datasets.load_parts("frappe", roots=[root]),  # below a root
    ):
        message = refused(call)
        assert message == LINK_WORDS
        no_absolute_path(message, tmp_path)
    assert not [p for p in opened if secret.resolve() in p.parents], opened  # the outside file: never opened
    assert not [p for p in opened if folder.resolve() in p.parents], opened  # nor the folder's others: refused first


def test_a_chain_of_links_is_followed_to_its_end(layout: dict[str, Path], opened: list[Path]) -> None:
    """A part linked to a link inside the root that points outside is outside too; a link that stays inside loads."""
    root, folder, secret = layout["root"], layout["folder"], layout["secret"]
    (root / "hop.libfm").symlink_to(secret / "frappe.validation.libfm")
    (folder / "frappe.validation.libfm").symlink_to(root / "hop.libfm")
    opened.clear()
    assert refused(lambda: datasets.load_parts(str(folder), roots=[root])) == LINK_WORDS
    assert not [p for p in opened if secret.resolve() in p.parents]
    (root / "hop.libfm").unlink()
    (root / "hop.libfm").write_text(ROW * 30)  # the same link now ends inside the root
    parts = datasets.load_parts(str(folder), roots=[root])
    assert len(parts["train"]) == 40 and len(parts["valid"]) == 30


def test_a_part_that_is_no_regular_file_is_refused_unopened(layout: dict[str, Path], opened: list[Path]) -> None:
    root, folder = layout["root"], layout["folder"]
    os.mkfifo(folder / "frappe.test.libfm")  # reading it would block the server
    opened.clear()
    message = refused(lambda: datasets.load_parts(str(folder), roots=[root]))
    assert message == "data/frappe/frappe.test.libfm is not a regular file"
    assert not [p for p in opened if p.name == "frappe.test.libfm"]


def test_a_part_over_the_cap_is_refused(
    layout: dict[str, Path], opened: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, folder = layout["root"], layout["folder"]
    (folder / "frappe.validation.libfm").write_text(ROW * 400)  # about 27 KB
    monkeypatch.setenv("AFM_MAX_SERVER_FILE_MB", "0.02")  # 20 KB: the train part (2.7 KB) is well under
    opened.clear()  # (the writes above)
    message = refused(lambda: datasets.load_parts(str(folder), roots=[root]))
    assert message == "data/frappe/frappe.validation.libfm is over 0.02 MB, this server's limit for one file"
    assert refused(lambda: datasets.allowed_path(str(folder), [root])) == message
    no_absolute_path(message, tmp_path)
    assert not opened  # refused from the sizes alone


def test_parts_each_under_the_cap_but_over_it_together_are_refused(
    layout: dict[str, Path], opened: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, folder = layout["root"], layout["folder"]
    for part in ("train", "validation", "test"):
        (folder / f"frappe.{part}.libfm").write_text(ROW * 200)  # 13.6 KB each, 40.8 KB together
    monkeypatch.setenv("AFM_MAX_SERVER_FILE_MB", "0.02")
    opened.clear()  # (the writes above)
    message = refused(lambda: datasets.load_parts(str(folder), roots=[root]))
    assert message == (
        "data/frappe: its parts are 0.0389 MB together, over 0.02 MB, this server's limit for one data set"
    )
    no_absolute_path(message, tmp_path)
    assert not opened
    monkeypatch.setenv("AFM_MAX_SERVER_FILE_MB", "0.05")  # under the cap together as well: loads
    assert len(datasets.load_parts(str(folder), roots=[root])["all"]) == 600


def test_messages_name_paths_below_their_root_only(layout: dict[str, Path], tmp_path: Path) -> None:
    root, folder = layout["root"], layout["folder"]
    (folder / "frappe.validation.libfm").write_text("1 0:1 957:1\n")  # a line of two features, not ten
    message = refused(lambda: datasets.load_parts(str(folder), roots=[root]))
    assert message.startswith("data/frappe/frappe.validation.libfm, line 1: 2 features, expected 10"), message
    no_absolute_path(message, tmp_path)
    big = root / "big.libfm"
    big.write_text(ROW * 100)
    message = refused(lambda: datasets.load_parts(str(big), roots=[root], max_mb=0.001))
    assert message == "data/big.libfm is over 0.001 MB, this server's limit for one file"
    (folder / "frappe.validation.libfm").unlink()
    (folder / "frappe.train.libfm").unlink()
    (folder / "notes.txt").write_text("no parts here")
    message = refused(lambda: datasets.load_parts(str(folder), roots=[root]))
    assert message == "data/frappe: no frappe.*.libfm or ml-tag.*.libfm parts in this folder"
    # a path outside the roots: one message that says nothing about it, whether it exists or not
    for text in (layout["secret"], layout["secret"] / "frappe.validation.libfm", "/etc/passwd", "a\0b", "x" * 5000):
        message = refused(lambda text=text: datasets.load_parts(str(text), roots=[root]))
        assert message.startswith("not an allowed data path") and "secret" not in message
    assert datasets.shown_path(folder, [root]) == "data/frappe"
    assert datasets.public_message(f"{folder}/x.libfm, line 2", [root]) == "data/frappe/x.libfm, line 2"


def test_the_command_line_still_reads_any_folder_it_is_given(layout: dict[str, Path]) -> None:
    """Without roots (the CLI, a local user's own files) a folder's links are followed as before."""
    folder, secret = layout["folder"], layout["secret"]
    (folder / "frappe.validation.libfm").symlink_to(secret / "frappe.validation.libfm")
    parts = datasets.load_parts(str(folder))
    assert len(parts["train"]) == 40 and len(parts["valid"]) == 30


# ---------------------------------------------------------------------------- the dashboard


def load_in_app(path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.radio(key="data_source").set_value("libFM file or folder on disk").run()
    at.text_input[0].input(path)
    next(b for b in at.button if b.label == "Load").click()
    return at.run()


def page_text(at: AppTest) -> str:
    """Everything the page says in words (alerts, captions, Markdown, the sidebar)."""
    kinds = ("error", "warning", "info", "success", "caption", "markdown")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


@pytest.fixture
def app_env(layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    monkeypatch.setenv("AFM_DATA_ROOTS", str(layout["root"]))
    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    return layout


@pytest.mark.slow
def test_the_app_refuses_a_linked_part_without_opening_it(
    app_env: dict[str, Path], opened: list[Path], tmp_path: Path
) -> None:
    folder, secret = app_env["folder"], app_env["secret"]
    (folder / "frappe.validation.libfm").symlink_to(secret / "frappe.validation.libfm")
    for typed in (str(folder), "data/frappe", "frappe"):
        at = load_in_app(typed)
        assert not at.exception
        errors = [e.value for e in at.error]
        assert errors == [f"Cannot load that path: {literal(LINK_WORDS)}"], errors
        assert at.session_state["afm"].ws.is_sample  # the data and models are the session's own still
        no_absolute_path(page_text(at), tmp_path)
    assert not [p for p in opened if secret.resolve() in p.parents], opened


@pytest.mark.slow
def test_the_app_applies_the_cap_to_each_part_and_to_the_total(
    app_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = app_env["folder"]
    monkeypatch.setenv("AFM_MAX_SERVER_FILE_MB", "0.02")
    (folder / "frappe.validation.libfm").write_text(ROW * 400)
    at = load_in_app("data/frappe")
    assert not at.exception
    part_words = "data/frappe/frappe.validation.libfm is over 0.02 MB, this server's limit for one file"
    assert [e.value for e in at.error] == [f"Cannot load that path: {literal(part_words)}"]
    for part in ("validation", "test"):
        (folder / f"frappe.{part}.libfm").write_text(ROW * 200)
    (folder / "frappe.train.libfm").write_text(ROW * 200)
    at = load_in_app("data/frappe")
    total_words = "data/frappe: its parts are 0.0389 MB together, over 0.02 MB, this server's limit for one data set"
    assert [e.value for e in at.error] == [f"Cannot load that path: {literal(total_words)}"]
    assert at.session_state["afm"].ws.is_sample
    no_absolute_path(page_text(at), tmp_path)


@pytest.mark.slow
def test_the_app_loads_a_folder_and_names_it_below_its_root(
    app_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = app_env["folder"]
    (folder / "frappe.validation.libfm").write_text(ROW * 30)
    at = load_in_app(str(folder))
    assert not at.exception and not at.error, [e.value for e in at.error]
    ws = at.session_state["afm"].ws
    assert ws.data_label == "frappe" and len(ws.parts["all"]) == 70
    assert [s.value for s in at.success] == [
        f"Loaded {literal('data/frappe')}: train 40, valid 30, all 70 rows (binary)."
    ]
    no_absolute_path(page_text(at), tmp_path)
    monkeypatch.setenv("AFM_FRAPPE", str(folder))  # the box's default folder: shown below its root, as typed back
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.radio(key="data_source").set_value("libFM file or folder on disk").run()
    assert at.text_input[0].value == "data/frappe"
