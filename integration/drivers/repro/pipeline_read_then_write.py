"""Repro: an extended-protocol batch (one Sync) that starts with a read and then writes is
routed to a replica as a whole, so the write fails with 25006 "cannot execute INSERT in a
read-only transaction". Directly against Postgres it works.

psycopg's pipeline mode sends Parse/Bind/Describe/Execute for each statement and one Sync
at the end; Switchyard classifies the batch by its first Parse (a SELECT).

Run: integration/drivers/run.sh --exec integration/drivers/python/.venv/bin/python \
       integration/drivers/repro/pipeline_read_then_write.py
Exit status 1 when the write fails.
"""
import os
import sys
import time

import psycopg

dsn = (f"host={os.environ.get('SUITE_HOST', '127.0.0.1')} port={os.environ['SUITE_PORT']} "
       "user=app password=app_pw dbname=app sslmode=disable")
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute("CREATE TABLE repro_pipe (x int)")
    time.sleep(2)  # the replica replays it: this client's reads may go to the replica again
    rc = 0
    try:
        with c.pipeline():
            c.execute("SELECT 1")                       # first Parse: a read
            c.execute("INSERT INTO repro_pipe VALUES (1)")  # same batch (one Sync)
        print("OK: pipeline SELECT + INSERT succeeded")
    except psycopg.Error as e:
        print(f"BUG: pipeline SELECT + INSERT failed: {e.sqlstate} {e}")
        rc = 1
    c.execute("DROP TABLE repro_pipe")
sys.exit(rc)
