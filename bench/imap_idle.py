#!/usr/bin/env python3
"""Holds N concurrent IMAP connections in IDLE and reports the server's memory.

usage: imap_idle.py HOST IMAP_PORT SMTP_PORT PID [--conns 10000] [--users 100]
       [--secs 20] [--tls]

Each connection logs in as userK@example.test (password "pass"), SELECTs INBOX
and sends IDLE. With all of them idling, the server's resident memory (VmRSS of
PID) is read and compared with before; then one message per user is delivered
over SMTP and the script counts the IDLE sessions that receive EXISTS within
--secs. With --tls, IMAP_PORT is an implicit-TLS (IMAPS, RFC 8314) port and
every connection, the warm-up's too, speaks TLS (the server's certificate is
not checked: loopback). Bounded: at most --conns connections, all closed at the end.
Prints one line:
  imap_idle conns=N idle=I rss_before_kib=A rss_idle_kib=B per_conn_bytes=X woken=W wake_secs=S
"""
import argparse, asyncio, smtplib, ssl, sys, time

p = argparse.ArgumentParser()
p.add_argument("host"); p.add_argument("port", type=int); p.add_argument("smtp", type=int)
p.add_argument("pid", type=int)
p.add_argument("--conns", type=int, default=10000)
p.add_argument("--users", type=int, default=100)
p.add_argument("--secs", type=float, default=20)
p.add_argument("--tls", action="store_true")
a = p.parse_args()
TLS = None
if a.tls:
    TLS = ssl.create_default_context()
    TLS.check_hostname = False
    TLS.verify_mode = ssl.CERT_NONE
assert a.host.startswith("127.") or a.host == "::1", "loopback only"
assert a.conns <= 20000


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def expect(reader, tag):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line.startswith(tag):
            if b" OK" not in line[:len(tag) + 4]:
                raise RuntimeError(line)
            return


class Idler:
    def __init__(self, i):
        self.i = i
        self.woken = asyncio.Event()

    async def start(self):
        self.r, self.w = await asyncio.open_connection(a.host, a.port, limit=1 << 16, ssl=TLS)
        await self.r.readline()
        user = f"user{self.i % a.users + 1}@example.test"
        self.w.write(f"a LOGIN {user} pass\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
        await expect(self.r, b"a ")
        await expect(self.r, b"b ")
        line = await self.r.readline()
        if not line.startswith(b"+"):
            raise RuntimeError(line)

    async def wait(self):
        while True:
            line = await self.r.readline()
            if not line:
                return
            if line.endswith(b"EXISTS\r\n"):
                self.woken.set()
                return

    async def stop(self):
        try:
            self.w.write(b"DONE\r\nd LOGOUT\r\n")
            await asyncio.wait_for(self.w.drain(), 2)
        except Exception:
            pass
        self.w.close()


async def warm_up():
    # Log every user in once first: password checks (argon2id, ~19 MiB each)
    # then sit in the auth cache and the allocator, not in the figure below.
    for u in range(1, a.users + 1):
        r, w = await asyncio.open_connection(a.host, a.port, ssl=TLS)
        await r.readline()
        w.write(f"a LOGIN user{u}@example.test pass\r\nb LOGOUT\r\n".encode())
        await expect(r, b"a ")
        w.close()
    await asyncio.sleep(1)


async def main():
    await warm_up()
    before = rss_kib(a.pid)
    idlers = [Idler(i) for i in range(a.conns)]
    sem = asyncio.Semaphore(200)   # connection ramp: bounded concurrency of setup

    async def start(x):
        async with sem:
            try:
                await x.start()
                return True
            except Exception as e:
                print("setup failed:", e, file=sys.stderr)
                return False
    ok = await asyncio.gather(*(start(x) for x in idlers))
    live = [x for x, good in zip(idlers, ok) if good]
    await asyncio.sleep(2)
    idle_rss = rss_kib(a.pid)
    waiters = [asyncio.create_task(x.wait()) for x in live]
    t0 = time.time()
    with smtplib.SMTP(a.host, a.smtp) as s:
        for u in range(1, a.users + 1):
            s.sendmail("bench@remote.test", [f"user{u}@example.test"], b"Subject: wake\r\n\r\nwake up\r\n")
    deadline = t0 + a.secs
    while time.time() < deadline and not all(x.woken.is_set() for x in live):
        await asyncio.sleep(0.05)
    wake = time.time() - t0
    woken = sum(1 for x in live if x.woken.is_set())
    for t in waiters:
        t.cancel()
    await asyncio.gather(*(x.stop() for x in live), return_exceptions=True)
    per = (idle_rss - before) * 1024 / max(1, len(live))
    print(f"imap_idle tls={int(a.tls)} conns={a.conns} idle={len(live)} rss_before_kib={before} rss_idle_kib={idle_rss} "
          f"per_conn_bytes={per:.0f} woken={woken} wake_secs={wake:.2f}")

asyncio.run(main())
