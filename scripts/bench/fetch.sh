# shellcheck shell=bash
# Workload preparation for scripts/bench.sh, sourced by it: the tools it needs, the reference peer
# (in-toto 3.1.0 from PyPI), Debian source packages and the vendored Rust project. Everything
# downloaded is kept under $CACHE so a second run on the same machine works offline.
#
# Expects: ROOT (repository root), CACHE (cache dir), say() and die() from bench.sh.
# Sets: PEER_BIN (find_peer).
# shellcheck disable=SC2034  # PEER_BIN is read by bench.sh

# Install the Debian packages that provide missing commands (a fresh machine), if we may.
ensure_tools() {
    local -A pkg_of=([gcc]=gcc [make]=make [openssl]=openssl [/usr/bin/time]=time
        [dpkg-source]=dpkg-dev [python3]=python3 [find]=findutils [dd]=coreutils)
    local missing=() cmd
    for cmd in "${!pkg_of[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            say "installing ${missing[*]} (apt-get)"
            apt-get update -qq >/dev/null || die "apt-get update failed"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" libc6-dev >/dev/null || die "apt-get install ${missing[*]} failed"
        else
            die "missing commands; install the packages: ${missing[*]}"
        fi
    fi
    command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
}

# The in-toto 3.1.0 CLI: $TOTOFS_PEER_BIN, the repository's .venv-peer, or a venv in the cache.
find_peer() {
    local dir
    for dir in "${TOTOFS_PEER_BIN:-}" "$ROOT/.venv-peer/bin" "$CACHE/venv-peer/bin"; do
        [[ -n $dir && -x $dir/in-toto-run ]] && { PEER_BIN=$dir; return 0; }
    done
    say "installing the reference peer in-toto 3.1.0 into $CACHE/venv-peer"
    python3 -m venv "$CACHE/venv-peer" || die "python3 -m venv failed (install python3-venv)"
    "$CACHE/venv-peer/bin/pip" install -q --disable-pip-version-check in-toto==3.1.0 \
        || die "pip install in-toto==3.1.0 failed"
    PEER_BIN=$CACHE/venv-peer/bin
}

# The Debian mirror apt already uses (a deb822 URIs: line or a one-line "deb URL" entry that
# serves the main archive, not the security one); deb.debian.org if there is none.
debian_mirror() {
    local f url
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        url=$(sed -n -e 's/^[[:space:]]*URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
                     -e 's/^[[:space:]]*deb\(-src\)\?[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\3/p' "$f" \
              | grep -E '/debian/?$' | grep -v -- '-security' | head -n1 || true)
        [[ -n $url ]] && { echo "${url%/}"; return; }
    done
    echo "http://deb.debian.org/debian"
}

# Fetch and unpack a Debian source package into $CACHE/src/<package>, with a private apt state:
# the system's apt configuration and lists are neither read for sources nor written. The
# upstream tree is unpacked without Debian's patches, so each project builds with its own
# upstream build system.
debian_source() {
    local pkg=$1
    local dest=$CACHE/src/$pkg
    [[ -f $dest/.totofs-bench-ok ]] && { echo "$dest"; return; }
    local apt=$CACHE/apt suite=${TOTOFS_BENCH_DEBIAN_SUITE:-bookworm}
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [[ -r $keyring ]] || die "$keyring missing (package debian-archive-keyring)"
    mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/dl"
    local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources"
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
    if [[ ! -f $apt/sources/deb-src.sources ]] || ! compgen -G "$apt/lists/*Sources*" >/dev/null; then
        local mirror; mirror=$(debian_mirror)
        say "apt: deb-src $mirror $suite main (private state in $apt)"
        printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
            "$mirror" "$suite" "$keyring" >"$apt/sources/deb-src.sources"
        apt-get -qq "${opts[@]}" update >"$apt/update.log" 2>&1 \
            || die "apt-get update of the deb-src list failed: see $apt/update.log"
    fi
    say "apt: source --download-only $pkg"
    (cd "$apt/dl" && apt-get -qq "${opts[@]}" source --download-only "$pkg") >"$apt/$pkg.log" 2>&1 \
        || die "apt-get source $pkg failed: see $apt/$pkg.log"
    local dsc
    dsc=$(ls -t "$apt/dl/${pkg}"_*.dsc 2>/dev/null | head -n1)
    [[ -n $dsc ]] || die "no .dsc for $pkg in $apt/dl"
    rm -rf "$dest"
    mkdir -p "$CACHE/src"
    dpkg-source --skip-patches -x "$dsc" "$dest" >"$apt/$pkg.unpack.log" 2>&1 \
        || die "dpkg-source -x $dsc failed: see $apt/$pkg.unpack.log"
    basename "$dsc" .dsc >"$dest/.totofs-bench-ok"
    echo "$dest"
}

# The Rust project of scripts/bench/rust-workload with its crates.io dependencies vendored
# (pinned by its Cargo.lock), ready for `cargo build --offline`.
rust_workload() {
    local lockhash dest
    lockhash=$(cat "$ROOT/scripts/bench/rust-workload/Cargo.lock" "$ROOT/scripts/bench/rust-workload/Cargo.toml" \
        | sha256sum | cut -c1-12)
    dest=$CACHE/rust-workload-$lockhash
    [[ -f $dest/.totofs-bench-ok ]] && { echo "$dest"; return; }
    say "cargo vendor: the Rust workload's dependencies from crates.io"
    rm -rf "$dest"
    mkdir -p "$dest"
    cp -r "$ROOT/scripts/bench/rust-workload/." "$dest/"
    (cd "$dest" && cargo vendor --locked vendor) >"$CACHE/rust-vendor.log" 2>&1 \
        || die "cargo vendor failed: see $CACHE/rust-vendor.log"
    mkdir -p "$dest/.cargo"
    printf '[source.crates-io]\nreplace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "vendor"\n' \
        >"$dest/.cargo/config.toml"
    touch "$dest/.totofs-bench-ok"
    echo "$dest"
}
