#!/usr/bin/env bash
# Assemble README.md from docs/00-head.md and docs/99-tests.md (edit those, then run this).
# The capabilities are documented one page each in docs/, linked from the head.
set -euo pipefail
cd "$(dirname "$0")/.."
{
    cat docs/00-head.md
    printf '\n'
    cat docs/99-tests.md
} > README.md
