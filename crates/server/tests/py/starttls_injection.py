"""RFC 3207 §4.2: commands pipelined after STARTTLS in cleartext must be discarded.

usage: starttls_injection.py PORT
Sends "STARTTLS\r\nRSET\r\n" in one write, upgrades, then sends EHLO under TLS and
prints the first reply line seen under TLS.
"""
import socket, ssl, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")
f.readline()  # greeting
s.sendall(b"EHLO x\r\n")
while True:
    l = f.readline()
    if l[3:4] == b" ":
        break
s.sendall(b"STARTTLS\r\nRSET\r\n")
print("starttls:", f.readline().decode().strip())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"EHLO y\r\n")
tf = t.makefile("rb")
print("first:", tf.readline().decode().strip())
