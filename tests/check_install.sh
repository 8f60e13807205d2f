#!/usr/bin/env bash
# The package stands on its own: a fresh venv, a plain (non-editable) `pip install` of this repository,
# then, from an empty folder: `import afm` stays light, the bundled sample loads, `python -m afm train` and
# the `afm` console script's `train` run, and `afm dashboard` serves the dashboard shipped inside the package.
# Run from anywhere: bash tests/check_install.sh   (.ci/run runs it after the test suite)
# The source is copied first (without .git, build/ and *.egg-info) so the build neither writes into the
# working tree nor picks up a stale build/ folder. Exits non-zero, naming the step, when a step fails;
# its temporary folders are removed either way.
set -euo pipefail

if [ -n "${CI_SKIP_INSTALL:-}" ]; then  # for machines where pip cannot reach an index
    echo "tests/check_install.sh: skipped (CI_SKIP_INSTALL is set)" >&2
    exit 0
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/afm-install-check.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

step() { echo "tests/check_install.sh: $*" >&2; }
fail() {
    echo "tests/check_install.sh: FAILED: $*" >&2
    exit 1
}

step "copying $repo"
mkdir "$tmp/src" "$tmp/empty"
tar -C "$repo" --exclude=./.git --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ \
    --exclude=./.venv --exclude=./runs -cf - . | tar -C "$tmp/src" -xf - || fail "could not copy the repository"

step "creating a fresh venv"
"$python" -m venv "$tmp/venv" || fail "python -m venv"
venv_python="$tmp/venv/bin/python"

step "pip install (not editable)"
"$venv_python" -m pip install -q "$tmp/src" || fail "pip install of the repository"
rm -rf "$tmp/src"  # nothing may be read from the source tree from here on

cd "$tmp/empty"
step "import afm loads neither plotly, pandas nor streamlit"
"$venv_python" -c "
import sys

import afm

loaded = [m for m in ('plotly', 'pandas', 'streamlit') if m in sys.modules]
assert not loaded, f'import afm loaded {loaded}'
" || fail "import afm is not light"

step "loading the bundled sample from an empty folder"
"$venv_python" -c "import afm; print(afm.datasets.sample())" || fail "import afm; afm.datasets.sample()"
"$venv_python" - <<'EOF' || fail "the installed afm does not ship its sample data"
from pathlib import Path

import afm

site = afm.datasets.SAMPLE_DIR
assert site == Path(afm.__file__).resolve().parent / "sample_data", f"SAMPLE_DIR is {site}, not in the package"
for name in ("sample.csv", "README.md", "planted_pairs.json"):
    assert (site / name).is_file(), f"{site / name} is missing"
for task in ("regression", "binary"):
    for kind in ("afm", "fm"):
        model, _ = afm.load_model(site / "pretrained" / f"{task}-{kind}.pt")
print(f"sample data, data card and pre-trained models in {site}")
EOF

step "python -m afm train --data sample --epochs 1 --no-run"
"$venv_python" -m afm train --data sample --epochs 1 --no-run || fail "python -m afm train --data sample"
[ -z "$(ls -A "$tmp/empty")" ] || fail "train --no-run wrote into the working directory: $(ls -A "$tmp/empty")"

afm="$tmp/venv/bin/afm"
step "afm train --data sample --epochs 1 --no-run (the console script)"
"$afm" train --data sample --epochs 1 --no-run || fail "afm train --data sample"
[ -z "$(ls -A "$tmp/empty")" ] || fail "afm train --no-run wrote into the working directory: $(ls -A "$tmp/empty")"

step "afm dashboard --help"
COLUMNS=1000 "$afm" dashboard --help >"$tmp/help.txt" || fail "afm dashboard --help"  # the path on one line
grep -q "streamlit run .*/site-packages/afm/app/streamlit_app.py" "$tmp/help.txt" \
    || fail "afm dashboard --help does not name the installed app: $(cat "$tmp/help.txt")"

step "the installed dashboard opens (its first page, by Streamlit's AppTest)"
AFM_RUNS_DIR="$tmp/runs" "$venv_python" - <<'EOF' || fail "the installed dashboard does not open"
from pathlib import Path

from streamlit.testing.v1 import AppTest

import afm

script = Path(afm.__file__).resolve().parent / "app" / "streamlit_app.py"
at = AppTest.from_file(str(script), default_timeout=300).run()
assert not at.exception, at.exception
assert at.title[0].value == "Data & model", [t.value for t in at.title]
print(f"{script} opens on {at.title[0].value!r}")
EOF

step "afm dashboard --server.port PORT serves it"
port="$("$venv_python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
"$afm" dashboard --server.port "$port" --server.address 127.0.0.1 --server.headless true >"$tmp/dashboard.log" 2>&1 &
server=$!
"$venv_python" - "$port" <<'EOF' || { kill "$server"; fail "afm dashboard did not serve: $(cat "$tmp/dashboard.log")"; }
import sys
import time
import urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}/_stcore/health"
for _ in range(240):  # up to 2 minutes on a busy machine
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.read().strip() == b"ok":
                print(f"{url}: ok")
                break
    except OSError:
        pass
    time.sleep(0.5)
else:
    sys.exit(f"{url}: no answer")
EOF
kill "$server" && wait "$server" 2>/dev/null || true  # afm exec'd streamlit: this pid is the server

step "ok"
