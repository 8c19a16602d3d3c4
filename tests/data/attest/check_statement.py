"""Check a DSSE envelope totofs wrote: the in-toto Statement v1 inside it is parsed with the
PyPI in-toto-attestation protobuf bindings (strict: an unknown field fails), then the rules
those bindings do not check are checked here: DSSE shape (payloadType, padded standard base64,
keyid), lowercase hex digests of the right length, unique names, the required link and SLSA
Provenance v1 fields, RFC 3339 UTC `Z` timestamps, and lowerCamelCase field names.

Usage: check_statement.py link|provenance FILE [KEYS.json]
With KEYS.json (`{keyid: securesystemslib key dict}`), the DSSE signature is also verified by
securesystemslib's DSSE implementation (the one in-toto 3.x uses), over the payload as received.
Prints a JSON summary (subjects, materials or dependencies) for the caller to compare.
Exits non-zero with one line on stderr naming the file and the reason.
"""
import base64
import binascii
import datetime
import json
import re
import sys

from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.predicates.link.v0 import link_pb2
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

LINK_TYPE = "https://in-toto.io/attestation/link/v0.3"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
HEX_LEN = {"sha256": 64, "sha512": 128, "sha384": 96, "sha224": 56, "sha1": 40, "md5": 32}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# Objects whose keys are data, not field names.
OPAQUE = {"digest", "annotations", "byproducts", "environment", "externalParameters",
          "internalParameters", "version"}


class Bad(Exception):
    pass


def need(cond, why):
    if not cond:
        raise Bad(why)


def check_digest(d, where):
    need(isinstance(d, dict) and d, f"{where}: no digest")
    for algo, value in d.items():
        need(algo in HEX_LEN, f"{where}: unexpected digest algorithm {algo!r}")
        need(isinstance(value, str) and re.fullmatch("[0-9a-f]+", value) is not None,
             f"{where}: {algo} {value!r} is not lowercase hex")
        need(len(value) == HEX_LEN[algo], f"{where}: {algo} has {len(value)} hex digits")


def check_names(v, path="statement"):
    if isinstance(v, dict):
        for k, x in v.items():
            if k != "_type" or path != "statement":
                need(re.fullmatch("[a-z][a-zA-Z0-9]*", k) is not None,
                     f"{path}: field name {k!r} is not lowerCamelCase")
            if k not in OPAQUE:
                check_names(x, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            check_names(x, f"{path}[{i}]")


def descriptors(rds, where, named=True):
    out = {}
    for i, rd in enumerate(rds):
        w = f"{where}[{i}]"
        if named:
            need(isinstance(rd.get("name"), str) and rd["name"], f"{w}: no name")
            need(rd["name"] not in out, f"{w}: name {rd['name']!r} appears twice")
        if "digest" in rd:
            check_digest(rd["digest"], w)
        else:
            need(rd.get("uri"), f"{w}: neither digest nor uri")
        out[rd.get("name") or rd.get("uri")] = rd
    return out


def check_time(s, where):
    need(isinstance(s, str) and TIME.match(s), f"{where}: {s!r} is not RFC 3339 UTC with Z")
    datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")


def verify_signature(env, keys_path):
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey
    keys = [SSlibKey.from_dict(kid, dict(kd)) for kid, kd in json.load(open(keys_path)).items()]
    verified = Envelope.from_dict(env).verify(keys, 1)
    need(verified, "no signature verified")


def main(kind, path, keys_path=None):
    env = json.load(open(path, encoding="utf-8"))
    need(set(env) == {"payload", "payloadType", "signatures"}, f"envelope fields {sorted(env)}")
    need(env["payloadType"] == "application/vnd.in-toto+json", "payloadType")
    try:
        payload = base64.b64decode(env["payload"], validate=True)
    except binascii.Error as e:
        raise Bad(f"payload is not standard padded base64: {e}")
    need(env["signatures"], "no signatures")
    for s in env["signatures"]:
        need(set(s) == {"keyid", "sig"} and s["keyid"], "signature without keyid")
        base64.b64decode(s["sig"], validate=True)
    if keys_path:
        verify_signature(env, keys_path)
    text = payload.decode("utf-8")
    # Strict protobuf parse: any unknown field fails.
    pb = json_format.Parse(text, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    st = json.loads(text)
    check_names(st)
    subjects = descriptors(st["subject"], "subject")
    for name, rd in subjects.items():
        check_digest(rd.get("digest"), f"subject {name}")
    pred = st["predicate"]
    summary = {"predicateType": st["predicateType"],
               "subjects": {n: rd["digest"] for n, rd in subjects.items()
                            if not rd.get("annotations", {}).get("totofs_subject")}}
    if kind == "link":
        need(st["predicateType"] == LINK_TYPE, f"predicateType {st['predicateType']}")
        json_format.ParseDict(pred, link_pb2.Link())
        need(isinstance(pred.get("name"), str) and pred["name"], "link predicate has no name")
        need(isinstance(pred.get("command"), list), "link predicate has no command list")
        need("products" not in pred and "_type" not in pred, "legacy link fields in the predicate")
        mats = descriptors(pred.get("materials", []), "materials")
        summary["materials"] = {n: rd["digest"] for n, rd in mats.items()}
        summary["name"] = pred["name"]
        summary["command"] = pred["command"]
    elif kind == "provenance":
        need(st["predicateType"] == PROVENANCE_TYPE, f"predicateType {st['predicateType']}")
        json_format.ParseDict(pred, provenance_pb2.Provenance())
        bd, rd = pred.get("buildDefinition", {}), pred.get("runDetails", {})
        need(isinstance(bd.get("buildType"), str) and re.match("^[a-z][a-z0-9+.-]*://", bd["buildType"]),
             "buildDefinition.buildType is not a URI")
        need(isinstance(bd.get("externalParameters"), dict) and bd["externalParameters"],
             "buildDefinition.externalParameters missing")
        need(isinstance(rd.get("builder", {}).get("id"), str) and ":" in rd["builder"]["id"],
             "runDetails.builder.id missing")
        md = rd.get("metadata", {})
        need(md.get("invocationId"), "runDetails.metadata.invocationId missing")
        check_time(md.get("startedOn"), "startedOn")
        check_time(md.get("finishedOn"), "finishedOn")
        need(md["startedOn"] <= md["finishedOn"], "finishedOn before startedOn")
        deps = descriptors(bd.get("resolvedDependencies", []), "resolvedDependencies", named=False)
        descriptors(rd.get("byproducts", []), "byproducts")
        summary["files"] = {n: d["digest"] for n, d in deps.items()
                            if d.get("annotations", {}).get("totofs_dependencyKind") != "tool"}
        summary["tools"] = sorted(n for n, d in deps.items()
                                  if d.get("annotations", {}).get("totofs_dependencyKind") == "tool")
        summary["externalParameters"] = bd["externalParameters"]
        summary["internalParameters"] = bd.get("internalParameters", {})
        summary["builder"] = rd["builder"]["id"]
        summary["byproducts"] = {d["name"]: d["digest"] for d in rd.get("byproducts", [])}
    else:
        raise Bad(f"unknown kind {kind!r}")
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    try:
        main(*sys.argv[1:4])
    except Exception as e:  # one line naming the file, non-zero exit
        print(f"{sys.argv[2]}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
