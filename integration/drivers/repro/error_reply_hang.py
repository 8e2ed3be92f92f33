"""Repro: under load, a client sometimes never gets the ReadyForQuery that follows an
ErrorResponse: it waits forever, and its server connection stays checked out. Postgres
flushes an ErrorResponse at once and sends ReadyForQuery in a second segment; the hang
needs that second segment to arrive right after Switchyard's read of the first.

N connections (default 100) each run a failing statement ITER times (default 2000); a
connection that makes no progress for 20 s is reported (a statement waits at most
checkout_timeout_ms = 5 s for a server, twice if a replica checkout falls back to the
primary). Once a few connections hang, they hold pooled server connections for good, and
the others slow down to a trickle. Directly against Postgres, or with successful
statements, no connection stalls.

Run: integration/drivers/run.sh --exec integration/drivers/python/.venv/bin/python \
       integration/drivers/repro/error_reply_hang.py
Exit status 1 on a hang.
"""
import os
import sys
import threading
import time

import psycopg

dsn = (f"host={os.environ.get('SUITE_HOST', '127.0.0.1')} port={os.environ['SUITE_PORT']} "
       "user=app password=app_pw dbname=app sslmode=disable")
N, ITER = int(os.environ.get("N", 100)), int(os.environ.get("ITER", 2000))
progress = [0] * N


def work(k):
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            for _ in range(ITER):
                try:
                    c.execute("SELECT 1/0")
                except psycopg.errors.DivisionByZero:
                    pass
                progress[k] += 1
    except psycopg.Error as e:  # e.g. 53300 once hung clients hold the whole pool
        print(f"connection {k}: {e.sqlstate} {str(e).splitlines()[0]}", flush=True)


threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(N)]
t0 = time.time()
for t in threads:
    t.start()
STALL = 20
changed = [time.time()] * N
last = list(progress)
while any(t.is_alive() for t in threads):
    time.sleep(1)
    now, snap = time.time(), list(progress)
    for k in range(N):
        if snap[k] != last[k]:
            changed[k] = now
    last = snap
    stuck = [k for k in range(N) if threads[k].is_alive() and now - changed[k] >= STALL]
    if stuck:
        print(f"BUG: connections {stuck} made no progress for {STALL} s (after "
              f"{[snap[k] for k in stuck]} statements), {now - t0:.0f}s into the run",
              flush=True)
        os._exit(1)
print(f"OK: no hang, {sum(progress)} failing statements in {time.time() - t0:.1f}s", flush=True)
os._exit(0)
