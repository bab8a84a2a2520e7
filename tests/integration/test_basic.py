#!/usr/bin/env python3
"""herald integration: greeting, PING, QUIT, STATS, framing, error lines
and their order of faults, heraldd -V and -t (herald-protocol(7): Framing, Names,
Client to server, Errors)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402


class Basic(ht.HeraldTestCase):
    """Everything here shares one daemon (default settings)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server()

    def c(self, **kw):
        return self.conn(self.srv.port, **kw)

    def i(self, **kw):
        return self.conn(self.srv.ingest_port, **kw)

    # -- greeting ---------------------------------------------------------
    def test_hello_on_both_listeners(self):
        for port in (self.srv.port, self.srv.ingest_port):
            c = ht.Conn(port, hello=False)
            try:
                ln = c.line()
                self.assertRegex(ln, r'^HELLO herald/1 \d+$')
            finally:
                c.close()

    def test_hello_seq_is_head(self):
        i = self.i()
        i.pub('basic/hello', 'x')
        s = i.sync()
        c = self.c()
        self.assertEqual(c.hello_seq, s, 'HELLO head-seq after SYNC %d' % s)
        c2 = self.i()
        self.assertEqual(c2.hello_seq, s)

    # -- PING / QUIT --------------------------------------------------------
    def test_ping(self):
        c = self.c()
        self.assertEqual(c.cmd('PING'), ['PONG'])
        self.assertEqual(c.cmd('PING tok-123'), ['PONG tok-123'])
        i = self.i()
        self.assertEqual(i.cmd('PING'), ['PONG'])
        self.assertEqual(i.cmd('PING abc'), ['PONG abc'])

    def test_ping_long_token(self):
        c = self.c()
        for n in (1000, 1018, 1019, 1100, 4000, 4091):
            tok = ''.join(chr(0x21 + k % 90) for k in range(n))
            self.assertEqual(c.cmd('PING ' + tok), ['PONG ' + tok],
                             'PING with a %d-byte token' % n)

    def test_quit(self):
        for port in (self.srv.port, self.srv.ingest_port):
            c = self.conn(port)
            self.assertEqual(c.cmd('QUIT'), ['BYE quit'])
            c.expect_eof()

    def test_quit_after_pipelined(self):
        c = self.c()
        c.send('PING a\nQUIT\nPING b\n')
        self.assertEqual(c.line(), 'PONG a')
        self.assertEqual(c.line(), 'BYE quit')
        c.expect_eof()

    # -- STATS -------------------------------------------------------------
    REQUIRED = ('clients', 'workers', 'head_seq', 'uptime', 'msgs_in',
                'msgs_out', 'bytes_out', 'gaps', 'slow_consumers',
                'retained')

    def test_stats_format(self):
        c = self.c()
        lines = c.cmd('STATS')
        self.assertEqual(lines[-1], '+OK STATS')
        names = {}
        for ln in lines[:-1]:
            m = re.match(r'^STAT (\S+) (-?\d+)$', ln)
            self.assertTrue(m, 'STATS line not `STAT <name> <integer>`: %r'
                            % ln)
            names[m.group(1)] = int(m.group(2))
        for n in self.REQUIRED:
            self.assertIn(n, names, 'STATS lacks %s: %r' % (n, lines))
        self.assertEqual(names['workers'], 2)
        i = self.i()
        s = i.sync()
        self.assertGreaterEqual(int(c.stats()['head_seq']), s)

    def test_stats_clients_over_all_workers(self):
        conns = [self.c() for _ in range(10)]
        owners = self.srv.worker_of(conns)
        self.assertEqual(len(set(owners.values())), 2,
                         'the 10 connections should be on both workers: %r'
                         % sorted(owners.values(), key=str))
        deadline = time.monotonic() + 3
        while True:
            n = int(conns[0].stats()['clients'])
            if n >= 10 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(n, 10, 'STAT clients with 10 connections '
                                'open over 2 workers')

    def test_stats_counts_move(self):
        c = self.c()
        i = self.i()
        st0 = c.stats()
        c.sub('basic/cnt')
        i.pub('basic/cnt', 'v')
        i.sync()
        c.expect(r'^MSG basic/cnt \d+ v$')
        deadline = time.monotonic() + 3
        while True:
            st1 = c.stats()
            ok = (int(st1['msgs_in']) > int(st0['msgs_in']) and
                  int(st1['msgs_out']) > int(st0['msgs_out']) and
                  int(st1['bytes_out']) > int(st0['bytes_out']) and
                  int(st1['retained']) >= 1)
            if ok or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(ok, 'STATS before %r after %r' % (st0, st1))

    # -- framing -------------------------------------------------------------
    def test_verbs_case_insensitive(self):
        c = self.c()
        self.assertEqual(c.cmd('ping x'), ['PONG x'])
        self.assertEqual(c.cmd('PiNg y'), ['PONG y'])
        lines = c.cmd('sub basic/ci/+')
        self.assertRegex(lines[-1], r'^\+OK SUB basic/ci/\+ \d+$')
        lines = c.cmd('Unsub basic/ci/+')
        self.assertEqual(lines, ['+OK UNSUB basic/ci/+'])
        self.assertEqual(c.cmd('get basic/ci/none'),
                         ['-ERR not-found basic/ci/none'])
        self.assertRegex(c.cmd('sync')[-1], r'^\+OK SYNC \d+$')
        self.assertEqual(c.cmd('stats')[-1], '+OK STATS')
        i = self.i()
        i.sendline('pub basic/ci/t v1')
        i.sendline('pUB basic/ci/t v2')
        i.sync()
        lines = c.cmd('GET basic/ci/t')
        self.assertRegex(lines[0], r'^VAL basic/ci/t \d+ v2$')
        self.assertEqual(lines[1:], ['+OK GET basic/ci/t'])
        self.assertEqual(c.cmd('quit'), ['BYE quit'])

    def test_topics_case_sensitive(self):
        i = self.i()
        i.pub('basic/Case', 'upper')
        i.sync()
        c = self.c()
        self.assertEqual(c.cmd('GET basic/case'),
                         ['-ERR not-found basic/case'])
        self.assertRegex(c.cmd('GET basic/Case')[0],
                         r'^VAL basic/Case \d+ upper$')

    def test_crlf(self):
        c = self.c()
        c.send('PING x\r\n')
        self.assertEqual(c.line(), 'PONG x')
        c.send('PING\r\n')
        self.assertEqual(c.line(), 'PONG')
        c.send('GET basic/crlf\r\n')
        self.assertEqual(c.line(), '-ERR not-found basic/crlf')
        i = self.i()
        i.send('PUB basic/crlf v\r\n')
        i.send('SYNC\r\n')
        self.assertRegex(i.line(), r'^\+OK SYNC \d+$')
        c.send('GET basic/crlf\r\n')
        self.assertRegex(c.line(), r'^VAL basic/crlf \d+ v$')
        self.assertEqual(c.line(), '+OK GET basic/crlf')

    def test_half_close(self):
        """Like `printf 'PING a\\nGET t\\n' | nc -N host port`: the
        answers to everything sent before the client's EOF arrive."""
        i = self.i()
        i.pub('basic/hc', 'v')
        s = i.sync()
        c = self.c()
        c.send('PING a\nGET basic/hc\nPING b\n')
        c.sock.shutdown(socket.SHUT_WR)
        lines, eof = c.read_all(quiet=2.0, timeout=5)
        self.assertEqual(lines[:4], ['PONG a', 'VAL basic/hc %d v' % s,
                                     '+OK GET basic/hc', 'PONG b'])

    def half_close(self, conn, data):
        """Send data, end the input, read to the end: (lines, eof)."""
        conn.send(data)
        conn.sock.shutdown(socket.SHUT_WR)
        return conn.read_all(quiet=ht.TIMEOUT, timeout=ht.TIMEOUT * 2)

    def test_half_close_waits_for_sync(self):
        """herald-protocol(7)'s example, `printf 'PUB t 1\\nSYNC\\n' |
        nc -q1 host port`: the SYNC is answered before the server closes
        (it used to close at the client's EOF, the answer unsent)."""
        for k in range(3):
            i = self.i()
            lines, eof = self.half_close(i, 'PUB basic/hs %d\nSYNC\n' % k)
            self.assertEqual(len(lines), 1, lines)
            self.assertRegex(lines[0], r'^\+OK SYNC \d+$')
            self.assertTrue(eof, 'the server closes once it owes nothing')
            self.assertEqual(self.c().cmd('GET basic/hs'),
                             ['VAL basic/hs %s %d' % (lines[0].split()[2], k),
                              '+OK GET basic/hs'])

    def test_half_close_at_once(self):
        """A client that ends its input before saying anything gets
        HELLO all the same, then the end."""
        for port in (self.srv.port, self.srv.ingest_port):
            s = socket.create_connection(('127.0.0.1', port),
                                         timeout=ht.TIMEOUT)
            self.addCleanup(s.close)
            s.shutdown(socket.SHUT_WR)
            got = b''
            while True:
                data = s.recv(4096)
                if not data:
                    break
                got += data
            self.assertRegex(got, br'^HELLO herald/1 \d+\n$')

    def test_half_close_with_nc(self):
        """The example itself, with nc(1) (OpenBSD's: it has -q)."""
        nc = shutil.which('nc')
        if nc is None:
            self.skipTest('nc is not installed')
        usage = subprocess.run([nc, '-h'], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10).stdout
        if b'-q' not in usage:
            self.skipTest('this nc has no -q')
        p = subprocess.run([nc, '-q1', '127.0.0.1', str(self.srv.ingest_port)],
                           input=b'PUB plant/line1/temp 71.7\nSYNC\n',
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=ht.TIMEOUT * 2)
        self.assertRegex(p.stdout.decode(),
                         r'^HELLO herald/1 \d+\n\+OK SYNC \d+\n$', p.stderr)

    def test_blank_lines_ignored(self):
        c = self.c()
        c.send('\n\r\n   \n\t\n \t \r\nPING after\n')
        self.assertEqual(c.line(), 'PONG after')
        c.assert_no_line(0.2)

    def test_words_separated_by_spaces_and_tabs(self):
        c = self.c()
        lines = c.cmd('SUB \t basic/ws/+  \t')
        self.assertRegex(lines[-1], r'^\+OK SUB basic/ws/\+ \d+$')
        self.assertEqual(c.cmd('\tUNSUB  basic/ws/+'),
                         ['+OK UNSUB basic/ws/+'])
        self.assertEqual(c.cmd('GET\tbasic/ws/none '),
                         ['-ERR not-found basic/ws/none'])

    # -- errors -----------------------------------------------------------
    def test_unknown_command(self):
        c = self.c()
        self.assertErr(self.assertOne(c.cmd('FOO')), 'unknown-command', 'FOO')
        self.assertErr(self.assertOne(c.cmd('foo bar baz')),
                       'unknown-command', 'foo')
        self.assertErr(self.assertOne(c.cmd('SUBX a')), 'unknown-command',
                       'SUBX')
        self.assertErr(self.assertOne(c.cmd('PINGx')), 'unknown-command',
                       'PINGx')
        # the verb as sent, escaped
        self.assertErr(self.assertOne(c.cmd(b'F\x01\\O a')),
                       'unknown-command', 'F\\x01\\x5cO')
        self.assertErr(self.assertOne(c.cmd(b'\xffX')), 'unknown-command',
                       '\\xffX')
        self.assertEqual(c.cmd('PING ok'), ['PONG ok'])

    SYNTAX = [
        'SUB', 'sub', 'SUB a 1 2', 'SUB a b', 'SUB a -1', 'SUB a +1',
        'SUB a 1x', 'SUB a 0x10', 'SUB a 123456789012345678901',
        'SUB a 18446744073709551616', 'SUB a 99999999999999999999',
        'SUB a 000000000000000000001', 'SUB a 1.0', 'SUB a 1e3',
        'UNSUB', 'UNSUB a b', 'unsub', 'GET', 'GET a b', 'get',
        'PUB', 'PUB a', 'pub a', 'PUB a ', 'SYNC x', 'STATS x', 'QUIT x',
        'Quit now',
    ]

    def test_syntax(self):
        for line in self.SYNTAX:
            for port in (self.srv.port, self.srv.ingest_port):
                c = self.conn(port)
                verb = line.split()[0]
                self.assertErr(self.assertOne(c.cmd(line), line), 'syntax',
                               verb)
                self.assertEqual(c.cmd('PING'), ['PONG'], line)
                c.close()

    def test_since_forms_accepted(self):
        c = self.c()
        for since in ('0', '18446744073709551615', '00000000000000000001',
                      '0000000000000000000'):
            lines = c.cmd('SUB basic/since %s' % since)
            self.assertRegex(lines[-1], r'^\+OK SUB basic/since \d+$',
                             'since %s' % since)

    BAD_TOPICS = [
        'a//b', '/a', 'a/', '/', '//', 'a/+', '+', '#', 'a/#', 'a+b', 'a#',
        'x' * 256, 'a/' + 'b' * 254,
    ]

    def test_bad_topic(self):
        c = self.c()
        i = self.i()
        for t in self.BAD_TOPICS:
            self.assertErr(self.assertOne(c.cmd('GET ' + t), t), 'bad-topic',
                           t if len(t) < 200 else None)
            self.assertErr(self.assertOne(i.cmd('PUB %s v' % t), t),
                           'bad-topic', t if len(t) < 200 else None)
            self.assertEqual(c.cmd('PING'), ['PONG'])
            self.assertEqual(i.cmd('PING'), ['PONG'])
        for raw in (b'a\x01b', b'a\x7fb', b'a\x80', b'\xe9t\xe9'):
            self.assertErr(self.assertOne(c.cmd(b'GET ' + raw)), 'bad-topic',
                           ht.esc(raw))
            self.assertErr(self.assertOne(i.cmd(b'PUB ' + raw + b' v')),
                           'bad-topic', ht.esc(raw))
            self.assertEqual(c.cmd('PING'), ['PONG'])
            self.assertEqual(i.cmd('PING'), ['PONG'])
        for raw in (b'a\rb', b'a\x00b', b'\x00'):
            self.assertErr(self.assertOne(c.cmd(b'GET ' + raw)), 'bad-topic',
                           ht.esc(raw))
            self.assertEqual(c.cmd('PING'), ['PONG'])
        # the longest topic (255 bytes) is fine
        t = 'basic/' + 'x' * 249
        self.assertEqual(len(t), 255)
        self.assertEqual(c.cmd('GET ' + t), ['-ERR not-found ' + t])

    def test_longest_names_in_replies(self):
        """Replies that name a topic or pattern of the longest kind (255
        bytes) come out whole, LF and all: they are longer than what
        client_replyf formats on the stack (REPLY_LINE_FAST)."""
        c, i = self.c(), self.i()
        t = 'basic/long/' + 'y' * 244
        p = 'basic/long/' + 'z' * 242 + '/#'
        self.assertEqual((len(t), len(p)), (255, 255))
        i.pub(t, 'v')
        s = i.sync()
        self.assertEqual(c.cmd('GET ' + t), ['VAL %s %d v' % (t, s),
                                             '+OK GET ' + t])
        self.assertEqual(c.sub(t), (['VAL %s %d v' % (t, s)], s))
        self.assertEqual(c.sub(p), ([], s))
        self.assertEqual(c.sub(p, s), ([], s))
        self.assertEqual(c.cmd('UNSUB ' + p), ['+OK UNSUB ' + p])
        self.assertEqual(c.cmd('UNSUB ' + t), ['+OK UNSUB ' + t])
        self.assertEqual(c.cmd('PING'), ['PONG'])

    def test_backslash_escaped_in_detail(self):
        c = self.c()
        # a backslash is a valid topic byte, escaped in the detail
        self.assertEqual(c.cmd('GET basic/a\\b'),
                         ['-ERR not-found basic/a\\x5cb'])
        self.assertEqual(c.cmd('UNSUB basic/\\'),
                         ['-ERR not-subscribed basic/\\x5c'])

    BAD_PATTERNS = [
        'a//b', '/a', 'a/', '/', 'a+', '+a', 'a/b+', 'a#', '#a', 'a/#/b',
        '#/a', '#/#', 'a/##', 'a/++', 'x' * 256,
    ]

    def test_bad_pattern(self):
        c = self.c()
        for p in self.BAD_PATTERNS:
            self.assertErr(self.assertOne(c.cmd('SUB ' + p), p),
                           'bad-pattern', p if len(p) < 200 else None)
            self.assertErr(self.assertOne(c.cmd('UNSUB ' + p), p),
                           'bad-pattern', p if len(p) < 200 else None)
            self.assertErr(self.assertOne(c.cmd('SUB %s 5' % p), p),
                           'bad-pattern', p if len(p) < 200 else None)
            self.assertEqual(c.cmd('PING'), ['PONG'])
        self.assertErr(self.assertOne(c.cmd(b'SUB a/\x02')), 'bad-pattern',
                       'a/\\x02')
        for p in ('+', '#', '+/+/#', 'a/+/b', 'basic/#', '+/#'):
            lines = c.cmd('SUB ' + p)
            self.assertRegex(lines[-1], r'^\+OK SUB %s \d+$' % re.escape(p))
            self.assertEqual(c.cmd('UNSUB ' + p), ['+OK UNSUB ' + p])

    def test_fault_order(self):
        c = self.c()
        i = self.i()
        # verb before words
        self.assertErr(self.assertOne(c.cmd('FOO a b c d')),
                       'unknown-command', 'FOO')
        # verb before topic
        self.assertErr(self.assertOne(c.cmd('FOO a//b')), 'unknown-command',
                       'FOO')
        # words before topic / pattern
        self.assertErr(self.assertOne(c.cmd('GET a//b extra')), 'syntax',
                       'GET')
        self.assertErr(self.assertOne(c.cmd('SUB a//b x')), 'syntax', 'SUB')
        self.assertErr(self.assertOne(c.cmd('SUB a//b 1 2')), 'syntax',
                       'SUB')
        self.assertErr(self.assertOne(c.cmd('UNSUB a# b')), 'syntax',
                       'UNSUB')
        # missing payload (a words fault) before topic and permission
        self.assertErr(self.assertOne(c.cmd('PUB a//b')), 'syntax', 'PUB')
        self.assertErr(self.assertOne(c.cmd('PUB forbidden/t')), 'syntax',
                       'PUB')
        self.assertErr(self.assertOne(i.cmd('PUB a//b')), 'syntax', 'PUB')
        # topic before permission (client listener, no publish patterns)
        self.assertErr(self.assertOne(c.cmd('PUB a//b v')), 'bad-topic',
                       'a//b')
        # topic before bad-payload
        self.assertErr(self.assertOne(i.cmd(b'PUB a//b v\x00')), 'bad-topic',
                       'a//b')
        # permission
        self.assertErr(self.assertOne(c.cmd('PUB ok/t v')), 'forbidden',
                       'ok/t')

    def test_bad_line_keeps_connection(self):
        c = self.c()
        for _ in range(5):
            self.assertErr(self.assertOne(c.cmd('NOPE')), 'unknown-command',
                           'NOPE')
            self.assertEqual(c.cmd('PING'), ['PONG'])


