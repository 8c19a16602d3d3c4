#!/usr/bin/env bash
# Benchmark `totofs verify` against in-toto 3.1.0's in-toto-verify on the same supply chain:
# 50 steps, 20,000 materials and 20,000 products per step (2,000,000 artifact entries), ed25519
# links signed by in-toto 3.1.0 itself. Each step MATCHes its materials against the previous step's
# products, its unchanged products against its own materials, MODIFYs a tenth of the files and
# DISALLOWs the rest. Prints the median wall and CPU time of a few runs of each verifier.
#
#   scripts/bench-verify.sh [STEPS] [ARTIFACTS] [RUNS]      (PEER_RUNS=n for more in-toto-verify runs)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STEPS="${1:-50}"
ARTS="${2:-20000}"
RUNS="${3:-5}"
PEER="${TOTOFS_PEER_BIN:-$ROOT/.venv-peer/bin}"
DIR="$ROOT/target/bench-verify/${STEPS}x${ARTS}"

(cd "$ROOT" && cargo build --release --quiet)
T="$ROOT/target/release/totofs"

if [[ ! -f "$DIR/root.layout" ]]; then
    [[ -x "$PEER/python" ]] || { echo "in-toto 3.1.0 peer not found in $PEER (needed to sign the chain)" >&2; exit 2; }
    mkdir -p "$DIR"
    echo "generating ${STEPS} steps x ${ARTS} artifacts in $DIR ..."
    "$PEER/python" - "$DIR" "$STEPS" "$ARTS" "$ROOT/tests/data/interop/pems" <<'PY'
import hashlib, os, sys
from cryptography.hazmat.primitives import serialization
from securesystemslib.signer import CryptoSigner
from in_toto.models.layout import Layout, Step
from in_toto.models.link import Link
from in_toto.models.metadata import Metablock

out, steps, arts, pems = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(os.path.join(pems, "ed25519_private_unencrypted.pem"), "rb") as f:
    signer = CryptoSigner(serialization.load_pem_private_key(f.read(), None))
key = signer.public_key.to_dict()
key["keyid"] = signer.public_key.keyid

def h(s):
    return {"sha256": hashlib.sha256(s.encode()).hexdigest()}

paths = [f"src/module{i // 100:03d}/file{i:05d}.c" for i in range(arts)]
current = {p: h(p) for p in paths}
step_list = []
for n in range(steps):
    name = f"step{n:02d}"
    materials = dict(current) if n else {}
    products = dict(current)
    for i in range(n % 10, arts, 10):  # each step changes a tenth of the files
        products[paths[i]] = h(f"{paths[i]} after {name}")
    if n == 0:
        mat_rules = [["DISALLOW", "*"]]
        prod_rules = [["CREATE", "src/*"], ["DISALLOW", "*"]]
    else:
        prev = f"step{n - 1:02d}"
        mat_rules = [["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", prev], ["DISALLOW", "*"]]
        prod_rules = [["MATCH", "*", "WITH", "MATERIALS", "FROM", name], ["MODIFY", "src/*"], ["DISALLOW", "*"]]
    step_list.append(Step(name=name, pubkeys=[key["keyid"]], expected_materials=mat_rules,
                          expected_products=prod_rules, expected_command=["build", name], threshold=1))
    link = Metablock(signed=Link(name=name, materials=materials, products=products, command=["build", name],
                                 byproducts={}, environment={}))
    link.create_signature(signer)
    link.dump(os.path.join(out, f"{name}.{key['keyid'][:8]}.link"))
    current = products
layout = Metablock(signed=Layout(keys={key["keyid"]: key}, steps=step_list, inspect=[],
                                 expires="2099-01-01T00:00:00Z"))
layout.create_signature(signer)
layout.dump(os.path.join(out, "root.layout"))
PY
fi

KEY="$ROOT/tests/data/interop/pems/ed25519_public.pem"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# Runs "$@" N times; prints "median-wall median-cpu" (cpu = user + sys, so a busy machine shows).
time_runs() {
    local runs=$1; shift
    local log; log=$(mktemp)
    for _ in $(seq "$runs"); do
        /usr/bin/time -f "%e %U %S" -o "$log" -a "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }
    done
    echo "$(awk '{print $1}' "$log" | median) $(awk '{print $2 + $3}' "$log" | median)"
    rm -f "$log"
}

cd "$DIR"
size=$(du -sh "$DIR" | cut -f1)
echo "chain: $STEPS steps x $ARTS materials + $ARTS products per step, $size of links, $(nproc) cores"
printf '%-16s %10s %10s\n' verifier wall-s cpu-s
read -r w c < <(time_runs "$RUNS" "$T" verify -l root.layout -k "$KEY" --link-dir .)
printf '%-16s %10.2f %10.2f   (median of %d)\n' "totofs verify" "$w" "$c" "$RUNS"
if [[ -x "$PEER/in-toto-verify" ]]; then
    peer_runs="${PEER_RUNS:-1}"  # in-toto-verify takes about a minute per run here
    read -r pw pc < <(time_runs "$peer_runs" "$PEER/in-toto-verify" -l root.layout --verification-keys "$KEY" --link-dir .)
    printf '%-16s %10.2f %10.2f   (median of %d)\n' "in-toto-verify" "$pw" "$pc" "$peer_runs"
    echo "totofs is $(echo "scale=1; $pw / $w" | bc)x faster (wall), $(echo "scale=1; $pc / $c" | bc)x less CPU"
else
    echo "in-toto-verify: not installed in $PEER"
fi
