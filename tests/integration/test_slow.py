#!/usr/bin/env python3
"""herald integration: slow consumers (conflate and disconnect policies,
herald-protocol(7) Guarantees 1-3), heartbeats and the idle timeout."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

NTOPICS = 10


class Reader(threading.Thread):
    """Reads a connection's lines until a MSG on topic `until`."""

    def __init__(self, conn, until, timeout=30):
        super().__init__(daemon=True)
        self.conn, self.until, self.timeout = conn, until, timeout
        self.lines = []
        self.error = None

    def run(self):
        try:
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                ln = self.conn.recv_line(deadline - time.monotonic())
                if ln is None:
                    self.error = 'EOF after %d lines' % len(self.lines)
                    return
                self.lines.append(ln)
                if ln.startswith('MSG %s ' % self.until):
                    return
            self.error = 'timed out'
        except Exception as e:
            self.error = repr(e)


class Slow(ht.HeraldTestCase):

    def flood(self, srv, n=3000, size=1024, reader=None):
        """Publish n PUBs of `size` bytes over NTOPICS topics, then
        busy/end; returns the SYNC seq.  With a reader (the fast client),
        stay at most 500 messages ahead of it: on a loaded machine a
        Python thread sharing the GIL with this loop can fall megabytes
        behind, and the fast client must be fast by construction."""
        i = self.conn(srv.ingest_port, timeout=30)
        chunk = []
        for k in range(n):
            chunk.append('PUB busy/%d %06d%s\n' % (k % NTOPICS, k,
                                                   'x' * (size - 6)))
            if len(chunk) == 100:
                i.send(''.join(chunk))
                chunk = []
                deadline = time.monotonic() + 10
                while reader is not None and len(reader.lines) < k - 500 \
                        and time.monotonic() < deadline:
                    time.sleep(0.002)
            if k % 2000 == 1999:
                i.sync()        # keeps the producer's queue short (busy)
        chunk.append('PUB busy/end end\n')
        i.send(''.join(chunk))
        return i.sync()

    def setup_clients(self, srv):
        fast = self.conn(srv.port, timeout=30)
        fast.sub('busy/#')
        slow = self.conn(srv.port, rcvbuf=4096, timeout=30)
        slow.sub('busy/#')
        reader = Reader(fast, 'busy/end')
        reader.start()
        return fast, slow, reader

    def check_fast(self, reader, n):
        reader.join(40)
        self.assertIsNone(reader.error, 'fast client: %s; last lines %r' %
                          (reader.error, [ln[:60] for ln in
                                          reader.lines[-3:]]))
        recs = []
        last = 0
        for ln in reader.lines:
            m = ht.parse_msg(ln)
            self.assertTrue(m and m[0] == 'MSG',
                            'fast client got %r' % ln[:80])
            self.assertGreater(m[2], last)
            last = m[2]
            recs.append((m[2], m[1], m[3]))
        self.assertEqual(len(recs), n + 1, 'fast client: every message')
        return recs

    def verify_stream(self, lines, recs, h0, match=None):
        """Check a conflating client's lines against every record published
        (recs: (seq, topic, payload)) of which those whose topic passes
        match (default: all) match its subscriptions: Guarantees 1 and 2
        and the GAP/VAL rule.  Returns (position, gaps)."""
        if match is not None:
            recs = [r for r in recs if match(r[1])]
        by_seq = {s: (t, p) for s, t, p in recs}
        pos = h0
        delivered = set()
        gaps = []
        k = 0
        while k < len(lines):
            ln = lines[k]
            g = ht.parse_gap(ln)
            m = ht.parse_msg(ln)
            if m and m[0] == 'MSG':
                self.assertGreater(m[2], pos, 'line %d: MSG seq not above '
                                   'the position %d: %r' % (k, pos, ln[:60]))
                self.assertEqual((m[1], m[3]), by_seq.get(m[2]),
                                 'line %d: MSG differs from what was '
                                 'published' % k)
                delivered.add(m[2])
                pos = m[2]
                k += 1
                continue
            self.assertTrue(g, 'line %d: expected MSG or GAP, got %r (after '
                            '%r)' % (k, ln[:80], [x[:40] for x in
                                                  lines[max(0, k - 2):k]]))
            a, b = g
            self.assertGreater(a, pos, 'line %d: %s starts at or below the '
                               'last seq already sent (%d)' % (k, ln, pos))
            skipped = [r[0] for r in recs if pos < r[0] < a]
            self.assertEqual(skipped, [], 'line %d: %s: matching seqs '
                             'between the position %d and the GAP were '
                             'skipped silently' % (k, ln, pos))
            self.assertGreaterEqual(b, a, ln)
            gaps.append((a, b))
            # the VALs: newest value as of b of every topic, if in a..b
            want = {}
            for s, t, p in recs:
                if s <= b:
                    want[t] = (s, p)
            want = {t: sp for t, sp in want.items() if a <= sp[0] <= b}
            got = {}
            k += 1
            while k < len(lines) and lines[k].startswith('VAL '):
                m = ht.parse_msg(lines[k])
                self.assertNotIn(m[1], got, 'two VALs for %s after %s' %
                                 (m[1], ln))
                got[m[1]] = (m[2], m[3])
                k += 1
            self.assertEqual(
                {t: s for t, (s, p) in got.items()},
                {t: s for t, (s, p) in want.items()},
                'VALs after %s: {topic: seq}' % ln)
            self.assertEqual(got, want, 'VAL payloads after %s' % ln)
            pos = b
        self.assertTrue(gaps, 'the stalled client got no GAP (%d lines)' %
                        len(lines))
        # Guarantee 2: nothing lost silently
        lost = [s for s, t, p in recs if s not in delivered and
                not any(a <= s <= b for a, b in gaps)]
        self.assertEqual(lost, [], 'seqs neither delivered nor in a GAP')
        return pos, gaps

    def test_conflate(self):
        srv = self.server({'clients.out_limit': '64K', 'bus.size': '16M'})
        st0 = srv.stats()
        fast, slow, reader = self.setup_clients(srv)
        # 6 MB: more than the kernel's socket buffers hold (the server's
        # send buffer grows to tcp_wmem's maximum, 4 MB here)
        n = 6000
        self.flood(srv, n, reader=reader)
        recs = self.check_fast(reader, n)
        h0 = recs[0][0] - 1
        # now the stalled client reads
        lines, eof = slow.read_all(quiet=1.0, timeout=30)
        self.assertFalse(eof, 'conflate must not close the slow client; '
                         'last lines %r' % [ln[:60] for ln in lines[-3:]])
        pos, gaps = self.verify_stream(lines, recs, h0)
        self.assertEqual(pos, recs[-1][0], 'the slow client caught up')
        st1 = srv.stats()
        self.assertGreater(int(st1['gaps']), int(st0['gaps']),
                           'STAT gaps')
        self.assertGreater(int(st1['slow_consumers']),
                           int(st0['slow_consumers']), 'STAT slow_consumers')
        # it is still a normal client
        self.assertEqual(slow.cmd('PING after'), ['PONG after'])

    def test_conflate_subset(self):
        """Two patterns matching part of the traffic: MSGs and VALs only
        for matching topics, nothing matching lost silently."""
        srv = self.server({'clients.out_limit': '64K', 'bus.size': '16M'})
        fast = self.conn(srv.port, timeout=30)
        fast.sub('busy/#')
        slow = self.conn(srv.port, rcvbuf=4096, timeout=30)
        pats = ['busy/%d' % k for k in range(1, 9)]
        for p in pats + ['busy/+/never', 'busy/end']:
            slow.sub(p)
        reader = Reader(fast, 'busy/end')
        reader.start()
        # 5.6 MB match: more than the kernel's socket buffers hold (the
        # server's send buffer grows to tcp_wmem's maximum, 4 MB here)
        n = 7000
        self.flood(srv, n, reader=reader)
        recs = self.check_fast(reader, n)
        lines, eof = slow.read_all(quiet=1.0, timeout=30)
        self.assertFalse(eof)
        match = lambda t: t in pats or t == 'busy/end'  # noqa
        pos, gaps = self.verify_stream(lines, recs, recs[0][0] - 1, match)
        self.assertTrue(gaps, 'no GAP')
        self.assertEqual(pos, recs[-1][0])

    def test_stalled_clients_cost_no_memory(self):
        """Guarantee 3 / doc/DESIGN: a client holds a cursor, not a queue:
        20 stalled subscribers do not grow the workers' own memory."""
        srv = self.server({'bus.size': '16M'})
        stalled = []
        for _ in range(20):
            c = self.conn(srv.port, rcvbuf=4096, timeout=30)
            c.sub('busy/#')
            stalled.append(c)
        anon0 = srv.workers_rss_kb('RssAnon')
        self.flood(srv, 6000)
        time.sleep(0.5)
        anon1 = srv.workers_rss_kb('RssAnon')
        self.assertLess(anon1 - anon0, 16 * 1024,
                        'workers\' anonymous memory grew by %d kB with 20 '
                        'stalled clients and 6 MB published' %
                        (anon1 - anon0))
        for c in stalled[:2]:
            lines, eof = c.read_all(quiet=1.0, timeout=20)
            self.assertTrue(any(ht.parse_gap(ln) for ln in lines))

    def test_disconnect(self):
        srv = self.server({'clients.out_limit': '64K', 'bus.size': '16M',
                           'clients.slow_policy': 'disconnect'})
        st0 = srv.stats()
        fast, slow, reader = self.setup_clients(srv)
        n = 6000
        self.flood(srv, n, reader=reader)
        self.check_fast(reader, n)
        lines, eof = slow.read_all(quiet=3.0, timeout=30)
        self.assertFalse(slow.reset, 'slow client: connection reset after '
                         '%d lines (last %r), expected BYE slow-consumer then'
                         ' a clean close' % (len(lines), lines[-1:]))
        self.assertTrue(eof, 'slow client not closed; last lines %r' %
                        [ln[:60] for ln in lines[-3:]])
        self.assertTrue(lines, 'slow client: EOF without BYE slow-consumer')
        self.assertEqual(lines[-1], 'BYE slow-consumer')
        last = 0
        for ln in lines[:-1]:
            m = ht.parse_msg(ln)
            self.assertTrue(m and m[0] == 'MSG', ln[:80])
            self.assertGreater(m[2], last)
            last = m[2]
        deadline = time.monotonic() + 3
        while True:
            st1 = srv.stats()
            if int(st1['slow_consumers']) > int(st0['slow_consumers']) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(int(st1['slow_consumers']),
                         int(st0['slow_consumers']) + 1, 'STAT slow_consumers')

    def test_slow_by_lapping(self):
        """A reader lapped by the ring is slow too (conflate: GAP, VALs).
        out_limit is far above the ring: once the kernel's socket buffers
        are full (4 MB here), only lapping can make the client slow."""
        srv = self.server({'bus.size': '64K', 'max_payload': 4096,
                           'clients.out_limit': '1G'})
        slow = self.conn(srv.port, rcvbuf=4096, timeout=30)
        slow.sub('busy/#')
        n = 12000
        s = self.flood(srv, n, size=512)
        # a fresh bus: the k-th PUB got seq k
        self.assertEqual(s, n + 1)
        recs = [(k + 1, 'busy/%d' % (k % NTOPICS),
                 '%06d%s' % (k, 'x' * 506)) for k in range(n)]
        recs.append((n + 1, 'busy/end', 'end'))
        lines, eof = slow.read_all(quiet=1.0, timeout=30)
        self.assertFalse(eof, 'the lapped client was closed (reset: %s) '
                         'after %d lines; last %r' %
                         (slow.reset, len(lines),
                          [ln[:50] for ln in lines[-3:]]))
        pos, gaps = self.verify_stream(lines, recs, 0)
        self.assertTrue(gaps, 'lapped client got no GAP')
        self.assertEqual(pos, n + 1, 'the lapped client caught up')


