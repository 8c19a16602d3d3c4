#!/usr/bin/env bash
# Side-by-side benchmark: each workload natively, under `totofs run` and under `in-toto-run`
# (in-toto 3.1.0 from PyPI), interleaved in one run, with the step signed and its link written.
# Prints one table of medians and ratios and writes it as Markdown (default: bench-results.md).
#
# usage: scripts/bench.sh [--quick] [--runs N] [--only ROW,...] [--out FILE] [--keep]
#
# Environment:
#   TOTOFS               totofs binary to measure (default: `cargo build --release`, then
#                        target/release/totofs)
#   TOTOFS_PEER_BIN      directory holding in-toto-run (default: .venv-peer/bin, else a venv
#                        created in the cache)
#   TOTOFS_BENCH_CACHE   downloads and unpacked sources (default: ~/.cache/totofs-bench)
#   TOTOFS_BENCH_WORK    scratch directory for the runs (default: a new dir under $TMPDIR or /tmp)
#   TOTOFS_BENCH_DEBIAN_SUITE   Debian release for the C sources (default: bookworm)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL_ROWS="zlib lua rust find create tar npm git write read latency true hashcache rss floor"
ALL_ROWS+=" zlib-rootless write-rootless read-rootless find-rootless create-rootless"  # rootless block below

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; }

QUICK=0 RUNS='' ONLY='' OUT=$ROOT/bench-results.md KEEP=0
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --runs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"; RUNS=$2; shift ;;
        --only) [[ -n ${2:-} ]] || die "--only needs a list of rows: $ALL_ROWS"; ONLY=${2//,/ }; shift ;;
        --out) [[ -n ${2:-} ]] || die "--out needs a file"; OUT=$2; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
for r in $ONLY; do [[ " $ALL_ROWS " == *" $r "* ]] || die "unknown row '$r' (rows: $ALL_ROWS)"; done
[[ ${BASH_VERSINFO[0]} -ge 5 ]] || die "needs bash 5 (EPOCHREALTIME)"

# The load before this script adds its own: other work on the machine makes the numbers noisy.
LOAD=$(cut -d' ' -f1 /proc/loadavg)
BUSY=
if awk -v l="$LOAD" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
    BUSY=" (a busy machine: other work competes for the cores, so single runs vary widely; prefer a quiet machine or --runs 5)"
    say "load average $LOAD on $(nproc) cores: the numbers will be noisy"
fi

# Sizes. The full run follows the targets' own sizes; --quick shrinks them to finish in a minute
# or two, and the RSS row then extrapolates to 1,000,000 files.
if ((QUICK)); then
    : "${RUNS:=1}"
    FIND_N=20000 CREATE_N=10000 BIG_MIB=256 TREE_N=5000 TREE_SIZE=34990 RSS_N=100000 GIT_N=10000
    RUST_FEATURES=(--no-default-features)
    [[ -n $ONLY ]] || ONLY=${ALL_ROWS/lua /}
else
    : "${RUNS:=3}"
    FIND_N=20000 CREATE_N=10000 BIG_MIB=1024 TREE_N=20000 TREE_SIZE=34990 RSS_N=1000000 GIT_N=10000
    RUST_FEATURES=()
    [[ -n $ONLY ]] || ONLY=$ALL_ROWS
fi
RSS_TARGET_N=1000000

# Builds go where they normally go: target/ inside each project, no compiler wrappers.
unset RUSTC_WRAPPER CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR MAKEFLAGS

CACHE=${TOTOFS_BENCH_CACHE:-$HOME/.cache/totofs-bench}
mkdir -p "$CACHE"
# The runs happen on a fresh ext4 filesystem (a sparse loop image, direct I/O so its data is
# not cached twice) unless TOTOFS_BENCH_WORK names a directory: on a long-lived filesystem,
# file creation right after many deletions (earlier runs, other builds) is several times
# slower and swamps the creation-heavy rows.
LOOPDEV='' IMAGE='' WORK_FS=''
if [[ -n ${TOTOFS_BENCH_WORK:-} ]]; then
    WORK=$TOTOFS_BENCH_WORK
    mkdir -p "$WORK"
    WORK_FS="$(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null || echo '?') (TOTOFS_BENCH_WORK)"
else
    BASE=$(mktemp -d "${TMPDIR:-/tmp}/totofs-bench.XXXXXX")
    WORK=$BASE/work
    mkdir -p "$WORK"
    IMAGE=$BASE/fs.img
    if [[ $(id -u) -eq 0 ]] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null \
        && truncate -s 48G "$IMAGE" \
        && mkfs.ext4 -q -F -N 2500000 -E lazy_itable_init=0,lazy_journal_init=0 "$IMAGE" \
        && LOOPDEV=$(losetup -f --show --direct-io=on "$IMAGE") \
        && mount "$LOOPDEV" "$WORK"; then
        WORK_FS="a fresh ext4 loop image"
    else
        [[ -n $LOOPDEV ]] && losetup -d "$LOOPDEV"
        LOOPDEV=
        rm -f "$IMAGE"
        WORK_FS="$(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null || echo '?') (no loop image: not root or no mkfs.ext4)"
    fi
