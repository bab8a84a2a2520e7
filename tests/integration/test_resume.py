#!/usr/bin/env python3
"""herald integration: SUB <pattern> <since>, the resume (herald-protocol(7):
Client to server, SUB with since): live branch, replay branch, merged
replay of several SUBs, gap branch (history lost, or since below the
connection's position)."""

import os
import signal
import sys
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402


class Resume(ht.HeraldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server()

    def c(self, **kw):
        return self.conn(self.srv.port, **kw)

    def i(self, **kw):
        return self.conn(self.srv.ingest_port, **kw)

    def publish_seqs(self, items):
        """Publish (topic, payload) items; return their seqs, read from a
        witness subscribed to '#'."""
        w = self.c()
        w.sub('#')
        i = self.i()
        for t, p in items:
            i.pub(t, p)
        i.sync()
        seqs = []
        for t, p in items:
            m = ht.parse_msg(w.line())
            self.assertEqual((m[0], m[1], m[3]), ('MSG', t, p))
            seqs.append(m[2])
        w.close()
        return seqs

    def test_since_at_or_above_head(self):
        i = self.i()
        i.pub('rs/live/a', 'old')
        s = i.sync()
        for since in (s, s + 1, s + 1000, 18446744073709551615):
            c = self.c()
            lines = c.cmd('SUB rs/live/+ %d' % since)
            self.assertEqual(len(lines), 1, 'SUB since %d (head %d): %r' %
                             (since, s, lines))
            self.assertRegex(lines[0], r'^\+OK SUB rs/live/\+ \d+$')
            h = int(lines[0].split()[3])
            self.assertGreaterEqual(h, s)
            i.pub('rs/live/a', 'new%d' % since)
            m = c.expect(r'^MSG rs/live/a (\d+) new%d$' % since)
            self.assertGreater(int(m.group(1)), h)
            c.close()

    def test_replay(self):
        items = []
        for k in range(1, 21):
            items.append(('rs/rp/%d' % (k % 3), 'v%d' % k))
            items.append(('rs/other/%d' % k, 'o%d' % k))
        seqs = self.publish_seqs(items)
        mine = [(s, t, p) for s, (t, p) in zip(seqs, items)
                if t.startswith('rs/rp/')]
        since = mine[9][0]                   # the 10th
        c = self.c()
        lines = c.cmd('SUB rs/rp/+ %d' % since)
        self.assertEqual(len(lines), 1, 'replay branch: just +OK, got %r'
                         % lines)
        self.assertRegex(lines[0], r'^\+OK SUB rs/rp/\+ \d+$')
        h = int(lines[0].split()[3])
        self.assertGreaterEqual(h, seqs[-1])
        for s, t, p in mine[10:]:
            self.assertEqual(c.line(), 'MSG %s %d %s' % (t, s, p))
        i = self.i()
        i.pub('rs/other/x', 'no')
        i.pub('rs/rp/1', 'live1')
        i.pub('rs/rp/2', 'live2')
        m1 = c.expect(r'^MSG rs/rp/1 (\d+) live1$')
        m2 = c.expect(r'^MSG rs/rp/2 (\d+) live2$')
        self.assertGreater(int(m1.group(1)), h)
        self.assertGreater(int(m2.group(1)), int(m1.group(1)))
        c.assert_no_line(0.2)

    def test_replay_since_zero(self):
        srv = self.server()
        i = self.conn(srv.ingest_port)
        for k in range(5):
            i.pub('z/%d' % k, str(k))
        i.sync()
        c = self.conn(srv.port)
        lines = c.cmd('SUB z/+ 0')
        self.assertEqual(len(lines), 1, lines)
        for k in range(5):
            self.assertEqual(c.line(), 'MSG z/%d %d %d' % (k, k + 1, k))

    def test_long_replay(self):
        """A replay longer than one fan-out batch, whose first write also
        carries the +OK: the records and the reply go in one sendmsg,
        which takes at most IOV_MAX iovecs (EMSGSIZE closed the client)."""
        srv = self.server()
        i = self.conn(srv.ingest_port)
        n = 3000
        for k in range(0, n, 500):
            i.send(''.join('PUB lr/a %d\n' % j for j in range(k, k + 500)))
        self.assertEqual(i.sync(), n)
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('SUB lr/a 0'), ['+OK SUB lr/a %d' % n])
        for k in range(n):
            self.assertEqual(c.line(), 'MSG lr/a %d %d' % (k + 1, k))

    def test_merged_replay(self):
        items = []
        for k in range(1, 31):
            items.append(('rs/m/%s' % 'abc'[k % 3], 'v%d' % k))
        seqs = self.publish_seqs(items)
        since = seqs[4]
        c = self.c()
        c.send('SUB rs/m/a %d\nSUB rs/m/b %d\nSUB rs/m/+ %d\n' %
               (since, since, since))
        oks = [c.line() for _ in range(3)]
        self.assertRegex(oks[0], r'^\+OK SUB rs/m/a \d+$', oks)
        self.assertRegex(oks[1], r'^\+OK SUB rs/m/b \d+$', oks)
        self.assertRegex(oks[2], r'^\+OK SUB rs/m/\+ \d+$', oks)
        want = [(s, t, p) for s, (t, p) in zip(seqs, items) if s > since]
        for s, t, p in want:
            self.assertEqual(c.line(), 'MSG %s %d %s' % (t, s, p))
        c.assert_no_line(0.3)

    def test_merged_replay_two_patterns(self):
        items = []
        for k in range(1, 31):
            items.append(('rs/mm/%s' % 'xyz'[k % 3], 'v%d' % k))
        seqs = self.publish_seqs(items)
        since = seqs[9]
        c = self.c()
        c.send('SUB rs/mm/x %d\nSUB rs/mm/y %d\n' % (since, since))
        self.assertRegex(c.line(), r'^\+OK SUB rs/mm/x \d+$')
        self.assertRegex(c.line(), r'^\+OK SUB rs/mm/y \d+$')
        want = [(s, t, p) for s, (t, p) in zip(seqs, items)
                if s > since and t[-1] in 'xy']
        for s, t, p in want:
            self.assertEqual(c.line(), 'MSG %s %d %s' % (t, s, p))
        c.assert_no_line(0.3)

    def test_gap_since_below_position(self):
        c = self.c()
        c.sub('rs/pos/a')
        i = self.i()
        i.pub('rs/pos/b', 'bv1')
        i.pub('rs/pos/a', 'av')
        i.pub('rs/pos/b', 'bv2')
        s_hi = i.sync()
        m = c.expect(r'^MSG rs/pos/a (\d+) av$')
        s = int(m.group(1))
        # since s-1 is below the connection's position s: the gap branch
        lines = c.cmd('SUB rs/pos/b %d' % (s - 1))
        self.assertEqual(len(lines), 3, 'expected GAP, VAL, +OK: %r' % lines)
        h = int(lines[-1].split()[3])
        self.assertRegex(lines[-1], r'^\+OK SUB rs/pos/b \d+$')
        self.assertGreaterEqual(h, s_hi)
        self.assertEqual(lines[0], 'GAP %d %d' % (s, h))
        self.assertEqual(lines[1], 'VAL rs/pos/b %d bv2' % s_hi)
        i.pub('rs/pos/b', 'bv3')
        m = c.expect(r'^MSG rs/pos/b (\d+) bv3$')
        self.assertGreater(int(m.group(1)), h)

    def test_since_equal_position_is_replay(self):
        c = self.c()
        c.sub('rs/eq/a')
        i = self.i()
        i.pub('rs/eq/a', 'av')
        s = int(c.expect(r'^MSG rs/eq/a (\d+) av$').group(1))
        i.pub('rs/eq/b', 'b1')
        s2 = i.sync()
        lines = c.cmd('SUB rs/eq/b %d' % s)
        self.assertEqual(len(lines), 1, 'since = position: no gap: %r'
                         % lines)
        self.assertEqual(c.line(), 'MSG rs/eq/b %d b1' % s2)


