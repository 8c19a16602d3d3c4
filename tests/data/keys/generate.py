"""Regenerate the Python-side expectations for the key fixtures (run with in-toto 3.1.0's venv).

The PEM fixtures were made with OpenSSL 3 (see README.txt); this computes, with
securesystemslib and cryptography, the keyid and key dict in-toto 3.x derives for each, writes
the legacy JSON key dicts, and an RSA-PSS signed link whose salt is as long as the key allows
(Python accepts any salt length; in-toto signs with 32).
"""
import json
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import SSlibKey

PRIVATE = {
    "rsa_pkcs1.pem": None, "rsa_pkcs1_aes128.pem": b"hunter2", "rsa_pkcs1_des3.pem": b"hunter2",
    "rsa_pbes2_scrypt.pem": b"hunter2", "rsa_pkcs12_sha1_3des.pem": b"hunter2", "ec_sec1.pem": None, "ec_sec1_aes256.pem": b"hunter2",
    "p384_private.pem": None, "p521_private.pem": None, "p384_pbes2_des3_sha1.pem": b"hunter2",
}
PUBLIC = ["rsa_public.pem", "rsa_pkcs1_public.pem", "ec_public.pem", "ec_public_compressed.pem", "p384_public.pem", "p521_public.pem"]

out = {}
for name, pw in PRIVATE.items():
    k = load_pem_private_key(open(name, "rb").read(), pw)
    out[name] = SSlibKey.from_crypto(k.public_key()).keyid
# cryptography cannot decrypt PBES1 pbeWithSHA1AndDES-CBC; the file holds the key of ec_sec1.pem.
out["ec_pbes1_sha1_des.pem"] = out["ec_sec1.pem"]
# Nor PKCS#12 pbeWithSHAAnd2-KeyTripleDES-CBC.
out["ec_pkcs12_sha1_2des.pem"] = out["ec_sec1.pem"]
for name in PUBLIC:
    key = SSlibKey.from_crypto(load_pem_public_key(open(name, "rb").read()))
    d = key.to_dict(); d["keyid"] = key.keyid
    out[name] = key.keyid
    out[name + ":dict"] = d
json.dump(out, open("keyids.json", "w"), indent=1, sort_keys=True)

# Legacy securesystemslib ed25519 key files (in-toto <= 2.x), from the interop test key.
seed = load_pem_private_key(open("../interop/pems/ed25519_private_unencrypted.pem", "rb").read(), None)
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption
priv = seed.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
pub = seed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
legacy = {"keytype": "ed25519", "scheme": "ed25519", "keyid_hash_algorithms": ["sha256", "sha512"],
          "keyval": {"public": pub}}
import hashlib
keyid = hashlib.sha256(encode_canonical(legacy).encode()).hexdigest()
json.dump({**legacy, "keyid": keyid, "keyval": {"public": pub, "private": priv}},
          open("ed25519_legacy_private.json", "w"))
json.dump({**legacy, "keyid": keyid, "keyval": {"public": pub, "private": ""}},
          open("ed25519_legacy_public.json", "w"))

# A Metablock link signed with RSA-PSS and the longest salt the key allows.
k = load_pem_private_key(open("rsa_pkcs1.pem", "rb").read(), None)
keyid = out["rsa_pkcs1.pem"]
signed = {"_type": "link", "name": "max-salt", "command": [], "materials": {}, "products": {},
          "byproducts": {}, "environment": {}}
sig = k.sign(encode_canonical(signed).encode(),
             padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256())
json.dump({"signatures": [{"keyid": keyid, "sig": sig.hex()}], "signed": signed},
          open(f"max-salt.{keyid[:8]}.link", "w"), indent=1, sort_keys=True)
