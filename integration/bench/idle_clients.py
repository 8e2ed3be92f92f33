#!/usr/bin/env python3
"""Open N idle, authenticated PostgreSQL client connections and hold them.

Used by integration/bench/compare.sh to measure a pooler's memory per idle
client. Standard library only: speaks the v3 startup packet and answers
cleartext, md5 or SCRAM-SHA-256 authentication, then waits for
ReadyForQuery and keeps the socket open without sending anything else.

    idle_clients.py --host 127.0.0.1 --port 6432 --user app --password app_pw \
        --dbname app --clients 5000 [--concurrency 64] [--timeout 60]

Prints one line to stdout once every connection is either ready or failed:

    READY <ok> FAILED <failed> SECONDS <elapsed>

(plus up to 5 "ERROR ..." lines to stderr describing failures), then holds
the connections until it gets SIGTERM or SIGINT, closes them with a
Terminate message and exits 0 (1 if any connection failed).
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import signal
import struct
import sys
import time

PROTOCOL_V3 = 196608

# Salted passwords by (password, salt, iterations): every client of a pooler
# sees the same salt, so PBKDF2 runs once instead of once per connection.
_SALTED = {}


class AuthError(Exception):
    pass


def _msg(tag, payload):
    return tag + struct.pack("!I", len(payload) + 4) + payload


async def _read_msg(reader):
    head = await reader.readexactly(5)
    tag = head[:1]
    (length,) = struct.unpack("!I", head[1:])
    if length < 4 or length > 1 << 24:
        raise AuthError("bad message length %d" % length)
    return tag, await reader.readexactly(length - 4)


def _error_text(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode("utf-8", "replace")
    return "%s %s: %s" % (fields.get(b"S", "?"), fields.get(b"C", "?"), fields.get(b"M", "?"))


def _salted_password(password, salt, iterations):
    key = (password, salt, iterations)
    sp = _SALTED.get(key)
    if sp is None:
        sp = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        _SALTED[key] = sp
    return sp


async def _scram(reader, writer, password, mechanisms):
    if "SCRAM-SHA-256" not in mechanisms:
        raise AuthError("server offers no SCRAM-SHA-256 (offers %s)" % mechanisms)
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=,r=" + nonce
    first = ("n,," + first_bare).encode()
    writer.write(_msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
    await writer.drain()
    tag, body = await _read_msg(reader)
    if tag == b"E":
        raise AuthError(_error_text(body))
    if tag != b"R" or struct.unpack("!I", body[:4])[0] != 11:
        raise AuthError("expected SASLContinue, got %r" % tag)
    server_first = body[4:].decode()
    attrs = dict(item.split("=", 1) for item in server_first.split(","))
    if not attrs.get("r", "").startswith(nonce):
        raise AuthError("server nonce does not extend ours")
    salt = base64.b64decode(attrs["s"])
    iterations = int(attrs["i"])
    salted = _salted_password(password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_bare = "c=biws,r=" + attrs["r"]
    auth_message = ",".join((first_bare, server_first, final_bare)).encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = final_bare + ",p=" + base64.b64encode(proof).decode()
    writer.write(_msg(b"p", final.encode()))
    await writer.drain()
    tag, body = await _read_msg(reader)
    if tag == b"E":
        raise AuthError(_error_text(body))
    if tag != b"R" or struct.unpack("!I", body[:4])[0] != 12:
        raise AuthError("expected SASLFinal, got %r" % tag)
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expected = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    got = dict(item.split("=", 1) for item in body[4:].decode().split(","))
    if base64.b64decode(got.get("v", "")) != expected:
        raise AuthError("bad server signature")


async def connect_one(args):
    reader, writer = await asyncio.open_connection(args.host, args.port)
    params = b"user\0" + args.user.encode() + b"\0database\0" + args.dbname.encode() + b"\0"
    params += b"application_name\0idle_clients\0\0"
    body = struct.pack("!I", PROTOCOL_V3) + params
    writer.write(struct.pack("!I", len(body) + 4) + body)
    await writer.drain()
    while True:
        tag, body = await _read_msg(reader)
        if tag == b"E":
            raise AuthError(_error_text(body))
        if tag == b"Z":
            return reader, writer
        if tag != b"R":
            continue  # ParameterStatus, BackendKeyData, NoticeResponse
        (code,) = struct.unpack("!I", body[:4])
        if code == 0:
            continue
        if code == 3:
            writer.write(_msg(b"p", args.password.encode() + b"\0"))
        elif code == 5:
            inner = hashlib.md5((args.password + args.user).encode()).hexdigest()
            outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
            writer.write(_msg(b"p", b"md5" + outer.encode() + b"\0"))
        elif code == 10:
            mechs = [m.decode() for m in body[4:].split(b"\0") if m]
            await _scram(reader, writer, args.password, mechs)
            continue
        else:
            raise AuthError("unsupported authentication request %d" % code)
        await writer.drain()


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="app")
    p.add_argument("--password", default="app_pw")
    p.add_argument("--dbname", default="app")
    p.add_argument("--clients", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=64, help="handshakes in flight")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per connection")
    args = p.parse_args()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sem = asyncio.Semaphore(args.concurrency)
    conns = []
    errors = []

    async def one():
        async with sem:
            try:
                conns.append(await asyncio.wait_for(connect_one(args), args.timeout))
            except Exception as e:  # noqa: BLE001 - report any failure
                errors.append("%s: %s" % (type(e).__name__, e))

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(args.clients)))
    elapsed = time.monotonic() - t0
    for e in errors[:5]:
        print("ERROR " + e, file=sys.stderr)
    print("READY %d FAILED %d SECONDS %.1f" % (len(conns), len(errors), elapsed), flush=True)

    # Hold until a signal arrives; idle sockets are not read.
    await stop.wait()
    for _, writer in conns:
        try:
            writer.write(_msg(b"X", b""))
            writer.close()
        except Exception:  # noqa: BLE001
            pass
    await asyncio.sleep(0.2)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