class Heartbeat(ht.HeraldTestCase):

    def test_heartbeat(self):
        srv = self.server({'clients.heartbeat': 1})
        i = self.conn(srv.ingest_port)
        i.pub('hb/x', 'v')
        s = i.sync()
        c = self.conn(srv.port)
        c.sub('hb/y')
        t0 = time.monotonic()
        c.expect(r'^HB %d$' % s, timeout=2.5)
        c.expect(r'^HB %d$' % s, timeout=2.5)
        self.assertGreater(time.monotonic() - t0, 0.9,
                           'two heartbeats 1 s apart')
        i.pub('hb/x', 'w')
        s2 = i.sync()
        c.expect(r'^HB %d$' % s2, timeout=2.5)

    def test_heartbeat_off(self):
        srv = self.server({'clients.heartbeat': 0})
        c = self.conn(srv.port)
        c.sub('hb/y')
        c.assert_no_line(2.5)

    def busy(self, ingest, topic, conns, seconds):
        """Publish on topic every 0.3 s for seconds: each of conns gets
        every MSG and nothing else (no HB while messages flow)."""
        t_end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < t_end:
            ingest.pub(topic, str(k))
            for c in conns:
                m = ht.parse_msg(c.line())
                self.assertEqual((m[0], m[3]), ('MSG', str(k)),
                                 'no HB while messages flow every 0.3 s')
            k += 1
            time.sleep(0.3)

    def test_heartbeat_not_while_busy(self):
        srv = self.server({'clients.heartbeat': 1})
        c = self.conn(srv.port)
        c.sub('hb/y')
        self.busy(self.conn(srv.ingest_port), 'hb/y', [c], 2.5)

    def test_heartbeat_after_busy_spell(self):
        """The timer wheel is lazy: a client busy past its heartbeat time
        is put back by its last output, so the HB comes one interval
        after the last MSG, neither earlier nor a whole turn later."""
        srv = self.server({'clients.heartbeat': 2})
        cs = [self.conn(srv.port) for _ in range(20)]
        for c in cs:
            c.sub('hb/busy')
        self.busy(self.conn(srv.ingest_port), 'hb/busy', cs, 3.5)
        t_last = time.monotonic()
        for c in cs:
            c.expect(r'^HB \d+$', timeout=4)
            waited = time.monotonic() - t_last
            self.assertGreater(waited, 1.5, 'HB before the interval')
            self.assertLess(waited, 3.5, 'HB long after the interval')


