#!/usr/bin/env bash
# The package stands on its own: a fresh venv, a plain (non-editable) `pip install` of this repository,
# then, from an empty folder, the bundled sample loads and `python -m afm train --data sample` runs.
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

step "ok"
