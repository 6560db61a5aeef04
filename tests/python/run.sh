#!/usr/bin/env bash
# Interoperability test with ngsildclient (a real NGSI-LD client from PyPI) against `urbantwin serve`.
# Makes a virtualenv ($VENV, default /tmp/urbantwin-venv), installs the pinned requirements, runs pytest.
# The binary comes from $URBANTWIN_BIN (default target/debug/urbantwin; built here when missing).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VENV:-/tmp/urbantwin-venv}"
export URBANTWIN_BIN="${URBANTWIN_BIN:-$root/target/debug/urbantwin}"
if [ ! -x "$URBANTWIN_BIN" ]; then
    (cd "$root" && cargo build -q -p twin-cli)
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
cd "$here"
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$here" "$@"
rc=$?
set -e
exit $rc
