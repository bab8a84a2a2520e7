#!/usr/bin/env python3
"""heraldd (the normal build) under valgrind's memcheck through a short
scenario: publish, SUB with wildcards and a snapshot, live MSGs, a resume,
GET, STATS, bad commands, clients that vanish mid-line, AUTH by password
and by token (good, bad, refreshed, a client gone while its check or its
failure's delay waits), a reload that narrows the ACL, then a graceful
TERM.  Fails on any memcheck error or definite leak in any of the
daemon's processes (master, producer, workers: valgrind follows fork, and
each process writes its own log), or if a process ends without valgrind's
final summary (killed rather than stopped).

Skips (exit 77) without valgrind, and inside the sanitized copy that
tests/sanitize/asan-suite runs (valgrind cannot run an ASan binary).
The logs of a failed run stay in tests/sanitize/valgrind/ of the build
tree; HERALD_VALGRIND_OPTS adds options to valgrind's command line."""

import fcntl
import glob
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))
import herald_test as ht  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wait_turn import wait_turn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDDIR = os.environ.get('HERALD_BUILDDIR') or os.path.join(HERE, '..', '..')
VALGRIND = shutil.which('valgrind')
SLOW = 60.0     # memcheck makes everything 20-50 times slower
SUPP = os.path.join(HERE, 'valgrind.supp')


class VgServer(ht.Server):
    """A Server whose heraldd runs under memcheck, logging to vgdir."""

    def __init__(self, vgdir, overrides):
        self.vgdir = vgdir
        super().__init__(overrides, workers=2, start=False)

    def argv(self):
        vg = [VALGRIND, '--tool=memcheck', '--leak-check=full',
              '--show-leak-kinds=definite', '--errors-for-leak-kinds=definite',
              '--error-exitcode=99', '--trace-children=yes',
              '--track-origins=yes', '--num-callers=30',
              '--log-file=' + os.path.join(self.vgdir, 'vg.%p')]
        if os.path.exists(SUPP):
            vg.append('--suppressions=' + SUPP)
        vg += os.environ.get('HERALD_VALGRIND_OPTS', '').split()
        return vg + super().argv()


