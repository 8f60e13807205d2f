#!/usr/bin/env bash
# Installs what the tests need; run from the repository root:
#   bash tests/setup.sh && python -m pytest -q
# Python packages from requirements-dev.txt (Playwright's Python package included), and Debian's
# Chromium for tests/test_browser.py (Playwright's own browser download is not used).
# Idempotent, and quick when everything is already installed.
set -euo pipefail

python -m pip install -q -r requirements-dev.txt

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tests/setup.sh: installing Debian's chromium and chromium-driver"
        log="$(mktemp)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >"$log" 2>&1; then
            cat "$log" >&2
            echo "tests/setup.sh: apt-get could not install chromium (output above)" >&2
            exit 1
        fi
        rm -f "$log"
        [ -x /usr/bin/chromium ] || { echo "tests/setup.sh: /usr/bin/chromium missing after apt-get install" >&2; exit 1; }
    else
        echo "tests/setup.sh: /usr/bin/chromium is missing and apt-get (as root) is not available;" \
             "tests/test_browser.py will be skipped" >&2
    fi
fi