fi
WORK=$(cd "$WORK" && pwd)
cleanup() {
    ((KEEP)) && return
    if [[ -n $LOOPDEV ]]; then
        if umount "$WORK" && losetup -d "$LOOPDEV"; then
            rm -rf "$BASE"
        else
            say "could not unmount $WORK ($LOOPDEV, image $IMAGE): a process still uses it?"
        fi
    elif [[ -n ${BASE:-} ]]; then
        rm -rf "$BASE"
    else
        rm -rf "${WORK:?}/bin" "$WORK/logs" "$WORK/runs" "$WORK"/*.tsv
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/bin" "$WORK/logs" "$WORK/runs"
RESULTS=$WORK/results.tsv
ROWS=$WORK/rows.tsv
: >"$RESULTS"
: >"$ROWS"
KEY=$ROOT/tests/data/interop/pems/ed25519_private_unencrypted.pem
[[ -r $KEY ]] || die "signing key $KEY missing"

# shellcheck source=bench/fetch.sh
source "$ROOT/scripts/bench/fetch.sh"

wants() { [[ " $ONLY " == *" $1 "* ]]; }

# ---- results ---------------------------------------------------------------------------------
# results.tsv: ROW COLUMN METRIC VALUE; rows.tsv: ROW LABEL CHECK LIMIT TARGET-TEXT.
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }
result() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }
declare -A FAILED=()
fail() { # ROW COLUMN REASON
    FAILED[$1:$2]=1
    result "$1" "$2" error "$(tr '\t\n' '  ' <<<"$3")"
    say "  $1/$2: n/a: $3"
}
skip() { [[ -n ${FAILED[$1:$2]:-} ]]; }

# ---- running one measured step ---------------------------------------------------------------
# timed ROW COLUMN DIR CHECK -- STEP...: runs STEP in DIR natively or under a recorder, with
# `-m . -p .` for both recorders, and records the wall time. CHECK (a shell function run in DIR
# afterwards) confirms the step really did its work; recorder runs must also leave a link.
# With RSS=1 in the environment it records the peak RSS (/usr/bin/time) instead.
STEP_NAME=bench
LINK_GLOB="$STEP_NAME.*.link"
EXTRA_TOTOFS=()
timed() {
    local rowid=$1 col=$2 dir=$3 check=$4
    shift 5
    skip "$rowid" "$col" && return 1
    local cmd=()
    case $col in
        native) cmd=("$@") ;;
        totofs) cmd=(env TOTOFS_STATS=1 "$TOTOFS" run -n "$STEP_NAME" --signing-key "$KEY" -m . -p .
                     "${EXTRA_TOTOFS[@]}" -- "$@") ;;
        peer) cmd=("$PEER_BIN/in-toto-run" -n "$STEP_NAME" --signing-key "$KEY" -m . -p .
                   --run-timeout 100000 -- "$@") ;;
    esac
    local rssfile=$WORK/logs/rss
    [[ ${RSS:-0} == 1 ]] && cmd=(/usr/bin/time -f %M -o "$rssfile" "${cmd[@]}")
    # The last run's link and trace: in-toto-run would record them as materials.
    rm -f "$dir"/$LINK_GLOB "$dir"/$STEP_NAME.*.trace
    sync -f "$dir"  # write back the last run's data before timing this one
    # Give the blocks of deleted runs back to the host, or the image grows with every run.
    if [[ -n $LOOPDEV ]]; then fstrim "$WORK" 2>/dev/null || true; fi
    local log=$WORK/logs/$rowid.$col rc=0 t0 t1
    t0=$EPOCHREALTIME
    (cd "$dir" && exec "${cmd[@]}") >"$log.out" 2>"$log.err" </dev/null || rc=$?
    t1=$EPOCHREALTIME
    LAST_END=$t1
    if ((rc != 0)); then
        # The recorder's own error line, else the first error line (not a trailing hint such as
        # clap's "For more information..."), else the last line (a Python exception, say).
        local msg
        msg=$(grep -m1 '^totofs:' "$log.err" || grep -m1 -E '^error|: (fatal )?error' "$log.err" \
              || grep -v '^[[:space:]]*$' "$log.err" | tail -n1 || true)
        fail "$rowid" "$col" "exit $rc: ${msg:-(no message; see $log.err)}"
        return 1
    fi
    if [[ $col != native ]] && ! compgen -G "$dir/$LINK_GLOB" >/dev/null; then
        fail "$rowid" "$col" "exited 0 but wrote no $LINK_GLOB"
        return 1
    fi
    local why
    if ! why=$(cd "$dir" && "$check" 2>&1); then
        fail "$rowid" "$col" "the step did not do its work: $why"
        return 1
    fi
    if [[ $col != native ]]; then
        local counts
        counts=$(python3 "$ROOT/scripts/bench/linkstat.py" "$dir"/$LINK_GLOB 2>&1) \
            || { fail "$rowid" "$col" "unreadable link: $counts"; return 1; }
        result "$rowid" "$col" artifacts "$counts"
    fi
    if [[ $col == totofs && ${RSS:-0} != 1 ]]; then
        # Where totofs's time went (TOTOFS_STATS=1): before the step, the step itself under the
        # overlay, and after it; the overlay's own cost is the step phase against native.
        local split
        split=$(grep -m1 '^totofs: stats: phases: ' "$log.err" | python3 "$ROOT/scripts/bench/phases.py")
        [[ -n $split ]] && result "$rowid" "$col" phases "$split"
    fi
    if [[ ${RSS:-0} == 1 ]]; then
        result "$rowid" "$col" rss_kib "$(tail -n1 "$rssfile")"
    else
        result "$rowid" "$col" seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')"
    fi
}

# A fresh copy of SRC for one run (outside the timing), under a name never used before: ext4
# slows down when files are created right after many were deleted under the same names.
# Both set DIR (not echoed: the counter must survive, so no command substitution).
RUN_SEQ=0
fresh_copy() {
    RUN_SEQ=$((RUN_SEQ + 1))
    DIR=$WORK/runs/$RUN_SEQ
    cp -a "$1" "$DIR"
}
fresh_dir() {
    RUN_SEQ=$((RUN_SEQ + 1))
    DIR=$WORK/runs/$RUN_SEQ
    mkdir -p "$DIR"
}

COLS=(native totofs peer)
# The column order of round I, rotated each round so that a slow spell on a busy machine does
# not always fall on the same column.
order() {
    local k=$(( ($1 - 1) % 3 ))
    ORDER=("${COLS[@]:k}" "${COLS[@]:0:k}")
}

# Build workloads: a fresh copy per run, one untimed native warm-up (compiler and sources in
# the page cache), then RUNS rounds of native, totofs, in-toto-run.
build_rows() { # ROW SRC CHECK -- STEP...
    local rowid=$1 src=$2 check=$3
    shift 4
    local dir i col
    fresh_copy "$src"; dir=$DIR
    (cd "$dir" && "$@") >"$WORK/logs/$rowid.warmup" 2>&1 || say "  $rowid: warm-up build failed (see logs)"
    rm -rf "$dir"
    for ((i = 1; i <= RUNS; i++)); do
        order "$i"
        for col in "${ORDER[@]}"; do
            skip "$rowid" "$col" && continue
            fresh_copy "$src"; dir=$DIR
            timed "$rowid" "$col" "$dir" "$check" -- "$@" || true
            rm -rf "$dir"
        done
    done
}

# ---- checks ----------------------------------------------------------------------------------
check_zlib() { [[ -f libz.a ]] || { echo "no libz.a"; return 1; }; }
check_lua() { src/lua -e 'assert(1+1==2)' || { echo "src/lua does not run"; return 1; }; }
check_rust() {
    local out
    out=$(echo '[{"name":"abc","tags":["x"]}]' | target/debug/totofs-bench-app) || { echo "binary does not run"; return 1; }
    [[ $out == *abc* ]] || { echo "binary printed: $out"; return 1; }
}
check_find() {
    local n; n=$(wc -l <"$WORK/logs/find.list")
    ((n > FIND_N)) || { echo "find listed $n entries"; return 1; }
}
check_create() {
    local n; n=$(find out -type f | wc -l)
    ((n == CREATE_N)) || { echo "$n files created"; return 1; }
}
check_big() {
    local n; n=$(stat -c %s big)
    ((n == BIG_MIB * 1048576)) || { echo "big has $n bytes"; return 1; }
}
# The metadata rows: as many files as the prepared node_modules holds, or a clean checkout of
# every file of the git repository.
NODE_MODULES_N=0
check_node_modules() {
    local n; n=$(find node_modules -type f | wc -l)
    ((n == NODE_MODULES_N)) || { echo "node_modules has $n files, not $NODE_MODULES_N"; return 1; }
}
check_git() {
    local n dirty
    n=$(find . -path ./.git -prune -o -type f ! -name "$LINK_GLOB" ! -name "$STEP_NAME.*.trace" -print | wc -l)
    ((n == GIT_N)) || { echo "the checkout has $n files, not $GIT_N"; return 1; }
    dirty=$(git_env git status --porcelain --untracked-files=no | wc -l)
    ((dirty == 0)) || { echo "git status lists $dirty changed files"; return 1; }
}
check_none() { :; }

# ---- workloads -------------------------------------------------------------------------------
bench_zlib() {
    local src; src=$(debian_source zlib) || exit 2
    row zlib "C: zlib $(cut -d_ -f2 "$src/.totofs-bench-ok"), ./configure && make -j2" ratio 1.05 "<= 1.05x native"
    say "zlib: ./configure && make -j2"
    build_rows zlib "$src" check_zlib -- sh -c './configure && make -j2'
}

bench_lua() {
    local src; src=$(debian_source lua5.4) || exit 2
    row lua "C: lua $(cut -d_ -f2 "$src/.totofs-bench-ok"), make -j2 linux" ratio 1.05 "<= 1.05x native"
    say "lua: make -j2 linux"
    build_rows lua "$src" check_lua -- make -j2 linux
}

bench_rust() {
    local src; src=$(rust_workload) || exit 2
    local n; n=$(find "$src/vendor" -type f | wc -l)
    local what=full; ((${#RUST_FEATURES[@]})) && what=serde_json
    row rust "Rust: cargo build --offline ($what, $n vendored files inside)" ratio 1.05 "<= 1.05x native"
    say "rust: cargo build --offline ${RUST_FEATURES[*]}"
    build_rows rust "$src" check_rust -- cargo build --offline --locked -q "${RUST_FEATURES[@]}"
}

bench_find() {
    local tree=$WORK/find-tree i col
    "$WORK/bin/mkfiles" "$tree" "$FIND_N" 100
    row find "find -printf %s over $(num "$FIND_N") files" step 2 "the step itself <= 2x native"
    say "find: $FIND_N files"
    find "$tree" >/dev/null
    for ((i = 1; i <= RUNS; i++)); do
        order "$i"
        for col in "${ORDER[@]}"; do
            timed find "$col" "$tree" check_find -- \
                sh -c 'exec find . -printf "%s\n" >"$1"' sh "$WORK/logs/find.list" || true
        done
    done
    rm -rf "$tree"
}

bench_create() {
    local i col dir
    row create "create $(num "$CREATE_N") files of 100 B" ratio 2 "<= 2x native"
    say "create: $CREATE_N files"
    for ((i = 1; i <= RUNS; i++)); do
        order "$i"
        for col in "${ORDER[@]}"; do
            fresh_dir; dir=$DIR
            timed create "$col" "$dir" check_create -- "$WORK/bin/mkfiles" out "$CREATE_N" 100 || true
            rm -rf "$dir"
        done
    done
}

# `tar xf` of a real node_modules (the npm workload's, a tarball outside the step's directory)
# into an empty directory.
bench_tar() {
    local npm i col dir
    npm=$(npm_workload) || exit 2
    NODE_MODULES_N=$(cat "$npm/.totofs-bench-ok")
    local mib; mib=$(du -m "$npm/node_modules.tar" | cut -f1)
    row tar "tar xf of a node_modules ($(num "$NODE_MODULES_N") files, $mib MiB)" ratio 1.3 "<= 1.3x native"
    say "tar: $NODE_MODULES_N files"
    cat "$npm/node_modules.tar" >/dev/null
    for ((i = 1; i <= RUNS; i++)); do
        order "$i"
        for col in "${ORDER[@]}"; do
            fresh_dir; dir=$DIR
            timed tar "$col" "$dir" check_node_modules -- tar xf "$npm/node_modules.tar" || true
            rm -rf "$dir"
        done
    done
}

# `npm ci` of the same packages from the warm npm cache filled when the workload was prepared
# (the cache lies outside the step's directory; no network is needed).
bench_npm() {
    local npm i col dir
    npm=$(npm_workload) || exit 2
    NODE_MODULES_N=$(cat "$npm/.totofs-bench-ok")
    row npm "npm ci from a warm npm cache ($(num "$NODE_MODULES_N") files)" ratio 1.3 "<= 1.3x native"
    say "npm: npm ci, $NODE_MODULES_N files"
    local step=(npm ci --cache "$npm/npm-cache" --prefer-offline --no-audit --no-fund
                --ignore-scripts --no-update-notifier)
    fresh_copy "$npm/project"; dir=$DIR
    (cd "$dir" && "${step[@]}") >"$WORK/logs/npm.warmup" 2>&1 || say "  npm: warm-up npm ci failed (see logs)"
    rm -rf "$dir"
    for ((i = 1; i <= RUNS; i++)); do
        order "$i"
        for col in "${ORDER[@]}"; do
            fresh_copy "$npm/project"; dir=$DIR
            timed npm "$col" "$dir" check_node_modules -- "${step[@]}" || true
            rm -rf "$dir"
        done
    done
}

# `git checkout` of a commit of GIT_N files into an empty work tree: the repository is cloned
# with --no-checkout outside the timing (its objects in one pack), and the step checks out.
GIT_ENV=(env GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1)  # no user or system git config
git_env() { "${GIT_ENV[@]}" "$@"; }
bench_git() {
    local repo i col dir
    repo=$(git_workload "$GIT_N" "$WORK/bin/mkfiles") || exit 2
    row git "git checkout of $(num "$GIT_N") files into an empty work tree" ratio 1.3 "<= 1.3x native"
    say "git: checkout of $GIT_N files"
    cat "$repo"/objects/pack/* >/dev/null
    for ((i = 1; i <= RUNS; i++)); do
        order "$i"
        for col in "${ORDER[@]}"; do
            fresh_dir; dir=$DIR
            if ! git_env git clone -q --no-checkout "$repo" "$dir" 2>"$WORK/logs/git.clone"; then
                fail git "$col" "git clone --no-checkout failed: $(head -n1 "$WORK/logs/git.clone")"
                rm -rf "$dir"
                continue
            fi
            timed git "$col" "$dir" check_git -- "${GIT_ENV[@]}" git checkout -q -f main || true
            rm -rf "$dir"
        done
    done
}

# Native is the I/O plus one `openssl dgst -sha256` pass over the same bytes (the target's
# reference); the recorders run the I/O alone and must hash it themselves.
bench_write() {
    local i col dir size="$BIG_MIB MiB"
    ((BIG_MIB == 1024)) && size="1 GiB"
    row write "write $size (native: + one SHA-256 pass)" ratio 1.1 "<= 1.1x native+sha256"
    say "write: $size"
    local dd=(dd if=/dev/zero of=big bs=1M "count=$BIG_MIB" status=none)
    fresh_dir; dir=$DIR
    (cd "$dir" && "${dd[@]}")  # warm-up: the first write of this much memory is slow on a VM
    rm -rf "$dir"
    for ((i = 1; i <= RUNS; i++)); do
        order "$i"
        for col in "${ORDER[@]}"; do
            fresh_dir; dir=$DIR
            if [[ $col == native ]]; then
                timed write native "$dir" check_big -- sh -c "${dd[*]} && exec openssl dgst -sha256 big" || true
            else
                timed write "$col" "$dir" check_big -- "${dd[@]}" || true
            fi
            rm -rf "$dir"
        done
    done
}

bench_read() {
    local i col dir size="$BIG_MIB MiB"
    ((BIG_MIB == 1024)) && size="1 GiB"
    row read "read $size (native: + one SHA-256 pass)" ratio 1.1 "<= 1.1x native+sha256"
    say "read: $size"
    fresh_dir; dir=$DIR
    "$WORK/bin/mkfiles" "$dir/data" 1 $((BIG_MIB * 1048576)) >/dev/null
    mv "$dir/data/d0000/f0000000" "$dir/big"
    rm -rf "$dir/data"
    cat "$dir/big" >/dev/null
    local rd=(dd if=big of=/dev/null bs=1M status=none)
    for ((i = 1; i <= RUNS; i++)); do
        order "$i"
        for col in "${ORDER[@]}"; do
            if [[ $col == native ]]; then
                timed read native "$dir" check_none -- sh -c "${rd[*]} && exec openssl dgst -sha256 big" || true
            else
                timed read "$col" "$dir" check_none -- "${rd[@]}" || true
            fi
        done
    done
    rm -rf "$dir"
}

# Time from the step's last act (a timestamp written just before its last process exits) to
# the link's mtime; the recorders' exit time is recorded alongside.
bench_latency() {
    local i col dir size="$BIG_MIB MiB" ts=$WORK/logs/step-end
    ((BIG_MIB == 1024)) && size="1 GiB"
    row latency "link written after a step that wrote $size" abs 0.2 "<= 0.2 s"
    say "latency: $size"
    for ((i = 1; i <= RUNS; i++)); do
        for col in totofs peer; do
            fresh_dir; dir=$DIR
            rm -f "$ts"
            if RSS=0 timed latency_raw "$col" "$dir" check_big -- \
                sh -c 'dd if=/dev/zero of=big bs=1M count="$1" status=none && date +%s.%N >"$2"' \
                sh "$BIG_MIB" "$ts"; then
                local end mtime
                end=$(cat "$ts")
                mtime=$(stat -c %.9Y "$dir"/$LINK_GLOB | head -n1)
                result latency "$col" seconds "$(awk -v a="$end" -v b="$mtime" 'BEGIN { printf "%.4f", b - a }')"
                result latency "$col" exit_seconds "$(awk -v a="$end" -v b="$LAST_END" 'BEGIN { printf "%.4f", b - a }')"
            elif skip latency_raw "$col"; then
                FAILED[latency:$col]=1
                result latency "$col" error "$(awk -F'\t' -v c="$col" '$1=="latency_raw" && $2==c && $3=="error" {print $4}' "$RESULTS" | tail -n1)"
            fi
            rm -rf "$dir"
        done
    done
}

# `run -- true` over a tree of TREE_N files: the recorders hash everything as materials and
# products; then a second totofs run that may reuse its --hash-cache.
bench_true() {
    local tree=$WORK/tree i col mib
    mib=$(awk -v n="$TREE_N" -v s="$TREE_SIZE" 'BEGIN { printf "%.0f", n * s / 1048576 }')
    say "true: $TREE_N files, $mib MiB"
    "$WORK/bin/mkfiles" "$tree" "$TREE_N" "$TREE_SIZE"
    cat "$tree"/*/* >/dev/null
    if wants true; then
        row true "run -- true over $(num "$TREE_N") files / $mib MiB" speedup 5 ">= 5x faster than in-toto-run"
        for ((i = 1; i <= RUNS; i++)); do
            order "$i"
            for col in "${ORDER[@]}"; do
                timed true "$col" "$tree" check_none -- true || true
            done
        done
    fi
    if wants hashcache; then
        row hashcache "same, 2nd totofs run with --hash-cache, nothing changed" abs 0.5 "<= 0.5 s"
        local hc=$WORK/hash-cache
        rm -f "$hc"
        EXTRA_TOTOFS=("--hash-cache=$hc")
        if timed hashcache_fill totofs "$tree" check_none -- true; then
            for ((i = 1; i <= RUNS; i++)); do
                timed hashcache totofs "$tree" check_none -- true || true
            done
        else
            fail hashcache totofs "first run to fill the cache failed: $(awk -F'\t' '$1=="hashcache_fill" && $3=="error" {print $4}' "$RESULTS" | tail -n1)"
        fi
        EXTRA_TOTOFS=()
    fi
    rm -rf "$tree"
}

