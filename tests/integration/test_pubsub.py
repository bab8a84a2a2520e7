#!/usr/bin/env python3
"""herald integration: PUB, GET, SUB (snapshot and live), UNSUB, SYNC,
wildcards, publish permissions, payload rules, pipelining, and the
snapshot/live handoff (herald-protocol(7): Client to server, Guarantees 1-2)."""

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

SENTINEL = 'zz/sentinel'


def drain_to_sentinel(tc, c, timeout=5):
    """Read c up to its MSG on SENTINEL; return the MSG tuples before it,
    checking that seqs strictly increase."""
    lines = c.read_until(lambda ln: ln.startswith('MSG %s ' % SENTINEL),
                         timeout)
    msgs = []
    last = 0
    for ln in lines:
        m = ht.parse_msg(ln)
        tc.assertTrue(m and m[0] == 'MSG', 'unexpected line %r' % ln)
        tc.assertGreater(m[2], last, 'MSG seqs must strictly increase: %r'
                         % lines)
        last = m[2]
        msgs.append(m)
    return msgs[:-1]


class PubSub(ht.HeraldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server()

    def c(self, **kw):
        return self.conn(self.srv.port, **kw)

    def i(self, **kw):
        return self.conn(self.srv.ingest_port, **kw)

    # -- PUB / GET -------------------------------------------------------
    def test_pub_no_reply_and_get(self):
        i = self.i()
        i.pub('ps/get/t', 'hello world')
        i.assert_no_line(0.3)
        s = i.sync()
        c = self.c()
        lines = c.cmd('GET ps/get/t')
        self.assertEqual(len(lines), 2, lines)
        m = ht.parse_msg(lines[0])
        self.assertEqual(m[:2], ('VAL', 'ps/get/t'))
        self.assertEqual(m[3], 'hello world')
        self.assertLessEqual(m[2], s)
        self.assertEqual(lines[1], '+OK GET ps/get/t')
        # GET works on the ingest listener too
        lines = i.cmd('GET ps/get/t')
        self.assertEqual(lines, ['VAL ps/get/t %d hello world' % m[2],
                                 '+OK GET ps/get/t'])
        # a newer value replaces it, with a higher seq
        i.pub('ps/get/t', 'second')
        s2 = i.sync()
        lines = c.cmd('GET ps/get/t')
        m2 = ht.parse_msg(lines[0])
        self.assertEqual(m2[3], 'second')
        self.assertGreater(m2[2], m[2])
        self.assertLessEqual(m2[2], s2)

    def test_pub_then_ping_order(self):
        i = self.i()
        i.send('PUB ps/order/a 1\nPING p\n')
        self.assertEqual(i.line(), 'PONG p')

    def test_get_not_found(self):
        c = self.c()
        self.assertEqual(c.cmd('GET ps/nothing/here'),
                         ['-ERR not-found ps/nothing/here'])

    def test_payload_whitespace(self):
        i = self.i()
        cases = [
            (b'PUB ps/ws/1  x ', ' x '),
            (b'PUB ps/ws/2  x  ', ' x  '),
            (b'PUB ps/ws/3\tx', 'x'),
            (b'PUB ps/ws/4\t\ty', '\ty'),
            (b'PUB ps/ws/5 a b\tc', 'a b\tc'),
            (b'PUB ps/ws/6  ', ' '),
            (b'PUB   ps/ws/7 z', 'z'),
            (b'PUB\tps/ws/8 \t', '\t'),
            (b'PUB ps/ws/9 x\r', 'x'),          # CR before LF dropped
            (b'PUB ps/ws/10 \xe9\x01\x7f\\', '\xe9\x01\x7f\\'),
        ]
        for raw, _ in cases:
            i.send(raw + b'\n')
        i.sync()
        c = self.c()
        for raw, want in cases:
            topic = raw.split()[1].decode()
            lines = c.cmd('GET ' + topic)
            self.assertEqual(len(lines), 2, (raw, lines))
            m = ht.parse_msg(lines[0])
            self.assertEqual((m[0], m[1], m[3]), ('VAL', topic, want),
                             'sent %r' % raw)

    def test_payload_rules(self):
        srv = self.server({'max_payload': 100,
                           'clients.publish': 'cmd/#'})
        i = self.conn(srv.ingest_port)
        c = self.conn(srv.port)
        self.assertEqual(i.cmd('PUB t ' + 'x' * 101),
                         ['-ERR payload-too-large t'])
        self.assertEqual(i.cmd('PUB t ' + 'x' * 500),
                         ['-ERR payload-too-large t'])
        i.pub('t', 'y' * 100)
        i.sync()
        lines = i.cmd('GET t')
        self.assertEqual(ht.parse_msg(lines[0])[3], 'y' * 100)
        self.assertEqual(i.cmd(b'PUB t a\rb'), ['-ERR bad-payload t'])
        self.assertEqual(i.cmd(b'PUB t a\x00b'), ['-ERR bad-payload t'])
        self.assertEqual(i.cmd(b'PUB t \x00'), ['-ERR bad-payload t'])
        self.assertEqual(i.cmd(b'PUB t ab\r\r'), ['-ERR bad-payload t'])
        # bad-payload comes before payload-too-large
        self.assertEqual(i.cmd(b'PUB t ' + b'\x00' * 200),
                         ['-ERR bad-payload t'])
        # forbidden comes before bad-payload and payload-too-large
        self.assertEqual(c.cmd(b'PUB t a\x00b'), ['-ERR forbidden t'])
        self.assertEqual(c.cmd('PUB t ' + 'x' * 200), ['-ERR forbidden t'])
        # allowed topic on the client listener: payload faults apply
        self.assertEqual(c.cmd(b'PUB cmd/x a\x00b'),
                         ['-ERR bad-payload cmd/x'])
        self.assertEqual(c.cmd('PUB cmd/x ' + 'x' * 101),
                         ['-ERR payload-too-large cmd/x'])
        # nothing of those was published
        lines = i.cmd('GET t')
        self.assertEqual(ht.parse_msg(lines[0])[3], 'y' * 100)
        self.assertEqual(c.cmd('GET cmd/x'), ['-ERR not-found cmd/x'])

    def test_largest_payload(self):
        srv = self.server()
        sub = self.conn(srv.port)
        sub.sub('big/#')
        i = self.conn(srv.ingest_port)
        pay = ''.join(chr(0x20 + k % 95) for k in range(65536))
        i.pub('big/t', pay)
        i.pub('big/u', pay[::-1])
        s = i.sync()
        self.assertEqual(sub.line(), 'MSG big/t %d %s' % (s - 1, pay))
        self.assertEqual(sub.line(), 'MSG big/u %d %s' % (s, pay[::-1]))
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('GET big/t'), ['VAL big/t %d %s' % (s - 1, pay),
                                              '+OK GET big/t'])
        vals, h = c.sub('big/+')
        self.assertEqual(sorted(vals), ['VAL big/t %d %s' % (s - 1, pay),
                                        'VAL big/u %d %s' % (s, pay[::-1])])
        self.assertEqual(i.cmd('PUB big/t x' + pay),
                         ['-ERR payload-too-large big/t'])

    def test_big_snapshot(self):
        srv = self.server()
        i = self.conn(srv.ingest_port)
        n = 5000
        i.send(''.join('PUB snap/%d/v %d\n' % (k, k) for k in range(n)))
        s = i.sync()
        c = self.conn(srv.port, timeout=10)
        vals, h = c.sub('snap/+/v')
        self.assertEqual(h, s)
        got = {}
        for ln in vals:
            m = ht.parse_msg(ln)
            self.assertEqual(m[0], 'VAL', ln)
            got[m[1]] = (m[2], m[3])
        self.assertEqual(len(vals), n, 'one VAL per topic')
        self.assertEqual(got, {'snap/%d/v' % k: (k + 1, str(k))
                               for k in range(n)})

    def test_unsub_under_flood(self):
        srv = self.server({'bus.size': '16M', 'clients.out_limit': '64M'})
        stop = threading.Event()

        def publisher():
            p = ht.Conn(srv.ingest_port)
            k = 0
            while not stop.is_set():
                p.send(''.join('PUB fl/x %d\nPUB fl/y %d\n' % (k + j, k + j)
                               for j in range(20)))
                k += 20
                time.sleep(0.002)
            p.sync()
            p.close()

        c = self.conn(srv.port, timeout=10)
        c.sub('fl/x')
        c.sub('fl/y')
        th = threading.Thread(target=publisher, daemon=True)
        th.start()
        try:
            c.expect(r'^MSG fl/')
            time.sleep(0.3)
            lines = c.cmd('UNSUB fl/x')
            self.assertEqual(lines[-1], '+OK UNSUB fl/x')
            n_y = 0
            deadline = time.monotonic() + 0.7
            while time.monotonic() < deadline:
                ln = c.line()
                self.assertFalse(ln.startswith('MSG fl/x '),
                                 'MSG after +OK UNSUB fl/x: %r' % ln)
                n_y += 1
            self.assertGreater(n_y, 0, 'fl/y still delivered')
        finally:
            stop.set()
            th.join(10)

    # -- SUB / UNSUB --------------------------------------------------------
    def test_sub_snapshot_then_live(self):
        i = self.i()
        i.pub('ps/snap/a', 'va')
        i.pub('ps/snap/b', 'vb1')
        i.pub('ps/snap/b', 'vb2')
        i.pub('ps/snapx/c', 'no')
        i.pub('ps/snap/c/d', 'no')
        s = i.sync()
        c = self.c()
        vals, h = c.sub('ps/snap/+')
        self.assertGreaterEqual(h, s)
        got = {}
        for ln in vals:
            m = ht.parse_msg(ln)
            self.assertTrue(m and m[0] == 'VAL', 'snapshot line %r' % ln)
            self.assertLessEqual(m[2], h)
            self.assertNotIn(m[1], got, 'two VALs for %s' % m[1])
            got[m[1]] = m[3]
        self.assertEqual(got, {'ps/snap/a': 'va', 'ps/snap/b': 'vb2'})
        i.pub('ps/snap/a', 'live')
        i.pub('ps/snap/zz/no', 'x')
        i.pub('ps/snap/b', 'live2')
        m = c.expect(r'^MSG ps/snap/a (\d+) live$')
        s1 = int(m.group(1))
        self.assertGreater(s1, h)
        m = c.expect(r'^MSG ps/snap/b (\d+) live2$')
        self.assertGreater(int(m.group(1)), s1)

    def test_sub_empty_snapshot(self):
        c = self.c()
        vals, h = c.sub('ps/empty/#')
        self.assertEqual(vals, [])

    def test_unsub(self):
        c = self.c()
        w = self.c()
        w.sub('ps/uns/t')
        w.sub(SENTINEL)
        c.sub('ps/uns/t')
        i = self.i()
        i.pub('ps/uns/t', 'one')
        c.expect(r'^MSG ps/uns/t \d+ one$')
        self.assertEqual(c.cmd('UNSUB ps/uns/t'), ['+OK UNSUB ps/uns/t'])
        i.pub('ps/uns/t', 'two')
        i.pub(SENTINEL, 'x')
        msgs = drain_to_sentinel(self, w)
        self.assertEqual([m[3] for m in msgs], ['one', 'two'])
        c.assert_no_line(0.3)
        self.assertEqual(c.cmd('UNSUB ps/uns/t'),
                         ['-ERR not-subscribed ps/uns/t'])
        self.assertEqual(c.cmd('UNSUB ps/uns/+'),
                         ['-ERR not-subscribed ps/uns/+'])

    def test_unsub_keeps_other_match(self):
        c = self.c()
        c.sub('ps/uk/+')
        c.sub('ps/uk/#')
        c.sub(SENTINEL)
        self.assertEqual(c.cmd('UNSUB ps/uk/+'), ['+OK UNSUB ps/uk/+'])
        i = self.i()
        i.pub('ps/uk/a', '1')
        i.pub(SENTINEL, 'x')
        msgs = drain_to_sentinel(self, c)
        self.assertEqual([(m[1], m[3]) for m in msgs], [('ps/uk/a', '1')])

    # topic -> which patterns match
    WILD = {
        'w/+': ['w/a', 'w/b'],
        'w/+/c': ['w/a/c', 'w/b/c'],
        'w/#': ['w', 'w/a', 'w/b', 'w/a/c', 'w/b/c', 'w/a/b/c', 'w/a/b/d'],
        '#': None,                      # everything
        '+': ['w', 'x', 'wa'],
        '+/a': ['w/a', 'x/a', 'ww/a'],
        'w/+/#': ['w/a', 'w/b', 'w/a/c', 'w/b/c', 'w/a/b/c', 'w/a/b/d'],
        '+/+/+': ['w/a/c', 'w/b/c', 'y/w/a'],
        'w/a/+/d': ['w/a/b/d'],
        'w/a': ['w/a'],
        'w/a/b/c': ['w/a/b/c'],
        'x/#': ['x', 'x/a'],
        '+/#': None,
    }
    TOPICS = ['w', 'x', 'w/a', 'w/b', 'x/a', 'w/a/c', 'w/b/c', 'w/a/b/c',
              'w/a/b/d', 'wa', 'ww/a', 'y/w/a']

    def test_wildcards(self):
        srv = self.server()
        i = self.conn(srv.ingest_port)
        for t in self.TOPICS:
            i.pub(t, 'v-' + t)
        i.sync()
        subs = {}
        for p, want in self.WILD.items():
            want = set(self.TOPICS) if want is None else set(want)
            c = self.conn(srv.port)
            vals, h = c.sub(p)
            got = set()
            for ln in vals:
                m = ht.parse_msg(ln)
                self.assertEqual(m[0], 'VAL', ln)
                self.assertEqual(m[3], 'v-' + m[1])
                got.add(m[1])
            self.assertEqual(got, want, 'snapshot of SUB %s' % p)
            if p not in ('#', '+/#'):
                c.sub(SENTINEL)
            subs[p] = (c, want)
        for t in self.TOPICS:
            i.pub(t, 'live-' + t)
        i.pub(SENTINEL, 'end')
        for p, (c, want) in subs.items():
            msgs = drain_to_sentinel(self, c)
            got = [m[1] for m in msgs]
            self.assertEqual(len(got), len(set(got)),
                             'duplicates for %s: %r' % (p, got))
            self.assertEqual(set(got), want, 'live MSGs for SUB %s' % p)
            self.assertEqual(got, [t for t in self.TOPICS if t in want],
                             'MSG order for SUB %s' % p)

    def test_two_matching_patterns_once(self):
        c = self.c()
        c.sub('ps/two/+')
        c.sub('ps/two/#')
        c.sub('+/two/x')
        c.sub(SENTINEL)
        i = self.i()
        i.pub('ps/two/x', '1')
        i.pub('ps/two/y', '2')
        i.pub('ps/two', '3')
        i.pub(SENTINEL, 'end')
        msgs = drain_to_sentinel(self, c)
        self.assertEqual([(m[1], m[3]) for m in msgs],
                         [('ps/two/x', '1'), ('ps/two/y', '2'),
                          ('ps/two', '3')])

    def test_resubscribe_same_pattern(self):
        i = self.i()
        i.pub('ps/re/a', 'first')
        i.sync()
        c = self.c()
        vals, h1 = c.sub('ps/re/+')
        self.assertEqual(len(vals), 1)
        c.sub(SENTINEL)
        vals, h2 = c.sub('ps/re/+')
        self.assertEqual(len(vals), 1, 'a second SUB answers a snapshot')
        self.assertRegex(vals[0], r'^VAL ps/re/a \d+ first$')
        self.assertGreaterEqual(h2, h1)
        i.pub('ps/re/a', 'second')
        i.pub(SENTINEL, 'end')
        msgs = drain_to_sentinel(self, c)
        self.assertEqual([m[3] for m in msgs], ['second'])
        self.assertEqual(c.cmd('UNSUB ps/re/+'), ['+OK UNSUB ps/re/+'])
        self.assertEqual(c.cmd('UNSUB ps/re/+'),
                         ['-ERR not-subscribed ps/re/+'])

    def test_pub_order_one_connection(self):
        c = self.c()
        c.sub('ps/ord/#')
        c.sub(SENTINEL)
        i = self.i()
        n = 500
        data = ''.join('PUB ps/ord/%d %d\n' % (k % 7, k) for k in range(n))
        i.send(data + 'PUB %s end\n' % SENTINEL)
        msgs = drain_to_sentinel(self, c, timeout=10)
        self.assertEqual([int(m[3]) for m in msgs], list(range(n)))

    def test_sync(self):
        i = self.i()
        c = self.c()
        c.sub('ps/sync/t')
        for k in range(20):
            i.pub('ps/sync/t', str(k))
        s = i.sync()
        seqs = []
        for k in range(20):
            m = c.expect(r'^MSG ps/sync/t (\d+) %d$' % k)
            seqs.append(int(m.group(1)))
        self.assertLessEqual(max(seqs), s)
        lines = c.cmd('GET ps/sync/t')
        self.assertEqual(lines[0], 'VAL ps/sync/t %d 19' % seqs[-1])
        # SYNC with nothing pending still answers the head
        s2 = c.sync()
        self.assertGreaterEqual(s2, s)

    # -- permissions -------------------------------------------------------
    def test_client_pub_forbidden_by_default(self):
        c = self.c()
        self.assertEqual(c.cmd('PUB cmd/x go'), ['-ERR forbidden cmd/x'])
        self.assertEqual(c.cmd('GET cmd/x'), ['-ERR not-found cmd/x'])

    def test_client_pub_allowed(self):
        srv = self.server({'clients.publish': 'cmd/#,ctl/+/set'})
        sub = self.conn(srv.port)
        sub.sub('#')
        c = self.conn(srv.port)
        c.pub('cmd/host1/restart', 'now please')
        c.pub('ctl/a/set', '1')
        c.pub('cmd', 'bare')
        self.assertEqual(c.cmd('PUB other/x v'), ['-ERR forbidden other/x'])
        self.assertEqual(c.cmd('PUB ctl/a/b/set v'),
                         ['-ERR forbidden ctl/a/b/set'])
        s = c.sync()
        got = []
        for _ in range(3):
            m = ht.parse_msg(sub.line())
            self.assertEqual(m[0], 'MSG')
            got.append((m[1], m[3]))
            self.assertLessEqual(m[2], s)
        self.assertEqual(got, [('cmd/host1/restart', 'now please'),
                               ('ctl/a/set', '1'), ('cmd', 'bare')])
        sub.assert_no_line(0.2)
        lines = c.cmd('GET cmd/host1/restart')
        self.assertRegex(lines[0], r'^VAL cmd/host1/restart \d+ now please$')

    def test_client_pub_order_and_sync(self):
        srv = self.server({'clients.publish': 'cmd/#'})
        sub = self.conn(srv.port)
        sub.sub('cmd/#')
        c = self.conn(srv.port)
        n = 300
        c.send(''.join('PUB cmd/%d %d\n' % (k % 4, k) for k in range(n)))
        s = c.sync()
        for k in range(4):
            last = max(j for j in range(n) if j % 4 == k)
            lines = c.cmd('GET cmd/%d' % k)
            m = ht.parse_msg(lines[0])
            self.assertEqual((m[0], m[3]), ('VAL', str(last)),
                             'GET right after SYNC shows the last PUB')
            self.assertLessEqual(m[2], s)
        got = []
        last = 0
        while len(got) < n:
            m = ht.parse_msg(sub.line())
            self.assertEqual(m[0], 'MSG')
            self.assertGreater(m[2], last)
            last = m[2]
            got.append(int(m[3]))
        self.assertEqual(got, list(range(n)))

    def test_too_many_subs(self):
        srv = self.server({'clients.max_subs': 2})
        c = self.conn(srv.port)
        c.sub('a')
        c.sub('b/+')
        self.assertErr(self.assertOne(c.cmd('SUB c')), 'too-many-subs')
        self.assertErr(self.assertOne(c.cmd('SUB c/# 0')), 'too-many-subs')
        self.assertEqual(c.cmd('UNSUB a'), ['+OK UNSUB a'])
        c.sub('c')
        self.assertErr(self.assertOne(c.cmd('SUB d')), 'too-many-subs')
        # the limit is per connection
        c2 = self.conn(srv.port)
        c2.sub('a')
        c2.sub('d')
        # the refused SUB did not subscribe
        i = self.conn(srv.ingest_port)
        i.pub('d', 'x')
        i.pub('c', 'y')
        c.expect(r'^MSG c \d+ y$')

    # -- framing under load ---------------------------------------------------
    def test_pipelined(self):
        i = self.i()
        i.pub('ps/pipe/t', 'pv')
        i.sync()
        c = self.c()
        c.send('PING 1\nGET ps/pipe/t\nSUB ps/pipe/+\nFOO\nPING 2\n'
               'GET ps/pipe/none\nUNSUB ps/pipe/+\nUNSUB ps/pipe/+\n'
               'SYNC\nSTATS\nPING 3\n')
        self.assertEqual(c.line(), 'PONG 1')
        self.assertRegex(c.line(), r'^VAL ps/pipe/t \d+ pv$')
        self.assertEqual(c.line(), '+OK GET ps/pipe/t')
        self.assertRegex(c.line(), r'^VAL ps/pipe/t \d+ pv$')
        self.assertRegex(c.line(), r'^\+OK SUB ps/pipe/\+ \d+$')
        self.assertErr(c.line(), 'unknown-command', 'FOO')
        self.assertEqual(c.line(), 'PONG 2')
        self.assertEqual(c.line(), '-ERR not-found ps/pipe/none')
        self.assertEqual(c.line(), '+OK UNSUB ps/pipe/+')
        self.assertEqual(c.line(), '-ERR not-subscribed ps/pipe/+')
        self.assertRegex(c.line(), r'^\+OK SYNC \d+$')
        lines = c.read_until(lambda ln: not ln.startswith('STAT '))
        self.assertEqual(lines[-1], '+OK STATS')
        self.assertEqual(c.line(), 'PONG 3')

    def test_many_pipelined(self):
        c = self.c()
        n = 3000
        c.send(''.join('PING %d\n' % k for k in range(n)))
        for k in range(n):
            self.assertEqual(c.line(), 'PONG %d' % k)

    def test_byte_by_byte(self):
        i = self.i()
        c = self.c()
        session = (b'SUB ps/bb/+\r\nGET ps/bb/none\nPING z\n')
        for b in session:
            c.send(bytes([b]))
            time.sleep(0.002)
        self.assertRegex(c.line(), r'^\+OK SUB ps/bb/\+ \d+$')
        self.assertEqual(c.line(), '-ERR not-found ps/bb/none')
        self.assertEqual(c.line(), 'PONG z')
        for b in b'PUB ps/bb/1 hello there\nSYNC\n':
            i.send(bytes([b]))
            time.sleep(0.002)
        self.assertRegex(i.line(), r'^\+OK SYNC \d+$')
        c.expect(r'^MSG ps/bb/1 \d+ hello there$')

    def test_every_command_on_ingest(self):
        i = self.i()
        vals, h = i.sub('ps/ing/+')
        p = self.i()
        p.pub('ps/ing/a', 'v')
        m = i.expect(r'^MSG ps/ing/a (\d+) v$')
        self.assertGreater(int(m.group(1)), h)
        self.assertEqual(i.cmd('UNSUB ps/ing/+'), ['+OK UNSUB ps/ing/+'])
        self.assertEqual(i.stats().get('workers'), '2')
        self.assertRegex(i.cmd('GET ps/ing/a')[0], r'^VAL ps/ing/a \d+ v$')

    def test_no_line_inside_an_answer(self):
        """MSGs may come between answers, never inside one command's data
        lines (VAL of a GET or SUB snapshot, STAT)."""
        srv = self.server({'bus.size': '16M', 'clients.out_limit': '64M'})
        pre = self.conn(srv.ingest_port)
        for k in range(50):
            pre.pub('il/z/%d' % k, 'z%d' % k)
        pre.sync()
        stop = threading.Event()
        err = {}

        def publisher():
            try:
                p = ht.Conn(srv.ingest_port)
                k = 0
                # ~10,000 msgs/s at most: a client behind in the bus runs
                # its commands once caught up, so on a loaded machine a
                # publisher faster than this test's reader would starve
                # the commands for good
                while not stop.is_set():
                    p.send(''.join('PUB il/x %d\n' % (k + j)
                                   for j in range(50)))
                    k += 50
                    time.sleep(0.005)
                p.sync()
                p.close()
            except Exception as e:
                err['e'] = e

        c = self.conn(srv.port, timeout=10)
        c.sub('il/x')
        th = threading.Thread(target=publisher, daemon=True)
        th.start()
        try:
            cmds = ['GET il/z/7', 'SUB il/z/+', 'STATS', 'UNSUB il/z/+']
            nmsg = 0
            for r in range(40):
                for cmd in cmds:
                    lines = c.cmd(cmd, timeout=10)
                    in_data = False
                    for ln in lines[:-1]:
                        if ln.startswith('MSG '):
                            nmsg += 1
                            self.assertFalse(in_data, 'a MSG inside the '
                                             'answer to %s: %r' %
                                             (cmd, [x for x in lines
                                                    if not x.startswith(
                                                        'MSG')][:3]))
                        else:
                            in_data = True
                            self.assertRegex(ln, r'^(VAL il/z/|STAT )')
        finally:
            stop.set()
            th.join(10)
        self.assertNotIn('e', err)
        self.assertGreater(nmsg, 0, 'no MSG came at all')

    # -- snapshot / live handoff -------------------------------------------
    def test_snapshot_live_handoff(self):
        # out_limit far above what the test publishes: no GAP is legitimate
        self.handoff({'bus.size': '16M', 'clients.out_limit': '64M'}, False)

    def test_snapshot_live_handoff_conflating(self):
        # default out_limit: subscribers that read late may be conflated;
        # a GAP must then be exact (every record is on t)
        self.handoff({'bus.size': '16M'}, True)

    def handoff(self, overrides, gap_ok):
        srv = self.server(overrides)
        n = 30000
        marks = (1, 2, 50, 3000, 9000, 15000, 21000)
        reached = {m: threading.Event() for m in marks}
        done = {}

        def publisher():
            try:
                p = ht.Conn(srv.ingest_port, timeout=20)
                batch = []
                for k in range(1, n + 1):
                    batch.append('PUB t %d\n' % k)
                    if k in reached or len(batch) >= 100:
                        p.send(''.join(batch))
                        batch = []
                    if k in reached:
                        reached[k].set()
                p.send(''.join(batch))
                done['seq'] = p.sync()
                p.close()
            except Exception as e:      # reported by the main thread
                done['error'] = e
                for ev in reached.values():
                    ev.set()

        th = threading.Thread(target=publisher, daemon=True)
        subs = []
        th.start()
        for mk in marks:
            reached[mk].wait(20)
            c = self.conn(srv.port, timeout=20)
            c.sendline('SUB t')
            subs.append(c)
        th.join(30)
        self.assertNotIn('error', done, done.get('error'))
        self.assertIn('seq', done, 'publisher did not finish')
        for mk, c in zip(marks, subs):
            lines = c.read_until(lambda ln: ln.startswith('+OK SUB') or
                                 ln.startswith('-ERR'))
            self.assertRegex(lines[-1], r'^\+OK SUB t \d+$')
            h = int(lines[-1].split()[3])
            v, s = 0, 0
            self.assertLessEqual(len(lines), 2, lines)
            if len(lines) == 2:
                m = ht.parse_msg(lines[0])
                self.assertEqual(m[:2], ('VAL', 't'), lines)
                v, s = int(m[3]), m[2]
                self.assertLessEqual(s, h)
            last_seq = s
            expect = v + 1
            while expect <= n:
                ln = c.line(20)
                m = ht.parse_msg(ln)
                g = ht.parse_gap(ln)
                if g and gap_ok:
                    self.assertEqual(g, (max(last_seq, h) + 1, g[1]),
                                     'SUB t sent after PUB %d, +OK SUB t %d:'
                                     ' after MSG seq %d value %d: %r' %
                                     (mk, h, last_seq, expect - 1, ln))
                    m = ht.parse_msg(c.line())
                    self.assertEqual(m[:3], ('VAL', 't', g[1]),
                                     'the VAL after %r' % ln)
                    self.assertEqual(int(m[3]), expect + g[1] - g[0],
                                     'the VAL after %r' % ln)
                    last_seq = g[1]
                    expect = int(m[3]) + 1
                    continue
                self.assertTrue(m and m[0] == 'MSG',
                                'SUB t sent after PUB %d: after +OK SUB t %d'
                                ' (VAL value %d), expected MSG t <seq> %d, '
                                'got %r' % (mk, h, v, expect, ln))
                self.assertGreater(m[2], h, 'MSG seq must be above h: %r'
                                   % ln)
                self.assertGreater(m[2], last_seq, ln)
                self.assertEqual(int(m[3]), expect,
                                 'SUB t sent after PUB %d: snapshot %s, '
                                 '+OK SUB t %d: expected the next value %d,'
                                 ' got %r' % (mk, lines[:-1] or 'empty', h,
                                              expect, ln))
                last_seq = m[2]
                expect += 1
            try:
                c.assert_no_line(0.2)
            except AssertionError as e:
                raise AssertionError('SUB t sent after PUB %d, +OK SUB t %d,'
                                     ' got every value to %d, then: %s' %
                                     (mk, h, n, e))


