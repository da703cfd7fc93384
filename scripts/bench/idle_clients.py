#!/usr/bin/env python3
"""Open N PostgreSQL client connections that log in and then sit idle; measure a proxy's RSS.

Each connection sends a StartupMessage, answers the authentication request (trust, cleartext,
md5 or SCRAM-SHA-256) and waits for ReadyForQuery. The connections are spread over several
worker processes (--procs) so that no single process runs into its file-descriptor limit.
When every connection is ready (or --timeout passes), the proxy's VmRSS is read from
/proc/PID/status, then all connections are closed. Prints one line of key=value pairs:

  clients=10000 ready=10000 failed=0 rss_before_kib=... rss_after_kib=... kib_per_client=...

Exit status 0 when every connection reached ReadyForQuery, 1 otherwise. Standard library only.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import multiprocessing as mp
import os
import resource
import struct
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def message(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


class Scram:
    """SCRAM-SHA-256 client; the salted password is cached across connections."""

    cache = {}

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def initial(self):
        data = ("n,," + self.first_bare).encode()
        return b"SCRAM-SHA-256\0" + struct.pack("!i", len(data)) + data

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        key = (attrs["s"], iters)
        if key not in Scram.cache:
            Scram.cache[key] = hashlib.pbkdf2_hmac("sha256", self.password, salt, iters)
        salted = Scram.cache[key]
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth = f"{self.first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(stored, auth, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


async def login(args):
    """Returns (reader, writer) of a connection at ReadyForQuery; raises on any failure."""
    reader, writer = await asyncio.open_connection(args.host, args.port)
    params = f"user\0{args.user}\0database\0{args.database}\0application_name\0idle_clients\0\0"
    body = struct.pack("!i", 196608) + params.encode()
    writer.write(struct.pack("!i", len(body) + 4) + body)
    scram = None
    while True:
        head = await reader.readexactly(5)
        kind, length = head[:1], struct.unpack("!I", head[1:])[0]
        payload = await reader.readexactly(length - 4)
        if kind == b"R":
            code = struct.unpack("!i", payload[:4])[0]
            if code == 3:  # cleartext
                writer.write(message(b"p", args.password.encode() + b"\0"))
            elif code == 5:  # md5
                inner = hashlib.md5((args.password + args.user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + payload[4:8]).hexdigest()
                writer.write(message(b"p", b"md5" + outer.encode() + b"\0"))
            elif code == 10:  # SASL
                scram = Scram(args.password)
                writer.write(message(b"p", scram.initial()))
            elif code == 11:  # SASLContinue
                writer.write(message(b"p", scram.final(payload[4:].decode())))
            elif code not in (0, 12):  # 0 = AuthenticationOk, 12 = SASLFinal
                raise RuntimeError(f"unsupported authentication request {code}")
        elif kind == b"E":
            fields = dict((f[:1], f[1:]) for f in payload.split(b"\0") if f)
            raise RuntimeError(f"{fields.get(b'C', b'').decode()} {fields.get(b'M', b'').decode()}")
        elif kind == b"Z":
            return reader, writer
        # ParameterStatus, BackendKeyData, NoticeResponse, NegotiateProtocolVersion: ignored


async def worker_main(args, count, conn):
    sem = asyncio.Semaphore(args.concurrency)
    open_writers, errors = [], []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout

    async def one():
        async with sem:
            try:
                _, writer = await asyncio.wait_for(login(args), max(0.1, deadline - loop.time()))
                open_writers.append(writer)
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                errors.append(f"{type(e).__name__}: {e}")

    await asyncio.gather(*(one() for _ in range(count)))
    conn.send((len(open_writers), errors[:3]))
    await loop.run_in_executor(None, conn.recv)  # hold until told to close
    for w in open_writers:
        w.close()


def worker(args, count, conn):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        asyncio.run(worker_main(args, count, conn))
    except Exception as e:  # noqa: BLE001
        conn.send((0, [f"worker: {type(e).__name__}: {e}"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--procs", type=int, default=4, help="worker processes")
    p.add_argument("--concurrency", type=int, default=64, help="logins in flight per worker")
    p.add_argument("--user", default="postgres")
    p.add_argument("--database", default="postgres")
    p.add_argument("--password", default=os.environ.get("PGPASSWORD", ""))
    p.add_argument("--pid", type=int, help="process whose VmRSS is measured")
    p.add_argument("--timeout", type=float, default=120, help="seconds for all logins")
    p.add_argument("--settle", type=float, default=2, help="seconds idle before measuring")
    args = p.parse_args()

    procs = max(1, min(args.procs, args.count))
    shares = [args.count // procs + (1 if i < args.count % procs else 0) for i in range(procs)]
    before = rss_kib(args.pid) if args.pid else None
    started = time.monotonic()
    ctx = mp.get_context("fork")
    workers = []
    for share in shares:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(args, share, child), daemon=True)
        proc.start()
        workers.append((proc, parent))
    ready, errors = 0, []
    for proc, parent in workers:
        try:
            r, e = parent.recv() if parent.poll(args.timeout + 30) else (0, ["worker did not report"])
        except EOFError:
            r, e = 0, ["worker exited"]
        ready, errors = ready + r, errors + e
    login_s = time.monotonic() - started
    time.sleep(args.settle)
    after = rss_kib(args.pid) if args.pid else None
    for proc, parent in workers:
        try:
            parent.send("close")
        except OSError:
            pass
    for proc, _ in workers:
        proc.join(10)
        if proc.is_alive():
            proc.kill()

    out = {"clients": args.count, "ready": ready, "failed": args.count - ready,
           "login_s": f"{login_s:.1f}"}
    if args.pid:
        out["rss_before_kib"] = before
        out["rss_after_kib"] = after
        out["kib_per_client"] = f"{(after - before) / ready:.2f}" if ready else "nan"
    print(" ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    for e in sorted(set(errors))[:5]:
        print(f"idle_clients: {e}", file=sys.stderr)
    return 0 if ready == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
