"""Text stays text (issue 27, item 4): a string a user or a link controls (a data id, a file, column or run name, a
cell value) is shown as literal text, never as Markdown or HTML; every ignored link value gets a notice in words,
never a Python message. (tests/test_browser.py checks the rendering in a real browser.)"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app" / "streamlit_app.py")
PAYLOAD = "[Your session expired: log in here](https://evil.example/login) **BOLD**"
HTML = '<img src=x onerror="alert(1)"> & <a href="https://evil.example">here</a>'
# what of the payloads must never reach Markdown unescaped: the link's address, the emphasis, a raw tag
WJ = "\u2060"  # the word joiner literal() puts in an address: GitHub's autolinks would find it in plain text
MARKUP = re.compile(r"(?<!\\)\*\*(BOLD|evil)|(?<!\\)\]\(https://evil|://evil|(?<!\\)\[(Your|click)|<(img|a|b)\b")


def app_module(name: str):  # noqa: ANN201
    sys.path.insert(0, str(ROOT / "app"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(ROOT / "app"))


def literal(text: str, limit: int = 200) -> str:
    return app_module("session").literal(text, limit)


def texts(at: AppTest) -> list[str]:
    """The Markdown source of everything the page says (alerts, captions, Markdown, headings, metric labels)."""
    kinds = ("error", "warning", "info", "success", "caption", "markdown", "subheader", "header", "title")
    return [str(e.value) for kind in kinds for e in at.get(kind)] + [str(m.label) for m in at.metric]


# ---------------------------------------------------------------------------- the helper


def test_literal_escapes_markdown_and_html() -> None:
    shown = literal(PAYLOAD)
    assert shown == r"\[Your session expired: log in here\](https:" + WJ + r"//evil.example/login) \*\*BOLD\*\*"
    assert literal(HTML) == (
        r'&lt;img src=x onerror="alert(1)"&gt; &amp; &lt;a href="https:' + WJ + r'//evil.example"&gt;here&lt;/a&gt;'
    )
    # every Markdown construct a line can open: headings, lists, quotes, code, emphasis, strikethrough, Streamlit's
    # colour directives, maths, autolinks
    cases = {
        "# head": r"\# head", "- item": r"\- item", "+ item": r"\+ item", "1. item": r"1\. item",
        "> quote": "&gt; quote", "`code`": r"\`code\`", "*em* **b**": r"\*em\* \*\*b\*\*", "_em_": r"\_em\_",
        "~~gone~~": r"\~\~gone\~\~", ":red[x]": r":red\[x\]", "$x^2$": r"\$x^2\$", "![i](x.png)": r"!\[i\](x.png)",
        "www.evil.example": f"www{WJ}.evil.example", "x@evil.example": f"x@{WJ}evil.example", "a\\b": r"a\\b",
        "&lt;b&gt;": "&amp;lt;b&amp;gt;",
    }  # fmt: skip
    for text, expected in cases.items():
        assert literal(text) == expected, (text, literal(text))
    # plain words read the same: full stops, colons, parentheses, underscores inside names
    assert literal("apps.csv: 1,234 rows (binary), app_rating") == "apps.csv: 1,234 rows (binary), app_rating"
    assert literal("line one\n# two\r\n\tthree") == "line one # two three"  # stays on its line
    assert literal("x" * 500) == "x" * 199 + "…"


def test_every_link_parameter_the_pages_read_is_known() -> None:
    """A link's parameter that no page reads is ignored with a notice: the list of those that are read
    (app/training.py PAGE_LINKS) must name every one the pages read."""
    found = set()
    for path in (ROOT / "app").rglob("*.py"):
        source = path.read_text()
        found |= set(re.findall(r"query_value\(\s*\"(\w+)\"", source))
        found |= set(re.findall(r"part_picker\(\s*ws,\s*\"(\w+)\"", source))
        found |= set(re.findall(r"from_link\(\s*\"(\w+)\"", source))
        found |= set(re.findall(r"query_params\.get\(\s*\"(\w+)\"", source))
    training = app_module("training")
    assert len(found) > 20
    knobs = {k.name for k in training.WIDGET_KNOBS}
    assert found - knobs <= training.PAGE_LINKS, sorted(found - knobs - training.PAGE_LINKS)


# ---------------------------------------------------------------------------- a link's data id


@pytest.mark.slow
def test_a_markdown_payload_in_the_data_link_is_shown_as_literal_text(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["data"] = PAYLOAD
    at.run()
    assert not at.exception
    notice = [w.value for w in at.warning if "Link value data" in w.value]
    assert notice == [f"Link value data ignored: {literal(PAYLOAD, 80)} names no data this app knows; the page "
                      "shows the bundled sample."], [w.value for w in at.warning]  # fmt: skip
    assert not [t for t in texts(at) if MARKUP.search(t)], [t for t in texts(at) if MARKUP.search(t)]
    assert at.session_state["afm"].ws.is_sample

    # a data id of the right shape, whose folder name carries the payload: the banner names it, literally
    linked = f"libfm:{PAYLOAD}{HTML}:0123456789ab"
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["data"] = linked
    at.run()
    assert not at.exception
    banner = [i.value for i in at.info if "This link was made on other data" in i.value]
    assert len(banner) == 1 and literal(linked, 80) in banner[0], banner
    assert not [t for t in texts(at) if MARKUP.search(t)]


# ---------------------------------------------------------------------------- an uploaded table's names


@pytest.mark.slow
def test_column_names_file_names_and_values_from_an_upload_are_literal(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    rows = 400
    frame = pd.DataFrame({
        PAYLOAD: [["a", "b", "c"][i % 3] for i in range(rows)],
        HTML: [[f"{PAYLOAD}", "<b>x</b>"][i % 2] for i in range(rows)],
        "plain": [["u", "v"][i % 2] for i in range(rows)],
        "y": [float(i % 3 + (i % 2)) for i in range(rows)],
    })  # fmt: skip
    name = "**evil** [click](https://evil.example).csv"
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.radio(key="data_source").set_value("upload a CSV/Parquet table").run()
    at.file_uploader(key="data_upload").upload(name, frame.to_csv(index=False).encode()).run()
    assert not at.exception
    next(b for b in at.button if b.label == "Use this data").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    ws = at.session_state["afm"].ws
    assert ws.data_label == name and PAYLOAD in ws.schema.field_names
    assert any(literal(name) in s.value for s in at.success), [s.value for s in at.success]
    assert any(literal(name) in c for c in texts(at)), texts(at)
    at.slider(key="knob_epochs").set_value(1)
    next(b for b in at.button if b.label == "Train AFM and FM").click().run()
    assert not at.exception and set(ws.models) == {"afm", "fm"}
    assert not [t for t in texts(at) + [at.sidebar.caption[0].value] if MARKUP.search(t)]

    # How AFM works: the chosen pair's features ("column=value") in Markdown
    at.query_params["how_pair"] = "0"  # the pair of the two hostile columns
    at.switch_page("pages/how_afm_works.py").run()
    assert not at.exception
    sample = next(m.value for m in at.markdown if m.value.startswith("**The sample.**"))
    assert literal(PAYLOAD) in sample and literal(HTML) in sample, sample
    assert not [t for t in texts(at) if MARKUP.search(t)], [t for t in texts(at) if MARKUP.search(t)]

    # Explain: the filters and the what-if editor are labelled by the columns; "What drives it" names features
    at.switch_page("pages/explain.py").run()
    at.radio(key="explain-mode").set_value("What if: edit the fields").run()
    assert not at.exception
    labels = [s.label for s in at.selectbox]
    assert literal(PAYLOAD) in labels and literal(HTML) in labels, labels
    drives = next(m.value for m in at.markdown if m.value.startswith("- "))
    assert literal(PAYLOAD) in drives or literal(HTML) in drives, drives
    assert not [t for t in texts(at) if MARKUP.search(t)], [t for t in texts(at) if MARKUP.search(t)]


# ---------------------------------------------------------------------------- ignored link values: notices in words

PYTHON_WORDS = re.compile(r"Traceback|invalid literal|int_max_str_digits|Error\b|exception|could not convert|NoneType")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "params", "notice"),
    [
        (None, {"k": "0"}, "Link parameter k ignored: this app has no setting of that name (a link names that "
                           "setting embed_dim)."),
        (None, {"k": "1e8"}, "Link parameter k ignored"),
        (None, {"t": "-3"}, "Link parameter t ignored: this app has no setting of that name (a link names that "
                            "setting attention_factor)."),
        (None, {"task": "nonsense"}, "Link value task ignored: it must be regression or binary"),
        (None, {"data": "nonsense"}, "Link value data ignored: nonsense names no data this app knows"),
        (None, {"present": "maybe"}, "Link value present ignored"),
        (None, {"epochs": "1" * 10_000}, "Link setting ignored: epochs must be a whole number"),
        (None, {PAYLOAD: "1"}, f"Link parameter {literal(PAYLOAD, 80)} ignored"),
        ("how_afm_works", {"how_row": "abc"}, "Link value how_row ignored: it must be a whole number from 0 to"),
        ("how_afm_works", {"how_pair": "99999"}, "Link value how_pair ignored"),
        ("attention", {"attention_value": "99"}, "attention_value ignored: it must be one of 0, 1, 2, 3, 4"),
        ("attention", {"attention_min_count": "0"}, "Link value attention_min_count ignored"),
        ("attention", {"attention_part": "everything"}, "Link value attention_part ignored"),
        ("sweeps", {"sweep_epochs": "1e9"}, "sweep_epochs ignored: it must be a whole number from 1 to 200"),
        ("sweeps", {"sweep_parameter": "attention_factor", "sweep_values": "1e400"},
         "Values: every value must be a finite number"),
        ("sweeps", {"sweep_pretrain": "maybe"}, "Link value sweep_pretrain ignored: it must be true or false"),
        ("explain", {"explain_relative": "maybe"}, "Link value explain_relative ignored"),
        ("explain", {"explain_row": "-1"}, "Link value explain_row ignored"),
        ("explain", {"explain_mode": "1", "explain_where": "nofield=x"}, "Link value explain_where ignored"),
        ("explain", {"explain_mode": "2", "explain_edit": "weather=<b>hail</b>"}, "Link value explain_edit ignored"),
        ("compare", {"compare_part": "x" * 5000}, "Link value compare_part ignored"),
    ],
    ids=lambda v: None if isinstance(v, dict) else str(v)[:40] if v else "data-model",
)  # fmt: skip
def test_an_ignored_link_value_gets_a_notice_in_words(
    page: str | None, params: dict[str, str], notice: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=180)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    shown = [w.value for w in at.warning] + [e.value for e in at.error]
    if page is not None:  # the page that reads the value (the link's notices came on the first page)
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
        shown = [w.value for w in at.warning] + [e.value for e in at.error]
    found = [text for text in shown if notice in text]
    assert len(found) == 1, (notice, shown)
    assert len(found[0]) < 300 and not PYTHON_WORDS.search(found[0]), found[0]
    assert not at.session_state["afm"].ws.source.startswith("trained here")  # a link never trains by itself
    at.run()  # the next run: the page has written the value it uses into the URL, so the notice is not repeated
    assert not [w.value for w in at.warning if notice in w.value] or page is None


@pytest.mark.slow
def test_a_valid_link_and_the_apps_own_url_give_no_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages rewrite the URL as the user works: only values that came with a link are noticed. Here a row
    beyond a smaller part, left in the URL by the page itself, is brought inside silently."""
    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update({"explain_part": "all", "explain_row": "25000", "attention_value": "4", "how_row": "3"})
    at.run()
    at.switch_page("pages/explain.py").run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    at.selectbox(key="explain-part").set_value("test").run()  # 3,000 rows: row 25,000 is not one of them
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    for page in ("attention", "how_afm_works"):
        at.switch_page(f"pages/{page}.py").run()
        notices = [w.value for w in at.warning if "Link" in w.value]
        assert not at.exception and not notices, notices


@pytest.mark.slow
def test_a_link_to_a_page_is_read_when_the_page_opens_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``/attention?data=...`` runs app/pages/attention.py without the entry script (Streamlit runs a script of the
    pages/ folder directly when its address is asked for first): the page reads the link itself, with its notices."""
    monkeypatch.setenv("AFM_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update({"data": PAYLOAD, "k": "0", "attention_value": "99"})
    at.switch_page("pages/attention.py").run()  # before any run: the page's script alone, as a browser would
    assert not at.exception
    assert at.title[0].value == "Attention"
    shown = [w.value for w in at.warning]
    for notice in (f"Link value data ignored: {literal(PAYLOAD, 80)}", "Link parameter k ignored",
                   "Link value attention_value ignored"):  # fmt: skip
        assert sum(notice in text for text in shown) == 1, (notice, shown)
    assert not [t for t in texts(at) if MARKUP.search(t)]
