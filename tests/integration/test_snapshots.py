#!/usr/bin/env python3
"""herald: snapshots under load and from hostile clients (issue #13,
items 7, 11, 12, 13, 15).  A snapshot (SUB, GET, a conflation's VALs) is
sent by cursor: a slow reader of a big one costs the worker no memory; a
SUB/UNSUB flood does not hold the worker; thousands of wildcard patterns
are quick to set up and to match; a conflation never sends a value older
than its GAP's end; a SUB on a connection that is behind never sends
older MSGs after its +OK."""

import os
import random
import re
import selectors
import signal
import sys
import threading
import time

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402
import test_slow  # noqa: E402
from test_faults import wait_turn  # noqa: E402

OK_SUB_RE = re.compile(r'^\+OK SUB (\S+) (\d+)$')


class Reader(threading.Thread):
    """Collects a connection's lines until stopped, EOF, or `until`
    (a predicate on a line) is met."""

    def __init__(self, conn, until=None, timeout=60, pace=None):
        super().__init__(daemon=True)
        self.conn, self.until, self.timeout = conn, until, timeout
        self.pace = pace            # (bytes, seconds): read that slowly
        self.lines = []
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            deadline = time.monotonic() + self.timeout
            while not self.stop.is_set() and time.monotonic() < deadline:
                if self.pace is not None:
                    self.slow_read()
                    continue
                try:
                    ln = self.conn.recv_line(0.2)
                except AssertionError:
                    continue        # nothing for a while: look at stop
                if ln is None:
                    return
                self.lines.append(ln)
                if self.until is not None and self.until(ln):
                    return
        except Exception as e:
            self.error = repr(e)

    def slow_read(self):
        n, secs = self.pace
        c = self.conn
        c.sock.settimeout(secs)
        try:
            data = c.sock.recv(n)
        except OSError:
            data = None
        if data == b'':
            self.stop.set()
            return
        if data:
            c.buf = c.buf[c.off:] + data
            c.off = 0
            while True:
                i = c.buf.find(b'\n', c.off)
                if i < 0:
                    break
                self.lines.append(c.buf[c.off:i].decode('latin-1'))
                c.off = i + 1
        time.sleep(secs)

    def finish(self, test, what, timeout=60):
        self.stop.set()
        self.join(timeout)
        test.assertFalse(self.is_alive(), '%s: reader still running' % what)
        test.assertIsNone(self.error, '%s: %s' % (what, self.error))
        return self.lines


class Publisher(threading.Thread):
    """Publishes `batch` PUBs on topics(k) every `every` seconds until
    stopped; records (seq, topic, payload) when the bus was fresh."""

    def __init__(self, srv, topics, batch=50, every=0.002, size=8):
        super().__init__(daemon=True)
        self.srv, self.topics = srv, topics
        self.batch, self.every, self.size = batch, every, size
        self.k = 0
        self.error = None
        self.stop = threading.Event()

    def payload(self, k):
        return '%d%s' % (k, 'p' * self.size)

    def run(self):
        try:
            p = ht.Conn(self.srv.ingest_port, timeout=30)
            while not self.stop.is_set():
                p.send(''.join('PUB %s %s\n' % (self.topics(self.k + j),
                                                self.payload(self.k + j))
                               for j in range(self.batch)))
                self.k += self.batch
                time.sleep(self.every)
            self.last = p.sync()
            p.close()
        except Exception as e:
            self.error = repr(e)

    def finish(self, test):
        self.stop.set()
        self.join(30)
        test.assertIsNone(self.error, 'publisher: %s' % self.error)
        return self.last


