"""Shared bits of the Python driver suites: settings from the environment (set by
integration/drivers/run.sh), value checks and failure bookkeeping."""

import os
import random
import sys
import threading
import time
import traceback

HOST = os.environ.get("SUITE_HOST", "127.0.0.1")
PORT = int(os.environ.get("SUITE_PORT", "6452"))
USER = os.environ.get("SUITE_USER", "app")
PASSWORD = os.environ.get("SUITE_PASSWORD", "app_pw")
DB = os.environ.get("SUITE_DB", "app")
# "direct" (a Postgres server) or "switchyard": only changes a few extra checks that
# are meaningful on a direct connection (e.g. pg_prepared_statements of the session).
TARGET = os.environ.get("SUITE_TARGET", "switchyard")
CLIENTS = int(os.environ.get("SUITE_CLIENTS", "24"))
ITERATIONS = int(os.environ.get("SUITE_ITERATIONS", "60"))
SEED = int(os.environ.get("SUITE_SEED", str(random.randrange(1 << 30))))
# Operations to leave out (comma-separated names, e.g. "pipeline"): a diagnostic aid to see
# what else fails once a known failure is set aside; CI runs everything.
SKIP = {s.strip() for s in os.environ.get("SUITE_SKIP", "").split(",") if s.strip()}
# Seconds after which the suite reports what every connection is doing and fails (a hang
# shows up as the operation that never returned, not just as a kill from outside).
DEADLINE = float(os.environ.get("SUITE_DEADLINE", "240"))


class Mismatch(AssertionError):
    pass


def expect(actual, expected, what):
    if actual != expected:
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}")


def unique_prefix(suite):
    # Unique per run: several runs (direct, then through Switchyard) share a database.
    return f"sy_drv_{suite}_{os.getpid()}_{random.randrange(1 << 24):06x}"


def start_watchdog(suite, status):
    """After DEADLINE seconds: print status() (one line per unfinished worker) and exit 3."""

    def watch():
        time.sleep(DEADLINE)
        lines = status()
        print(f"[{suite}] FAIL: still running after {DEADLINE:.0f}s (hung?); "
              f"{len(lines)} worker(s) not finished:", flush=True)
        for line in lines[:40]:
            print(f"[{suite}]   {line}", flush=True)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


class Failures:
    """Thread-safe list of failures; the first few are printed with their traceback."""

    def __init__(self, suite):
        self.suite = suite
        self.lock = threading.Lock()
        self.items = []

    def add(self, who, exc):
        with self.lock:
            self.items.append((who, exc))
            if len(self.items) <= 5:
                print(f"[{self.suite}] FAILURE in {who}: {type(exc).__name__}: {exc}", flush=True)
                traceback.print_exception(exc, file=sys.stdout)
                sys.stdout.flush()

    def __bool__(self):
        return bool(self.items)

    def finish(self, summary):
        if self.items:
            print(f"[{self.suite}] FAIL: {len(self.items)} failure(s); {summary}", flush=True)
            for who, exc in self.items[:20]:
                first = str(exc).splitlines()[0] if str(exc) else ""
                print(f"[{self.suite}]   {who}: {type(exc).__name__}: {first}", flush=True)
            sys.exit(1)
        print(f"[{self.suite}] OK: {summary}", flush=True)
        sys.exit(0)