PUBLISHER = r'''
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
f = s.makefile('rb')
assert f.readline().startswith(b'HELLO ')
n = int(sys.argv[2])
for j in range(0, n, 5):
    s.sendall(''.join('PUB r/%s %d\n' % ('ab'[i % 2], i)
                      for i in range(j, j + 5)).encode())
    time.sleep(0.0005)
s.sendall(b'SYNC\n')       # all taken: closing now loses nothing
assert f.readline().startswith(b'+OK SYNC ')
s.close()
'''


def server_tcp_flags(local_port, remote_port):
    """The (quick << 1) | pingpong field of /proc/net/tcp for the server's
    end of a loopback connection, or None if it is not there."""
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            v = line.split()
            loc, rem = v[1].split(':')[1], v[2].split(':')[1]
            if int(loc, 16) == local_port and int(rem, 16) == remote_port:
                return int(v[14])
    return None


class BigRecords(ht.HeraldTestCase):
    """A record longer than a worker's read buffers (sized from
    max_payload when the worker starts): max_payload raised by a reload,
    or a bus file kept from a run with a larger one.  The worker grows its
    buffers and delivers it, live, to a subscriber that lags behind it
    and in a replay, in order, or tells a GAP for it when the memory
    cannot be had; what follows it is never stalled."""

    BIG = 600 * 1024

    @staticmethod
    def payload(n, k=0):
        chars = ''.join(chr(c) for c in range(0x21, 0x7f))
        return (chars * (n // len(chars) + 2))[k:k + n]

    def expect_big_then_small(self, c, big, seq, what):
        ln = c.line(20)
        self.assertEqual(ln, 'MSG big/a %d %s' % (seq - 1, big),
                         '%s: expected the %d-byte MSG big/a %d, got %r' %
                         (what, len(big), seq - 1, ln[:200]))
        self.assertEqual(c.line(20), 'MSG big/b %d small' % seq, what)

    def reload_max_payload(self, srv, i, value):
        """Raise max_payload (65536 before) by a reload; returns once the
        worker of ingest connection i has it."""
        srv.write_config('max_payload = %d;\n' % value)
        srv.signal(signal.SIGHUP)
        probe = 'PUB probe/x %s\nSYNC\n' % ('p' * 65600)
        deadline = time.monotonic() + 5
        while True:
            i.send(probe)
            lines = i.read_final()
            if lines[-1].startswith('+OK SYNC'):
                return
            self.assertEqual(lines, ['-ERR payload-too-large probe/x'])
            self.assertRegex(i.read_final()[-1], r'^\+OK SYNC')
            self.assertLess(time.monotonic(), deadline,
                            'max_payload not raised 5 s after HUP')
            time.sleep(0.1)

    def test_max_payload_raised_by_reload(self):
        srv = self.server({'bus.size': '16M', 'clients.out_limit': '64M'},
                          config='max_payload = 65536;\n', workers=1)
        live = self.conn(srv.port)
        live.sub('big/#')
        # Lags behind the worker when the big record comes: its own walk
        # through the bus meets it.
        lag = self.conn(srv.port, rcvbuf=4096)
        lag.sub('fill/x')
        lag.sub('big/#')
        i = self.conn(srv.ingest_port, timeout=20)
        since = i.sync()
        self.reload_max_payload(srv, i, 1048576)
        # more than the kernel buffers of lag's connection hold
        nfill, fill = 5000, self.payload(1000)
        i.send(''.join('PUB fill/x %d %s\n' % (k, fill)
                       for k in range(nfill)))
        big = self.payload(self.BIG)
        i.pub('big/a', big)
        i.pub('big/b', 'small')
        s = i.sync()
        self.expect_big_then_small(live, big, s, 'live subscriber')
        for k in range(nfill):
            m = ht.parse_msg(lag.line(20))
            self.assertEqual((m[0], m[1], m[3]),
                             ('MSG', 'fill/x', '%d %s' % (k, fill)))
        self.expect_big_then_small(lag, big, s, 'lagging subscriber')
        # a resume replays it
        r = self.conn(srv.port)
        self.assertEqual(r.sub('big/#', since), ([], s))
        self.expect_big_then_small(r, big, s, 'resumed subscriber')
        for c in (live, lag, r):
            self.assertEqual(c.cmd('PING'), ['PONG'])

    def on_worker(self, srv, port, role, limit=60):
        """A connection to port held by worker role."""
        for _ in range(limit):
            c = self.conn(port)
            if srv.worker_of([c], port)[c] == role:
                return c
            c.close()
        self.fail('no connection to port %d reached %s' % (port, role))

    @unittest.skipIf(os.environ.get('HERALD_SANITIZED'), 'ASan reports an '
                     'allocation that fails instead of returning NULL')
    def test_no_memory_for_a_big_record(self):
        """A worker that cannot have the memory for a record over its
        buffers (its address space capped) tells each subscriber that
        takes it a GAP for its seq, counted, and goes on with the next
        record; the other worker delivers it."""
        srv = self.server({'bus.size': '16M', 'clients.out_limit': '64M'},
                          config='max_payload = 65536;\n', workers=2)
        capped = self.on_worker(srv, srv.port, 'worker 1')
        other = self.on_worker(srv, srv.port, 'worker 2')
        i = self.on_worker(srv, srv.ingest_port, 'worker 2')
        for c in (capped, other):
            c.sub('big/#')
        self.reload_max_payload(srv, i, 3 << 20)
        big = self.payload((3 << 20) - 1000)
        pid = srv.pids()['worker 1']
        vm = ht.proc_rss_kb(pid, 'VmSize') * 1024
        hard = resource.prlimit(pid, resource.RLIMIT_AS)[1]
        resource.prlimit(pid, resource.RLIMIT_AS, (vm + (1 << 20), hard))
        i.pub('big/a', big)
        i.pub('big/b', 'small')
        s = i.sync()
        self.assertEqual(capped.line(20), 'GAP %d %d' % (s - 1, s - 1))
        self.assertEqual(capped.line(20), 'MSG big/b %d small' % s)
        self.expect_big_then_small(other, big, s, 'the other worker')
        self.assertEqual(capped.cmd('PING'), ['PONG'])
        self.assertGreaterEqual(int(capped.stats()['gaps']), 1)
        self.assertIn('no memory to read the', srv.log())

    def test_kept_bus_with_records_over_max_payload(self):
        srv = self.server({'bus.size': '8M', 'max_payload': 1048576},
                          workers=1)
        i = self.conn(srv.ingest_port)
        since = i.sync()
        big = self.payload(self.BIG, 3)
        i.pub('big/a', big)
        i.pub('big/b', 'small')
        s = i.sync()
        i.close()
        srv.overrides['max_payload'] = 1024
        srv.restart()
        r = self.conn(srv.port)
        self.assertEqual(r.sub('big/#', since), ([], s))
        self.expect_big_then_small(r, big, s, 'resumed subscriber')
        self.assertEqual(r.cmd('PING'), ['PONG'])
        vals, h = self.conn(srv.port).sub('big/#')
        self.assertEqual((sorted(vals), h),
                         (['VAL big/a %d %s' % (s - 1, big),
                           'VAL big/b %d small' % s], s))


class PublisherAcks(ht.HeraldTestCase):

    def test_publisher_data_acknowledged_at_once(self):
        """PUB has no reply to carry the ACK: after reading a publisher's
        lines the server acknowledges them at once (it leaves delayed-ACK
        mode), so that a publisher with Nagle's algorithm on is not held
        up to 40 ms.  A SYNC's answer puts the socket in delayed-ACK
        (pingpong) mode; the PUBs that follow must take it out."""
        srv = self.server()
        watch = self.conn(srv.port)
        watch.sub('ack/#')
        p = self.conn(srv.ingest_port)      # Nagle on: Python's default
        mine = p.sock.getsockname()[1]
        for i in range(5):
            p.sync()
            p.pub('ack/x', str(i))
            watch.expect(r'^MSG ack/x \d+ %d$' % i)
            flags = server_tcp_flags(srv.ingest_port, mine)
            self.assertIsNotNone(flags, 'no server socket in /proc/net/tcp')
            self.assertEqual(flags & 1, 0, 'the ingest socket is still in '
                             'delayed-ACK mode after reading a PUB')


class RollingBatch(ht.HeraldTestCase):
    """While a worker writes a round of clients, records that reach the
    bus join the batch: the clients not yet written get them at once,
    the others in the next round.  A batch is cut after a second, or when
    other work waits, and the next one gives the records of its last
    round to the clients written before they came.  Under a publisher
    that keeps coming (on the same worker: its PUBs are taken between
    writes), every client must still get exactly its records, once, in
    order."""

    def clients(self, srv, patterns, count):
        cs = []
        for k in range(count):
            c = self.conn(srv.port)
            for pat in patterns[k % len(patterns)]:
                c.sub(pat)
            c.sock.setblocking(False)
            cs.append(c)
        return cs

    def publish_and_read(self, srv, cs, n, expect, between=None,
                         replies=lambda k: 0):
        """Publish n records from another process while reading every
        client; between(k) runs on each pass of the reading loop.
        Returns each client's lines once it has its expected MSGs and
        replies(k) more lines."""
        import selectors
        sel = selectors.DefaultSelector()
        for k, c in enumerate(cs):
            sel.register(c.sock, selectors.EVENT_READ, k)
        bufs = [b''] * len(cs)
        ing = self.conn(srv.ingest_port)

        def drain(timeout):
            for key, _ in sel.select(timeout):
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                self.assertTrue(data, 'client %d closed' % key.data)
                bufs[key.data] += data

        # A steady trickle from another process (this one is busy
        # reading), not one burst: 5 records every half millisecond.
        pub = subprocess.Popen([sys.executable, '-c', PUBLISHER,
                                str(srv.ingest_port), str(n)])
        self.addCleanup(pub.kill)
        passes = 0
        while pub.poll() is None:
            drain(0.01)
            if between:
                between(passes)
            passes += 1
        self.assertEqual(pub.returncode, 0, 'the publisher failed')
        ing.sync()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
                bufs[k].count(b'\n') < len(expect[k]) + replies(k)
                for k in range(len(cs))):
            drain(0.1)
        return [bufs[k].decode().splitlines() for k in range(len(cs))]

    def check_msgs(self, k, lines, expect, what):
        got, seqs = [], []
        for ln in lines:
            m = ht.parse_msg(ln)
            self.assertTrue(m and m[0] == 'MSG', 'client %d: %r' % (k, ln))
            got.append(int(m[3]))
            seqs.append(m[2])
        self.assertEqual(seqs, sorted(set(seqs)),
                         'client %d: seqs not strictly increasing' % k)
        self.assertEqual(got, expect, 'client %d (%s): wrong records'
                         % (k, what))

    def test_many_clients_under_steady_publishing(self):
        srv = self.server({'clients.heartbeat': 0}, workers=1)
        patterns = [['r/#'], ['r/a'], ['r/a', 'r/#'], ['r/b', 'r/+']]
        cs = self.clients(srv, patterns, 1000)
        n = 3000
        want = {'r/#': None, 'r/a': 'r/a', 'r/b': 'r/b', 'r/+': None}

        def expected(k):
            topics = set()
            for pat in patterns[k % len(patterns)]:
                topics |= {'r/a', 'r/b'} if want[pat] is None else \
                    {want[pat]}
            return [i for i in range(n) if 'r/%s' % 'ab'[i % 2] in topics]
        expect = [expected(k) for k in range(len(cs))]
        out = self.publish_and_read(srv, cs, n, expect)
        for k in range(len(cs)):
            self.check_msgs(k, out[k], expect[k],
                            patterns[k % len(patterns)])

    def test_commands_between_cut_batches(self):
        """Clients that send commands while the publisher goes on: a
        command cuts the batch (other work waits), and the client that ran
        it rejoins the fast path at the cut, behind records it may have
        been sent in the cut batch's last round: none twice, none lost,
        every PONG in order."""
        srv = self.server({'clients.heartbeat': 0}, workers=1)
        cs = self.clients(srv, [['r/#']], 600)
        n = 4000
        expect = [list(range(n))] * len(cs)
        pings = [0] * len(cs)

        def ping(i):
            for k in range(i % 20, len(cs), 20):
                cs[k].sock.send(b'PING %d\n' % pings[k])
                pings[k] += 1
        out = self.publish_and_read(srv, cs, n, expect, between=ping,
                                    replies=lambda k: pings[k])
        self.assertGreater(sum(pings), 0)
        for k in range(len(cs)):
            pongs = [ln for ln in out[k] if ln.startswith('PONG')]
            self.assertEqual(pongs, ['PONG %d' % i for i in
                                     range(pings[k])], 'client %d' % k)
            msgs = [ln for ln in out[k] if not ln.startswith('PONG')]
            self.check_msgs(k, msgs, expect[k], 'r/#')

    def test_publisher_commands_keep_their_order(self):
        """A publisher's PUBs are taken between the writes of a round, but
        only whole PUB lines at the head of its input, and none while it
        has lines kept: a SYNC or PING among them is answered in its
        place, and the PUBs after a SYNC wait for its answer, even those
        that come in a later write; the second half of a line cut in two
        is never taken for a line of its own (while another publisher
        keeps rounds of 600 clients going)."""
        import selectors
        srv = self.server({'clients.heartbeat': 0}, workers=1)
        cs = self.clients(srv, [['r/#']], 600)
        watch = self.conn(srv.port)
        watch.sub('m/#')
        stop = threading.Event()

        def read_and_drop():
            sel = selectors.DefaultSelector()
            for c in cs:
                sel.register(c.sock, selectors.EVENT_READ)
            while not stop.is_set():
                for key, _ in sel.select(0.05):
                    try:
                        key.fileobj.recv(1 << 20)
                    except (BlockingIOError, OSError):
                        pass
        reader = threading.Thread(target=read_and_drop, daemon=True)
        reader.start()
        self.addCleanup(reader.join, 5)
        self.addCleanup(stop.set)
        flood = subprocess.Popen([sys.executable, '-c', PUBLISHER,
                                  str(srv.ingest_port), '20000'])
        self.addCleanup(flood.kill)
        p = self.conn(srv.ingest_port)
        for i in range(16):
            t = 'm/x%d' % i
            p.sock.sendall(('PUB {t} 1\nPUB {t} 2\nSYNC\nPUB {t} 3\n'
                            'PING a{i}\n').format(t=t, i=i).encode())
            time.sleep(0.002 * (i % 4))  # while the SYNC may still wait
            p.sock.sendall(('PUB {t} 4\nSYNC\n').format(t=t).encode())
            s1 = int(p.expect(r'^\+OK SYNC (\d+)$').group(1))
            p.expect(r'^PONG a%d$' % i)
            s2 = int(p.expect(r'^\+OK SYNC (\d+)$').group(1))
            got = [ht.parse_msg(watch.line()) for _ in range(4)]
            self.assertEqual([(m[0], m[1], m[3]) for m in got],
                             [('MSG', t, str(k)) for k in range(1, 5)])
            q = [m[2] for m in got]
            self.assertLessEqual(q[1], s1, 'SYNC answered before PUB 2 '
                                 'was in the bus')
            self.assertLess(s1, q[2], 'PUB 3 was taken before the SYNC '
                            'ahead of it was answered')
            self.assertLessEqual(q[3], s2)
            # A line cut in two: its second half, a whole PUB line by
            # itself, must not be taken as one while the first is kept.
            p.sock.sendall(b'PUB m/y%d ' % i)
            time.sleep(0.002 + 0.003 * (i % 4))
            p.sock.sendall(b'PUB m/z%d v\n' % i)
            m = ht.parse_msg(watch.line())
            self.assertEqual((m[0], m[1], m[3]),
                             ('MSG', 'm/y%d' % i, 'PUB m/z%d v' % i))

    def test_client_publishers_served_between_writes(self):
        """A client of the client listener that may publish
        (clients.publish) has its whole PUB lines taken between the writes
        of a round, as an ingest connection has: under a flood that keeps
        rounds of 600 clients going, its PUB enters the bus before one an
        ingest connection sends right after it.  Served by the loop only,
        it waited for the round to end, and the ingest PUB went first.  A
        publisher that takes the flood itself still gets every record of
        it, once, in order; one that its bad PUBs close mid-round gets
        nothing after its BYE, and is written no more."""
        import selectors
        srv = self.server({'clients.heartbeat': 0,
                           'clients.publish': 'm/#,x/#'}, workers=1)
        cs = self.clients(srv, [['r/#']], 600)
        watch = self.conn(srv.port)
        watch.sub('m/#')
        p = self.conn(srv.port)
        p.sub('quiet/#')        # a subscription does not keep it waiting
        both = self.conn(srv.port)
        both.sub('r/#')
        bads = []
        for _ in range(7):        # one closed every third pass
            bad = self.conn(srv.port)
            bad.sub('r/#')
            bad.pub('x/bad', 'a publisher now')
            bad.sync()
            bads.append(bad)
        kept = {c.sock: [] for c in [both] + bads}
        for c in [both] + bads:
            c.sock.setblocking(False)
        stop = threading.Event()

        def read():
            sel = selectors.DefaultSelector()
            for c in cs + [both] + bads:
                sel.register(c.sock, selectors.EVENT_READ)
            while not stop.is_set():
                for key, _ in sel.select(0.05):
                    try:
                        data = key.fileobj.recv(1 << 20)
                    except (BlockingIOError, OSError):
                        continue
                    if key.fileobj in kept:
                        kept[key.fileobj].append(data)
                    if not data:
                        sel.unregister(key.fileobj)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        self.addCleanup(reader.join, 5)
        self.addCleanup(stop.set)
        n = 20000
        flood = subprocess.Popen([sys.executable, '-c', PUBLISHER,
                                  str(srv.ingest_port), str(n)])
        self.addCleanup(flood.kill)
        q = self.conn(srv.ingest_port)
        p.pub('m/p', 'first')
        watch.expect(r'^MSG m/p \d+ first$')
        time.sleep(0.2)         # the flood is going
        for k in range(20):
            p.sock.sendall(b'PUB m/p %d\n' % k)
            q.sock.sendall(b'PUB m/q %d\n' % k)
            both.sock.sendall(b'PUB m/b %d\n' % k)
            got = [ht.parse_msg(watch.line()) for _ in range(3)]
            self.assertEqual(sorted((m[1], m[3]) for m in got),
                             [('m/b', str(k)), ('m/p', str(k)),
                              ('m/q', str(k))])
            order = [m[1] for m in got]
            self.assertLess(order.index('m/p'), order.index('m/q'),
                            'pass %d: the client publisher\'s PUB waited '
                            'for the round to end: %r' % (k, got))
            time.sleep(0.005 * (k % 3))
            if k % 3 == 1:
                bads[k // 3].sock.sendall(b'PUB m//x v\n' * 16)
        self.assertIsNone(flood.poll(), 'the flood ended too soon')
        self.assertEqual(flood.wait(60), 0, 'the flood failed')
        q.sync()
        deadline = time.monotonic() + 30
        while b''.join(kept[both.sock]).count(b'\n') < n and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        reader.join(5)
        lines = b''.join(kept[both.sock]).decode().splitlines()
        self.check_msgs(0, lines, list(range(n)), 'r/# and PUB m/#')
        for bad in bads:
            lines = b''.join(kept[bad.sock]).decode().splitlines()
            errs = [ln for ln in lines if not ln.startswith('MSG ')]
            self.assertEqual(errs, ['-ERR bad-topic m//x'] * 16 +
                             ['BYE too-many-errors'])
            self.assertEqual(lines[-1], 'BYE too-many-errors')
        self.assertEqual(q.stats()['conn_errors'], '0', srv.log_tail())


if __name__ == '__main__':
    ht.main()
