"""Drives Postgate's LDAP server with Python's ldap3 and checks every answer.

usage: ldap_suite.py PORT LDAPS_PORT BASE
Expects the directory of tests/ldap.rs: alice (password "secret"), bob,
carol, dave, erin at example.org, group team@example.org of alice and bob.
Prints one line per check; exits non-zero on the first failure.
"""
import ssl, sys
import ldap3
from ldap3.core.exceptions import LDAPException

port, ldaps_port, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
people = "ou=People," + base
alice_dn = "uid=alice," + people
tls = ldap3.Tls(validate=ssl.CERT_NONE)

def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    print(f"ok {name}")

def server(p=port, ssl_=False):
    return ldap3.Server("127.0.0.1", port=p, use_ssl=ssl_, tls=tls, get_info=ldap3.NONE, connect_timeout=10)

# Anonymous search, attribute selection, typesOnly.
c = ldap3.Connection(server(), auto_bind=True, receive_timeout=10)
c.search(base, "(uid=alice)", attributes=["cn", "mail", "telephoneNumber"])
check("anonymous search", len(c.entries) == 1 and c.entries[0].cn.value == "Alice Smith", c.entries)
check("public attributes only", not c.response[0]["raw_attributes"].get("telephoneNumber"), c.response[0])
c.search(base, "(uid=alice)", attributes=["1.1"])
check("1.1 returns no attributes", len(c.response) == 1 and not any(c.response[0]["raw_attributes"].values()), c.response)
c.search(base, "(uid=alice)", attributes=["cn"], types_only=True)
check("typesOnly", "cn" in c.response[0]["raw_attributes"] and not c.response[0]["raw_attributes"]["cn"], c.response)
c.search(alice_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["+"])
attrs = c.response[0]["attributes"]
check("operational attributes with +", attrs.get("entryDN") == [alice_dn] and "cn" not in attrs, attrs)

# Who am I, compare, refused writes, abandon.
check("whoami anonymous", c.extend.standard.who_am_i() in (None, "", b""), c.result)
check("compare true", c.compare(alice_dn, "mail", "ALICE@example.org") is True, c.result)
check("compare false", c.compare(alice_dn, "sn", "Jones") is False, c.result)
check("add refused", not c.add("cn=x," + base, ["top", "person"], {"cn": "x", "sn": "x"}) and c.result["result"] == 53, c.result)
check("modify refused", not c.modify(alice_dn, {"sn": [(ldap3.MODIFY_REPLACE, ["X"])]}) and c.result["result"] == 53, c.result)
check("delete refused", not c.delete(alice_dn) and c.result["result"] == 53, c.result)
check("modrdn refused", not c.modify_dn(alice_dn, "uid=alicia") and c.result["result"] == 53, c.result)
mid = c.search(base, "(objectClass=*)", attributes=["cn"])
c.abandon(0)
check("abandon of nothing is harmless", c.search(base, "(uid=bob)") and len(c.entries) == 1, c.result)
c.unbind()

# Binds: over StartTLS by DN and by mail; bad password; no password in clear text.
c = ldap3.Connection(server(), user=alice_dn, password="secret", receive_timeout=10)
c.open(); c.start_tls()
check("StartTLS + bind by DN", c.bind(), c.result)
check("whoami after bind", c.extend.standard.who_am_i() == "dn:" + alice_dn, c.extend.standard.who_am_i())
c.search(base, "(uid=alice)", attributes=["telephoneNumber"])
check("bound users see every attribute", c.entries[0].telephoneNumber.value == "+1 555 0100", c.entries)
c.unbind()
c = ldap3.Connection(server(ldaps_port, True), user="alice@example.org", password="secret", receive_timeout=10)
check("LDAPS + bind by mail", c.bind(), c.result)
c.unbind()
c = ldap3.Connection(server(), user=alice_dn, password="wrong", receive_timeout=10)
c.open(); c.start_tls()
check("invalidCredentials", not c.bind() and c.result["result"] == 49, c.result)
c.unbind()
c = ldap3.Connection(server(), user=alice_dn, password="secret", receive_timeout=10)
check("confidentialityRequired without TLS", not c.bind() and c.result["result"] == 13, c.result)
c.unbind()

# Paged results (RFC 2696) through ldap3's generator.
c = ldap3.Connection(server(), auto_bind=True, receive_timeout=10)
entries = list(c.extend.standard.paged_search(base, "(objectClass=inetOrgPerson)", attributes=["uid"], paged_size=2, generator=True))
uids = sorted(e["attributes"]["uid"][0] for e in entries if e["type"] == "searchResEntry")
check("paged search", uids == ["alice", "bob", "carol", "dave", "erin"], uids)

# Size limit.
c.search(base, "(objectClass=inetOrgPerson)", attributes=["uid"], size_limit=2)
check("sizeLimitExceeded", len(c.entries) == 2 and c.result["result"] == 4, c.result)

# VLV (draft-ietf-ldapext-ldapv3-vlv-09) with a server-side sort (RFC 2891),
# the way Outlook browses: before 1, after 1, target offset 3 of 0.
def ber_int(n):
    b = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
    return bytes([2, len(b)]) + b
def seq(tag, content):
    return bytes([tag, len(content)]) + content
sort_value = seq(0x30, seq(0x30, bytes([4, 2]) + b"sn"))
vlv_value = seq(0x30, ber_int(1) + ber_int(1) + seq(0xA0, ber_int(3) + ber_int(0)))
c.search(base, "(objectClass=inetOrgPerson)", attributes=["sn"],
         controls=[("1.2.840.113556.1.4.473", True, sort_value), ("2.16.840.1.113730.3.4.9", True, vlv_value)])
sns = [e.sn.value for e in c.entries]
# Surnames: Brown (carol), Davis (dave), Evans (erin), Jones (bob), Smith (alice).
check("VLV window around offset 3", sns == ["Davis", "Evans", "Jones"], sns)
ctrl = c.result.get("controls", {}).get("2.16.840.1.113730.3.4.10")
raw = ctrl["value"] if ctrl else b""
check("VLV response control", raw[:2] == b"\x30\x09" and raw[2:5] == b"\x02\x01\x03" and raw[5:8] == b"\x02\x01\x05", raw)
c.search(base, "(objectClass=inetOrgPerson)", attributes=["sn"],
         controls=[("2.16.840.1.113730.3.4.9", True, vlv_value)])
vlv = c.result.get("controls", {}).get("2.16.840.1.113730.3.4.10", {}).get("value", b"")
check("VLV without sort refused", c.result["result"] == 53 and vlv.endswith(b"\x0a\x01\x3c"), c.result)
c.unbind()
print("ALL OK")
