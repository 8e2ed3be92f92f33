"""psycopg over TLS, in every libpq sslmode, against Switchyard with a [tls] table.

Run by integration/drivers/run.sh with DRIVERS_TLS=1 (see .ci/run):
    DRIVERS_TLS=1 integration/drivers/run.sh --exec \
        integration/drivers/python/.venv/bin/python integration/drivers/python/tls_modes.py

SUITE_SSLROOTCERT names the CA that signed the certificate of Switchyard (and of the
servers, which Switchyard reaches with server_tls = "verify-full"). Checks, for each mode:
whether the client connection uses TLS, that queries work, and that the server connection
behind it uses TLS too (pg_stat_ssl); then SCRAM channel binding (channel_binding=require
over TLS works, without TLS it is refused by the client), and verify-full by host name.
Exits non-zero on the first mismatch.
"""

import os
import sys

import psycopg

HOST = os.environ.get("SUITE_HOST", "127.0.0.1")
PORT = int(os.environ["SUITE_PORT"])
USER = os.environ["SUITE_USER"]
PASSWORD = os.environ["SUITE_PASSWORD"]
DB = os.environ["SUITE_DB"]
ROOT = os.environ["SUITE_SSLROOTCERT"]

# mode -> whether the client connection must use TLS
MODES = {"disable": False, "allow": False, "prefer": True, "require": True,
         "verify-ca": True, "verify-full": True}


def connect(**extra):
    return psycopg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=DB,
                           sslrootcert=ROOT, connect_timeout=10, autocommit=True, **extra)


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {what}: {got!r}")


def main():
    for mode, tls in MODES.items():
        with connect(sslmode=mode) as conn:
            check(f"sslmode={mode}: client TLS", conn.pgconn.ssl_in_use, tls)
            check(f"sslmode={mode}: query", conn.execute("SELECT 41 + 1").fetchone()[0], 42)
            server_tls = conn.execute(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
            check(f"sslmode={mode}: server connection TLS", server_tls, True)
    with connect(sslmode="verify-full", channel_binding="require") as conn:
        check("channel_binding=require over TLS", conn.execute("SELECT 1").fetchone()[0], 1)
    try:
        connect(sslmode="disable", channel_binding="require").close()
        check("channel_binding=require without TLS", "connected", "refused")
    except psycopg.OperationalError as e:
        check("channel_binding=require without TLS", "refused", "refused")
        print(f"     ({str(e).strip().splitlines()[-1]})")
    with psycopg.connect(host="localhost", port=PORT, user=USER, password=PASSWORD, dbname=DB,
                         sslmode="verify-full", sslrootcert=ROOT, connect_timeout=10) as conn:
        check("verify-full with host name localhost", conn.pgconn.ssl_in_use, True)
    print("tls_modes: all passed")


if __name__ == "__main__":
    main()
