"""DKIM keys and signatures with dkimpy, a third-party implementation.

usage:
  dkim_tool.py keygen rsa|ed25519 KEYFILE
      makes a key (RSA-2048 with openssl, Ed25519 with PyNaCl), writes the
      private key to KEYFILE and prints the DNS TXT value to publish
      (RFC 6376 §3.6.1, RFC 8463 §4).
  dkim_tool.py sign rsa|ed25519 KEYFILE DOMAIN SELECTOR FILE
      rewrites FILE with a DKIM-Signature (relaxed/relaxed) prepended.
  dkim_tool.py arc KEYFILE DOMAIN SELECTOR FILE
      rewrites FILE with an ARC set (RFC 8617: ARC-Seal,
      ARC-Message-Signature, ARC-Authentication-Results; RSA) prepended, as
      a forwarder whose authserv-id is DOMAIN would add it; FILE must carry
      that forwarder's Authentication-Results (dkimpy needs authres).
"""
import base64, subprocess, sys

import dkim

def keygen(alg, keyfile):
    if alg == "rsa":
        subprocess.run(["openssl", "genrsa", "-out", keyfile, "2048"], check=True,
                       capture_output=True)
        der = subprocess.run(["openssl", "rsa", "-in", keyfile, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        print("v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())
    else:
        import nacl.signing
        key = nacl.signing.SigningKey.generate()
        with open(keyfile, "wb") as f:
            f.write(base64.b64encode(bytes(key)))
        print("v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(key.verify_key)).decode())

def sign(alg, keyfile, domain, selector, path):
    with open(path, "rb") as f:
        message = f.read()
    with open(keyfile, "rb") as f:
        key = f.read()
    sig = dkim.sign(message, selector.encode(), domain.encode(), key,
                    signature_algorithm=b"rsa-sha256" if alg == "rsa" else b"ed25519-sha256",
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    with open(path, "wb") as f:
        f.write(sig + message)

def arc(keyfile, domain, selector, path):
    with open(path, "rb") as f:
        message = f.read()
    with open(keyfile, "rb") as f:
        key = f.read()
    headers = dkim.arc_sign(message, selector.encode(), domain.encode(), key, domain.encode(),
                            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    if not headers:
        sys.exit("arc_sign made nothing")
    with open(path, "wb") as f:
        f.write(b"".join(headers) + message)

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "keygen":
        keygen(sys.argv[2], sys.argv[3])
    elif cmd == "sign":
        sign(*sys.argv[2:7])
    elif cmd == "arc":
        arc(*sys.argv[2:6])
    else:
        sys.exit("unknown command " + cmd)