# Peak RSS of a recorder whose step stats every file of a tree of empty files; measured at
# RSS_N and RSS_N/10 files, per-file bytes = peak at 1,000,000 files (measured, or extrapolated
# linearly from the two sizes) / 1,000,000.
bench_rss() {
    local small=$((RSS_N / 10)) n col tree
    row rss "peak RSS tracking $(num "$RSS_TARGET_N") files$( ((RSS_N != RSS_TARGET_N)) && echo " (extrapolated from $(num "$small") and $(num "$RSS_N"))")" bytes 300 "<= 300 B/file"
    result rss meta sizes "$small $RSS_N $RSS_TARGET_N"
    for n in "$small" "$RSS_N"; do
        say "rss: $n files"
        tree=$WORK/rss-$n
        "$WORK/bin/mkfiles" "$tree" "$n" 0
        for col in totofs peer; do
            RSS=1 timed "rss_$n" "$col" "$tree" check_none -- find . -printf '%s\n' || true
        done
        rm -rf "$tree"
    done
}

num() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; }

# The floor under the metadata-heavy rows: what a FUSE file system that does nothing at all
# costs here for the same shapes of work (scripts/bench/fuse_floor.c), as a ratio to native.
# Printed with the run's details: a row's target below its floor is out of reach of any FUSE
# daemon on this machine.
bench_floor() {
    say "floor: a FUSE file system that does nothing"
    gcc -O2 -pthread -o "$WORK/bin/fuse_floor" "$ROOT/scripts/bench/fuse_floor.c" || { say "floor: cannot compile"; return 0; }
    local mode n i out ratios summary=''
    for mode in create tar list; do
        n=$CREATE_N; [[ $mode == list ]] && n=$FIND_N
        ratios=()
        for ((i = 1; i <= RUNS; i++)); do
            out=$(cd "$WORK" && "$WORK/bin/fuse_floor" "$mode" "$n" 3 2>&1) || { say "floor: $out"; return 0; }
            echo "$out" >>"$WORK/logs/floor.log"
            ratios+=("$(sed -n 's/.*(\([0-9.]*\)x native).*/\1/p' <<<"$out")")
        done
        summary+="${summary:+, }$mode $(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')x native"
    done
    echo "$summary" >"$WORK/floor.txt"
}

