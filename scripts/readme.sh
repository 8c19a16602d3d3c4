#!/usr/bin/env bash
# Assemble README.md from the per-capability sections in docs/ (edit those, then run this).
set -euo pipefail
cd "$(dirname "$0")/.."
{
    cat docs/00-head.md
    for f in foundation keys record verify investigate speed bench; do
        [[ -f docs/$f.md ]] || continue
        printf '\n'
        cat "docs/$f.md"
    done
    printf '\n'
    cat docs/99-tests.md
} > README.md
