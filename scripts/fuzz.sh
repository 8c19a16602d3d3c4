#!/usr/bin/env bash
# A long fuzz run of every target (tests/fuzz_parsers.rs), niced so other work keeps the CPU.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [JOBS]     default: 600 s per target, 2 jobs
# Targets are split over JOBS processes. Crashing inputs land in target/fuzz-crashes/<target>/
# (copy each into tests/fuzz/regressions/<target>/ once fixed); counts in target/fuzz-stats/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
jobs="${2:-2}"
targets=(metadata trace keys fnmatch verify rules cjson hash_cache)
cargo test --release --test fuzz_parsers --no-run
pids=()
for ((j = 0; j < jobs; j++)); do
    mine=()
    for ((i = j; i < ${#targets[@]}; i += jobs)); do mine+=("${targets[i]}"); done
    ((${#mine[@]})) || continue
    list=$(IFS=,; echo "${mine[*]}")
    TOTOFS_FUZZ_SECONDS="$secs" TOTOFS_FUZZ_TARGETS="$list" TOTOFS_FUZZ_SEED="$(( $(date +%s) + j ))" \
        nice -n 19 cargo test --release --test fuzz_parsers -- --nocapture &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
cat target/fuzz-stats/*.txt
exit "$status"