# ---- rootless rows (issue 14) ----------------------------------------------------------------
# The same workloads as the root rows, run by an ordinary user (created if missing: totofs-test)
# with /dev/fuse made 0666 for the rows and its mode restored afterwards: native as that user,
# totofs as that user (a user namespace of its own, no passthrough), and totofs as root again
# (a hidden row) for the rootless/root ratio, which goes into the label. The in-toto-run column
# is the root row's. Needs root (to create the user and change /dev/fuse).
RL_USER=totofs-test RL_READY='' RL_FUSE_MODE='' RL_NATIVE=()
rootless_restore() { [[ -n $RL_FUSE_MODE ]] && chmod "$RL_FUSE_MODE" /dev/fuse; RL_FUSE_MODE=''; }
rootless_setup() {
    [[ -n $RL_READY ]] && return 0
    [[ $(id -u) -eq 0 ]] || { say "rootless rows need root (to create $RL_USER)"; return 1; }
    id -u "$RL_USER" >/dev/null 2>&1 || useradd --no-create-home --shell /bin/sh "$RL_USER" || return 1
    RL_FUSE_MODE=$(stat -c %a /dev/fuse)
    trap 'rootless_restore; cleanup' EXIT
    chmod 0666 /dev/fuse
    [[ -n ${BASE:-} ]] && chmod 755 "$BASE"  # mktemp -d made it 0700
    local u g; u=$(id -u "$RL_USER"); g=$(id -g "$RL_USER")
    RL_AS=(setpriv "--reuid=$u" "--regid=$g" --init-groups --)
    cp "$TOTOFS" "$WORK/bin/totofs-user"; cp "$KEY" "$WORK/bin/key.pem"
    chmod 755 "$WORK/bin/totofs-user"; chmod 644 "$WORK/bin/key.pem"
    printf '#!/bin/sh\nexec %s %s "$@"\n' "${RL_AS[*]}" "$WORK/bin/totofs-user" >"$WORK/bin/totofs-as-user"
    chmod 755 "$WORK/bin/totofs-as-user"
    RL_READY=1
}
# rootless_timed ROW COLUMN DIR CHECK -- STEP...: COLUMN native or totofs run as the user; root
# runs totofs as root under the hidden row ROW-asroot.
rootless_timed() {
    local rowid=$1 col=$2 dir=$3 check=$4
    shift 5
    chown -R "$RL_USER:" "$dir"
    case $col in
        native) if ((${#RL_NATIVE[@]})); then set -- "${RL_NATIVE[@]}"; fi
                timed "$rowid" native "$dir" "$check" -- "${RL_AS[@]}" "$@" ;;
        totofs) TOTOFS=$WORK/bin/totofs-as-user KEY=$WORK/bin/key.pem timed "$rowid" totofs "$dir" "$check" -- "$@" ;;
        root) timed "$rowid-asroot" totofs "$dir" "$check" -- "$@" ;;
    esac
}
# The label, once measured: what the row is, and rootless against the root recorder.
rootless_row() { # ROW LABEL LIMIT TARGET
    local vs
    vs=$(python3 - "$1" "$RESULTS" <<'PY'
import statistics, sys
row, v = sys.argv[1], {}
for line in open(sys.argv[2], encoding="utf-8"):
    r, col, metric, value = (line.rstrip("\n").split("\t") + ["", "", "", ""])[:4]
    if col == "totofs" and metric == "seconds" and r in (row, row + "-asroot"):
        v.setdefault(r, []).append(float(value))
if row in v and row + "-asroot" in v:
    a, b = statistics.median(v[row]), statistics.median(v[row + "-asroot"])
    print(f"rootless/root {a / b:.2f}x, root recorder {b:.2f} s")
PY
)
    row "$1" "$2 as $RL_USER${vs:+ ($vs)}" ratio "$3" "$4"
    result "$1" peer error "the in-toto-run column is the root row's"
}
rootless_rounds() { # ROW PREPARE CHECK -- STEP...: PREPARE sets DIR for each run
    local rowid=$1 prepare=$2 check=$3 i col
    shift 4
    for ((i = 1; i <= RUNS; i++)); do
        for col in native totofs root; do
            "$prepare"
            rootless_timed "$rowid" "$col" "$DIR" "$check" -- "$@" || true
            [[ ${RL_KEEP_DIR:-} == 1 ]] || rm -rf "$DIR"
        done
    done
}
bench_zlib-rootless() {
    rootless_setup || return 0
    local src; src=$(debian_source zlib) || exit 2
    say "zlib-rootless: ./configure && make -j2 as $RL_USER"
    RL_SRC=$src
    rl_copy() { fresh_copy "$RL_SRC"; }
    rootless_rounds zlib-rootless rl_copy check_zlib -- sh -c './configure && make -j2'
    rootless_row zlib-rootless "C: zlib $(cut -d_ -f2 "$src/.totofs-bench-ok"), ./configure && make -j2" 1.05 "<= 1.05x native"
}
bench_write-rootless() {
    rootless_setup || return 0
    local size="$BIG_MIB MiB"; ((BIG_MIB == 1024)) && size="1 GiB"
    say "write-rootless: $size as $RL_USER"
    local dd=(dd if=/dev/zero of=big bs=1M "count=$BIG_MIB" status=none)
    RL_NATIVE=(sh -c "${dd[*]} && exec openssl dgst -sha256 big")
    rootless_rounds write-rootless fresh_dir check_big -- "${dd[@]}"
    RL_NATIVE=()
    rootless_row write-rootless "write $size (native: + one SHA-256 pass)" 1.1 "<= 1.1x native+sha256"
}
bench_read-rootless() {
    rootless_setup || return 0
    local size="$BIG_MIB MiB"; ((BIG_MIB == 1024)) && size="1 GiB"
    say "read-rootless: $size as $RL_USER"
    fresh_dir; RL_DIR=$DIR
    "$WORK/bin/mkfiles" "$RL_DIR/data" 1 $((BIG_MIB * 1048576)) >/dev/null
    mv "$RL_DIR/data/d0000/f0000000" "$RL_DIR/big"; rm -rf "$RL_DIR/data"
    cat "$RL_DIR/big" >/dev/null
    rl_same() { DIR=$RL_DIR; }
    local rd=(dd if=big of=/dev/null bs=1M status=none)
    RL_NATIVE=(sh -c "${rd[*]} && exec openssl dgst -sha256 big")
    RL_KEEP_DIR=1 rootless_rounds read-rootless rl_same check_none -- "${rd[@]}"
    RL_NATIVE=()
    rm -rf "$RL_DIR"
    rootless_row read-rootless "read $size (native: + one SHA-256 pass)" 1.1 "<= 1.1x native+sha256"
}
bench_find-rootless() {
    rootless_setup || return 0
    say "find-rootless: $FIND_N files as $RL_USER"
    fresh_dir; RL_DIR=$DIR
    "$WORK/bin/mkfiles" "$RL_DIR/tree" "$FIND_N" 100 >/dev/null
    : >"$WORK/logs/find.list"; chown "$RL_USER:" "$WORK/logs/find.list"
    find "$RL_DIR" >/dev/null
    rl_same() { DIR=$RL_DIR; }
    RL_KEEP_DIR=1 rootless_rounds find-rootless rl_same check_find -- \
        sh -c 'exec find . -printf "%s\n" >"$1"' sh "$WORK/logs/find.list"
    rm -rf "$RL_DIR"
    rootless_row find-rootless "find -printf %s over $(num "$FIND_N") files" 2 "<= 2x native"
}
bench_create-rootless() {
    rootless_setup || return 0
    say "create-rootless: $CREATE_N files as $RL_USER"
    rootless_rounds create-rootless fresh_dir check_create -- "$WORK/bin/mkfiles" out "$CREATE_N" 100
    rootless_row create-rootless "create $(num "$CREATE_N") files of 100 B" 3 "<= 3x native"
}
# ---- end of the rootless rows ------------------------------------------------------------------

