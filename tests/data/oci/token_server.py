"""A Docker registry token server for the Bearer tests (the protocol of distribution's
docs/spec/auth/token.md): issues RS256 JWTs signed by a self-signed certificate it writes to
the path given as argv[1] (the registry's rootcertbundle). Grants the requested scope to
alice:s3cret-pass, nothing to anyone else. Prints its port on stdout once listening."""
import base64, datetime, http.server, json, os, sys, time, urllib.parse
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ISSUER, SERVICE = "totofs-test-issuer", "totofs-test-registry"
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "totofs test token issuer")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
with open(sys.argv[1], "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def token(access):
    header = {"alg": "RS256", "typ": "JWT", "x5c": [x5c]}
    t = int(time.time())
    claims = {"iss": ISSUER, "sub": "alice", "aud": SERVICE, "exp": t + 300, "nbf": t - 10, "iat": t,
              "jti": b64url(os.urandom(12)), "access": access}
    signing = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    return signing.decode() + "." + b64url(key.sign(signing, padding.PKCS1v15(), hashes.SHA256()))

GOOD = "Basic " + base64.b64encode(b"alice:s3cret-pass").decode()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        access = []
        if self.headers.get("Authorization") == GOOD and q.get("service") == [SERVICE]:
            for scope in q.get("scope", []):
                kind, repo, actions = scope.split(":")
                access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        body = json.dumps({"token": token(access), "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
