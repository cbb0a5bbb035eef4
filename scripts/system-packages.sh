#!/usr/bin/env bash
# System packages the test suite needs beyond pip (called by `make test`).
#
# Installs only under CI=true on Debian/Ubuntu (apt-get), and says what it does. Elsewhere it
# changes nothing: the tests that need a package skip with a reason (and under CI=true a skip of
# that kind is a failure, so a missing package cannot hide).
#
# Each entry: "<debian package> <command or path that shows it is installed>".
#   postgresql: the tests start their own throw-away PostgreSQL server (initdb + pg_ctl).
#   chromium: the web UI's browser tests (tests/browser, Playwright with executable_path).
set -euo pipefail

PACKAGES=(
    "postgresql /usr/lib/postgresql/*/bin/initdb"
    "chromium /usr/bin/chromium"
)

is_present() {
    local probe="$1"
    # A path glob (e.g. /usr/lib/postgresql/*/bin/initdb) or a command name.
    if [[ "$probe" == /* ]]; then
        compgen -G "$probe" > /dev/null
    else
        command -v "$probe" > /dev/null 2>&1
    fi
}

missing=()
for entry in "${PACKAGES[@]}"; do
    package="${entry%% *}"
    probe="${entry#* }"
    if is_present "$probe"; then
        echo "system-packages: $package present"
    else
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ "${CI:-}" != "true" ]]; then
    echo "system-packages: missing ${missing[*]}; not installing (only under CI=true); tests needing them skip with a reason"
    exit 0
fi
if [[ ! -f /etc/debian_version ]] || ! command -v apt-get > /dev/null 2>&1; then
    echo "system-packages: missing ${missing[*]}; not a Debian system, cannot install (the tests needing them will fail under CI=true)"
    exit 0
fi
SUDO=()
if [[ "$(id -u)" != "0" ]]; then
    SUDO=(sudo -n)
fi
echo "system-packages: + apt-get update"
"${SUDO[@]}" apt-get update -qq
echo "system-packages: + apt-get install -y --no-install-recommends ${missing[*]}"
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
