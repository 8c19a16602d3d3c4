#!/usr/bin/env bash
# The totofs demo: a three-step supply chain (checkout, build with make, package with tar),
# recorded under the FUSE overlay, signed by two functionaries, verified against a layout that
# the project owner wrote by hand and signed. Then an attacker edits a source file between
# checkout and build, and verification says exactly what went wrong.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -n "${TOTOFS:-}" ]]; then
    T="$TOTOFS"
else
    if [[ ! -x "$ROOT/target/release/totofs" ]]; then
        printf 'building totofs (cargo build --release; a few minutes on a fresh checkout)...\n' >&2
    fi
    (cd "$ROOT" && cargo build --release --quiet)
    T="$ROOT/target/release/totofs"
fi
D="$(mktemp -d "${TMPDIR:-/tmp}/totofs-demo.XXXXXX")"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

say "keys: alice owns the layout, bob checks out the code, carl builds and packages"
mkdir -p "$D/keys" "$D/work" "$D/final"
for who in alice bob carl; do "$T" keygen "$D/keys/$who" >/dev/null; done
BOB=$("$T" key id "$D/keys/bob.pub")
CARL=$("$T" key id "$D/keys/carl.pub")
echo "bob  $BOB"
echo "carl $CARL"

say "the layout, written by hand (keys from 'totofs key show'), signed by alice"
EXPIRES=$(date -u -d '+1 year' +%Y-%m-%dT%H:%M:%SZ)
cat > "$D/keys/root.layout" <<LAYOUT
{"signed": {
  "_type": "layout",
  "expires": "$EXPIRES",
  "readme": "totofs demo: checkout, build, package",
  "keys": {
    "$BOB": $("$T" key show "$D/keys/bob.pub"),
    "$CARL": $("$T" key show "$D/keys/carl.pub")
  },
  "steps": [
    {"_type": "step", "name": "checkout", "threshold": 1, "pubkeys": ["$BOB"],
     "expected_command": ["cp", "-r", "$ROOT/demo/project", "src"],
     "expected_materials": [["DISALLOW", "*"]],
     "expected_products": [["CREATE", "src/*"], ["DISALLOW", "*"]]},
    {"_type": "step", "name": "build", "threshold": 1, "pubkeys": ["$CARL"],
     "expected_command": ["make", "-C", "src"],
     "expected_materials": [["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "checkout"], ["DISALLOW", "*"]],
     "expected_products": [["CREATE", "src/hello"], ["CREATE", "src/*.o"],
                           ["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "checkout"], ["DISALLOW", "*"]]},
    {"_type": "step", "name": "package", "threshold": 1, "pubkeys": ["$CARL"],
     "expected_command": ["tar", "czf", "hello.tar.gz", "-C", "src", "hello"],
     "expected_materials": [["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "build"], ["DISALLOW", "*"]],
     "expected_products": [["CREATE", "hello.tar.gz"], ["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "build"],
                           ["DISALLOW", "*"]]}
  ],
  "inspect": [
    {"_type": "inspection", "name": "untar", "run": ["tar", "xzf", "hello.tar.gz"],
     "expected_materials": [["MATCH", "hello.tar.gz", "WITH", "PRODUCTS", "FROM", "package"],
                            ["ALLOW", "root.layout"], ["ALLOW", "*.trace"], ["DISALLOW", "*"]],
     "expected_products": [["MATCH", "hello", "WITH", "PRODUCTS", "IN", "src", "FROM", "build"],
                           ["ALLOW", "hello.tar.gz"], ["ALLOW", "root.layout"], ["ALLOW", "*.trace"],
                           ["DISALLOW", "*"]]}
  ]
}, "signatures": []}
LAYOUT
show "$T" sign -f "$D/keys/root.layout" -k "$D/keys/alice"

say "the steps, each recorded by the FUSE overlay and signed"
cd "$D/work"
show "$T" run -n checkout --signing-key "$D/keys/bob" -d "$D/final" -- cp -r "$ROOT/demo/project" src
show "$T" run -n build --signing-key "$D/keys/carl" -d "$D/final" -- make -C src
show "$T" run -n package --signing-key "$D/keys/carl" -d "$D/final" -- tar czf hello.tar.gz -C src hello

say "the client receives the package, the links and the layout, and verifies"
cp hello.tar.gz "$D/final/"
cp "$D/keys/root.layout" "$D/final/"
cd "$D/final"
show "$T" verify -l root.layout -k "$D/keys/alice.pub"
if [[ -x "$ROOT/.venv-peer/bin/in-toto-verify" ]]; then
    say "the same files pass the reference in-toto 3.1.0 verifier"
    rm -f untar.link hello
    show "$ROOT/.venv-peer/bin/in-toto-verify" -l root.layout --verification-keys "$D/keys/alice.pub"
    echo "in-toto-verify: PASSED"
fi

say "an attacker edits src/greeting.c between checkout and build"
mkdir -p "$D/attack/work" "$D/attack/final"
cd "$D/attack/work"
"$T" run -n checkout --signing-key "$D/keys/bob" -d "$D/attack/final" -- cp -r "$ROOT/demo/project" src
sed -i 's/hello from/greetings from/' src/greeting.c
"$T" run -n build --signing-key "$D/keys/carl" -d "$D/attack/final" -- make -C src >/dev/null
"$T" run -n package --signing-key "$D/keys/carl" -d "$D/attack/final" -- tar czf hello.tar.gz -C src hello
cp hello.tar.gz "$D/keys/root.layout" "$D/attack/final/"
cd "$D/attack/final"
set +e
"$T" verify -l root.layout -k "$D/keys/alice.pub"
rc=$?
set -e
if [[ $rc -eq 1 ]]; then
    echo "verification failed as it must (exit 1)"
else
    echo "UNEXPECTED: tampered chain gave exit $rc" >&2
    exit 1
fi
say "what did the build read and write, and which process did it? (the signed trace)"
"$T" show --trace "$D"/final/build.*.link | head -n 30

say "why do the honest and the attacked builds differ?"
set +e
"$T" diff "$D"/final/build.*.link "$D"/attack/final/build.*.link
set -e

say "demo files are in $D"
