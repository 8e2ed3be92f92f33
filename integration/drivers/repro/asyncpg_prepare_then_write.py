"""Repro: asyncpg prepares with Parse/Describe/Flush (no Sync). When the statement is a read,
Switchyard attaches the client to a replica and keeps it there until a Sync; the client's
next request, a write, then runs on the replica: 25006 "cannot execute INSERT in a
read-only transaction" (or, for copy_records_to_table, whose column lookup is such a
prepare, "cannot execute COPY during recovery"). Directly against Postgres it works.

Run: integration/drivers/run.sh --exec integration/drivers/python/.venv/bin/python \
       integration/drivers/repro/asyncpg_prepare_then_write.py
Exit status 1 when a write fails.
"""
import asyncio
import os
import sys

import asyncpg


async def main():
    c = await asyncpg.connect(host=os.environ.get("SUITE_HOST", "127.0.0.1"),
                              port=int(os.environ["SUITE_PORT"]), user="app",
                              password="app_pw", database="app", ssl=False)
    await c.execute("CREATE TABLE repro_rw (x int)")
    rc = 0
    try:
        # 1. conn.prepare() of a read, then a write.
        await asyncio.sleep(2)  # the replica replays the CREATE: reads may go there again
        stmt = await c.prepare("SELECT count(*) FROM repro_rw")  # Parse/Describe/Flush
        try:
            await c.execute("INSERT INTO repro_rw VALUES (1)")  # simple Query
            print("OK: INSERT after prepare(SELECT) succeeded")
        except asyncpg.PostgresError as e:
            print(f"BUG: INSERT after prepare(SELECT) failed: {e.sqlstate} {e}")
            rc = 1
        print("count:", await stmt.fetchval())
        # 2. copy_records_to_table (a fresh connection: its column lookup is not cached yet).
        c2 = await asyncpg.connect(host=os.environ.get("SUITE_HOST", "127.0.0.1"),
                                   port=int(os.environ["SUITE_PORT"]), user="app",
                                   password="app_pw", database="app", ssl=False)
        await asyncio.sleep(2)
        try:
            await c2.copy_records_to_table("repro_rw", records=[(2,)])
            print("OK: copy_records_to_table succeeded")
        except asyncpg.PostgresError as e:
            print(f"BUG: copy_records_to_table failed: {e.sqlstate} {e}")
            rc = 1
        await c2.close()
    finally:
        await c.execute("DROP TABLE repro_rw")
        await c.close()
    return rc

sys.exit(asyncio.run(main()))
