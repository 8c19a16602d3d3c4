#!/usr/bin/env bash
# The test command: clippy (warnings are errors), unit tests, interop vectors, live interop with
# in-toto 3.1.0 (from the venv .ci/run creates), real FUSE mounts, and a bounded fuzz run.
# Run as root on a machine with /dev/fuse. Arguments go to `cargo test` (and skip the fuzz run).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${TOTOFS_PEER_BIN:-}" && -x .venv-peer/bin/in-toto-verify ]]; then
    export TOTOFS_PEER_BIN="$PWD/.venv-peer/bin"
fi
peer="${TOTOFS_PEER_BIN:-$PWD/.venv-peer/bin}"
if [[ ! -x "$peer/in-toto-verify" ]]; then
    # The harness hides a test's own notices: say it here, where a person sees it.
    printf 'NOTICE: in-toto 3.1.0 not found in %s: the interop checks will be SKIPPED.\n' "$peer" >&2
    printf '        Run .ci/run once (it creates .venv-peer) or set TOTOFS_PEER_BIN.\n' >&2
fi
cargo clippy --release --all-targets -- -D warnings
cargo test --release --no-fail-fast "$@"
if [[ $# -eq 0 ]]; then
    # Bounded fuzzing (docs/hostile-input.md): 8 targets x 18 s, seeded by the commit, so every
    # commit explores new inputs and a run of the same commit elsewhere explores the same ones.
    commit="$(git rev-parse --short=8 HEAD 2>/dev/null || true)"
    if [[ -n "$commit" ]]; then seed=$((0x$commit)); else seed=$(date +%s); fi
    seed="${TOTOFS_FUZZ_SEED:-$seed}"
    TOTOFS_FUZZ_SECONDS=18 TOTOFS_FUZZ_SEED="$seed" cargo test --release --test fuzz_parsers -- --nocapture
fi
