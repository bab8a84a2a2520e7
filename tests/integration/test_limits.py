#!/usr/bin/env python3
"""herald reliability: limits (doc/DESIGN, Limits).  Hitting a
bound gives the client what herald-protocol(7) and heraldd.conf(5) define, a
STATS counter, and a rate-limited log line (one a second per worker at
most, "N similar suppressed"): clients.max and clients.per_address
(BYE server-full, rejected_full), running out of file descriptors (accept
pauses instead of spinning, accept_paused), clients.max_subs
(-ERR too-many-subs, too_many_subs), a full ring (GAP, gaps and
slow_consumers) and a full retained table (retained_dropped, GET
not-found, never a stale value)."""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

SUPPRESSED_RE = re.compile(r'(\d+) similar suppressed')
ACCEPT_PAUSE_S = 1.0        # ACCEPT_PAUSE_MS in common/herald.h


def stat(conn, name):
    return int(conn.stats()[name])


def rejected(port, source=None, timeout=5.0):
    """Connect; the server must answer HELLO, BYE server-full and close.
    Returns None if so, else what it said."""
    s = socket.socket()
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect(('127.0.0.1', port))
        data = b''
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                break
            if not d:
                break
            data += d
        lines = data.decode('latin-1').split('\n')
        if len(lines) == 3 and ht.HELLO_RE.match(lines[0]) and \
                lines[1:] == ['BYE server-full', '']:
            return None
        return data
    finally:
        s.close()


