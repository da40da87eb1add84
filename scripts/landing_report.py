"""The example `command` process: print row counts of the landing tables."""

import os
import sqlite3
import sys

path = sys.argv[1]
with sqlite3.connect(path) as db:
    for (table,) in db.execute(
        "select name from sqlite_master where type = 'table' and name like 'landing_%' order by name"
    ):
        (count,) = db.execute(f'select count(*) from "{table}"').fetchone()
        print(f"{table}: {count} rows")
print(f"run {os.environ.get('DPONE_RUN_ID')} attempt {os.environ.get('DPONE_ATTEMPT')}")