class Valgrind(ht.HeraldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if os.environ.get('HERALD_SANITIZE_NESTED'):
            raise unittest.SkipTest('inside the sanitized build: skipped')
        if VALGRIND is None:
            raise unittest.SkipTest('valgrind is not installed '
                                    '(contrib/install-deps installs it)')

    def setUp(self):
        top = os.path.join(BUILDDIR, 'tests', 'sanitize')
        os.makedirs(top, exist_ok=True)
        # one sanitize test at a time (see tests/sanitize.mk)
        lock = open(os.path.join(top, '.lock'), 'w')
        self.addCleanup(lock.close)
        fcntl.flock(lock, fcntl.LOCK_EX)
        wait_turn()
        shutil.rmtree(os.path.join(top, 'valgrind'), ignore_errors=True)
        self.vgdir = os.path.join(top, 'valgrind')
        os.makedirs(self.vgdir)
        # permissions on, anonymous reads everything (the scenario's
        # first part runs as without them)
        self.users = os.path.join(self.vgdir, 'users')
        self.acl = os.path.join(self.vgdir, 'acl')
        self.key = os.path.join(self.vgdir, 'hs.key')
        with open(self.users, 'w') as f:
            # sha512crypt of "vg-pw" with rounds=1000: memcheck is slow
            f.write('vg:$6$rounds=1000$herald.salt$FI6M2Uf28OjsC6hlM6x0FR9w'
                    'Smc7MPsetN1iq9TdlukXyTC54KWr1CJ65m4J.NPSr25Bx2fFsYh9lg'
                    '2vXuq19/\n')
        with open(self.acl, 'w') as f:
            f.write('user vg\nread vg/#\npublish vg/%u/#\n')
        with open(self.key, 'w') as f:
            f.write('a secret of at least thirty-two bytes\n')
        # the built-in status source too, so the producer's timer runs
        self.srv = VgServer(self.vgdir, {'status.interval': '1',
                                         'shutdown_grace': '30',
                                         'auth.users': self.users,
                                         'auth.acl': self.acl,
                                         'auth.jwt_keys': self.key,
                                         'auth.anonymous': '#',
                                         'auth.fail_delay_ms': '100'})
        self.addCleanup(self.srv.kill)
        self.srv.start(wait=False)
        self.srv.wait_ready(timeout=SLOW)

    def conn(self, port, **kw):
        return super().conn(port, timeout=SLOW, **kw)

    def test_scenario(self):
        srv = self.srv
        ing = self.conn(srv.ingest_port)
        for k in range(5):
            ing.pub('vg/a/%d/temp' % k, '%d.5' % k)
        ing.pub('vg/b/x', 'hello world')
        head = ing.sync()

        # SUB with wildcards: the snapshot, then live MSGs
        c = self.conn(srv.port)
        vals, h = c.sub('vg/+/+/temp')
        self.assertEqual(len(vals), 5, vals)
        self.assertGreaterEqual(h, head)
        vals, _ = c.sub('vg/#')
        self.assertEqual(len(vals), 6, vals)
        self.assertEqual(c.cmd('UNSUB vg/#'), ['+OK UNSUB vg/#'])
        ing.pub('vg/a/1/temp', '11')
        ing.pub('vg/b/y', 'not for c')
        ing.sync()
        m = c.expect(r'^MSG vg/a/1/temp (\d+) 11$')
        # a resume from before the last PUB, GET, STATS, errors, PING
        r = self.conn(srv.port)
        lines = r.cmd('SUB vg/a/# %d' % head)
        self.assertRegex(lines[-1], r'^\+OK SUB vg/a/# \d+$')
        r.expect(r'^MSG vg/a/1/temp %s 11$' % m.group(1))
        self.assertEqual(c.cmd('GET vg/b/x')[-1], '+OK GET vg/b/x')
        self.assertEqual(c.cmd('GET vg/none'), ['-ERR not-found vg/none'])
        st = c.stats()
        self.assertIn('clients', st)
        for bad in ('SUB vg/#/x', 'GET vg/+', 'NOPE', 'PUB vg/forbidden x'):
            self.assertRegex(c.cmd(bad)[-1], r'^-ERR ')
        self.assertEqual(c.cmd('PING vg'), ['PONG vg'])

        # clients that go away mid-line, mid-command and mid-snapshot
        for part in (b'SUB vg/', b'PUB vg/half', b'GET vg/b/x\nSTA'):
            d = self.conn(srv.port)
            d.send(part)
            d.close()
        d = self.conn(srv.ingest_port)
        d.send(b'PUB vg/b/z complete\nPUB vg/b/z half-a-li')
        d.close()
        d = self.conn(srv.port)
        d.sendline('SUB vg/#')
        d.close()

        # AUTH: a password, a token, a refresh, failures
        a = self.conn(srv.port)
        self.assertEqual(a.cmd('AUTH vg vg-pw'), ['+OK AUTH vg'])
        a.sub('vg/a/#')
        self.assertEqual(a.cmd('AUTH vg wrong'), ['-ERR auth-failed'])
        self.assertEqual(a.cmd('AUTH vg vg-pw'), ['+OK AUTH vg'])  # cached
        a.pub('vg/vg/t', '1')
        self.assertRegex(a.cmd('PUB vg/other/t 1')[-1], r'^-ERR forbidden')
        t = self.conn(srv.port)
        tok = self.token('vg', '--read', 'vg/a/#')
        self.assertEqual(t.cmd('AUTH ' + tok), ['+OK AUTH vg'])
        t.sub('vg/a/1/temp')
        self.assertEqual(t.cmd('AUTH ' + self.token('vg')), ['+OK AUTH vg'])
        self.assertEqual(t.cmd('AUTH x.y.z'), ['-ERR auth-failed'])
        # gone while the check waits, and while the failure's delay runs
        for line in ('AUTH vg vg-pw-not-cached', 'AUTH vg vg-pw2'):
            d = self.conn(srv.port)
            d.sendline(line)
            d.close()
        # a reload that takes vg/a/# from vg: its SUB ends
        with open(self.acl, 'w') as f:
            f.write('user vg\nread vg/b/#\n')
        srv.signal(signal.SIGHUP)
        self.assertEqual(a.line(), '-ERR forbidden vg/a/#')

        # a reload (the same settings), then everything still works
        srv.signal(signal.SIGHUP)
        ing.pub('vg/b/after', 'reload')
        ing.sync()
        self.assertEqual(c.cmd('GET vg/b/after')[0][:14], 'VAL vg/b/after')

        # a live upgrade (to the same binary): every connection moves
        old = srv.pid
        srv.signal(signal.SIGUSR2)
        deadline = time.monotonic() + 3 * SLOW
        while srv.proc.poll() is None or self.master() == old:
            self.assertLess(time.monotonic(), deadline, srv.log_tail())
            time.sleep(0.2)
        self.assertEqual(srv.proc.returncode, 0)
        new = self.master()
        ing.pub('vg/b/after', 'upgrade')
        ing.sync()
        self.assertRegex(c.cmd('GET vg/b/after')[0], r' upgrade$')
        self.assertEqual(a.cmd('PING up'), ['PONG up'])
        self.assertEqual(c.cmd('QUIT'), ['BYE quit'])

        # graceful TERM of the new master with clients still connected
        os.kill(new, signal.SIGTERM)
        deadline = time.monotonic() + 2 * SLOW
        while ht.pid_alive(new):
            self.assertLess(time.monotonic(), deadline, srv.log_tail())
            time.sleep(0.2)
        status = srv.stop(grace=2 * SLOW)
        self.check_logs()
        self.assertEqual(status, 0, 'heraldd under valgrind exited with %s; '
                         'log:\n%s' % (status, srv.log_tail()))
        srv.cleanup()

    def master(self):
        try:
            with open(self.srv.pidfile) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def token(self, sub, *args):
        import subprocess
        p = subprocess.run([os.path.join(BUILDDIR, 'client', 'herald'),
                            'token', '--key', self.key, '--sub', sub] +
                           list(args), stdout=subprocess.PIPE, check=True,
                           timeout=30)
        return p.stdout.decode().strip()

    def check_logs(self):
        """Every process's memcheck log: a final summary, no errors."""
        logs = sorted(glob.glob(os.path.join(self.vgdir, 'vg.*')))
        bad = []
        summaries = 0
        for path in logs:
            with open(path, errors='replace') as f:
                text = f.read()
            m = re.search(r'ERROR SUMMARY: (\d+) errors', text)
            if m is None:
                bad.append('%s: no ERROR SUMMARY (the process was killed?)'
                           % path)
                continue
            summaries += 1
            if m.group(1) != '0':
                bad.append('%s: %s errors:\n%s' % (path, m.group(1),
                                                    text[-8000:]))
            d = re.search(r'definitely lost: ([\d,]+) bytes', text)
            if d and d.group(1) != '0':
                bad.append('%s: definitely lost %s bytes' % (path,
                                                             d.group(1)))
        sys.stdout.write('memcheck logs: %d processes, %d with a summary\n'
                         % (len(logs), summaries))
        # master, producer and two workers at least
        self.assertGreaterEqual(summaries, 4, 'expected 4 processes: %r'
                                % logs)
        self.assertFalse(bad, '\n'.join(bad))
        shutil.rmtree(self.vgdir, ignore_errors=True)


if __name__ == '__main__':
    ht.main()