class Storm(ht.HeraldTestCase):

    def test_many_resume_at_once(self):
        """300 subscribers (exact topics and wildcards) drop at once, the
        bus moves on, and they all resume at once with SUB ... since:
        each gets exactly the messages it missed, in order, no GAP (the
        resumes of a loop turn share one sweep of the ring)."""
        srv = self.server({'clients.per_address': 10000})
        pub = self.conn(srv.ingest_port)
        ntop = 20
        pats = ['st/%d' % (k % ntop) if k % 3 else 'st/+' for k in
                range(300)]

        def wants(pat, topic):
            return pat == 'st/+' or pat == topic

        conns = []
        for pat in pats:
            c = self.conn(srv.port)
            c.sub(pat)
            conns.append(c)
        for k in range(200):
            pub.pub('st/%d' % (k % ntop), 'a%d' % k)
        h1 = pub.sync()
        seen = []
        for pat, c in zip(pats, conns):
            want = sum(1 for k in range(200)
                       if wants(pat, 'st/%d' % (k % ntop)))
            last = 0
            for _ in range(want):
                m = ht.parse_msg(c.line())
                self.assertEqual(m[0], 'MSG')
                last = m[2]
            seen.append(last)
            c.close()
        msgs = {}
        for k in range(500):
            t = 'st/%d' % (k % ntop)
            pub.pub(t, 'b%d' % k)
        h2 = pub.sync()
        # the bus from h1 on, as every client must get it
        for k in range(500):
            msgs[h1 + 1 + k] = ('st/%d' % (k % ntop), 'b%d' % k)
        again = []
        for pat, since in zip(pats, seen):
            c = self.conn(srv.port, timeout=20)
            c.send(('SUB %s %d\n' % (pat, since)).encode())
            again.append(c)
        for pat, since, c in zip(pats, seen, again):
            self.assertEqual(c.line(), '+OK SUB %s %d' % (pat, h2))
            want = [(s, t, v) for s, (t, v) in sorted(msgs.items())
                    if s > since and wants(pat, t)]
            got = []
            for _ in range(len(want)):
                m = ht.parse_msg(c.line())
                self.assertIsNotNone(m, 'a GAP or other line')
                got.append((m[2], m[1], m[3]))
            self.assertEqual(got, want, pat)
        for c in again[:5]:
            c.assert_no_line(0.1)

    def test_commands_before_hello(self):
        """Clients that send their commands with the connection, before
        HELLO (they are in the socket when the worker accepts: the
        workers are stopped meanwhile), get HELLO first, then the replies
        in order, the +OK before the replay (one write per client)."""
        srv = self.server({'workers': 1})
        pub = self.conn(srv.ingest_port)
        for k in range(30):
            pub.pub('pre/%d' % (k % 3), 'a%d' % k)
        h = pub.sync()
        first = h - 29                     # seq of a0
        wid = srv.worker_pids()['worker 1']
        os.kill(wid, signal.SIGSTOP)
        try:
            kinds, conns = [], []
            for k in range(60):
                c = self.conn(srv.port, hello=False)
                kind = k % 4
                if kind == 0:              # replay, and a PING behind it
                    c.send(b'SUB pre/1 %d\nPING p%d\n' % (first + 9, k))
                elif kind == 1:            # two patterns, one since
                    c.send(b'SUB pre/0 %d\nSUB pre/2 %d\n' %
                           (first + 20, first + 20))
                elif kind == 2:            # a snapshot
                    c.send(b'SUB pre/+\nGET pre/0\n')
                else:                      # a line cut in two
                    c.send(b'SUB pre/1 ')
                kinds.append(kind)
                conns.append(c)
        finally:
            os.kill(wid, signal.SIGCONT)
        for k, (kind, c) in zip(range(60), zip(kinds, conns)):
            self.assertEqual(c.line(), 'HELLO herald/1 %d' % h, k)
            if kind == 0:
                self.assertEqual(c.line(), '+OK SUB pre/1 %d' % h)
                self.assertEqual(c.line(), 'PONG p%d' % k)
                for j in range(10, 30):
                    if j % 3 == 1:
                        self.assertEqual(c.line(), 'MSG pre/1 %d a%d' %
                                         (first + j, j))
            elif kind == 1:
                self.assertEqual(c.line(), '+OK SUB pre/0 %d' % h)
                self.assertEqual(c.line(), '+OK SUB pre/2 %d' % h)
                for j in range(21, 30):
                    if j % 3 != 1:
                        self.assertEqual(c.line(), 'MSG pre/%d %d a%d' %
                                         (j % 3, first + j, j))
            elif kind == 2:
                vals = sorted(c.line() for _ in range(3))
                self.assertEqual(vals, ['VAL pre/%d %d a%d' %
                                        (j % 3, first + j, j)
                                        for j in (27, 28, 29)])
                self.assertEqual(c.line(), '+OK SUB pre/+ %d' % h)
                self.assertEqual(c.line(), 'VAL pre/0 %d a27' %
                                 (first + 27))
                self.assertEqual(c.line(), '+OK GET pre/0')
            else:
                c.assert_no_line(0.05)
                c.send(b'%d\n' % (first + 27))
                self.assertEqual(c.line(), '+OK SUB pre/1 %d' % h)
                self.assertEqual(c.line(), 'MSG pre/1 %d a28' %
                                 (first + 28))
        pub.pub('pre/1', 'live')
        live = pub.sync()
        for kind, c in zip(kinds, conns):
            if kind != 1:
                self.assertEqual(c.line(), 'MSG pre/1 %d live' % live)
            c.assert_no_line(0.02)


