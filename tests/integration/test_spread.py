#!/usr/bin/env python3
"""herald integration: connections spread evenly over the workers, and the
built-in status source (status.interval, status.prefix)."""

import os
import re
import resource
import select
import socket
import sys
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

NCONN = 1000


class Spread(ht.HeraldTestCase):

    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < NCONN + 200:
            want = min(hard, NCONN + 500) if hard != resource.RLIM_INFINITY \
                else NCONN + 500
            if want < NCONN + 200:
                self.skipTest('open files limit %d is too low' % hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def test_spread(self):
        srv = self.server()
        t0 = time.monotonic()
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(NCONN):
            s = socket.create_connection(('127.0.0.1', srv.port), timeout=5)
            socks.append(s)
        # read every HELLO
        pending = {s.fileno(): s for s in socks}
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLIN)
        bufs = {}
        deadline = time.monotonic() + 15
        while pending and time.monotonic() < deadline:
            for fd, ev in poller.poll(1000):
                s = pending.get(fd)
                if s is None:
                    continue
                data = s.recv(4096)
                self.assertTrue(data, 'a connection closed before HELLO')
                b = bufs.get(fd, b'') + data
                bufs[fd] = b
                if b'\n' in b:
                    self.assertRegex(b.split(b'\n')[0].decode(),
                                     r'^HELLO herald/1 \d+$')
                    del pending[fd]
                    poller.unregister(fd)
        self.assertFalse(pending, '%d connections without HELLO after 15 s'
                         % len(pending))
        addrs = [s.getsockname() for s in socks]
        inodes = ht.server_side_inodes(srv.port, addrs)
        per = {}
        for role, pid in srv.worker_pids().items():
            mine = ht.socket_inodes(pid)
            per[role] = sum(1 for ino in inodes.values() if ino in mine)
        self.assertEqual(sum(per.values()), NCONN, 'connections per worker '
                         '%r' % per)
        sys.stdout.write('connections per worker: %r\n' % per)
        for role, n in per.items():
            self.assertLessEqual(n, NCONN * 0.6, 'uneven spread: %r' % per)
        st = srv.stats()
        self.assertGreaterEqual(int(st['clients']), NCONN)
        self.assertLess(time.monotonic() - t0, 20)


class FanOut(ht.HeraldTestCase):

    def test_many_subscribers(self):
        srv = self.server()
        conns = [self.conn(srv.port) for _ in range(200)]
        owners = srv.worker_of(conns)
        self.assertEqual(len(set(owners.values())), 2)
        for k, c in enumerate(conns):
            c.sub('fan/t' if k % 2 else 'fan/+')
        i = self.conn(srv.ingest_port)
        n = 100
        i.send(''.join('PUB fan/t %d\n' % k for k in range(n)))
        s = i.sync()
        for c in conns:
            got = []
            while len(got) < n:
                m = ht.parse_msg(c.line())
                self.assertEqual(m[0], 'MSG')
                got.append((m[2], int(m[3])))
            self.assertEqual(got, [(s - n + 1 + k, k) for k in range(n)])


class Status(ht.HeraldTestCase):

    def host_prefix(self):
        host = socket.gethostname()
        host = ''.join('_' if (ord(ch) <= 0x20 or ord(ch) >= 0x7f or
                               ch in '/+#') else ch for ch in host)
        return 'sys/' + host

    def test_status_source(self):
        srv = self.server({'status.interval': 1})
        prefix = self.host_prefix()
        time.sleep(1.2)
        c = self.conn(srv.port)
        vals, h = c.sub('sys/#')
        self.assertTrue(vals, 'no status values 1.2 s after start')
        for ln in vals:
            m = ht.parse_msg(ln)
            self.assertEqual(m[0], 'VAL', ln)
            self.assertTrue(m[1].startswith(prefix + '/'),
                            '%r is not under %s/' % (m[1], prefix))
            self.assertLessEqual(m[2], h)
        ln = c.line(timeout=2.5)
        m = ht.parse_msg(ln)
        self.assertTrue(m and m[0] == 'MSG', ln)
        self.assertTrue(m[1].startswith(prefix + '/'), ln)
        self.assertGreater(m[2], h)

    def test_status_prefix(self):
        srv = self.server({'status.interval': 1,
                           'status.prefix': 'mon/box1'})
        c = self.conn(srv.port)
        c.sub('#')
        ln = c.line(timeout=2.5)
        m = ht.parse_msg(ln)
        self.assertTrue(m and m[0] in ('MSG', 'VAL'), ln)
        self.assertTrue(m[1].startswith('mon/box1/'), ln)

    def test_status_off(self):
        srv = self.server({'status.interval': 0})
        c = self.conn(srv.port)
        vals, h = c.sub('#')
        self.assertEqual(vals, [])
        c.assert_no_line(1.5)


if __name__ == '__main__':
    ht.main()
