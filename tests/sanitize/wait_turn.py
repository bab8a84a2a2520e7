#!/usr/bin/env python3
"""Wait until no integration test script of the tree's tests/integration/
runs, at most LIMIT seconds (default 600): the sanitize tests load the
machine, and under make -j they would disturb the other tests' timing.
They also take turns among themselves (a lock, see tests/sanitize.mk).

usage: wait_turn.py [LIMIT]  (or import it: wait_turn(limit))"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get('HERALD_SRCDIR') or os.path.join(HERE, '..', '..')


def running_tests(testdir):
    """Names of the test_*.py scripts of testdir that some process runs."""
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % d, 'rb') as f:
                argv = f.read().decode('latin-1').split('\0')
            cwd = os.readlink('/proc/%s/cwd' % d)
        except OSError:
            continue
        for a in argv[1:3]:
            base = os.path.basename(a)
            if base.startswith('test_') and base.endswith('.py') and \
                    os.path.dirname(os.path.realpath(os.path.join(cwd, a))) \
                    == testdir:
                out.append(base)
    return out


def wait_turn(limit=600):
    testdir = os.path.realpath(os.path.join(SRCDIR, 'tests', 'integration'))
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and running_tests(testdir):
        time.sleep(0.5)
    waited = time.monotonic() - t0
    if waited > 1:
        print('waited %.0f s for the integration tests to finish' % waited,
              flush=True)


if __name__ == '__main__':
    wait_turn(float(sys.argv[1]) if len(sys.argv) > 1 else 600)
