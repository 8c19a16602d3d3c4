# shellcheck shell=bash
# Workload preparation for scripts/bench.sh, sourced by it: the tools it needs, the reference peer
# (in-toto 3.1.0 from PyPI), Debian source packages, the vendored Rust project, the npm project
# with its warm npm cache and node_modules tarball, and the 10,000-file git repository.
# Everything downloaded is kept under $CACHE so a second run on the same machine works offline.
#
# Expects: ROOT (repository root), CACHE (cache dir), say(), die() and wants() from bench.sh.
# Sets: PEER_BIN (find_peer).
# shellcheck disable=SC2034  # PEER_BIN is read by bench.sh

# Install the Debian packages that provide missing commands (a fresh machine), if we may.
ensure_tools() {
    local -A pkg_of=([gcc]=gcc [make]=make [openssl]=openssl [/usr/bin/time]=time
        [dpkg-source]=dpkg-dev [python3]=python3 [find]=findutils [dd]=coreutils)
    # The metadata rows' tools, only when those rows run.
    if wants tar || wants npm; then pkg_of+=([npm]=npm [tar]=tar); fi
    if wants git; then pkg_of+=([git]=git); fi
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

# The npm project of scripts/bench/npm-workload (five real packages with many small files,
# pinned with their integrity hashes by its package-lock.json), installed once from the npm
# registry into a private npm cache. Prints the directory holding:
#   project/            package.json and package-lock.json, the input of the `npm ci` row
#   npm-cache/          the warm npm cache that row installs from
#   node_modules.tar    the installed node_modules, the input of the `tar xf` row; made with
#                       sorted names, numeric owner 0 and mtime 0, so the same lock gives the
#                       same bytes
#   .totofs-bench-ok    the number of files in node_modules
npm_workload() {
    local src=$ROOT/scripts/bench/npm-workload lockhash dest
    lockhash=$(cat "$src/package-lock.json" "$src/package.json" | sha256sum | cut -c1-12)
    dest=$CACHE/npm-workload-$lockhash
    [[ -f $dest/.totofs-bench-ok ]] && { echo "$dest"; return; }
    say "npm ci: the npm workload's packages from the npm registry"
    rm -rf "$dest"
    mkdir -p "$dest/project" "$dest/install"
    cp "$src/package.json" "$src/package-lock.json" "$dest/project/"
    cp "$src/package.json" "$src/package-lock.json" "$dest/install/"
    (cd "$dest/install" && npm ci --cache "$dest/npm-cache" --no-audit --no-fund --ignore-scripts) \
        >"$CACHE/npm-install.log" 2>&1 || die "npm ci failed: see $CACHE/npm-install.log"
    (cd "$dest/install" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
        -cf "$dest/node_modules.tar" node_modules) || die "tar of node_modules failed"
    find "$dest/install/node_modules" -type f | wc -l >"$dest/.totofs-bench-ok.tmp"
    rm -rf "$dest/install"
    mv "$dest/.totofs-bench-ok.tmp" "$dest/.totofs-bench-ok"
    echo "$dest"
}

# A local git repository whose one commit holds N files of 100 B (mkfiles: 10 directories of
# 1,000), packed into one pack file; author, committer and dates are fixed, so the commit id is
# the same on every machine. Prints the repository's path.
git_workload() {
    local n=$1 mkfiles=$2 dest=$CACHE/git-workload-$1
    [[ -f $dest/.totofs-bench-ok ]] && { echo "$dest/repo.git"; return; }
    say "git: a repository of $n files"
    rm -rf "$dest"
    mkdir -p "$dest"
    "$mkfiles" "$dest/tree" "$n" 100 || die "mkfiles for the git workload failed"
    (
        cd "$dest/tree" || exit 1
        export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
            GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.org GIT_AUTHOR_DATE="946684800 +0000" \
            GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.org GIT_COMMITTER_DATE="946684800 +0000"
        git init -q -b main && git add -A && git commit -q -m "$n files" && git repack -adq \
            && git prune
    ) >"$CACHE/git-workload.log" 2>&1 || die "git repository for the git row failed: see $CACHE/git-workload.log"
    mv "$dest/tree/.git" "$dest/repo.git"
    git --git-dir="$dest/repo.git" config core.bare true
    rm -rf "$dest/tree"
    touch "$dest/.totofs-bench-ok"
    echo "$dest/repo.git"
}
