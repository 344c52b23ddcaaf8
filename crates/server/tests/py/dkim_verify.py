"""Verifies every DKIM-Signature of a message with dkimpy (RFC 6376, and
RFC 8463 Ed25519 with PyNaCl), asking a DNS server for the keys as any
verifier would.

usage: dkim_verify.py MESSAGE_FILE DNS_PORT
  DNS_PORT: a DNS server on 127.0.0.1 (the testkit's loopback one)
Prints {"signatures": [{"d": ..., "s": ..., "a": ..., "h": ..., "ok": bool,
"error": str|null}, ...], "keys": [TXT texts as looked up]}.
"""
import json, sys
import dkim
import dns.resolver

path, port = sys.argv[1], int(sys.argv[2])
message = open(path, "rb").read()

resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = ["127.0.0.1"]
resolver.port = port
looked_up = []

def dnsfunc(name, timeout=5):
    """TXT of `name` (bytes), its strings joined (RFC 6376 §3.6.2.2)."""
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = resolver.resolve(name, "TXT", lifetime=timeout)
    except Exception:
        return None
    for rr in answer:
        text = b"".join(rr.strings)
        looked_up.append(text.decode())
        return text
    return None

d = dkim.DKIM(message)
sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
out = {"signatures": [], "keys": looked_up}
for i, raw in enumerate(sigs):
    tags = dict(
        (t.strip().split("=", 1) + [""])[:2]
        for t in raw.decode().replace("\r\n", "").split(";") if "=" in t
    )
    entry = {k: tags.get(k, "").strip() for k in ("d", "s", "a", "c", "h")}
    entry["h"] = entry["h"].replace(" ", "").replace("\t", "")
    try:
        entry["ok"] = bool(dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc))
        entry["error"] = None
    except dkim.DKIMException as e:
        entry["ok"] = False
        entry["error"] = str(e)
    out["signatures"].append(entry)
print(json.dumps(out))
