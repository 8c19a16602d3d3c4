#!/usr/bin/env bash
# The test command: unit tests, interop vectors, live interop with in-toto 3.1.0 (from the venv
# .ci/run creates), and real FUSE mounts. Run as root on a machine with /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${TOTOFS_PEER_BIN:-}" && -x .venv-peer/bin/in-toto-verify ]]; then
    export TOTOFS_PEER_BIN="$PWD/.venv-peer/bin"
fi
exec cargo test --release "$@"