class UnixIngest(ht.HeraldTestCase):

    def test_unix_ingest(self):
        srv = self.server(start=False)
        path = os.path.join(srv.tmp, 'ingest.sock')
        tcp = ht.free_port()
        srv.overrides.update({'ingest': 'unix:%s,127.0.0.1:%d' % (path, tcp),
                              'ingest_mode': '0600'})
        srv.start()
        deadline = time.monotonic() + 5
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        st = os.stat(path)
        self.assertEqual(st.st_mode & 0o7777, 0o600, 'ingest_mode')
        u = self.conn(path)
        u.pub('unix/t', 'over unix')
        s = u.sync()
        t = self.conn(tcp)
        self.assertEqual(t.cmd('GET unix/t'), ['VAL unix/t %d over unix' % s,
                                               '+OK GET unix/t'])
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('PUB unix/t x'), ['-ERR forbidden unix/t'])


# -- the command line ---------------------------------------------------------
class CommandLine(ht.HeraldTestCase):

    def run_heraldd(self, *args, timeout=10):
        p = subprocess.run([ht.HERALDD] + list(args), capture_output=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        return (p.returncode, p.stdout.decode('latin-1'),
                p.stderr.decode('latin-1'))

    def conf(self, text):
        import tempfile
        d = tempfile.mkdtemp(prefix='herald-test-conf-')
        self.addCleanup(__import__('shutil').rmtree, d, True)
        path = os.path.join(d, 'heraldd.conf')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_version(self):
        rc, out, err = self.run_heraldd('-V')
        self.assertEqual(rc, 0, 'heraldd -V exit status; stderr %r' % err)
        self.assertRegex(out.strip(), r'^heraldd \S+$')
        self.assertEqual(len(out.strip().splitlines()), 1)

    def test_check_good_config(self):
        path = self.conf('# a good configuration\n'
                         'workers = 2;\n'
                         'listen = ["127.0.0.1:7400", "127.0.0.1:7402"];\n'
                         'ingest = ["127.0.0.1:7401"];\n'
                         'bus = { size = "8M"; file = ""; };\n'
                         'clients = {\n'
                         '  max_subs = 10;\n'
                         '  slow_policy = "disconnect";\n'
                         '  out_limit = "256K";\n'
                         '  publish = ["cmd/#"];\n'
                         '};\n'
                         'status = { interval = 0; };\n')
        rc, out, err = self.run_heraldd('-t', '-c', path)
        self.assertEqual(rc, 0, 'heraldd -t on a good config: out %r err %r'
                         % (out, err))

    def test_check_syntax_error(self):
        path = self.conf('workers = 2;\n'
                         'clients = {\n'
                         '  max_subs = ;\n'
                         '};\n')
        rc, out, err = self.run_heraldd('-t', '-c', path)
        self.assertEqual(rc, 1, 'heraldd -t on a broken config: exit status')
        self.assertRegex(out + err, r'(?m)^%s:3: \S' % re.escape(path))

    def test_check_bad_value(self):
        path = self.conf('workers = 2;\n'
                         '\n'
                         'clients = {\n'
                         '  max_subs = 0;\n'
                         '  slow_policy = "whatever";\n'
                         '};\n')
        rc, out, err = self.run_heraldd('-t', '-c', path)
        self.assertEqual(rc, 1)
        text = out + err
        self.assertRegex(text, r'(?m)^%s:4: .*max_subs' % re.escape(path))
        self.assertRegex(text, r'(?m)^%s:5: .*slow_policy' % re.escape(path))

    def test_check_unknown_setting(self):
        path = self.conf('workers = 2;\n'
                         'no_such_setting = 1;\n'
                         'clients = { nor_this = "x"; };\n')
        rc, out, err = self.run_heraldd('-t', '-c', path)
        self.assertEqual(rc, 1)
        text = out + err
        self.assertRegex(text, r'(?m)^%s:2: .*no_such_setting'
                         % re.escape(path))
        self.assertRegex(text, r'(?m)^%s:3: .*nor_this' % re.escape(path))

    def test_check_unknown_override(self):
        rc, out, err = self.run_heraldd('-t', '-o', 'clients.bogus=1')
        self.assertEqual(rc, 1)
        self.assertIn('clients.bogus', out + err)

    def test_check_override(self):
        path = self.conf('workers = 2;\n')
        rc, out, err = self.run_heraldd('-t', '-c', path, '-o',
                                        'clients.max_subs=5', '-o',
                                        'listen=127.0.0.1:7400,127.0.0.1:7402')
        self.assertEqual(rc, 0, 'out %r err %r' % (out, err))
        rc, out, err = self.run_heraldd('-t', '-c', path, '-o',
                                        'clients.max_subs=abc')
        self.assertEqual(rc, 1)
        self.assertIn('max_subs', out + err)


class SocketOptions(ht.HeraldTestCase):
    """tcp.* settings reach the accepted sockets (set on the listeners,
    which they inherit)."""

    def server_side(self, srv, c):
        port = c.sock.getsockname()[1]
        out = subprocess.check_output(
            ['ss', '-tnio', 'state', 'established',
             '( sport = :%d and dport = :%d )' % (srv.port, port)]).decode()
        return out

    def test_congestion_and_keepalive(self):
        srv = self.server({'tcp.keepidle': 7})
        c = self.conn(srv.port)
        out = self.server_side(srv, c)
        self.assertIn('cubic', out.split(), out)
        # keepidle 7 s: ss prints the time left (as "6.99ms" on some
        # versions, meaning seconds)
        m = re.search(r'timer:\(keepalive,([0-9.]+)', out)
        self.assertTrue(m, out)
        self.assertTrue(5 < float(m.group(1)) <= 7, out)

    def test_congestion_refused_is_logged(self):
        srv = self.server({'tcp.congestion': 'nosuch'})
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('PING'), ['PONG'])
        self.assertIn('tcp.congestion "nosuch"', srv.log())


if __name__ == '__main__':
    ht.main()
