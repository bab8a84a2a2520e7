#!/usr/bin/env python3
"""herald integration: the client side.  Every herald(1) subcommand
against the real daemon (sub with its formats, since, count, reconnect
and resume across a restart, the gap when the bus no longer holds what
was missed; pub one and bulk; get; stats; top), the errors a user meets
(usage, bad addresses, refused connections, servers that are not herald
or close mid-line), the examples (herald-producer and herald-watch: status
out, a command in, its answer), and lint of herald(1) and libherald(3).

Needs the built client ($HERALD_BUILDDIR/client/herald, examples/);
skipped when it is not there.  Python 3 standard library only.
"""

import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

BUILDDIR = ht.BUILDDIR
SRCDIR = ht.SRCDIR
HERALD = ht.HERALD
PRODUCER = os.path.join(BUILDDIR, 'examples', 'herald-producer')
WATCH = os.path.join(BUILDDIR, 'examples', 'herald-watch')
RUN_TIMEOUT = 15        # the longest a command may run
FAST = {'shutdown_grace': 1}


def closed_port():
    """A loopback port nothing listens on (reserved, so it stays so)."""
    return ht.free_port()


class Proc:
    """A background command whose output is read line by line, with
    timeouts; always killed at the end of the test."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env,
                                  start_new_session=True)
        self.buf = {'out': b'', 'err': b''}
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ, 'out')
        self.sel.register(self.p.stderr, selectors.EVENT_READ, 'err')

    def _pump(self, timeout):
        for key, _ in self.sel.select(timeout):
            data = os.read(key.fileobj.fileno(), 65536)
            if not data:
                self.sel.unregister(key.fileobj)
            self.buf[key.data] += data

    def lines(self, n, timeout=ht.TIMEOUT * 2):
        """The first n stdout lines (fails after timeout)."""
        deadline = time.monotonic() + timeout
        while self.buf['out'].count(b'\n') < n:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.get_map():
                raise AssertionError('%d of %d lines within %.0f s: %r; '
                                     'stderr %r' % (
                                         self.buf['out'].count(b'\n'), n,
                                         timeout, self.buf['out'][-500:],
                                         self.buf['err'][-500:]))
            self._pump(left)
        return self.buf['out'].decode('utf-8', 'replace').splitlines()[:n]

    def stderr_has(self, text, timeout=ht.TIMEOUT):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.buf['err']:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.get_map():
                raise AssertionError('%r not on stderr: %r' %
                                     (text, self.buf['err'][-800:]))
            self._pump(left)

    def wait(self, timeout=RUN_TIMEOUT):
        deadline = time.monotonic() + timeout
        while self.sel.get_map() and time.monotonic() < deadline:
            self._pump(deadline - time.monotonic())
        return self.p.wait(max(0.1, deadline - time.monotonic()))

    def stderr(self):
        return self.buf['err'].decode('utf-8', 'replace')

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait(5)
        for f in (self.p.stdout, self.p.stderr):
            f.close()


class FakeServer:
    """A TCP server that answers each connection with a script: bytes to
    send at once, then for each line it reads the reply the script gives
    (a dict {command: bytes}), and closes after linger seconds."""

    def __init__(self, greeting, replies=None, linger=2.0):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.greeting, self.replies, self.linger = greeting, replies or {}, \
            linger
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    def serve(self, conn):
        conn.sendall(self.greeting)
        conn.settimeout(0.1)
        deadline = time.monotonic() + self.linger
        buf = b''
        while time.monotonic() < deadline and not self.stop:
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            buf += data
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                reply = self.replies.get(line.strip().upper())
                if reply is not None:
                    conn.sendall(reply)
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()

    def close(self):
        self.stop = True
        self.sock.close()
        self.t.join(2)


class ClientTest(ht.HeraldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(HERALD, os.X_OK):
            raise unittest.SkipTest('no herald at %s' % HERALD)

    def run_herald(self, srv, *args, stdin=None, env=None,
                   timeout=RUN_TIMEOUT, server=True):
        """herald with --server/--ingest of srv; (status, out, err)."""
        argv = [HERALD]
        if srv is not None and server:
            argv += ['-s', '127.0.0.1:%d' % srv.port,
                     '-i', '127.0.0.1:%d' % srv.ingest_port]
        p = subprocess.run(argv + list(args), input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
        return (p.returncode, p.stdout.decode('utf-8', 'replace'),
                p.stderr.decode('utf-8', 'replace'))

    def sub(self, srv, *args):
        p = Proc([HERALD, '-s', '127.0.0.1:%d' % srv.port, 'sub'] +
                 list(args))
        self.addCleanup(p.kill)
        return p

    def pub(self, srv, topic, payload):
        """Publish through the raw protocol (independent of herald)."""
        i = self.conn(srv.ingest_port)
        i.pub(topic, payload)
        return i.sync()

    def fake(self, greeting, replies=None, linger=2.0):
        f = FakeServer(greeting, replies, linger)
        self.addCleanup(f.close)
        return f


class PubGet(ClientTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server(FAST)

    def test_pub_then_get(self):
        rc, out, err = self.run_herald(self.srv, 'pub', 'pg/a', ' two  words ')
        self.assertEqual((rc, out, err), (0, '', ''))
        rc, out, err = self.run_herald(self.srv, 'get', 'pg/a')
        self.assertEqual((rc, out, err), (0, ' two  words \n', ''))
        rc, out, err = self.run_herald(self.srv, 'get', '-f', 'json', 'pg/a')
        self.assertEqual(rc, 0, err)
        obj = json.loads(out)
        self.assertEqual((obj['type'], obj['topic'], obj['payload']),
                         ('val', 'pg/a', ' two  words '))
        c = self.conn(self.srv.port)
        self.assertEqual(c.cmd('GET pg/a')[0],
                         'VAL pg/a %d  two  words ' % obj['seq'])

    def test_get_without_value(self):
        rc, out, err = self.run_herald(self.srv, 'get', 'pg/never/set')
        self.assertEqual((rc, out), (1, ''))

    def test_environment_gives_the_addresses(self):
        env = dict(os.environ,
                   HERALD_SERVER='127.0.0.1:%d' % self.srv.port,
                   HERALD_INGEST='127.0.0.1:%d' % self.srv.ingest_port)
        rc, out, err = self.run_herald(None, 'pub', 'pg/env', 'e', env=env)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.run_herald(None, 'get', 'pg/env', env=env)
        self.assertEqual((rc, out), (0, 'e\n'), err)

    def test_bulk_from_stdin(self):
        n = 20000
        head0 = int(self.srv.stats()['head_seq'])
        data = b''.join(b'line %d\n' % k for k in range(n))
        t0 = time.monotonic()
        rc, out, err = self.run_herald(self.srv, 'pub', 'pg/bulk', '-',
                                       stdin=data)
        took = time.monotonic() - t0
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertLess(took, 10)
        self.assertEqual(int(self.srv.stats()['head_seq']), head0 + n)
        rc, out, err = self.run_herald(self.srv, 'get', 'pg/bulk')
        self.assertEqual(out, 'line %d\n' % (n - 1))

    def test_bulk_lines_crlf_blank_and_no_final_newline(self):
        s0 = self.pub(self.srv, 'pg/x', 'mark')
        rc, out, err = self.run_herald(self.srv, 'pub', 'pg/lines', '-',
                                       stdin=b'a\r\n\n  \nb c\nlast')
        self.assertEqual((rc, err), (0, ''))
        c = self.conn(self.srv.port)
        lines, _ = c.sub('pg/lines', since=s0)
        got = [ht.parse_msg(c.line())[3] for _ in range(4)]
        self.assertEqual(got, ['a', '  ', 'b c', 'last'])

    def test_bulk_line_with_nul_is_reported(self):
        rc, out, err = self.run_herald(self.srv, 'pub', 'pg/nul', '-',
                                       stdin=b'ok\nbad\x00line\nok2\n')
        self.assertEqual(rc, 3)
        self.assertIn('line 2', err)
        self.assertIn('1 line not published', err)
        rc, out, err = self.run_herald(self.srv, 'get', 'pg/nul')
        self.assertEqual(out, 'ok2\n')

    def test_pub_refused_by_the_server(self):
        # The client listener takes no PUB (clients.publish is empty).
        rc, out, err = self.run_herald(
            self.srv, '-i', '127.0.0.1:%d' % self.srv.port, 'pub', 'pg/no',
            'x')
        self.assertEqual(rc, 3)
        self.assertIn('-ERR forbidden pg/no', err)
        self.assertIn('1 message refused', err)

    def test_pub_over_a_unix_socket(self):
        tmp = tempfile.mkdtemp(prefix='herald-unix-')
        self.addCleanup(shutil.rmtree, tmp, True)
        sock = 'unix:%s/in.sock' % tmp
        srv = self.server(dict(FAST, ingest=sock))
        rc, out, err = self.run_herald(srv, '-i', sock, 'pub', 'pg/u', 'via')
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.run_herald(srv, 'get', 'pg/u')[1], 'via\n')


class Sub(ClientTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server(FAST)

    def test_snapshot_then_live_then_count(self):
        self.pub(self.srv, 'sb/a', '1')
        self.pub(self.srv, 'sb/b', '2')
        p = self.sub(self.srv, '-c', '3', 'sb/#')
        self.assertEqual(sorted(p.lines(2)), ['sb/a 1', 'sb/b 2'])
        self.pub(self.srv, 'sb/c', 'three and more')
        self.assertEqual(p.lines(3)[2], 'sb/c three and more')
        self.assertEqual(p.wait(), 0)

    def test_several_patterns_json(self):
        self.pub(self.srv, 'sj/x/t', 'a "quoted"\\ \ttab')
        self.pub(self.srv, 'sk/0', 'zero')
        p = self.sub(self.srv, '-f', 'json', '-c', '4', 'sj/+/t', 'sk/#')
        # Both snapshots are in once both values are: then publish.
        snap = [json.loads(ln) for ln in p.lines(2)]
        self.assertEqual(snap[0], {'type': 'val', 'topic': 'sj/x/t',
                                   'seq': snap[0]['seq'],
                                   'payload': 'a "quoted"\\ \ttab'})
        self.assertEqual((snap[1]['type'], snap[1]['topic']),
                         ('val', 'sk/0'))
        i = self.conn(self.srv.ingest_port)
        i.send(b'PUB sk/y caf\xc3\xa9 \xff\n')
        i.pub('sj/z/t', 'z')
        i.sync()
        got = [json.loads(ln) for ln in p.lines(4)[2:]]
        self.assertEqual([(g['type'], g['topic'], g['payload'])
                          for g in got],
                         [('msg', 'sk/y', 'caf\u00e9 \u00ff'),
                          ('msg', 'sj/z/t', 'z')])
        self.assertGreater(got[1]['seq'], got[0]['seq'])
        self.assertEqual(p.wait(), 0)

    def test_since_replays(self):
        s0 = self.pub(self.srv, 'ss/a', 'before')
        self.pub(self.srv, 'ss/a', 'after1')
        self.pub(self.srv, 'ss/b', 'after2')
        p = self.sub(self.srv, '--since', str(s0), '-c', '2', '-f', 'json',
                     'ss/#')
        got = [json.loads(ln) for ln in p.lines(2)]
        self.assertEqual([(g['type'], g['payload']) for g in got],
                         [('msg', 'after1'), ('msg', 'after2')])
        self.assertEqual(p.wait(), 0)

    def test_refused_subscription(self):
        srv = self.server(dict(FAST, **{'clients.max_subs': 1}))
        p = self.sub(srv, 'a/#', 'b/#')
        self.assertEqual(p.wait(), 3)
        self.assertIn('-ERR too-many-subs b/#', p.stderr())


class Reconnect(ClientTest):

    def test_resume_across_restart_loses_nothing(self):
        srv = self.server(FAST)
        self.pub(srv, 'rc/x', '0')
        p = self.sub(srv, '-f', 'json', 'rc/#')
        self.assertEqual(len(p.lines(1)), 1)    # subscribed: the VAL
        for k in range(1, 6):
            self.pub(srv, 'rc/x', str(k))
        self.assertEqual(len(p.lines(6)), 6)
        srv.restart()
        # Published before the subscriber is back: it gets them by replay.
        for k in range(6, 11):
            self.pub(srv, 'rc/x', str(k))
        got = [json.loads(ln) for ln in p.lines(11, timeout=15)[1:]]
        self.assertEqual([g['payload'] for g in got],
                         [str(k) for k in range(1, 11)])
        self.assertTrue(all(g['type'] == 'msg' for g in got), got)
        seqs = [g['seq'] for g in got]
        self.assertEqual(seqs, sorted(set(seqs)))
        p.stderr_has('reconnected to 127.0.0.1:%d' % srv.port)
        self.assertIn('reconnecting', p.stderr())
        self.assertNotIn('gap', p.stderr())

    def test_gap_when_the_bus_no_longer_holds_it(self):
        small = dict(FAST, **{'bus.size': '64K', 'max_payload': 1024})
        srv = self.server(small)
        seen = self.pub(srv, 'gp/x', 'first')
        p = self.sub(srv, '-f', 'json', 'gp/#')
        self.assertEqual(len(p.lines(1)), 1)    # subscribed: the VAL
        srv.stop()
        # The same bus served where the subscriber cannot reach it, and
        # far more than the ring holds published meanwhile.
        away = ht.Server(small, tmp=srv.tmp)
        i = self.conn(away.ingest_port)
        i.send(b''.join(b'PUB gp/x %s\n' % (b'p' * 100)
                        for _ in range(2000)))
        i.pub('gp/x', 'last')
        head = i.sync()
        i.close()
        away.stop()
        srv.start()
        got = [json.loads(ln) for ln in p.lines(3, timeout=15)]
        self.assertEqual(got[1], {'type': 'gap', 'first': seen + 1,
                                  'last': head})
        self.assertEqual((got[2]['type'], got[2]['payload'], got[2]['seq']),
                         ('val', 'last', head))

    def test_gap_in_plain_format_goes_to_stderr(self):
        srv = self.server(dict(FAST, **{'bus.size': '64K',
                                        'max_payload': 1024}))
        i = self.conn(srv.ingest_port)
        i.pub('gq/x', 'old')
        i.send(b''.join(b'PUB gq/y %s\n' % (b'p' * 100)
                        for _ in range(2000)))
        i.sync()
        p = self.sub(srv, '--since', '1', '-c', '2', 'gq/#')
        self.assertEqual(p.wait(), 0)
        self.assertIn('gap: messages 2..', p.stderr())

    def test_no_reconnect_exits(self):
        srv = self.server(FAST)
        self.pub(srv, 'nr/x', 'v')
        p = self.sub(srv, '--no-reconnect', 'nr/#')
        self.assertEqual(p.lines(1), ['nr/x v'])
        srv.stop()
        self.assertEqual(p.wait(), 3)
        self.assertIn('closed the connection', p.stderr())


class StatsTop(ClientTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server(FAST)

    def test_stats_formats(self):
        self.pub(self.srv, 'st/a', 'x')
        rc, out, err = self.run_herald(self.srv, 'stats')
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'(?m)^clients +\d+  clients connected now$')
        self.assertRegex(out, r'(?m)^uptime +\d+  .*\(\d\d:\d\d:\d\d\)$')
        rc, out, err = self.run_herald(self.srv, 'stats', '-f', 'plain')
        plain = dict(ln.split() for ln in out.splitlines())
        self.assertGreaterEqual(int(plain['head_seq']), 1)
        rc, out, err = self.run_herald(self.srv, 'stats', '-f', 'json')
        obj = json.loads(out)
        for name in ('clients', 'workers', 'msgs_in', 'msgs_out',
                     'bytes_out', 'gaps', 'slow_consumers', 'head_seq',
                     'uptime', 'retained'):
            self.assertIsInstance(obj[name], int, name)
        self.assertEqual(obj['workers'], 2)

    def test_top_batch(self):
        rc, out, err = self.run_herald(self.srv, 'top', '-b', '-n', '2',
                                       '-d', '0.3')
        self.assertEqual(rc, 0, err)
        frames = out.split('herald top - ')[1:]
        self.assertEqual(len(frames), 2, out)
        self.assertIn('2 workers', frames[0])
        self.assertNotIn('\033', out)
        self.assertRegex(frames[1], r'(?m)^clients +\d+$')
        for name in ('connections', 'msgs_in', 'msgs_out', 'bytes_out',
                     'gaps', 'slow_consumers'):
            self.assertRegex(frames[0], r'(?m)^%s +\d+$' % name)
            self.assertRegex(frames[1], r'(?m)^%s +\d+ +[\d.]+k?$' % name)
        self.assertIn('totals only', frames[1])

    def test_top_shows_per_worker_figures_when_sent(self):
        stats = (b'STAT clients 3\nSTAT workers 2\nSTAT msgs_in 10\n'
                 b'STAT uptime 5\nSTAT worker.1.clients 1\n'
                 b'STAT worker.2.clients 2\nSTAT worker.2.gaps 4\n'
                 b'+OK STATS\n')
        f = self.fake(b'HELLO herald/1 7\n', {b'STATS': stats}, linger=5)
        rc, out, err = self.run_herald(
            None, '-s', '127.0.0.1:%d' % f.port, 'top', '-b', '-n', '1')
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'(?m)^2 +clients +2$')
        self.assertRegex(out, r'(?m)^2 +gaps +4$')
        self.assertNotIn('totals only', out)


class OptionsAnywhere(ClientTest):
    """Every subcommand takes its options before or after its operands,
    as GNU tools do; -- ends them, for a topic that starts with '-'."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = cls.class_server(FAST)
        cls.server_addr = '127.0.0.1:%d' % cls.srv.port
        cls.ingest_addr = '127.0.0.1:%d' % cls.srv.ingest_port

    def herald(self, *args, **kw):
        return self.run_herald(None, *args, server=False, **kw)

    def test_pub_and_get_with_options_last(self):
        self.assertEqual(self.herald('pub', 'oa/t', 'v1', '-i',
                                     self.ingest_addr, '-t', '5'),
                         (0, '', ''))
        self.assertEqual(self.herald('get', 'oa/t', '-s', self.server_addr),
                         (0, 'v1\n', ''))
        rc, out, err = self.herald('get', 'oa/t', '--format', 'json',
                                   '--server', self.server_addr)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)['payload'], 'v1')
        rc, out, err = self.herald('pub', 'oa/bulk', '-', '--ingest',
                                   self.ingest_addr, stdin=b'b1\nb2\n')
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertEqual(self.herald('get', '-s', self.server_addr,
                                     'oa/bulk'), (0, 'b2\n', ''))

    def test_sub_with_options_after_the_pattern(self):
        self.pub(self.srv, 'oa/s/a', 'first')
        p = Proc([HERALD, 'sub', 'oa/s/#', '--count', '2', '-s',
                  self.server_addr, '-f', 'json'])
        self.addCleanup(p.kill)
        self.assertEqual(json.loads(p.lines(1)[0])['payload'], 'first')
        self.pub(self.srv, 'oa/s/b', 'second')
        self.assertEqual(json.loads(p.lines(2)[1])['payload'], 'second')
        self.assertEqual(p.wait(), 0, p.stderr())
        self.assertEqual(p.stderr(), '')

    def test_stats_and_top_with_options_after_the_name(self):
        rc, out, err = self.herald('stats', '-f', 'plain', '-s',
                                   self.server_addr)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'(?m)^head_seq \d+$')
        rc, out, err = self.herald('top', '-n', '1', '-s', self.server_addr,
                                   '-b')
        self.assertEqual(rc, 0, err)
        self.assertIn('herald top - %s' % self.server_addr, out)
        rc, out, err = self.herald('stats', 'extra', '-s', self.server_addr)
        self.assertEqual((rc, out), (2, ''))
        self.assertIn("unexpected argument 'extra'", err)

    def test_double_dash_ends_options(self):
        # '-' is a topic character: "-oa/t" is a topic, "-1" a payload.
        self.assertEqual(self.herald('pub', '-i', self.ingest_addr, '--',
                                     '-oa/t', '-1'), (0, '', ''))
        self.assertEqual(self.herald('get', '-s', self.server_addr, '--',
                                     '-oa/t'), (0, '-1\n', ''))
        p = Proc([HERALD, 'sub', '-c', '1', '-s', self.server_addr, '--',
                  '-oa/#'])
        self.addCleanup(p.kill)
        self.assertEqual(p.lines(1), ['-oa/t -1'])
        self.assertEqual(p.wait(), 0, p.stderr())
        # Without --, a word that starts with '-' is an option anywhere.
        rc, out, err = self.herald('get', '-s', self.server_addr, '-oa/t')
        self.assertEqual((rc, out), (2, ''))
        self.assertIn("unknown option '-o'", err)
        rc, out, err = self.herald('pub', '-i', self.ingest_addr, 'oa/t',
                                   '-1')
        self.assertEqual((rc, out), (2, ''))
        self.assertIn("unknown option '-1'", err)


