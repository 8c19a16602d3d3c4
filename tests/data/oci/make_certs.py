"""Write a test CA (ca.crt) and a server certificate for 127.0.0.1 signed by it (tls.crt,
tls.key) into the directory argv[1], for the TLS registry test."""
import datetime, ipaddress, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

now = datetime.datetime.now(datetime.timezone.utc)

def build(subject, issuer, public, signer, ca, san=None):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(signer, hashes.SHA256())

out = sys.argv[1]
ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "totofs test CA")])
ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, True)
key = ec.generate_private_key(ec.SECP256R1())
leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, key.public_key(), ca_key,
             False, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
pem = serialization.Encoding.PEM
with open(os.path.join(out, "ca.crt"), "wb") as f:
    f.write(ca.public_bytes(pem))
with open(os.path.join(out, "tls.crt"), "wb") as f:
    f.write(leaf.public_bytes(pem))
with open(os.path.join(out, "tls.key"), "wb") as f:
    f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
