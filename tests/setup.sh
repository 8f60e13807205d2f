#!/usr/bin/env bash
# Installs what the tests need; run from the repository root:
#   bash tests/setup.sh && python -m pytest -q
# Python packages from requirements-dev.txt (Playwright's Python package included), Debian's
# Chromium for tests/test_browser.py (Playwright's own browser download is not used), and a C
# compiler if there is none.
# Idempotent, and quick when everything is already installed.
set -euo pipefail

python -m pip install -q -r requirements-dev.txt

# Debian packages: chromium (tests/test_browser.py) and a C compiler (afm's fused kernel, built on
# first use; without one afm falls back to its slower PyTorch kernels and those tests skip).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tests/setup.sh: installing Debian's ${missing[*]}"
        log="$(mktemp)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
            cat "$log" >&2
            echo "tests/setup.sh: apt-get could not install ${missing[*]} (output above)" >&2
            exit 1
        fi
        rm -f "$log"
        [ -x /usr/bin/chromium ] || { echo "tests/setup.sh: /usr/bin/chromium missing after apt-get install" >&2; exit 1; }
    else
        echo "tests/setup.sh: ${missing[*]} missing and apt-get (as root) is not available;" \
             "the tests that need them will be skipped" >&2
    fi
fi