class Errors(ClientTest):

    def test_usage(self):
        rc, out, err = self.run_herald(None, server=False)
        self.assertEqual((rc, out), (2, ''))
        self.assertIn('no command', err)
        self.assertIn("Try 'herald --help'", err)
        rc, out, err = self.run_herald(None, '--help')
        self.assertEqual((rc, err), (0, ''))
        for cmd in ('sub', 'pub', 'get', 'stats', 'top'):
            self.assertIn('  %s ' % cmd, out)
        for argv in (['sub', '--help'], ['help', 'sub']):
            rc, out, err = self.run_herald(None, *argv)
            self.assertEqual(rc, 0)
            self.assertIn('--since SEQ', out)
        rc, out, err = self.run_herald(None, '--version')
        self.assertEqual(rc, 0)
        self.assertRegex(out, r'^herald \d+\.\d+\.\d+\n$')
        for argv, what in ((['nosuch'], "unknown command 'nosuch'"),
                           (['get'], 'expected one TOPIC'),
                           (['get', '-x', 't'], "unknown option '-x'"),
                           (['get', 't', '-qx'], "unknown option '-q'"),
                           (['get', 't', '--nope'], "unknown option '--nope'"),
                           (['top', '-bn'], "option '-n' needs a value"),
                           (['sub', '--count'], "needs a value"),
                           (['sub', '-c', '0', 'a'], 'bad count'),
                           (['sub', '-f', 'xml', 'a'], 'bad format'),
                           (['sub', 'a//b'], 'bad pattern'),
                           (['pub', 'a/+', 'x'], 'bad topic'),
                           (['pub', 't', ''], 'bad payload'),
                           (['pub', 't'], 'expected TOPIC'),
                           (['-t', 'soon', 'stats'], 'bad timeout'),
                           (['help', 'nosuch'], 'no such command')):
            with self.subTest(argv=argv):
                rc, out, err = self.run_herald(None, *argv)
                self.assertEqual((rc, out), (2, ''), err)
                self.assertIn(what, err)

    def test_bad_addresses(self):
        for addr in ('nonsense', '127.0.0.1:99999', '127.0.0.1:', ':7400',
                     'unix:relative'):
            with self.subTest(addr=addr):
                rc, out, err = self.run_herald(None, '-s', addr, 'get', 'a')
                self.assertEqual((rc, out), (2, ''))
                self.assertIn('bad address "%s"' % addr, err)
        rc, out, err = self.run_herald(None, '-s', 'nosuchhost.invalid:7400',
                                       'stats')
        self.assertEqual(rc, 3)
        self.assertIn('cannot resolve "nosuchhost.invalid"', err)

    def test_refused(self):
        port = closed_port()
        for argv in (['get', 'a'], ['stats'], ['sub', 'a/#'], ['top', '-b'],
                     ['-i', '127.0.0.1:%d' % port, 'pub', 'a', 'b']):
            with self.subTest(argv=argv):
                rc, out, err = self.run_herald(
                    None, '-s', '127.0.0.1:%d' % port, *argv)
                self.assertEqual((rc, out), (3, ''))
                self.assertEqual(err, 'herald: connect to 127.0.0.1:%d: '
                                 'Connection refused\n' % port)

    def test_not_a_herald_server(self):
        f = self.fake(b'SSH-2.0-OpenSSH_9.2\r\n')
        rc, out, err = self.run_herald(None, '-s', '127.0.0.1:%d' % f.port,
                                       'get', 'a')
        self.assertEqual(rc, 3)
        self.assertIn('not a herald server (it said "SSH-2.0-OpenSSH_9.2")',
                      err)

    def test_server_closes_mid_line(self):
        f = self.fake(b'HELLO herald/1 5\n',
                      {b'GET A/B': b'VAL a/b 5 half a va'}, linger=0.3)
        rc, out, err = self.run_herald(None, '-s', '127.0.0.1:%d' % f.port,
                                       'get', 'a/b')
        self.assertEqual((rc, out), (3, ''))
        self.assertIn('closed the connection in the middle of a line', err)

    def test_silent_server_times_out(self):
        f = self.fake(b'', linger=5)
        t0 = time.monotonic()
        rc, out, err = self.run_herald(None, '-s', '127.0.0.1:%d' % f.port,
                                       '-t', '0.5', 'stats')
        self.assertEqual(rc, 3)
        self.assertIn('no HELLO within 500 ms', err)
        self.assertLess(time.monotonic() - t0, 3)

    def test_stdout_closed_early(self):
        srv = self.server(FAST)
        self.pub(srv, 'so/x', 'v')
        sh = '"$0" -s 127.0.0.1:%d sub "so/#" | head -n 1' % srv.port
        p = subprocess.Popen(['sh', '-c', sh, HERALD],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and
                        os.killpg(p.pid, signal.SIGKILL))
        deadline = time.monotonic() + ht.TIMEOUT
        while p.poll() is None and time.monotonic() < deadline:
            self.pub(srv, 'so/y', 'more')   # the write that finds no reader
            time.sleep(0.05)
        self.assertIsNotNone(p.poll(), 'herald sub | head did not end')
        self.assertRegex(p.stdout.read(), br'^so/[xy] (v|more)\n$')
        self.assertEqual(p.stderr.read(), b'')
        p.stdout.close()
        p.stderr.close()