class GapBranch(ht.HeraldTestCase):

    def test_lapped_history(self):
        srv = self.server({'bus.size': '64K', 'max_payload': 4096})
        i = self.conn(srv.ingest_port)
        pay = 'p' * 190
        data = []
        for k in range(2000):
            data.append('PUB g/%d %s%04d\n' % (k % 5, pay, k))
        i.send(''.join(data))
        s = i.sync()
        self.assertGreaterEqual(s, 2000)
        c = self.conn(srv.port)
        lines = c.cmd('SUB g/+ 1')
        self.assertRegex(lines[-1], r'^\+OK SUB g/\+ \d+$', lines)
        h = int(lines[-1].split()[3])
        self.assertGreaterEqual(h, s)
        self.assertEqual(lines[0], 'GAP 2 %d' % h, lines[:3])
        vals = {}
        for ln in lines[1:-1]:
            m = ht.parse_msg(ln)
            self.assertEqual(m[0], 'VAL', ln)
            self.assertLessEqual(m[2], h)
            vals[m[1]] = m[3]
        self.assertEqual(vals, {'g/%d' % k: '%s%04d' % (pay, 1995 + k)
                                for k in range(5)})
        # the GAP moved the connection's position to h: a since below it
        # takes the gap branch even though the bus holds since+1..h
        lines = c.cmd('SUB g/0 %d' % (h - 1))
        self.assertEqual(len(lines), 3, lines)
        self.assertEqual(lines[0], 'GAP %d %d' % (h, h))
        self.assertEqual(lines[1], 'VAL g/0 %d %s1995' % (h - 4, pay))
        self.assertEqual(lines[2], '+OK SUB g/0 %d' % h)
        i.pub('g/1', 'live')
        m = c.expect(r'^MSG g/1 (\d+) live$')
        self.assertGreater(int(m.group(1)), h)
        # since 0 is lapped too
        c2 = self.conn(srv.port)
        lines = c2.cmd('SUB g/4 0')
        h2 = int(lines[-1].split()[3])
        self.assertEqual(lines[0], 'GAP 1 %d' % h2)
        self.assertEqual(len(lines), 3, lines)
        # a since the bus still holds is replayed
        c3 = self.conn(srv.port)
        lines = c3.cmd('SUB g/1 %d' % (h2 - 3))
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(c3.line(), 'MSG g/1 %d live' % h2)


if __name__ == '__main__':
    ht.main()