# ---- main ------------------------------------------------------------------------------------
ensure_tools
find_peer
gcc -O2 -o "$WORK/bin/mkfiles" "$ROOT/scripts/bench/mkfiles.c" || die "cannot compile mkfiles.c"

if [[ -z ${TOTOFS:-} ]]; then
    say "building totofs (cargo build --release)"
    (cd "$ROOT" && cargo build --release -q) || die "cargo build --release failed"
    TOTOFS=$ROOT/target/release/totofs
fi
[[ -x $TOTOFS ]] || die "TOTOFS=$TOTOFS is not an executable"
TOTOFS=$(cd "$(dirname "$TOTOFS")" && pwd)/$(basename "$TOTOFS")

# One probe of `totofs run`: if it cannot record a trivial step, its column is n/a throughout
# (with the reason) and the benchmark does not spend time on it.
fresh_dir; probe=$DIR
echo probe >"$probe/file"
if ! timed probe totofs "$probe" check_none -- true; then
    reason=$(awk -F'\t' '$1=="probe" && $3=="error" {print $4}' "$RESULTS" | tail -n1)
    for r in $ALL_ROWS latency_raw hashcache_fill "rss_$((RSS_N / 10))" "rss_$RSS_N"; do
        FAILED[$r:totofs]=1
        result "$r" totofs error "$reason"
    done
    say "totofs column: n/a ($reason)"
