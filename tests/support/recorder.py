"""A command process for tests: records its own execution, then behaves as asked.

--record FILE      append "<run id> <job attempt> <try> <pid>" (one line per execution)
--sleep S          sleep S seconds (in small steps, touching --heartbeat FILE if given)
--until FILE       then wait until FILE exists (at most 60 s)
--fail-times N     fail (exit 3) the first N executions, counted in --counter FILE
--echo TEXT        print TEXT on stdout
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--record")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--heartbeat")
parser.add_argument("--until", help="after --sleep, wait (max 60 s) until this file exists")
parser.add_argument("--fail-times", type=int, default=0)
parser.add_argument("--counter")
parser.add_argument("--echo")
args = parser.parse_args()

if args.record:
    with open(args.record, "a") as fh:
        fh.write(
            f"{os.environ.get('DPONE_RUN_ID')} {os.environ.get('DPONE_JOB_ATTEMPT')} "
            f"{os.environ.get('DPONE_ATTEMPT')} {os.getpid()}\n"
        )
        fh.flush()
        os.fsync(fh.fileno())
if args.echo:
    print(args.echo, flush=True)
deadline = time.monotonic() + args.sleep
while time.monotonic() < deadline:
    if args.heartbeat:
        Path(args.heartbeat).write_text(str(time.time()))
    time.sleep(0.05)
if args.until:
    deadline = time.monotonic() + 60
    while not Path(args.until).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
if args.fail_times:
    counter = Path(args.counter or "counter.txt")
    count = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(count + 1))
    if count < args.fail_times:
        print(f"failing on purpose ({count + 1}/{args.fail_times})", file=sys.stderr)
        sys.exit(3)
