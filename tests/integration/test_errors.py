#!/usr/bin/env python3
"""herald integration: bad lines in a row (max_errors), line-too-long on
both listeners, and the connection limits clients.max and
clients.per_address (herald-protocol(7): Framing, Errors; doc/DESIGN: Limits)."""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402


class MaxErrors(ht.HeraldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server({'clients.max_errors': 3,
                                    'clients.max_line': 64,
                                    'clients.publish': 'cmd/#',
                                    'clients.max_subs': 1})

    def c(self):
        return self.conn(self.srv.port)

    def bye(self, c, why=''):
        try:
            self.assertEqual(c.line(), 'BYE too-many-errors')
        except AssertionError as e:
            raise AssertionError('%s: expected BYE too-many-errors: %s' %
                                 (why, e)) from None
        c.expect_eof()

    def test_three_in_a_row(self):
        c = self.c()
        self.assertErr(self.assertOne(c.cmd('FOO')), 'unknown-command', 'FOO')
        self.assertErr(self.assertOne(c.cmd('BAR')), 'unknown-command', 'BAR')
        c.sendline('BAZ')
        self.assertErr(c.line(), 'unknown-command', 'BAZ')
        self.bye(c)

    def test_every_bad_kind_counts(self):
        kinds = [
            ('SUB', 'syntax'),
            ('NOPE', 'unknown-command'),
            ('PING ' + 'x' * 80, 'line-too-long'),
            ('GET a//b', 'bad-topic'),
            ('SUB a#', 'bad-pattern'),
            (b'PUB cmd/x a\x00b', 'bad-payload'),
        ]
        for k, (first, code) in enumerate(kinds):
            c = self.c()
            c.sendline(first)
            self.assertErr(c.line(), code)
            c.sendline('FOO')
            self.assertErr(c.line(), 'unknown-command', 'FOO')
            c.sendline('BAR')
            self.assertErr(c.line(), 'unknown-command', 'BAR')
            self.bye(c, 'sent %r, FOO, BAR' % first)
            # and as the third one
            c = self.c()
            c.send('FOO\nBAR\n')
            c.sendline(first)
            self.assertErr(c.line(), 'unknown-command', 'FOO')
            self.assertErr(c.line(), 'unknown-command', 'BAR')
            self.assertErr(c.line(), code)
            self.bye(c, 'sent FOO, BAR, %r' % first)

    def test_good_line_resets(self):
        for good, reply in (('PING', 1), ('GET cmd/none', 1),
                            ('UNSUB nothing', 1), ('PUB x/y v', 1),
                            ('PUB cmd/x ' + 'y' * 50, 0), ('SYNC', 1),
                            ('SUB cmd/#', None), ('STATS', None)):
            c = self.c()
            c.send('FOO\nBAR\n%s\nBAZ\nQUX\nPING end\n' % good)
            self.assertErr(c.line(), 'unknown-command', 'FOO')
            self.assertErr(c.line(), 'unknown-command', 'BAR')
            if reply is None:
                c.read_until(lambda ln: ln.startswith('+OK'))
            for _ in range(reply or 0):
                ln = c.line()
                self.assertFalse(ln.startswith('BYE'), good)
            self.assertErr(c.line(), 'unknown-command', 'BAZ')
            self.assertErr(c.line(), 'unknown-command', 'QUX')
            self.assertEqual(c.line(), 'PONG end',
                             '%r must reset the count of bad lines' % good)
            c.close()

    def test_not_bad_codes_reset(self):
        """not-found, not-subscribed, forbidden, too-many-subs,
        payload-too-large are not bad lines: they reset the count."""
        c = self.c()
        c.sub('one')
        for line, code in (('GET nope', 'not-found'),
                           ('UNSUB nope', 'not-subscribed'),
                           ('PUB other v', 'forbidden'),
                           ('SUB two', 'too-many-subs')):
            c.send('FOO\nBAR\n')
            self.assertErr(c.line(), 'unknown-command', 'FOO')
            self.assertErr(c.line(), 'unknown-command', 'BAR')
            self.assertErr(self.assertOne(c.cmd(line)), code)
        c.send('FOO\nBAR\n')
        self.assertErr(c.line(), 'unknown-command', 'FOO')
        self.assertErr(c.line(), 'unknown-command', 'BAR')
        self.assertEqual(c.cmd('PING'), ['PONG'])

    def test_blank_lines_do_not_change_count(self):
        c = self.c()
        c.send('FOO\n\n   \nBAR\n\t\r\n')
        self.assertErr(c.line(), 'unknown-command', 'FOO')
        self.assertErr(c.line(), 'unknown-command', 'BAR')
        c.send('\n \n')
        c.assert_no_line(0.2)
        c.sendline('BAZ')
        self.assertErr(c.line(), 'unknown-command', 'BAZ')
        self.bye(c)

    def test_ingest_counts_too(self):
        i = self.conn(self.srv.ingest_port)
        i.send('FOO\nPUB a//b v\nSUB\n')
        self.assertErr(i.line(), 'unknown-command', 'FOO')
        self.assertErr(i.line(), 'bad-topic', 'a//b')
        self.assertErr(i.line(), 'syntax', 'SUB')
        self.bye(i)


class Garbage(ht.HeraldTestCase):

    def test_random_lines(self):
        """2000 lines of random bytes: each answered by exactly one
        `-ERR unknown-command <verb escaped>` (or nothing when blank), and
        the daemon stays well."""
        import random
        rnd = random.Random(7400)
        srv = self.server({'clients.max_errors': 1000000})
        c = self.conn(srv.port, timeout=10)
        verbs = {'sub', 'unsub', 'get', 'pub', 'sync', 'ping', 'stats',
                 'quit'}
        want = []
        data = []
        for _ in range(2000):
            n = rnd.randrange(0, 300)
            line = bytes(rnd.choice(range(256)) for _ in range(n))
            line = line.replace(b'\n', b'')
            if line.endswith(b'\r'):
                line = line[:-1]
            words = line.replace(b'\t', b' ').split(b' ')
            words = [w for w in words if w]
            if not words:
                continue
            if words[0].lower().decode('latin-1') in verbs:
                continue
            data.append(line + b'\n')
            want.append('-ERR unknown-command ' + ht.esc(words[0]))
        data.append(b'PING end\n')
        c.send(b''.join(data))
        for k, w in enumerate(want):
            ln = c.line()
            self.assertTrue(ln == w or ln.startswith(w + ' '),
                            'line %d %r: expected %r, got %r' %
                            (k, data[k][:60], w, ln))
        self.assertEqual(c.line(), 'PONG end')
        self.assertTrue(srv.running())


class LineLength(ht.HeraldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server({'clients.max_line': 64,
                                    'ingest_max_line': 200})

    def test_exact_limit(self):
        c = self.conn(self.srv.port)
        line = 'PING ' + 'a' * 59
        self.assertEqual(len(line), 64)
        c.send(line + '\r\n')
        self.assertEqual(c.line(), 'PONG ' + 'a' * 59)
        c.send(line + '\n')
        self.assertEqual(c.line(), 'PONG ' + 'a' * 59)

    def test_one_over(self):
        c = self.conn(self.srv.port)
        c.send('PING ' + 'b' * 60 + '\n')
        self.assertErr(c.line(), 'line-too-long')
        self.assertEqual(c.cmd('PING ok'), ['PONG ok'])
        c.send('PING ' + 'b' * 60 + '\r\n')
        self.assertErr(c.line(), 'line-too-long')
        self.assertEqual(c.cmd('PING ok'), ['PONG ok'])

    def test_over_in_pieces(self):
        c = self.conn(self.srv.port)
        c.send('PING ' + 'c' * 40)
        time.sleep(0.05)
        c.send('c' * 40)
        time.sleep(0.05)
        c.send('c' * 40 + '\nPING next\n')
        self.assertErr(c.line(), 'line-too-long')
        self.assertEqual(c.line(), 'PONG next')
        c.assert_no_line(0.2)

    def test_huge_line(self):
        c = self.conn(self.srv.port, timeout=30)
        rss0 = self.srv.workers_rss_kb()
        chunk = b'x' * (1 << 16)
        total = 40 << 20      # 40 MB without a LF
        sent = 0
        while sent < total:
            c.send(chunk)
            sent += len(chunk)
        rss1 = self.srv.workers_rss_kb()
        c.send(b'\nPING after\n')
        self.assertErr(c.line(), 'line-too-long')
        self.assertEqual(c.line(), 'PONG after')
        c.assert_no_line(0.3)
        self.assertLess(rss1 - rss0, 20 * 1024,
                        'workers VmRSS grew by %d kB while a 40 MB line '
                        'arrived' % (rss1 - rss0))

    def test_ingest_max_line(self):
        i = self.conn(self.srv.ingest_port)
        line = 'PING ' + 'd' * 195
        self.assertEqual(len(line), 200)
        self.assertEqual(i.cmd(line), ['PONG ' + 'd' * 195])
        i.sendline(line + 'd')
        self.assertErr(i.line(), 'line-too-long')
        self.assertEqual(i.cmd('PING ok'), ['PONG ok'])
        # the client listener keeps its own (smaller) limit
        c = self.conn(self.srv.port)
        c.sendline('PING ' + 'd' * 100)
        self.assertErr(c.line(), 'line-too-long')

    def test_ingest_default_max_line(self):
        srv = self.server({'max_payload': 1000})
        i = self.conn(srv.ingest_port)
        pay = 'e' * 1000
        i.pub('t', pay)
        s = i.sync()
        self.assertEqual(i.cmd('GET t'), ['VAL t %d %s' % (s, pay),
                                          '+OK GET t'])
        # max_payload + 512 = 1512 bytes
        line = 'PING ' + 'f' * 1507
        self.assertEqual(i.cmd(line), ['PONG ' + 'f' * 1507])
        i.sendline(line + 'f')
        self.assertErr(i.line(), 'line-too-long')
        # default client max_line 4096
        c = self.conn(srv.port)
        line = 'PING ' + 'g' * 4091
        self.assertEqual(c.cmd(line), ['PONG ' + 'g' * 4091])
        c.sendline(line + 'g')
        self.assertErr(c.line(), 'line-too-long')


class HalfClose(ht.HeraldTestCase):
    """A client that ends its input (shutdown, as nc -q does) still gets
    everything it is owed, unless it takes none of it for 5 s.  The
    socket buffers are small, so that what is owed stays queued in the
    server when it reads the client's EOF."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server({'tcp.sndbuf': '16K'})

    def test_answers_owed_at_eof_are_written(self):
        i = self.conn(self.srv.ingest_port)
        big = 'b' * 60000
        for k in range(10):
            i.pub('hc/%d' % k, big)
        s = i.sync()
        c = self.conn(self.srv.port, rcvbuf=4096)
        c.send('SUB hc/#\nGET hc/7\nPING x\nPING y')
        c.sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)         # the server reads the EOF meanwhile
        lines, eof = c.read_all(quiet=ht.TIMEOUT, timeout=ht.TIMEOUT * 2)
        self.assertEqual(len(lines), 10 + 4, [ln[:30] for ln in lines])
        self.assertEqual(sorted(lines[:10]), ['VAL hc/%d %d %s' %
                                              (k, s - 9 + k, big)
                                              for k in range(10)])
        # "PING y" has no LF: not a line, not answered.
        self.assertEqual(lines[10:], ['+OK SUB hc/# %d' % s,
                                      'VAL hc/7 %d %s' % (s - 2, big),
                                      '+OK GET hc/7', 'PONG x'])
        self.assertTrue(eof, 'closed once it is owed nothing')
        self.assertEqual(int(self.srv.stats()['eof_unread']), 0)

    def test_eof_without_reading_is_closed(self):
        """Ends its input, never reads the answers: closed after 5 s
        without progress, counted as eof_unread."""
        c = self.conn(self.srv.port, rcvbuf=4096)
        c.cmd('SUB eof/#')
        # More than any socket buffer takes (tcp_wmem's 4 MB at most),
        # so that what the bus owes it cannot all be written: a kernel
        # that takes a few hundred KB of replies at once leaves nothing
        # owed, and the client is closed as done.
        i = self.conn(self.srv.ingest_port)
        big = 'e' * 60000
        for k in range(120):
            i.pub('eof/%d' % (k % 8), big)
        i.sync()
        c.sock.shutdown(socket.SHUT_WR)
        time.sleep(1.0)
        before = self.srv.stats()
        self.assertEqual(int(before['eof_unread']), 0,
                         'closed before the grace period')
        deadline = time.monotonic() + 15
        while int(self.srv.stats()['eof_unread']) == 0:
            self.assertLess(time.monotonic(), deadline,
                            'a client at EOF that reads nothing stays')
            time.sleep(0.2)
        # what the kernel held is there, cut anywhere, then the end
        c.sock.settimeout(ht.TIMEOUT)
        try:
            while c.sock.recv(1 << 16):
                pass
        except ConnectionResetError:
            pass
        self.assertIn('ended its input; what it is owed has not moved',
                      self.srv.log())


class ConnectionLimits(ht.HeraldTestCase):

    def refused(self, port, source=None):
        """A connection the server refuses: optional HELLO, then
        BYE server-full, then close."""
        c = self.conn(port, hello=False, source=source)
        ln = c.line()
        if ln.startswith('HELLO '):
            ln = c.line()
        self.assertEqual(ln, 'BYE server-full')
        c.expect_eof()

    def accepted(self, port, source=None, timeout=3):
        """A connection that is served (retried while a freed slot is
        being noticed)."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.conn(port, hello=False, source=source)
            c.sendline('PING')
            lines, eof = c.read_all(quiet=0.5, timeout=5)
            if lines and lines[0].startswith('HELLO ') and \
                    lines[1:] == ['PONG'] and not eof:
                return c
            c.close()
            if time.monotonic() > deadline:
                self.fail('a new connection is still refused %.0f s after '
                          'a slot was freed: %r' % (timeout, lines))
            time.sleep(0.1)

    def test_clients_max(self):
        srv = self.server({'clients.max': 3})
        # accepted() retries: the harness's readiness probe may not be
        # counted out yet
        conns = [self.accepted(srv.port) for _ in range(3)]
        for c in conns:
            self.assertEqual(c.cmd('PING'), ['PONG'])
        self.refused(srv.port)
        self.refused(srv.port)
        for c in conns:
            self.assertEqual(c.cmd('PING'), ['PONG'])
        conns[0].close()
        self.accepted(srv.port)

    def test_per_address(self):
        srv = self.server({'clients.per_address': 2})
        a = [self.accepted(srv.port) for _ in range(2)]
        self.refused(srv.port)
        # another source address is counted on its own
        b = [self.accepted(srv.port, source='127.0.0.2') for _ in range(2)]
        self.refused(srv.port, source='127.0.0.2')
        for k, c in enumerate(a + b):
            self.assertEqual(c.cmd('PING'), ['PONG'], 'connection %d of 4 '
                             'that got HELLO (2 from 127.0.0.1, 2 from '
                             '127.0.0.2; per_address 2)' % (k + 1))
        a[1].cmd('QUIT')
        self.accepted(srv.port)
        st = self.conn(srv.port, source='127.0.0.3').stats()
        # (accepted() retries while a freed slot is being noticed: a
        # retry may be refused too)
        self.assertGreaterEqual(int(st['rejected_per_address']), 2, st)
        self.assertEqual(int(st['rejected_full']),
                         int(st['rejected_per_address']), st)
        self.assertIn('clients.per_address reached', srv.log())

    def test_limit_log_is_rate_limited(self):
        """500 PUBs over max_payload: each counted and answered, a
        handful of log lines that say how many were held back."""
        srv = self.server({'max_payload': 64, 'clients.publish': '#'})
        c = self.conn(srv.port)
        c.send(('PUB a/b %s\n' % ('x' * 65)).encode() * 500)
        for _ in range(500):
            self.assertEqual(c.line(), '-ERR payload-too-large a/b')
        self.assertEqual(c.cmd('PING'), ['PONG'])
        st = srv.stats()
        self.assertEqual(int(st['payloads_too_large']), 500, st)
        lines = [ln for ln in srv.log().splitlines()
                 if 'over max_payload' in ln]
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 5, lines)
        # within two seconds the log accounts for every one: the lines
        # logged plus the counts they say were held back (a burst's count
        # is told once its second is over)
        deadline = time.monotonic() + 3
        while True:
            lines = [ln for ln in srv.log().splitlines()
                     if 'over max_payload' in ln]
            held = [int(x) for x in re.findall(
                r'\((\d+) similar suppressed\)', '\n'.join(lines))]
            # a "since:" line only tells what its second held back
            events = sum(held) + sum(1 for ln in lines if 'since:' not in ln)
            if events >= 500 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(events, 500, lines)
        self.assertLessEqual(len(lines), 6, lines)


if __name__ == '__main__':
    ht.main()
