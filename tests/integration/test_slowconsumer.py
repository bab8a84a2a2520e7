#!/usr/bin/env python3
"""herald reliability: slow consumers at scale (herald-protocol(7) Guarantee 3,
doc/DESIGN "a cursor, not a queue").  10 stalled subscribers and 1,000
normal ones on one busy topic: the normal ones receive every message, in
order, with low latency; the server's memory stays flat; the stalled ones
get exactly what clients.slow_policy says (conflate: GAP, then the newest
value, then MSGs; disconnect: BYE slow-consumer, then close).

The 1,000 normal clients are raw sockets in one selector loop, which also
publishes on a schedule (a timestamp in every payload gives the latency).
Each normal client's whole stream is checked against the exact bytes
expected (length and CRC-32), so one lost, duplicated or reordered message
on any of them fails the test.  Figures are printed to the test log."""

import os
import re
import selectors
import socket
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

NORMAL = 1000
STALLED = 10
TOPIC = 'busy/t'
PAYLOAD = 1024          # bytes
RATE = int(os.environ.get('HERALD_SLOW_RATE', 100))   # messages a second
SECONDS = 7.0           # of publishing
# Room for the normal clients: this one Python process reads 1,000 of them
# on a shared machine and may stall for seconds (out_limit + kernel
# buffers = about 4 s of the stream); a stalled client is 700 KB behind by
# the end, far past out_limit.
OUT_LIMIT = 256 * 1024
SETTINGS = {
    'clients.out_limit': '256K',
    'tcp.sndbuf': '32K',        # the kernel holds little for a stalled one
    'bus.size': '1M',
    'max_payload': 4096,
    'clients.heartbeat': 0,     # the streams are exactly the messages
    'clients.per_address': 100000,
}
# memory: growth after warm-up, all heraldd processes together
RSS_BOUND_KB = 2048 + STALLED * OUT_LIMIT // 1024


def payload(k, ts):
    head = '%07d %.6f ' % (k, ts)
    return head + 'p' * (PAYLOAD - len(head))


def rss_kb(pids, field):
    return sum(ht.proc_rss_kb(p, field) for p in pids)


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float('nan')


class Normal:
    """One normal client: a raw socket, its stream's length and CRC."""
    __slots__ = ('sock', 'pre', 'crc', 'length')

    def __init__(self, sock):
        self.sock, self.pre, self.crc, self.length = sock, b'', 0, 0