class Examples(ClientTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for prog in (PRODUCER, WATCH):
            if not os.access(prog, os.X_OK):
                raise unittest.SkipTest('no %s (make check builds it)' %
                                        prog)

    def producer(self, srv, name, *args):
        p = Proc([PRODUCER, '-s', '127.0.0.1:%d' % srv.port,
                  '-i', '127.0.0.1:%d' % srv.ingest_port, '-n', name] +
                 list(args))
        self.addCleanup(p.kill)
        return p

    def watch(self, srv, *args, timeout=RUN_TIMEOUT):
        p = subprocess.run([WATCH, '-s', '127.0.0.1:%d' % srv.port] +
                           list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def get(self, srv, topic):
        c = self.conn(srv.port)
        lines = c.cmd('GET %s' % topic)
        return ht.parse_msg(lines[0])[3] if len(lines) == 2 else None

    def wait_value(self, srv, topic, pred, timeout=ht.TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.get(srv, topic)
            if v is not None and pred(v):
                return v
            time.sleep(0.05)
        raise AssertionError('%s never became right (last %r)' % (topic, v))

    def test_status_out_command_in(self):
        srv = self.server(dict(FAST, **{'clients.publish': 'cmd/#'}))
        prod = self.producer(srv, 'box1', '-t', '0.2')
        self.wait_value(srv, 'status/box1/count', lambda v: int(v) >= 2)
        rc, out, err = self.watch(srv, '-1', 'status/box1/#')
        self.assertEqual(rc, 0, err)
        rows = {ln.split()[0]: ln.split()[2:] for ln in out.splitlines()[1:]
                if ln.strip()}
        for name in ('load1', 'load5', 'load15', 'uptime',
                     'mem_available_kb', 'interval', 'count'):
            self.assertIn('status/box1/%s' % name, rows)
        self.assertEqual(rows['status/box1/interval'], ['0.2'])
        # A command in, its answer out, and the producer obeys it.
        rc, out, err = self.watch(srv, '-x', 'box1', 'interval', '0.5')
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'^ok \d+ interval 0\.5\n$')
        # The producer shows the new interval before it answers.
        self.assertEqual(self.get(srv, 'status/box1/interval'), '0.5')
        rc, out, err = self.watch(srv, '-x', 'box1', 'interval', 'fast')
        self.assertEqual(rc, 1)
        self.assertRegex(out, r'^error \d+ interval expected seconds')
        rc, out, err = self.watch(srv, '-x', 'box1', 'reboot', 'now')
        self.assertEqual(rc, 1)
        self.assertRegex(out, r'^error \d+ reboot unknown command')
        # Across a restart of the daemon: status keeps coming, commands
        # still work.
        before = int(self.get(srv, 'status/box1/count'))
        srv.restart()
        self.wait_value(srv, 'status/box1/count',
                        lambda v: int(v) > before + 1, timeout=10)
        # (its command connection may still be waiting to reconnect: the
        # command waits in the bus, and comes to it when it resumes)
        rc, out, err = self.watch(srv, '-w', '10', '-x', 'box1', 'ping',
                                  'hi')
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r'^ok \d+ ping hi\n$')
        os.killpg(prod.p.pid, signal.SIGTERM)
        self.assertEqual(prod.wait(), 0)

    def test_watch_counts_updates(self):
        srv = self.server(FAST)
        self.pub(srv, 'w/a', '1')
        p = Proc([WATCH, '-s', '127.0.0.1:%d' % srv.port, '-c', '3', 'w/#'])
        self.addCleanup(p.kill)
        p.lines(1)              # the table after the snapshot
        self.pub(srv, 'w/b', '2')
        self.pub(srv, 'w/a', '3')
        self.assertEqual(p.wait(), 0)
        out = p.buf['out'].decode()
        last = out.strip().split('\n\n')[-1].splitlines()
        self.assertEqual([ln.split()[0] + ' ' + ln.split()[2]
                          for ln in last[1:]], ['w/a 3', 'w/b 2'])

    def test_command_without_permission(self):
        srv = self.server(FAST)     # clients.publish is empty
        rc, out, err = self.watch(srv, '-x', 'box9', 'interval', '2')
        self.assertEqual(rc, 1)
        self.assertIn('forbidden cmd/box9/interval', err)


class ManPages(unittest.TestCase):

    PAGES = ('man/herald.1', 'man/libherald.3')

    def test_lint(self):
        if shutil.which('mandoc') is None:
            self.skipTest('mandoc is not installed')
        for page in self.PAGES:
            with self.subTest(page=page):
                p = subprocess.run(['mandoc', '-T', 'lint', '-W', 'warning',
                                    os.path.join(SRCDIR, page)],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=30)
                msgs = [ln for ln in p.stdout.decode().splitlines()
                        if ln.strip() and 'mandoc.db' not in ln]
                self.assertEqual(msgs, [])

    def test_every_function_is_documented(self):
        with open(os.path.join(SRCDIR, 'client', 'herald.h')) as f:
            header = f.read()
        with open(os.path.join(SRCDIR, 'man', 'libherald.3')) as f:
            page = f.read()
        names = set(re.findall(r'(?m)^(?!typedef).*\b(herald_\w+)\(',
                               header))
        self.assertGreater(len(names), 20)
        for name in sorted(names):
            self.assertRegex(page, r'(?m)^\.Fn %s\b' % name, name)

    def test_every_subcommand_is_documented(self):
        with open(os.path.join(SRCDIR, 'man', 'herald.1')) as f:
            page = f.read()
        for cmd in ('sub', 'pub', 'get', 'stats', 'top'):
            self.assertRegex(page, r'(?m)^\.It Cm %s\b' % cmd, cmd)


if __name__ == '__main__':
    ht.main()