class Snapshots(ht.HeraldTestCase):

    # -- item 11 ----------------------------------------------------------
    def test_slow_readers_of_a_big_snapshot(self):
        """300 retained topics of 60 KB, 10 clients that SUB # and do not
        read: the worker's memory stays where it was (each client holds
        about one snapshot step, not 18 MB).  Then each reads, slowly or
        not, and gets every value, once, as of its h."""
        srv = self.server({'workers': 1, 'bus.size': '16M'})
        i = self.conn(srv.ingest_port, timeout=30)
        n, size = 300, 60000
        want = {}
        for k in range(n):
            pay = ('%d:' % k) + chr(0x41 + k % 26) * (size - 8)
            i.send('PUB big/%d/v %s\n' % (k, pay))
            want['big/%d/v' % k] = pay
            if k % 50 == 49:
                i.sync()
        s = i.sync()
        time.sleep(0.3)
        anon0 = srv.workers_rss_kb('RssAnon')
        slow = []
        for _ in range(10):
            c = self.conn(srv.port, rcvbuf=16384, timeout=30)
            c.sendline('SUB #')
            slow.append(c)
        # the kernel's socket buffers fill, the rest waits in the bus
        time.sleep(1.5)
        anon1 = srv.workers_rss_kb('RssAnon')
        self.assertLess(anon1 - anon0, 24 * 1024,
                        'worker anonymous memory grew by %d kB with 10 '
                        'stalled readers of an 18 MB snapshot' %
                        (anon1 - anon0))
        # they are still served: a PING from another client is answered
        self.assertEqual(self.conn(srv.port).cmd('PING x'), ['PONG x'])
        # one reads slowly (64 KB every 20 ms), the others at once
        paced = Reader(slow[0], timeout=60, pace=(65536, 0.02))
        paced.start()
        for c in slow[1:]:
            lines = c.read_until(lambda ln: ln.startswith('+OK SUB #'),
                                 timeout=60)
            self.check_snapshot(lines, want, s)
        deadline = time.monotonic() + 60
        while not any(ln.startswith('+OK SUB #') for ln in paced.lines):
            self.assertLess(time.monotonic(), deadline, 'paced reader')
            time.sleep(0.1)
        self.check_snapshot(paced.finish(self, 'paced reader'), want, s)
        # GET of one of them: the whole value
        self.assertEqual(self.conn(srv.port).cmd('GET big/7/v'),
                         ['VAL big/7/v %d %s' % (s - n + 8, want['big/7/v']),
                          '+OK GET big/7/v'])

    def check_snapshot(self, lines, want, s):
        m = OK_SUB_RE.match(lines[-1])
        self.assertTrue(m, lines[-1][:80])
        self.assertEqual(int(m.group(2)), s)
        got = {}
        for ln in lines[:-1]:
            v = ht.parse_msg(ln)
            self.assertTrue(v and v[0] == 'VAL', ln[:80])
            self.assertNotIn(v[1], got, 'two VALs for %s' % v[1])
            got[v[1]] = v[3]
        self.assertEqual(sorted(got), sorted(want))
        self.assertTrue(got == want, 'VAL payloads differ')

    def test_get_value_above_the_first_max_payload(self):
        """GET reads a value into a buffer of its size: after a reload
        raised max_payload, a value above the old limit is found."""
        srv = self.server(config='max_payload = 65536;\n')
        srv.write_config('max_payload = 900000;\n')
        srv.signal(signal.SIGHUP)
        i = self.conn(srv.ingest_port, timeout=10)
        pay = 'g' * 600000      # more than any buffer sized at start
        deadline = time.monotonic() + 5
        while True:
            lines = i.cmd('PUB get/big %s\nSYNC' % pay)
            if lines[-1].startswith('+OK SYNC'):
                break
            # The reload has not reached this worker yet: the PUB was
            # refused, and its SYNC's answer is still to be read (taken
            # for the next try's, it said seq 0 under ASan).
            self.assertTrue(i.read_final()[-1].startswith('+OK SYNC'))
            self.assertLess(time.monotonic(), deadline, 'reload: %r' %
                            lines[-1][:80])
            time.sleep(0.2)
        s = int(lines[-1].split()[2])
        c = self.conn(srv.port, timeout=10)
        self.assertEqual(c.cmd('GET get/big'),
                         ['VAL get/big %d %s' % (s, pay), '+OK GET get/big'])

    def test_big_snapshot_while_publishing(self):
        """A snapshot of many steps while its topics change: no VAL above
        h, none twice, no MSG at or below h, and every topic ends up at
        its last value (a value that changed past h comes as a MSG)."""
        srv = self.server({'workers': 1, 'bus.size': '16M',
                           'clients.out_limit': '64M'})
        i = self.conn(srv.ingest_port, timeout=30)
        n = 4000
        i.send(''.join('PUB st/%d %d%s\n' % (k, k, 'v' * 100)
                       for k in range(n)))
        i.sync()
        pub = Publisher(srv, lambda k: 'st/%d' % (k * 37 % n), batch=20)
        pub.start()
        time.sleep(0.1)
        c = self.conn(srv.port, rcvbuf=8192, timeout=30)
        reader = Reader(c, timeout=60, pace=(16384, 0.002))
        c.sendline('SUB st/+')
        reader.start()
        time.sleep(1.0)
        last = pub.finish(self)
        c.sendline('PING end')
        deadline = time.monotonic() + 60
        while 'PONG end' not in reader.lines:
            self.assertLess(time.monotonic(), deadline, 'PONG end')
            time.sleep(0.05)
        lines = reader.finish(self, 'reader')
        k = next(j for j, ln in enumerate(lines) if OK_SUB_RE.match(ln))
        h = int(OK_SUB_RE.match(lines[k]).group(2))
        state, vals = {}, set()
        for ln in lines[:k]:
            v = ht.parse_msg(ln)
            self.assertTrue(v and v[0] == 'VAL', ln[:80])
            self.assertLessEqual(v[2], h, ln[:80])
            self.assertNotIn(v[1], vals, 'two VALs for %s' % v[1])
            vals.add(v[1])
            state[v[1]] = (v[2], v[3])
        pos = h
        for ln in lines[k + 1:]:
            if ln == 'PONG end':
                break
            m = ht.parse_msg(ln)
            self.assertTrue(m and m[0] == 'MSG', ln[:80])
            self.assertGreater(m[2], pos, ln[:80])
            pos = m[2]
            state[m[1]] = (m[2], m[3])
        self.assertEqual(pos, last, 'every MSG up to the last PUB')
        g = self.conn(srv.port, timeout=30)
        for t in ('st/%d' % k for k in range(0, n, 7)):
            val = g.cmd('GET %s' % t)[0]
            self.assertEqual('VAL %s %d %s' % ((t,) + state[t]), val,
                             'the client\'s last word on %s' % t)

    # -- item 7 -------------------------------------------------------------
    def test_conflate_while_the_ring_laps(self):
        """A reader that conflates while a flood laps a tiny ring over and
        over: every GAP is followed by the values as of its end, never
        older ones, and nothing is lost silently (test_slow's rules)."""
        # a big table: walking it whole (as snapshots did) takes long
        # enough for the ring to lap the walk, again and again
        srv = self.server({'bus.size': '64K', 'max_payload': 4096,
                           'clients.out_limit': '1G', 'workers': 1,
                           'bus.retained_max': 262144})
        slow = self.conn(srv.port, rcvbuf=4096, timeout=30)
        slow.sub('busy/#')
        reader = Reader(slow, timeout=90, pace=(4096, 0.003))
        reader.start()
        n = 12000
        s = test_slow.Slow.flood(self, srv, n, size=512)
        self.assertEqual(s, n + 1)
        recs = [(k + 1, 'busy/%d' % (k % test_slow.NTOPICS),
                 '%06d%s' % (k, 'x' * 506)) for k in range(n)]
        recs.append((n + 1, 'busy/end', 'end'))
        deadline = time.monotonic() + 60
        while not any(ln.startswith('MSG busy/end ') or
                      ln.startswith('VAL busy/end ')
                      for ln in reader.lines[-12:]):
            self.assertLess(time.monotonic(), deadline, 'no busy/end')
            time.sleep(0.05)
        lines = reader.finish(self, 'slow reader')
        pos, gaps = test_slow.Slow.verify_stream(self, lines, recs, 0)
        self.assertEqual(pos, n + 1)

    # -- item 12 ------------------------------------------------------------
    def test_wildcard_flood_does_not_hold_the_worker(self):
        """A client pipelines 20,000 SUB a/+ / UNSUB a/+ pairs in one
        write.  The worker runs a bounded share of them per loop turn: it
        fans out between them (their h grow), and another client's SUB
        sent once the first answers arrive runs before the flood ends (a
        later SUB of the flood has a higher h than it)."""
        srv = self.server({'workers': 1})
        pre = self.conn(srv.ingest_port)
        for k in range(5):
            pre.pub('a/%d' % k, 'v%d' % k)
        pre.sync()
        pub = Publisher(srv, lambda k: 'p/x', batch=20, every=0.001)
        pub.start()
        a = self.conn(srv.port, timeout=60)
        b = self.conn(srv.port, timeout=60)
        a.sub('keep/a')     # a SUB owes it MSGs: its h is the worker's
        b.sub('keep/b')
        npairs = 20000     # long enough to outlast the other client
        a.send('SUB a/+\nUNSUB a/+\n' * npairs + 'PING end\n')
        first = a.read_until(lambda ln: ln.startswith('+OK SUB'))
        lines = b.cmd('SUB b/+')
        hb = int(OK_SUB_RE.match(lines[-1]).group(2))
        rest = a.read_until(lambda ln: ln == 'PONG end', timeout=120)
        pub.finish(self)
        hs = [int(m.group(2)) for m in map(OK_SUB_RE.match, first + rest)
              if m]
        self.assertEqual(len(hs), npairs)
        vals = [ln for ln in first + rest if ln.startswith('VAL ')]
        self.assertEqual(len(vals), 5 * npairs, 'a/+ snapshots')
        self.assertEqual(hs, sorted(hs))
        self.assertGreater(len(set(hs)), 1, 'the worker never turned '
                           'while the flood ran (h %d throughout)' % hs[0])
        self.assertGreater(hs[-1], hb, 'another client\'s SUB (h %d) was '
                           'served only after the whole flood (last h %d)'
                           % (hb, hs[-1]))

    # -- item 13 ------------------------------------------------------------
    def test_many_wildcard_patterns(self):
        """400 connections x 256 patterns z<K>_<J>/+ (102,400 children of
        one trie node): set up, then a burst of 2,000 messages reaches
        exactly the connections whose pattern it matches."""
        srv = self.server({'workers': 1, 'clients.heartbeat': 0})
        nk, nj = 400, 256
        conns = []
        # (a timeout, not a measure: 97 s when each insertion scanned the
        # siblings, 2 s now)
        deadline = time.monotonic() + 60
        for k in range(nk):
            c = self.conn(srv.port, timeout=60)
            c.send(''.join('SUB z%d_%d/+\n' % (k, j) for j in range(nj)))
            conns.append(c)
            self.assertGreater(deadline - time.monotonic(), 0,
                               'set-up of the patterns')
        for k, c in enumerate(conns):
            for j in range(nj):
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, 'set-up of the patterns')
                self.assertEqual(c.line(left), '+OK SUB z%d_%d/+ 0' %
                                 (k, j))
        rng = random.Random(13)
        burst = [(rng.randrange(nk), rng.randrange(nj)) for _ in range(2000)]
        want = {}
        for q, (k, j) in enumerate(burst):
            want.setdefault(k, []).append('z%d_%d/x %d' % (k, j, q))
        i = self.conn(srv.ingest_port, timeout=30)
        i.send(''.join('PUB z%d_%d/x %d\n' % (k, j, q)
                       for q, (k, j) in enumerate(burst)))
        s = i.sync()
        got = {}
        sel = selectors.DefaultSelector()
        for k, c in enumerate(conns):
            c.sock.setblocking(False)
            sel.register(c.sock, selectors.EVENT_READ, k)
        bufs = {}
        deadline = time.monotonic() + 60
        while sum(len(v) for v in got.values()) < len(burst):
            self.assertLess(time.monotonic(), deadline, 'burst: %d of %d' %
                            (sum(len(v) for v in got.values()),
                             len(burst)))
            for key, _ in sel.select(1):
                k = key.data
                data = bufs.get(k, b'') + key.fileobj.recv(1 << 20)
                *done, bufs[k] = data.split(b'\n')
                for ln in done:
                    m = re.match(r'^MSG (\S+) (\d+) (\d+)$',
                                 ln.decode('latin-1'))
                    self.assertTrue(m, ln[:80])
                    got.setdefault(k, []).append('%s %s' % (m.group(1),
                                                            m.group(3)))
        sel.close()
        self.assertEqual(got, want)
        self.assertEqual(s, len(burst))

    # -- item 15 ------------------------------------------------------------
    def test_sub_on_a_connection_behind(self):
        """A client on x/+ that SUBs x/# (and UNSUBs it) over and over
        while a fast publisher runs: no MSG at or below a +OK's h after
        it, and no MSG older than a VAL already received for its topic."""
        srv = self.server({'workers': 1, 'bus.size': '16M',
                           'clients.out_limit': '64M'})
        pub = Publisher(srv, lambda k: 'x/%d' % (k % 10), batch=50,
                        every=0.0005)
        pub.start()
        c = self.conn(srv.port, timeout=30)
        c.sub('x/+')
        reader = Reader(c, timeout=90)
        reader.start()
        for r in range(30):
            n0 = len(reader.lines)
            c.sendline('SUB x/#' if r % 2 == 0 else 'UNSUB x/#')
            want = '+OK SUB x/# ' if r % 2 == 0 else '+OK UNSUB x/#'
            deadline = time.monotonic() + 20
            while not any(ln.startswith(want)
                          for ln in reader.lines[n0:]):
                self.assertLess(time.monotonic(), deadline, want)
                time.sleep(0.005)
        pub.finish(self)
        lines = reader.finish(self, 'reader')
        last_msg, val_seq, checked, nok = 0, {}, 0, 0
        floor = 0       # the last +OK SUB's h, or GAP's end
        for ln in lines:
            m = ht.parse_msg(ln)
            ok = OK_SUB_RE.match(ln)
            g = ht.parse_gap(ln)
            if ok:
                floor = max(floor, int(ok.group(2)))
                nok += 1
            elif g:
                floor = max(floor, g[1])
            elif m and m[0] == 'VAL':
                val_seq[m[1]] = max(val_seq.get(m[1], 0), m[2])
            elif m:
                self.assertGreater(m[2], last_msg, 'MSG seqs go back: '
                                   '%r' % ln)
                self.assertGreater(m[2], floor, 'a MSG at or below the h '
                                   'of a +OK (or GAP) before it: %r' % ln)
                self.assertGreater(m[2], val_seq.get(m[1], 0),
                                   'a MSG older than a VAL already '
                                   'received: %r' % ln)
                last_msg = m[2]
                checked += 1
        self.assertEqual(nok, 15)
        self.assertGreater(checked, 1000, 'few MSGs: the publisher was '
                           'not fast')


if __name__ == '__main__':
    wait_turn(not_for=('test_hostile.py', 'test_faults.py'))
    ht.main()