class SlowConsumers(ht.HeraldTestCase):

    def setUp(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < NORMAL + 200:
            if hard != resource.RLIM_INFINITY and hard < NORMAL + 200:
                self.skipTest('open files limit %d is too low' % hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (NORMAL + 500, hard))

    def connect_normal(self, srv):
        """NORMAL raw sockets, each past HELLO and +OK SUB; returns them
        and the h of their SUBs (all the same: nothing is published)."""
        clients = []
        self.addCleanup(lambda: [c.sock.close() for c in clients])
        for _ in range(NORMAL):
            s = socket.create_connection(('127.0.0.1', srv.port), timeout=5)
            s.sendall(b'SUB %s\n' % TOPIC.encode())
            clients.append(Normal(s))
        sel = selectors.DefaultSelector()
        for c in clients:
            c.sock.setblocking(False)
            sel.register(c.sock, selectors.EVENT_READ, c)
        pending = len(clients)
        hs = set()
        deadline = time.monotonic() + 20
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1.0):
                c = key.data
                data = c.sock.recv(4096)
                self.assertTrue(data, 'a normal client closed at SUB')
                c.pre += data
                if c.pre.count(b'\n') == 2:
                    hello, ok, rest = c.pre.split(b'\n')
                    self.assertRegex(hello, rb'^HELLO herald/1 \d+$')
                    m = re.match(rb'^\+OK SUB busy/t (\d+)$', ok)
                    self.assertTrue(m, ok)
                    self.assertEqual(rest, b'')
                    hs.add(int(m.group(1)))
                    pending -= 1
        self.assertEqual(pending, 0, 'normal clients not subscribed')
        self.assertEqual(len(hs), 1, hs)
        return clients, sel, hs.pop()

    def run_load(self, srv):
        """Connect everyone, warm up, publish RATE/s for SECONDS while the
        normal clients read; returns a dict of what was seen."""
        pids = [p for r, p in srv.pids().items() if r != 'other']
        ing = self.conn(srv.ingest_port, timeout=30)
        # warm-up: fill the ring once (its pages become resident), on a
        # topic nobody takes
        blob = 'w' * 1000
        for k in range(12):
            ing.send(''.join('PUB warm/x %s\n' % blob for _ in range(100)))
            ing.sync()
        stalled = []
        for _ in range(STALLED):
            c = self.conn(srv.port, rcvbuf=4096, timeout=20)
            c.sub(TOPIC)
            stalled.append(c)
        t_conn = time.monotonic()
        clients, sel, h0 = self.connect_normal(srv)
        t_conn = time.monotonic() - t_conn
        st = self.conn(srv.port, timeout=10)
        st0 = st.stats()
        self.assertEqual(int(st0['clients']), NORMAL + STALLED + 2)
        ing_sock = ing.sock
        ing_sock.setblocking(True)
        ing_sock.settimeout(10)

        lat = []
        rss = []            # (t, VmRSS kB, RssAnon kB)
        sent = 0
        sent_payloads = []
        n_total = int(RATE * SECONDS)
        t0 = time.monotonic()
        next_rss = t0
        expected_len = None
        done = 0
        last_turn, max_turn = t0, 0.0
        end_by = t0 + SECONDS + 20
        while time.monotonic() < end_by:
            now = time.monotonic()
            due = min(n_total, int((now - t0) * RATE) + 1)
            if due > sent:
                ts = time.time()
                batch = [payload(k, ts) for k in range(sent, due)]
                sent_payloads += batch
                ing_sock.sendall(''.join('PUB %s %s\n' % (TOPIC, p)
                                         for p in batch).encode())
                sent = due
                if sent == n_total:
                    expected_len = sum(
                        len('MSG %s %d ' % (TOPIC, h0 + 1 + k)) + PAYLOAD + 1
                        for k in range(n_total))
            if now >= next_rss:
                rss.append((now - t0, rss_kb(pids, 'VmRSS'),
                            rss_kb(pids, 'RssAnon')))
                next_rss += 0.5
            gap = time.monotonic() - last_turn
            if gap > max_turn:
                max_turn = gap
            last_turn = time.monotonic()
            for key, _ in sel.select(0.005):
                c = key.data
                try:
                    data = c.sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                self.assertTrue(data, 'a normal client was closed after %d '
                                'bytes' % c.length)
                c.crc = zlib.crc32(data, c.crc)
                c.length += len(data)
                # latency of the oldest whole message in this read
                i = data.find(b'MSG ')
                j = data.find(b'\n', i)
                if i >= 0 and j > 0:
                    w = data[i:j].split(b' ', 5)
                    if len(w) > 4:
                        lat.append(time.time() - float(w[4]))
                if expected_len is not None and c.length >= expected_len:
                    sel.unregister(c.sock)
                    done += 1
            if done == NORMAL:
                break
        t_end = time.monotonic() - t0
        h_last = ing.sync()
        self.assertEqual(h_last, h0 + n_total)
        return dict(clients=clients, stalled=stalled, st=st, st0=st0,
                    lat=lat, rss=rss, h0=h0, n=n_total, ing=ing,
                    expected_len=expected_len, t_conn=t_conn, t_end=t_end,
                    pids=pids, payloads=sent_payloads,
                    max_turn=max_turn)

    def check_normal(self, r):
        """Every normal client got exactly the MSGs, in order, quickly;
        memory stayed flat."""
        n, h0 = r['n'], r['h0']
        # the exact stream: every MSG, seq by seq, as published
        payloads = {h0 + 1 + k: p for k, p in enumerate(r['payloads'])}
        self.assertEqual(len(payloads), n)
        crc, length = 0, 0
        for seq in range(h0 + 1, h0 + n + 1):
            b = b'MSG %s %d %s\n' % (TOPIC.encode(), seq,
                                      payloads[seq].encode())
            crc = zlib.crc32(b, crc)
            length += len(b)
        self.assertEqual(length, r['expected_len'])
        bad = [i for i, c in enumerate(r['clients'])
               if c.length != r['expected_len'] or c.crc != crc]
        lat = r['lat']
        print('\n  %d normal clients connected and subscribed in %.1f s; '
              '%d msgs of %d B at %d/s; all read in %.1f s; the reading '
              'loop\'s longest turn %.0f ms' %
              (NORMAL, r['t_conn'], n, PAYLOAD, RATE, r['t_end'],
               1000 * r['max_turn']))
        print('  latency (oldest message of each read, %d samples): '
              'p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms' %
              (len(lat), 1000 * percentile(lat, .5),
               1000 * percentile(lat, .9), 1000 * percentile(lat, .99),
               1000 * max(lat or [0])))
        self.assertEqual(bad, [], '%d of %d normal clients did not get '
                         'exactly every message in order (first: %d bytes '
                         'of %d)' % (len(bad), NORMAL,
                                     r['clients'][bad[0]].length if bad
                                     else 0, r['expected_len']))
        # generous: the machine is shared; the figures are printed
        self.assertLess(percentile(lat, .5), 0.5, 'median latency')
        self.assertLess(percentile(lat, .99), 3.0, 'p99 latency')
        rss = r['rss']
        print('  heraldd memory (all %d processes), kB: %s' %
              (len(r['pids']), ', '.join('%.1fs %d/%d' % s for s in
                                         rss[::max(1, len(rss) // 8)])))
        base = [s for s in rss if s[0] >= 1.0]
        self.assertTrue(base, 'no memory sample after warm-up')
        grow_rss = max(s[1] for s in base) - base[0][1]
        grow_anon = max(s[2] for s in base) - base[0][2]
        print('  growth after 1 s: VmRSS +%d kB, RssAnon +%d kB (bound '
              '%d kB)' % (grow_rss, grow_anon, RSS_BOUND_KB))
        self.assertLess(grow_rss, RSS_BOUND_KB, 'heraldd VmRSS grew')
        self.assertLess(grow_anon, RSS_BOUND_KB, 'heraldd RssAnon grew')
        return payloads

    def conflated(self, lines, h0, last, payloads):
        """A stalled client's stream under conflate: MSGs seq by seq, and
        where it fell behind GAP pos+1..b then VAL of the newest value as
        of b (b itself: every seq is on the topic).  Returns the GAPs."""
        pos, gaps, k = h0, [], 0
        while k < len(lines):
            ln = lines[k]
            m, g = ht.parse_msg(ln), ht.parse_gap(ln)
            if m and m[0] == 'MSG':
                self.assertEqual(m[2], pos + 1, 'line %d: %r after %d' %
                                 (k, ln[:40], pos))
                self.assertEqual(m[3], payloads[m[2]], 'line %d' % k)
                pos = m[2]
            else:
                self.assertTrue(g, 'line %d: expected MSG or GAP, got %r' %
                                (k, ln[:60]))
                self.assertEqual(g[0], pos + 1, 'line %d: %s after %d: '
                                 'something skipped silently' % (k, ln, pos))
                self.assertGreaterEqual(g[1], g[0])
                self.assertLessEqual(g[1], last)
                k += 1
                self.assertLess(k, len(lines), 'no VAL after %s' % ln)
                v = ht.parse_msg(lines[k])
                self.assertEqual(v and (v[0], v[1], v[2], v[3]),
                                 ('VAL', TOPIC, g[1], payloads[g[1]]),
                                 'after %s: %r' % (ln, lines[k][:40]))
                gaps.append(g)
                pos = g[1]
            k += 1
        self.assertEqual(pos, last, 'the stalled client caught up')
        return gaps

    def read_stalled(self, c, last, disconnect):
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ln = c.recv_line(max(0.1, deadline - time.monotonic()))
            if ln is None:
                return lines, True
            lines.append(ln)
            if not disconnect:
                m, g = ht.parse_msg(ln), ht.parse_gap(ln)
                if (m and m[0] == 'MSG' and m[2] == last) or \
                        (m and m[0] == 'VAL' and m[2] == last):
                    c.assert_no_line(0.2)
                    return lines, False
        self.fail('stalled client: neither caught up nor closed; %d lines, '
                  'last %r' % (len(lines), lines[-1:]))

    def test_conflate(self):
        srv = self.server(dict(SETTINGS, **{'clients.slow_policy':
                                            'conflate'}))
        r = self.run_load(srv)
        st1 = r['st'].stats()
        pl = self.check_normal(r)
        last = r['h0'] + r['n']
        ngaps, nmsgs = 0, 0
        for k, c in enumerate(r['stalled']):
            lines, eof = self.read_stalled(c, last, False)
            self.assertFalse(eof, 'conflate closed stalled client %d' % k)
            gaps = self.conflated(lines, r['h0'], last, pl)
            self.assertTrue(gaps, 'stalled client %d got no GAP' % k)
            ngaps += len(gaps)
            nmsgs += sum(1 for ln in lines if ln.startswith('MSG '))
            self.assertEqual(c.cmd('PING k'), ['PONG k'])
        st2 = r['st'].stats()
        d = {k: int(st2[k]) - int(r['st0'][k])
             for k in ('gaps', 'slow_consumers', 'clients')}
        print('  stalled (conflate): %d GAPs and %d MSGs over %d clients; '
              'STATS deltas %r' % (ngaps, nmsgs, STALLED, d))
        # only the stalled ones were slow: every GAP counted is theirs
        self.assertEqual(d['gaps'], ngaps, 'STAT gaps')
        self.assertEqual(d['slow_consumers'], ngaps, 'STAT slow_consumers')
        print('  slow_consumers counted while the 10 were still stalled: '
              '%d' % (int(st1['slow_consumers']) -
                      int(r['st0']['slow_consumers'])))

    def test_disconnect(self):
        srv = self.server(dict(SETTINGS, **{'clients.slow_policy':
                                            'disconnect'}))
        r = self.run_load(srv)
        pl = self.check_normal(r)
        last = r['h0'] + r['n']
        counts = []
        for k, c in enumerate(r['stalled']):
            lines, eof = self.read_stalled(c, last, True)
            self.assertTrue(eof)
            self.assertFalse(c.reset, 'stalled client %d: reset instead of '
                             'BYE and a clean close' % k)
            self.assertEqual(lines[-1:], ['BYE slow-consumer'],
                             'stalled client %d' % k)
            pos = r['h0']
            for ln in lines[:-1]:
                m = ht.parse_msg(ln)
                self.assertEqual((m[0], m[2], m[3]),
                                 ('MSG', pos + 1, pl[pos + 1]))
                pos += 1
            self.assertLess(pos, last, 'not slow, yet disconnected')
            counts.append(len(lines) - 1)
        st2 = r['st'].stats()
        d = {k: int(st2[k]) - int(r['st0'][k])
             for k in ('gaps', 'slow_consumers', 'clients')}
        print('  stalled (disconnect): MSGs before BYE %r; STATS deltas %r' %
              (counts, d))
        self.assertEqual(d['slow_consumers'], STALLED, 'STAT slow_consumers')
        self.assertEqual(d['gaps'], 0, 'STAT gaps')
        self.assertEqual(d['clients'], -STALLED, 'STAT clients')

    def test_stalled_found_while_stalled(self):
        """A subscriber that stops reading and falls 2 MB behind (32 x
        out_limit) is a slow consumer within a second: counted and
        logged, and under disconnect its connection is freed while it is
        still stalled (its BYE cannot be written: it is closed once it
        has not read it for 5 s, STAT bye_unread)."""
        srv = self.server(dict(SETTINGS, **{'clients.slow_policy':
                                            'disconnect'}))
        stalled = [self.conn(srv.port, rcvbuf=4096, timeout=20)
                   for _ in range(3)]
        for c in stalled:
            c.sub(TOPIC)
        ing = self.conn(srv.ingest_port, timeout=20)
        st = self.conn(srv.port)
        st0 = st.stats()
        off = len(srv.log())
        for k in range(2000):
            ing.pub(TOPIC, payload(k, time.time()))
            if k % 200 == 199:
                ing.sync()
        ing.sync()
        deadline = time.monotonic() + 10
        while True:
            st1 = st.stats()
            d = {k: int(st1[k]) - int(st0[k])
                 for k in ('slow_consumers', 'clients', 'bye_unread')}
            if d == {'slow_consumers': 3, 'clients': -3, 'bye_unread': 3} \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        logged = [ln for ln in srv.log()[off:].splitlines()
                  if 'slow consumer' in ln]
        print('\n  3 stalled, 2 MB behind: STATS deltas %r, %d log lines' %
              (d, len(logged)))
        self.assertEqual(d, {'slow_consumers': 3, 'clients': -3,
                             'bye_unread': 3})
        self.assertTrue(logged)


if __name__ == '__main__':
    ht.main()