fi
rm -rf "$probe"
fresh_dir
if ! timed probe peer "$DIR" check_none -- true; then
    say "in-toto-run column: n/a"
fi

START=$(date -u '+%Y-%m-%d %H:%M UTC')
T_START=$EPOCHREALTIME
for r in $ALL_ROWS; do
    wants "$r" || continue
    case $r in
        hashcache) wants true || bench_true ;;  # bench_true does both when both are wanted
        *) "bench_$r" ;;
    esac
done
ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---- report ----------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
peer_version=$("$PEER_BIN/python" -c 'import in_toto; print(in_toto.__version__)' 2>/dev/null || echo '?')
totofs_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
{
    echo "date	$START"
    echo "machine	$(nproc) cores ($cpu), $mem RAM, Linux $(uname -r), runs on $WORK_FS"
    echo "versions	totofs $("$TOTOFS" --version 2>/dev/null | awk '{print $2}') (git $totofs_rev), in-toto $peer_version, $(gcc --version | head -n1), $(rustc --version)"
    echo "mode	$( ((QUICK)) && echo quick || echo full ), $RUNS run(s) per cell, medians; took ${ELAPSED} s; load average $LOAD at the start$BUSY"
    if [[ -s $WORK/floor.txt ]]; then
        echo "FUSE floor (a file system doing nothing, scripts/bench/fuse_floor.c, 3 reader threads, median of $RUNS)	$(cat "$WORK/floor.txt")"
    fi
} >"$WORK/meta.tsv"
mkdir -p "$(dirname "$OUT")"
python3 "$ROOT/scripts/bench/table.py" "$WORK/meta.tsv" "$ROWS" "$RESULTS" "$OUT"
say "table written to $OUT"
((KEEP)) && say "runs and logs kept in $WORK${LOOPDEV:+ (mounted from $LOOPDEV: umount it, then losetup -d it)}"
exit 0