class Idle(ht.HeraldTestCase):

    def test_idle(self):
        srv = self.server({'clients.idle_timeout': 1})
        c = self.conn(srv.port)
        t0 = time.monotonic()
        self.assertEqual(c.line(timeout=3.5), 'BYE idle')
        c.expect_eof()
        self.assertGreater(time.monotonic() - t0, 0.8)

    def test_idle_even_when_receiving(self):
        srv = self.server({'clients.idle_timeout': 1})
        c = self.conn(srv.port)
        c.sub('idle/t')
        i = self.conn(srv.ingest_port)
        deadline = time.monotonic() + 4
        got = None
        while time.monotonic() < deadline:
            i.pub('idle/t', 'x')
            i.cmd('PING')           # keeps the ingest connection alive
            ln = c.line(1.0)
            if ln.startswith('BYE'):
                got = ln
                break
            time.sleep(0.3)
        self.assertEqual(got, 'BYE idle')

    def test_lines_keep_alive(self):
        srv = self.server({'clients.idle_timeout': 1})
        c = self.conn(srv.port)
        t_end = time.monotonic() + 2.5
        while time.monotonic() < t_end:
            self.assertEqual(c.cmd('PING'), ['PONG'])
            time.sleep(0.4)
        # blank lines are lines too? herald-protocol(7): "without any line"; only
        # a command is checked here.
        self.assertEqual(c.cmd('PING end'), ['PONG end'])


if __name__ == '__main__':
    ht.main()