class LimitTestCase(ht.HeraldTestCase):

    def log_after(self, srv, offset, regex, settle=1.2, events=None):
        """Lines of the log after byte offset that match regex, once the
        counts held back in the last second have been told (a "since:"
        line comes when that second is over, on the worker's next tick:
        up to two seconds later, more on a loaded machine).  Given the
        exact number of events, wait (6 s at most) until the lines and
        the suppressed counts account for them all; else wait settle."""
        def matching():
            return [ln for ln in srv.log()[offset:].splitlines()
                    if re.search(regex, ln)]
        if events is None:
            time.sleep(settle)
            return matching()
        deadline = time.monotonic() + 6
        while True:
            lines = matching()
            told = sum(int(m.group(1)) for m in
                       map(SUPPRESSED_RE.search, lines) if m)
            told += sum(1 for ln in lines if 'since:' not in ln)
            if told >= events or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)

    def check_rate_limited(self, lines, events, elapsed, workers, what,
                           need_suppressed=True):
        """At most one line a second per worker (and one "since:" line
        per second telling what a second held back), and the events the
        lines account for (each line that is not a "since:" summary, plus
        every suppressed count) never exceed the events."""
        sup = [int(m.group(1)) for m in map(SUPPRESSED_RE.search, lines)
               if m]
        summaries = [ln for ln in lines if 'since:' in ln]
        lines = [ln for ln in lines if 'since:' not in ln]
        print('\n  %s: %d events in %.1f s -> %d log lines, suppressed '
              'counts reported %r' % (what, events, elapsed, len(lines), sup))
        self.assertGreaterEqual(len(lines), 1, '%s: not logged' % what)
        # one a second per worker, counting both ends of the interval and
        # a line logged as the measurement ends
        most = workers * (int(elapsed) + 3)
        self.assertLessEqual(len(lines), most, '%s: %d log lines for %d '
                             'events in %.1f s: not rate-limited' %
                             (what, len(lines), events, elapsed))
        self.assertLessEqual(len(lines) + sum(sup), events, what)
        if need_suppressed:
            self.assertTrue(any(sup), '%s: no line tells how many were '
                            'suppressed: %r' % (what, lines[:4]))

    def wait_stat(self, conn, name, want, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            v = stat(conn, name)
            if v == want or time.monotonic() > deadline:
                return v
            time.sleep(0.05)


class ConnectionLimits(LimitTestCase):

    def hold(self, srv, n, source=None):
        """n served connections (retried while the harness's readiness
        probe is still being counted out)."""
        out = []
        deadline = time.monotonic() + 5
        while len(out) < n:
            c = ht.Conn(srv.port, source=source)
            self.addCleanup(c.close)
            if c.cmd('PING') == ['PONG']:
                out.append(c)
                continue
            c.close()
            self.assertLess(time.monotonic(), deadline, 'cannot hold %d '
                            'connections' % n)
            time.sleep(0.1)
        return out

    def storm(self, srv, n, spread, source=None):
        """n refused connections over about `spread` seconds; returns the
        seconds it took."""
        t0 = time.monotonic()
        for k in range(n):
            got = rejected(srv.port, source)
            self.assertIsNone(got, 'connection %d of the storm: expected '
                              'HELLO, BYE server-full, close; got %r' %
                              (k, got))
            lag = t0 + spread * (k + 1) / n - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        return time.monotonic() - t0

    def test_clients_max(self):
        """clients.max: 500 refusals are counted one by one, and logged a
        handful of times."""
        srv = self.server({'clients.max': 4, 'clients.per_address': 1000})
        held = self.hold(srv, 4)
        st = held[0]
        r0 = stat(st, 'rejected_full')
        off = len(srv.log())
        a0 = stat(st, 'rejected_per_address')
        elapsed = self.storm(srv, 500, 2.6)
        self.assertEqual(stat(st, 'rejected_full') - r0, 500,
                         'STAT rejected_full')
        self.assertEqual(stat(st, 'rejected_per_address'), a0)
        self.assertEqual(stat(st, 'clients'), 4)
        for c in held:
            self.assertEqual(c.cmd('PING'), ['PONG'])
        lines = self.log_after(srv, off, r'clients\.max', events=500)
        self.check_rate_limited(lines, 500, elapsed, srv.workers,
                                'clients.max')
        # a freed place is taken again
        held[-1].close()
        self.assertEqual(self.wait_stat(st, 'clients', 3), 3)
        self.hold(srv, 1)

    def test_per_address(self):
        """clients.per_address: refused from 127.0.0.1, counted, logged a
        handful of times; another address is still served."""
        srv = self.server({'clients.per_address': 3})
        held = self.hold(srv, 3)
        st = held[0]
        r0 = stat(st, 'rejected_full')
        off = len(srv.log())
        a0 = stat(st, 'rejected_per_address')
        elapsed = self.storm(srv, 300, 2.4)
        self.assertEqual(stat(st, 'rejected_full') - r0, 300,
                         'STAT rejected_full (counts every refusal)')
        self.assertEqual(stat(st, 'rejected_per_address') - a0, 300,
                         'STAT rejected_per_address')
        other = self.hold(srv, 2, source='127.0.0.2')
        self.assertEqual(stat(other[0], 'clients'), 5)
        self.assertEqual(stat(st, 'rejected_full') - r0, 300)
        lines = self.log_after(srv, off, r'per_address', events=300)
        self.check_rate_limited(lines, 300, elapsed, srv.workers,
                                'clients.per_address')

    def test_per_address_after_many_addresses(self):
        """More distinct addresses than the address table has slots
        (ADDR_SLOTS, 16384, in shm/addr.h) connect and go, one after
        another: clients.per_address still applies to a new address (the
        slot of an address with no connection left is reused), and no
        connection was admitted unchecked."""
        srv = self.server({'clients.per_address': 2})
        n = 16384 + 1000
        t0 = time.monotonic()
        for i in range(n):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.bind(('127.%d.%d.%d' % (1 + (i >> 16), (i >> 8) & 255,
                                          i & 255), 0))
                s.connect(('127.0.0.1', srv.port))
                self.assertTrue(s.recv(64).startswith(b'HELLO '), i)
            finally:
                s.close()
        print('\n  %d addresses connected and went in %.1f s' %
              (n, time.monotonic() - t0))
        held = self.hold(srv, 2, source='127.200.0.1')
        self.assertIsNone(rejected(srv.port, '127.200.0.1'),
                          'clients.per_address no longer applies')
        self.assertEqual(stat(held[0], 'per_address_untracked'), 0)

    def test_burst_suppressed_count_is_told(self):
        """A burst of refusals within a second, then quiet: within a few
        seconds the log accounts for every refusal (lines + suppressed)."""
        srv = self.server({'clients.max': 2, 'clients.per_address': 1000,
                           'workers': 1})
        held = self.hold(srv, 2)
        off = len(srv.log())
        self.storm(srv, 200, 0)
        self.assertEqual(self.wait_stat(held[0], 'rejected_full', 200), 200)
        lines = self.log_after(srv, off, r'clients\.max', events=200)
        sup = [int(m.group(1)) for m in map(SUPPRESSED_RE.search, lines)
               if m]
        print('\n  burst of 200: %d lines, suppressed reported %r' %
              (len(lines), sup))
        events = sum(sup) + sum(1 for ln in lines if 'since:' not in ln)
        self.assertEqual(events, 200,
                         'the log does not account for the burst: %r' % lines)


class LowFdServer(ht.Server):
    """A heraldd started under a low RLIMIT_NOFILE (soft and hard, so the
    master cannot raise it): a tiny exec wrapper sets it, so the pid stays
    heraldd's."""

    def __init__(self, overrides, nofile, **kw):
        self.nofile = nofile
        super().__init__(overrides, **kw)

    def argv(self):
        wrap = ('import os, resource, sys; '
                'resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d)); '
                'os.execv(sys.argv[1], sys.argv[1:])' %
                (self.nofile, self.nofile))
        return [sys.executable, '-c', wrap] + super().argv()


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        rest = f.read().rsplit(')', 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf('SC_CLK_TCK')


class FileDescriptors(LimitTestCase):

    def test_out_of_fds_pauses_accepting(self):
        """EMFILE: the worker pauses accepting (no spinning: its CPU time
        stays low), counts accept_paused, logs it once a second at most,
        and accepts the waiting connections once clients leave."""
        nofile = 64
        srv = LowFdServer({'workers': 1}, nofile)
        self._servers = getattr(self, '_servers', []) + [srv]
        self.addCleanup(srv.cleanup)
        wpid = srv.worker_pids()['worker 1']
        with open('/proc/%d/limits' % wpid) as f:
            lim = [ln for ln in f if ln.startswith('Max open files')]
        self.assertEqual(lim[0].split()[3:5], [str(nofile)] * 2, lim)
        st = self.conn(srv.port)
        held = [st]
        waiting = []
        # fill the worker's descriptors; then 6 more wait in the backlog
        for _ in range(nofile + 10):
            c = ht.Conn(srv.port, hello=False, timeout=1.0)
            self.addCleanup(c.close)
            try:
                c.expect(r'^HELLO ', timeout=1.0)
                held.append(c)
            except AssertionError:
                waiting.append(c)
                if len(waiting) == 6:
                    break
        self.assertEqual(len(waiting), 6, 'never ran out of descriptors')
        nfds = len(os.listdir('/proc/%d/fd' % wpid))
        self.assertEqual(nfds, nofile, 'worker descriptors')
        p0 = stat(st, 'accept_paused')
        self.assertGreaterEqual(p0, 1, 'STAT accept_paused')
        off = len(srv.log())
        cpu0, t0 = cpu_seconds(wpid), time.monotonic()
        time.sleep(3.0)
        cpu1, t1 = cpu_seconds(wpid), time.monotonic()
        # The log before the count: the descriptors are still exhausted
        # and a pause can come at any moment; read the other way round, a
        # pause between the two reads is a line the count does not have.
        lines = self.log_after(srv, off, r'out of file descriptors',
                               settle=0)
        p1 = stat(st, 'accept_paused')
        print('\n  %d clients held, 6 waiting; over %.1f s the worker used '
              '%.2f s of CPU; accept_paused %d -> %d; %d log lines: %r' %
              (len(held), t1 - t0, cpu1 - cpu0, p0, p1, len(lines),
               lines[:2]))
        self.assertLess(cpu1 - cpu0, 0.5, 'the worker spins while out of '
                        'descriptors')
        self.assertGreaterEqual(p1 - p0, 1, 'accept_paused while waiting')
        self.assertLessEqual(p1 - p0, (t1 - t0) / ACCEPT_PAUSE_S + 2,
                             'accept_paused: paused more often than once '
                             'a pause')
        self.check_rate_limited(lines, p1 - p0, t1 - t0, 1,
                                'out of file descriptors',
                                need_suppressed=False)
        self.assertEqual(st.cmd('PING'), ['PONG'])
        # clients leave: the waiting ones are served within a pause
        for c in held[-10:]:
            c.close()
        t2 = time.monotonic()
        for c in waiting:
            c.expect(r'^HELLO ', timeout=ACCEPT_PAUSE_S + 4)
            self.assertEqual(c.cmd('PING'), ['PONG'])
        print('  the 6 waiting connections were served %.2f s after 10 '
              'clients left' % (time.monotonic() - t2))
        self.assertEqual(stat(st, 'clients'), len(held) - 10 + 6)
        self.assertTrue(srv.running())


class MaxSubs(LimitTestCase):

    def test_max_subs(self):
        srv = self.server({'clients.max_subs': 4})
        c = self.conn(srv.port)
        t0 = stat(c, 'too_many_subs')
        for k in range(4):
            c.sub('ms/%d' % k)
        self.assertErr(self.assertOne(c.cmd('SUB ms/x')), 'too-many-subs',
                       'ms/x')
        self.assertErr(self.assertOne(c.cmd('SUB ms/y 0')), 'too-many-subs',
                       'ms/y')
        # the same pattern again is not one more; UNSUB makes room
        c.sub('ms/2')
        self.assertEqual(c.cmd('UNSUB ms/0'), ['+OK UNSUB ms/0'])
        c.sub('ms/x')
        self.assertErr(self.assertOne(c.cmd('SUB ms/z')), 'too-many-subs',
                       'ms/z')
        self.assertEqual(stat(c, 'too_many_subs') - t0, 3)
        # the limit is per client, and the refused ones get nothing
        i = self.conn(srv.ingest_port)
        for t in ('ms/1', 'ms/x', 'ms/y', 'ms/z', 'ms/0'):
            i.pub(t, 'v')
        i.sync()
        got = [ht.parse_msg(c.line())[1] for _ in range(2)]
        self.assertEqual(got, ['ms/1', 'ms/x'])
        c.assert_no_line(0.3)
        d = self.conn(srv.port)
        for k in range(4):
            d.sub('other/%d' % k)

    def test_max_subs_logged(self):
        srv = self.server({'clients.max_subs': 1, 'workers': 1})
        c = self.conn(srv.port)
        c.sub('a')
        off = len(srv.log())
        t0 = time.monotonic()
        for k in range(200):
            self.assertErr(self.assertOne(c.cmd('SUB b/%d' % k)),
                           'too-many-subs')
            time.sleep(0.012)
        self.assertEqual(stat(c, 'too_many_subs'), 200)
        lines = self.log_after(srv, off, r'(?i)too.many.subs|max_subs|'
                               r'subscriptions')
        self.check_rate_limited(lines, 200, time.monotonic() - t0, 1,
                                'clients.max_subs')


def flood(conn, topics, n, size, tag='f'):
    """Publish n PUBs of about size bytes round-robin over topics; returns
    the SYNC seq."""
    chunk = []
    for k in range(n):
        chunk.append('PUB %s %s%06d %s\n' % (topics[k % len(topics)], tag, k,
                                             'x' * (size - 8)))
        if len(chunk) == 100:
            conn.send(''.join(chunk))
            chunk = []
        if k % 2000 == 1999:
            conn.sync()
    conn.send(''.join(chunk))
    return conn.sync()


class RingFull(LimitTestCase):

    def test_resume_beyond_the_ring(self):
        """SUB since a seq the ring no longer holds: GAP since+1..h, the
        snapshot as of h, +OK; counted in gaps."""
        srv = self.server({'bus.size': '64K', 'max_payload': 4096})
        i = self.conn(srv.ingest_port, timeout=20)
        topics = ['rf/%d' % k for k in range(10)]
        h = flood(i, topics, 2000, 200)         # 400 KB through 64 KB
        c = self.conn(srv.port)
        g0 = stat(c, 'gaps')
        lines = c.cmd('SUB rf/# 5')
        self.assertEqual(lines[0], 'GAP 6 %d' % h)
        self.assertEqual(lines[-1], '+OK SUB rf/# %d' % h)
        vals = {m[1]: m[2] for m in map(ht.parse_msg, lines[1:-1])
                if m and m[0] == 'VAL'}
        self.assertEqual(len(lines), 12, lines[:3])
        self.assertEqual(sorted(vals), sorted(topics))
        self.assertEqual(sorted(vals.values()), list(range(h - 9, h + 1)))
        self.assertEqual(stat(c, 'gaps') - g0, 1, 'STAT gaps')
        # a resume the ring still holds is a replay, not a gap
        lines = self.conn(srv.port).cmd('SUB rf/# %d' % (h - 3))
        self.assertEqual(lines, ['+OK SUB rf/# %d' % h])

    def test_lapped_readers(self):
        """30 stalled readers lapped by a 64 KB ring (out_limit far above
        it, so only lapping makes them slow): each gets a GAP as
        herald-protocol(7) defines, every one is counted, and the log has a
        handful of lines."""
        srv = self.server({'bus.size': '64K', 'max_payload': 4096,
                           'clients.out_limit': '1G', 'tcp.sndbuf': '16K'})
        stalled = []
        for _ in range(30):
            c = self.conn(srv.port, rcvbuf=4096, timeout=20)
            c.sub('lap/#')
            stalled.append(c)
        st = self.conn(srv.port)
        g0, s0 = stat(st, 'gaps'), stat(st, 'slow_consumers')
        off = len(srv.log())
        i = self.conn(srv.ingest_port, timeout=30)
        topics = ['lap/%d' % k for k in range(10)]
        t0 = time.monotonic()
        flood(i, topics, 1500, 500, 'a')
        time.sleep(1.2)                 # a second flood in a later second
        flood(i, topics, 1500, 500, 'b')
        i.pub('lap/end', 'end')
        h = i.sync()
        for k, c in enumerate(stalled):
            pos, gaps = 0, 0
            deadline = time.monotonic() + 20
            while pos < h:
                ln = c.line(timeout=max(0.1, deadline - time.monotonic()))
                m, g = ht.parse_msg(ln), ht.parse_gap(ln)
                if g:
                    self.assertGreater(g[0], pos, 'client %d: %s' % (k, ln))
                    self.assertGreaterEqual(g[1], g[0])
                    pos, gaps = g[1], gaps + 1
                elif m and m[0] == 'MSG':
                    self.assertGreater(m[2], pos, 'client %d: %s' % (k, ln))
                    pos = m[2]
                elif not ln.startswith('HB '):
                    self.assertTrue(m and m[0] == 'VAL' and m[2] <= pos,
                                    'client %d: %r' % (k, ln[:60]))
            self.assertGreaterEqual(gaps, 1, 'client %d was not lapped' % k)
            self.assertEqual(pos, h)
        elapsed = time.monotonic() - t0
        gaps = stat(st, 'gaps') - g0
        slow = stat(st, 'slow_consumers') - s0
        lines = self.log_after(srv, off, r'slow consumer', events=slow)
        print('\n  30 lapped readers: gaps +%d, slow_consumers +%d' %
              (gaps, slow))
        self.assertGreaterEqual(gaps, 30, 'STAT gaps')
        self.assertGreaterEqual(slow, 30, 'STAT slow_consumers')
        self.check_rate_limited(lines, slow, elapsed, srv.workers,
                                'lapped readers')


    def test_worker_lapped_log_rate_limited(self):
        """A ring far too small for the publishing rate: the workers
        themselves are lapped again and again; the log stays short."""
        srv = self.server({'bus.size': '64K', 'max_payload': 4096})
        subs = [self.conn(srv.port, timeout=20) for _ in range(4)]
        for c in subs:
            c.sub('wl/#')
        off = len(srv.log())
        i = self.conn(srv.ingest_port, timeout=30)
        t0 = time.monotonic()
        rounds = 0
        while time.monotonic() - t0 < 2.5:
            flood(i, ['wl/%d' % k for k in range(10)], 1000, 500)
            rounds += 1
            for c in subs:          # keep them reading
                c.read_all(quiet=0.01, timeout=0.2)
        elapsed = time.monotonic() - t0
        lines = self.log_after(srv, off, r'lapped by the bus')
        self.check_rate_limited(lines, 1000 * rounds, elapsed, srv.workers,
                                'workers lapped', need_suppressed=False)


class RetainedFull(LimitTestCase):

    def test_retained_max(self):
        """bus.retained_max: values on topics beyond it are delivered,
        not retained, counted; GET answers not-found; SUB's snapshot has
        the retained ones."""
        srv = self.server({'bus.retained_max': 16})
        sub = self.conn(srv.port)
        sub.sub('rt/#')
        i = self.conn(srv.ingest_port)
        st = self.conn(srv.port)
        d0 = stat(st, 'retained_dropped')
        for k in range(40):
            i.pub('rt/%d' % k, 'v%d' % k)
        h = i.sync()
        live = [ht.parse_msg(sub.line()) for _ in range(40)]
        self.assertEqual([(m[0], m[1], m[3]) for m in live],
                         [('MSG', 'rt/%d' % k, 'v%d' % k)
                          for k in range(40)], 'every value is delivered')
        self.assertEqual(stat(st, 'retained'), 16)
        self.assertEqual(stat(st, 'retained_dropped') - d0, 24)
        snap, h2 = self.conn(srv.port).sub('rt/#')
        self.assertEqual(h2, h)
        kept = {m[1]: m[3] for m in map(ht.parse_msg, snap)}
        self.assertEqual(len(kept), 16, snap)
        for k in range(40):
            t = 'rt/%d' % k
            r = st.cmd('GET %s' % t)
            if t in kept:
                self.assertEqual(ht.parse_msg(r[0])[3], 'v%d' % k)
                self.assertEqual(r[1:], ['+OK GET %s' % t])
            else:
                self.assertEqual(r, ['-ERR not-found %s' % t])
        # a retained topic is still updated; a new one is still dropped
        t = sorted(kept)[0]
        i.pub(t, 'newer')
        i.pub('rt/new', 'x')
        i.sync()
        self.assertEqual(ht.parse_msg(st.cmd('GET %s' % t)[0])[3], 'newer')
        self.assertEqual(st.cmd('GET rt/new'), ['-ERR not-found rt/new'])
        self.assertEqual(stat(st, 'retained_dropped') - d0, 25)
        self.assertEqual(stat(st, 'retained'), 16)

    def test_retained_bytes_never_stale(self):
        """bus.retained_bytes full: new values are dropped and counted; a
        retained topic whose new value no longer fits loses its old value
        (GET not-found), it never answers a stale one."""
        srv = self.server({'bus.retained_bytes': '64K',
                           'bus.retained_max': 1000})
        i = self.conn(srv.ingest_port)
        st = self.conn(srv.port)
        d0 = stat(st, 'retained_dropped')
        for k in range(40):
            i.pub('rb/%02d' % k, '%02d%s' % (k, 'y' * 2998))
        i.sync()
        kept = stat(st, 'retained')
        dropped = stat(st, 'retained_dropped') - d0
        print('\n  40 values of 3000 bytes in 64 KB: %d retained, %d '
              'dropped' % (kept, dropped))
        self.assertGreater(dropped, 0, 'the heap never filled')
        self.assertEqual(kept + dropped, 40)
        snap, _ = self.conn(srv.port).sub('rb/#')
        have = sorted(ht.parse_msg(ln)[1] for ln in snap)
        self.assertEqual(len(have), kept)
        t = have[0]
        i.pub(t, 'z' * 6000)        # twice the block: cannot fit now
        i.sync()
        r = st.cmd('GET %s' % t)
        self.assertEqual(r, ['-ERR not-found %s' % t],
                         'a value that could not be retained left the old '
                         'one behind')
        self.assertEqual(stat(st, 'retained_dropped') - d0, dropped + 1)
        self.assertEqual(stat(st, 'retained'), kept - 1)
        # its room is reused by the next value that fits
        i.pub('rb/again', 's' * 3000)
        i.sync()
        self.assertEqual(ht.parse_msg(st.cmd('GET rb/again')[0])[3],
                         's' * 3000)

    def test_retained_drop_logged(self):
        srv = self.server({'bus.retained_max': 16})
        i = self.conn(srv.ingest_port)
        off = len(srv.log())
        t0 = time.monotonic()
        for k in range(300):
            i.pub('rl/%d' % k, 'v')
            if k % 10 == 9:
                i.sync()
                time.sleep(0.08)
        i.sync()
        st = self.conn(srv.port)
        self.assertEqual(stat(st, 'retained_dropped'), 300 - 16)
        lines = self.log_after(srv, off, r'(?i)retain')
        self.check_rate_limited(lines, 300 - 16, time.monotonic() - t0, 1,
                                'retained table full')


if __name__ == '__main__':
    ht.main()
