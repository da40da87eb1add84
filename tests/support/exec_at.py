"""Barrier for separate processes: sleep until an absolute time, then exec argv.

Usage: python exec_at.py <unix time> <program> [args...]
Every racer is already started and imported when the moment comes, so they
all reach the code under test within a few milliseconds of each other.
"""

import os
import sys
import time

when = float(sys.argv[1])
argv = sys.argv[2:]
while (left := when - time.time()) > 0:
    time.sleep(min(left, 0.01))
os.execv(argv[0], argv)
