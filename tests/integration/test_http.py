#!/usr/bin/env python3
"""herald integration: the HTTP listener (heraldd(8), HTTP listener):
GET /metrics read by Prometheus's own parser (Debian's
python3-prometheus-client) and checked against STATS, GET /healthz, GET
/events (server-sent events, herald-protocol(7) OTHER FRAMINGS) on both
resume branches, bad requests, tokens, and an HTTPS listener."""

import os
import signal
import socket
import ssl
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

_parser = ht.debian_module('prometheus_client.parser')
text_string_to_metric_families = (
    _parser.text_string_to_metric_families if _parser else None)


def request(port, raw, timeout=ht.TIMEOUT, wrap=None):
    """Send raw bytes, read to EOF: (status, headers dict, body bytes)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    if wrap is not None:
        s = wrap(s)
    try:
        s.sendall(raw)
        data = b''
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return parse_response(data)


def parse_response(data):
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    if not lines[0].startswith('HTTP/1.1 '):
        raise AssertionError('not an HTTP response: %r' % data[:200])
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def get(port, path, headers=(), **kw):
    raw = 'GET %s HTTP/1.1\r\nHost: localhost\r\n' % path
    raw += ''.join('%s: %s\r\n' % h for h in headers) + '\r\n'
    return request(port, raw.encode('latin-1'), **kw)


class Events:
    """A GET /events stream, its events read one by one as dicts
    (event, data, id)."""

    def __init__(self, port, query, headers=(), rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(ht.TIMEOUT)
        self.sock.connect(('127.0.0.1', port))
        raw = 'GET /events?%s HTTP/1.1\r\nHost: localhost\r\n' % query
        raw += ''.join('%s: %s\r\n' % h for h in headers) + '\r\n'
        self.sock.sendall(raw.encode('latin-1'))
        self.buf = b''
        while b'\r\n\r\n' not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b'\r\n\r\n')
        self.status, self.headers, _ = parse_response(head + b'\r\n\r\n')

    def _fill(self, timeout=ht.TIMEOUT):
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError('stream closed')
        self.buf += data

    def event(self, timeout=ht.TIMEOUT):
        deadline = time.monotonic() + timeout
        while b'\n\n' not in self.buf:
            self._fill(max(0.01, deadline - time.monotonic()))
        block, _, self.buf = self.buf.partition(b'\n\n')
        ev = {}
        for line in block.decode('latin-1').split('\n'):
            if line.startswith(':'):
                continue
            k, _, v = line.partition(': ')
            if k in ev:
                raise AssertionError('field %s twice in %r' % (k, block))
            ev[k] = v
        return ev

    def events_until(self, pred, timeout=10.0):
        out = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.event(max(0.01, deadline - time.monotonic()))
            out.append(ev)
            if pred(ev):
                return out

    def close(self):
        self.sock.close()


def msg_seq(ev):
    return int(ev['data'].split(' ')[1])


class HttpCase(ht.HeraldTestCase):

    def http_server(self, overrides=None, **kw):
        srv = self.server(overrides, **kw)
        # the HTTP listener answers once the others do (one bind)
        return srv

    def publish(self, srv, items):
        p = self.conn(srv.ingest_port)
        for t, v in items:
            p.pub(t, v)
        return p.sync()

    def events(self, srv, query, **kw):
        e = Events(srv.http_port, query, **kw)
        self.addCleanup(e.close)
        return e

    def flood(self, srv):
        """Publish more on s/+ than a client that reads nothing can be
        sent (clients.out_limit 4K), and wait until the worker has fanned
        it all out (a probe on the same worker has the last message: as a
        MSG, or as a VAL if it was found slow too).  Returns the last
        seq."""
        probe = self.conn(srv.port)
        probe.sub('s/+')
        last = self.publish(srv, [('s/%d' % (i % 4), 'v%04d' % i + 'z' * 500)
                                  for i in range(2000)])
        probe.read_until(lambda ln: ln.split(' ')[0] in ('MSG', 'VAL') and
                         int(ln.split(' ')[2]) == last)
        return last

    def https_server(self):
        """A server whose HTTP listener is tls:, its port, and a client
        context that trusts its certificate (for localhost)."""
        import test_tls
        if test_tls.OPENSSL is None:
            self.skipTest('no openssl command')
        pki = test_tls.PKI()
        self.addCleanup(pki.cleanup)
        pki.ca('ca')
        cert, key = pki.cert('srv', 'ca', 'localhost')
        port = ht.free_port()
        srv = self.http_server({'http': 'tls:127.0.0.1:%d' % port,
                                'tls.cert': cert, 'tls.key': key})
        return srv, port, test_tls.client_ctx(pki.path('ca.pem'))


class MetricsTest(HttpCase):

    def test_metrics_parsed_and_equal_to_stats(self):
        if text_string_to_metric_families is None:
            self.skipTest('python3-prometheus-client is not installed')
        srv = self.http_server()
        self.publish(srv, [('a/%d' % i, 'v%d' % i) for i in range(5)])
        stats = {k: int(v) for k, v in srv.stats().items()}
        status, headers, body = get(srv.http_port, '/metrics')
        self.assertEqual(status, 200)
        self.assertTrue(headers['content-type'].startswith(
            'text/plain; version=0.0.4'), headers)
        fams = {f.name: f for f in
                text_string_to_metric_families(body.decode())}
        gauges = {'clients', 'workers', 'head_seq', 'retained'}
        for name, value in stats.items():
            if name == 'uptime':
                fam = fams['herald_uptime_seconds']
                self.assertEqual(fam.type, 'gauge')
                self.assertLessEqual(abs(fam.samples[0].value - value), 2)
                continue
            fam = fams.get('herald_' + name)
            self.assertIsNotNone(fam, 'no metric for STATS %s' % name)
            self.assertEqual(fam.type, 'gauge' if name in gauges else
                             'counter', name)
            self.assertTrue(fam.documentation, name)
            total = [s for s in fam.samples if not s.labels]
            self.assertEqual(len(total), 1, name)
            if fam.type == 'counter':
                self.assertEqual(total[0].name, 'herald_%s_total' % name)
            # what did not move between the two requests is equal
            if name in ('msgs_in', 'head_seq', 'retained', 'workers',
                        'gaps', 'msgs_out', 'bad_lines', 'retained_dropped'):
                self.assertEqual(total[0].value, value, name)
        # each worker's part adds up to the whole
        per = fams['herald_worker_msgs_out']
        self.assertEqual(sorted(s.labels['worker'] for s in per.samples
                                if s.name.endswith('_total')), ['1', '2'])
        self.assertEqual(sum(s.value for s in per.samples),
                         fams['herald_msgs_out'].samples[0].value)
        lag = fams['herald_worker_lag_messages']
        self.assertEqual(sorted(s.labels['worker'] for s in lag.samples),
                         ['1', '2'])
        for s in lag.samples:       # (one may not have woken yet)
            self.assertTrue(0 <= s.value <= stats['head_seq'], s)
        self.assertIn('herald_bus_ring_size_bytes', fams)
        self.assertEqual(fams['herald_bus_ring_size_bytes'].samples[0].value,
                         4 * 1024 * 1024)


class HealthTest(HttpCase):

    def healthz(self, srv):
        """One try: (status, body), or None if the connection went to the
        stopped worker and timed out."""
        try:
            st, _, body = get(srv.http_port, '/healthz', timeout=1.0)
            return st, body.decode()
        except (socket.timeout, OSError):
            return None

    def wait_health(self, srv, status, timeout=20.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self.healthz(srv)
            if r is not None:
                last = r
                if r[0] == status:
                    return r
            time.sleep(0.2)
        self.fail('no %d from /healthz in %.0f s (last %r)' %
                  (status, timeout, last))

    def stop_and_see_503(self, srv, role, reason):
        """SIGSTOP role: /healthz says 503 and names it; SIGCONT: 200."""
        pid = srv.pids()[role]
        os.kill(pid, signal.SIGSTOP)
        try:
            st, body = self.wait_health(srv, 503)
            self.assertIn(reason, body)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.wait_health(srv, 200)

    def test_healthz_ok_then_503_while_a_worker_is_stopped(self):
        srv = self.http_server()
        # (the listeners answer before the producer's loop has run once:
        # under ASan, /healthz may say 503 for a moment after the start)
        self.assertEqual(self.wait_health(srv, 200), (200, 'ok\n'))
        self.stop_and_see_503(srv, 'worker 2', 'worker 2')

    def test_healthz_503_while_the_producer_is_stopped(self):
        self.stop_and_see_503(self.http_server(), 'producer', 'producer')


class EventsTest(HttpCase):

    def test_snapshot_of_several_patterns_then_live(self):
        srv = self.http_server()
        h = self.publish(srv, [('a/x', '1'), ('b/y', '2 two'), ('c/z', '3')])
        e = self.events(srv, 'sub=a/%23&sub=b/%2B&sub=a/%23')
        self.assertEqual(e.status, 200)
        self.assertEqual(e.headers['content-type'], 'text/event-stream')
        self.assertEqual(e.headers['cache-control'], 'no-store')
        self.assertEqual(e.headers['x-accel-buffering'], 'no')
        evs = e.events_until(lambda ev: ev['event'] == 'ok' and
                             ev['data'].startswith('SUB a/#'))
        vals = sorted(ev['data'] for ev in evs if ev['event'] == 'val')
        self.assertEqual(vals, ['a/x 1 1', 'b/y 2 2 two'])
        for ev in evs:
            if ev['event'] == 'val':
                self.assertNotIn('id', ev)      # never on a val
        oks = [ev for ev in evs if ev['event'] == 'ok']
        if len(oks) < 2:
            oks.append(e.event())
        # one snapshot, one head, an id on each ok
        self.assertEqual(sorted(ev['data'] for ev in oks),
                         ['SUB a/# %d' % h, 'SUB b/+ %d' % h])
        self.assertEqual([ev['id'] for ev in oks], [str(h)] * 2)
        self.publish(srv, [('c/z', 'no'), ('b/y', 'live')])
        ev = e.event()
        self.assertEqual(ev['event'], 'msg')
        self.assertEqual(ev['data'], 'b/y %d live' % (h + 2))
        self.assertEqual(ev['id'], str(h + 2))

    def test_snapshot_of_many_steps(self):
        # VALs over several snapshot steps (SNAPSHOT_STEP_BYTES each): the
        # lines of each step become events after the last were written
        srv = self.http_server()
        n = 400
        h = self.publish(srv, [('m/%03d' % i, 'w' * 1000) for i in range(n)])
        e = self.events(srv, 'sub=m/%2B')
        evs = e.events_until(lambda ev: ev['event'] == 'ok', timeout=20)
        self.assertEqual(len(evs), n + 1)
        self.assertEqual(sorted(ev['data'][:5] for ev in evs[:-1]),
                         ['m/%03d' % i for i in range(n)])
        self.assertEqual(evs[-1]['id'], str(h))

    def test_resume_replays_and_last_event_id_wins(self):
        srv = self.http_server()
        self.publish(srv, [('a/t', str(i)) for i in range(1, 7)])
        # since=1, but Last-Event-ID: 3 wins: msgs 4, 5, 6
        e = self.events(srv, 'sub=a/%23&since=1',
                        headers=[('Last-Event-ID', '3')])
        ok = e.event()
        self.assertEqual(ok['event'], 'ok')
        self.assertNotIn('id', ok)      # it goes on to replay
        msgs = [e.event() for _ in range(3)]
        self.assertEqual([(m['event'], m['id']) for m in msgs],
                         [('msg', '4'), ('msg', '5'), ('msg', '6')])
        self.assertEqual(msgs[0]['data'], 'a/t 4 4')
        # since alone
        e2 = self.events(srv, 'sub=a/t&since=5')
        self.assertEqual(e2.event()['event'], 'ok')
        self.assertEqual(e2.event()['id'], '6')

    def test_resume_gap_branch(self):
        srv = self.http_server({'bus.size': '64K', 'max_payload': 4096})
        big = 'x' * 3000
        h = self.publish(srv, [('a/%d' % (i % 3), big) for i in range(60)])
        e = self.events(srv, 'sub=a/%2B', headers=[('Last-Event-ID', '1')])
        gap = e.event()
        self.assertEqual(gap['event'], 'gap')
        self.assertEqual(gap['data'], '2 %d' % h)
        self.assertEqual(gap['id'], str(h))
        evs = e.events_until(lambda ev: ev['event'] == 'ok')
        vals = [ev for ev in evs if ev['event'] == 'val']
        self.assertEqual(sorted(v['data'].split(' ')[0] for v in vals),
                         ['a/0', 'a/1', 'a/2'])
        self.assertEqual(evs[-1]['data'], 'SUB a/+ %d' % h)
        self.assertEqual(evs[-1]['id'], str(h))

    def test_cut_mid_replay_resumes_without_loss(self):
        srv = self.http_server()
        n = 3000
        self.publish(srv, [('r/t', 'p%05d' % i + 'y' * 200)
                           for i in range(n)])
        seen = []
        e = Events(srv.http_port, 'sub=r/%23&since=0', rcvbuf=4096)
        self.assertEqual(e.event()['event'], 'ok')
        last = None
        while len(seen) < n // 3:
            ev = e.event()
            self.assertEqual(ev['event'], 'msg')
            seen.append(msg_seq(ev))
            last = ev['id']
        e.close()       # cut in the middle of the replay
        e = self.events(srv, 'sub=r/%23', headers=[('Last-Event-ID', last)])
        self.assertEqual(e.event()['event'], 'ok')
        while len(seen) < n:
            ev = e.event()
            self.assertEqual(ev['event'], 'msg', ev)
            self.assertEqual(ev['id'], str(msg_seq(ev)))
            seen.append(msg_seq(ev))
        self.assertEqual(seen, list(range(1, n + 1)))

    def test_slow_sse_client_is_conflated(self):
        srv = self.http_server({'clients.out_limit': '4K',
                                'tcp.sndbuf': '8K'}, workers=1)
        e = self.events(srv, 'sub=s/%2B', rcvbuf=4096)
        self.assertEqual(e.event()['event'], 'ok')
        # it reads nothing until the worker has fanned everything out
        last = self.flood(srv)
        seen, gaps, newest = [], [], {}
        while not seen or seen[-1] < last:
            ev = e.event()
            if ev['event'] == 'gap':
                first, end = map(int, ev['data'].split())
                self.assertEqual(ev['id'], str(end))
                gaps.append((first, end))
                seen.append(end)
            elif ev['event'] == 'msg':
                self.assertEqual(ev['id'], str(msg_seq(ev)))
                seen.append(msg_seq(ev))
            else:
                self.assertEqual(ev['event'], 'val', ev)
                self.assertNotIn('id', ev)
                topic, seq = ev['data'].split(' ')[:2]
                newest[topic] = int(seq)
        self.assertTrue(gaps, 'a client that did not read was not '
                        'conflated')
        self.assertEqual(seen, sorted(set(seen)))   # ids only go up
        # the newest values follow the GAP (as of its end)
        while len(newest) < 4:
            ev = e.event()
            self.assertEqual(ev['event'], 'val', ev)
            topic, seq = ev['data'].split(' ')[:2]
            newest[topic] = int(seq)
        self.assertEqual(newest, {'s/%d' % i: last - 3 + (i - last) % 4
                                  for i in range(4)})

    def test_many_sse_and_line_clients_share_batches(self):
        # live (the fast path) and resumed together (the replay sweep):
        # every SSE client gets every record as its event, rendered once
        # per batch for all of them, and line clients their lines
        srv = self.http_server(workers=1)
        self.publish(srv, [('f/%d' % (i % 3), 'old%d' % i)
                           for i in range(300)])
        sse = [self.events(srv, 'sub=f/%%2B&since=%d' % (i * 50))
               for i in range(6)]
        lines = []
        for i in range(4):
            c = self.conn(srv.port)
            c.sendline('SUB f/+ %d' % (i * 70))
            lines.append(c)
        last = self.publish(srv, [('f/%d' % (i % 3), 'new%d' % i)
                                  for i in range(300)])
        for i, e in enumerate(sse):
            self.assertEqual(e.event()['event'], 'ok')
            got = []
            while not got or got[-1] < last:
                ev = e.event()
                self.assertEqual(ev['event'], 'msg', ev)
                seq = msg_seq(ev)
                self.assertEqual(ev['id'], str(seq))
                k = seq - 1
                self.assertEqual(ev['data'], 'f/%d %d %s%d' % (
                    k % 3, seq, 'old' if k < 300 else 'new', k % 300))
                got.append(seq)
            self.assertEqual(got, list(range(i * 50 + 1, last + 1)))
        for i, c in enumerate(lines):
            self.assertRegex(c.line(), r'^\+OK SUB f/\+ \d+$')
            got = []
            while not got or got[-1] < last:
                got.append(int(c.line().split(' ')[2]))
            self.assertEqual(got, list(range(i * 70 + 1, last + 1)))

    def test_shutdown_is_a_bye_event(self):
        srv = self.http_server()
        e = self.events(srv, 'sub=z')
        self.assertEqual(e.event()['event'], 'ok')
        srv.signal(signal.SIGTERM)
        self.assertEqual(e.event(), {'event': 'bye', 'data': 'shutdown'})

    def test_heartbeat_is_an_hb_event(self):
        srv = self.http_server({'clients.heartbeat': '1'})
        e = self.events(srv, 'sub=q')
        self.assertEqual(e.event()['event'], 'ok')
        ev = e.event(timeout=5)
        self.assertEqual(ev['event'], 'hb')
        self.assertEqual(ev['data'], '0')

    def test_idle_timeout_spares_event_streams(self):
        """An event stream cannot send a line: clients.idle_timeout does
        not close it, while a silent line client is told BYE idle."""
        srv = self.http_server({'clients.idle_timeout': '1'})
        e = self.events(srv, 'sub=idle/%23')
        self.assertEqual(e.event()['event'], 'ok')
        c = self.conn(srv.port)
        c.expect(r'^BYE idle$', timeout=5)
        time.sleep(1.5)
        self.publish(srv, [('idle/x', 'still here')])
        ev = e.event(timeout=5)
        self.assertEqual((ev['event'], ev['data'].split(' ')[-1]),
                         ('msg', 'here'))

    def test_bad_event_queries(self):
        srv = self.http_server()
        for query in ('', 'sub=a/%23/b', 'sub=a&since=x',
                      'sub=a&since=1&since=2', 'sub=%zz', 'sub=a%00b'):
            st, _, _ = get(srv.http_port, '/events?' + query)
            self.assertEqual(st, 400, query)
        st, _, _ = get(srv.http_port, '/events?sub=a',
                       headers=[('Last-Event-ID', 'nope')])
        self.assertEqual(st, 400)


class BadRequestTest(HttpCase):

    BAD = [
        (b'GET /metrics HTTP/1.1\r\nContent-Length: 0\r\n'
         b'Content-Length: 0\r\n\r\n', 400),
        (b'GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello', 413),
        (b'GET /metrics HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n', 400),
        (b'GET /metrics HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello', 400),
        (b'GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'
         b'0\r\n\r\n', 400),
        (b'GET /metrics HTTP/1.1\r\nContent-Length: 4\r\n'
         b'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
        (b'GET /metrics HTTP/1.1\r\nX-Big: ' + b'a' * 10240 + b'\r\n\r\n',
         431),
        (b'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n', 405),
        (b'DELETE /events HTTP/1.1\r\n\r\n', 405),
        (b'BREW /metrics HTTP/1.1\r\n\r\n', 400),
        (b'GET /nowhere HTTP/1.1\r\n\r\n', 404),
        (b'GET /metrics HTTP/2.0\r\n\r\n', 400),
        (b'GET /metrics HTTP/1.1\r\nAuthorization: Bearer a\r\n'
         b'Authorization: Bearer b\r\n\r\n', 400),
        (b'\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 400),
    ]

    def test_bad_requests_refused_counted_and_harmless(self):
        srv = self.http_server()
        sub = self.conn(srv.port)
        sub.sub('k/#')
        before = int(srv.stats()['http_bad_requests'])
        for raw, want in self.BAD:
            st, headers, _ = request(srv.http_port, raw)
            self.assertEqual(st, want, raw[:60])
            self.assertEqual(headers.get('connection'), 'close')
        self.assertEqual(int(srv.stats()['http_bad_requests']) - before,
                         len(self.BAD))
        # nothing else disturbed: the subscriber still gets its messages
        self.publish(srv, [('k/1', 'still')])
        self.assertRegex(sub.line(), r'^MSG k/1 \d+ still$')
        self.assertEqual(get(srv.http_port, '/healthz')[0], 200)
        self.assertIn('refused with 400', srv.log())


    def test_request_not_finished_in_time_is_408(self):
        srv = self.http_server({'http_request_timeout': '1'})
        slow = socket.create_connection(('127.0.0.1', srv.http_port),
                                        timeout=5)
        self.addCleanup(slow.close)
        silent = socket.create_connection(('127.0.0.1', srv.http_port),
                                          timeout=5)
        self.addCleanup(silent.close)
        slow.sendall(b'GET /metrics HTTP/1.1\r\nHost: x\r\n')
        for s in (slow, silent):
            data = b''
            while True:
                chunk = s.recv(4096)    # (5 s socket timeout)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b'HTTP/1.1 408 '), data)
        self.assertEqual(int(srv.stats()['http_bad_requests']), 2)
        self.assertIn('within http_request_timeout', srv.log())


class AuthTest(HttpCase):

    def setUp(self):
        import test_auth
        self.hs256 = test_auth.hs256
        self.key = os.path.join(self.tmpdir(), 'hs.key')
        with open(self.key, 'w') as f:
            f.write(test_auth.SECRET.decode() + '\n')
        os.chmod(self.key, 0o600)

    def tmpdir(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix='herald-http-')
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_bearer_and_query_token(self):
        config = ('auth: { jwt_keys = ["%s"]; required = true; '
                  'fail_delay_ms = 0; };\n' % self.key)
        srv = self.http_server(config=config)
        now = int(time.time())
        good = self.hs256({'sub': 'alice', 'exp': now + 600,
                           'herald': {'read': ['a/#']}})
        bad = self.hs256({'sub': 'alice', 'exp': now - 5})
        self.assertEqual(get(srv.http_port, '/metrics')[0], 401)
        st, headers, body = get(srv.http_port, '/metrics',
                                headers=[('Authorization', 'Bearer ' + bad)])
        self.assertEqual(st, 401)
        self.assertEqual(headers['www-authenticate'], 'Bearer')
        self.assertNotIn(b'exp', body)      # no details
        st, _, body = get(srv.http_port, '/metrics',
                          headers=[('Authorization', 'Bearer ' + good)])
        self.assertEqual(st, 200)
        # the bad token is a failed authentication, the missing one a bad
        # request
        self.assertIn(b'herald_auth_failures_total 1\n', body)
        self.assertIn(b'herald_http_bad_requests_total 1\n', body)
        self.assertEqual(get(srv.http_port, '/metrics?token=' + bad)[0], 401)
        e = self.events(srv, 'sub=a/%23&token=' + urllib.parse.quote(good))
        self.assertEqual(e.status, 200)
        self.assertEqual(e.event()['event'], 'ok')
        # within the token's read patterns only
        st, _, _ = get(srv.http_port, '/events?sub=b&token=' + good)
        self.assertEqual(st, 403)


class PageTest(HttpCase):
    """GET / (test_page.py runs the page in a browser): the file as it is
    in the tree, with headers that let it load nothing from elsewhere;
    HEAD with the same head and no body."""

    def test_page_headers_and_head(self):
        srv = self.http_server()
        before = {k: int(v) for k, v in srv.stats().items()}
        st, headers, body = get(srv.http_port, '/')
        self.assertEqual(st, 200)
        with open(os.path.join(ht.SRCDIR, 'web', 'index.html'), 'rb') as f:
            self.assertEqual(body, f.read())
        self.assertEqual(int(headers['content-length']), len(body))
        self.assertEqual(headers['content-type'], 'text/html; charset=utf-8')
        self.assertEqual(headers['cache-control'], 'no-store')
        self.assertEqual(headers['x-content-type-options'], 'nosniff')
        csp = dict(d.strip().split(' ', 1) for d in
                   headers['content-security-policy'].split(';'))
        self.assertEqual(csp['default-src'], "'self'")
        self.assertEqual(csp['frame-ancestors'], "'none'")
        for src in csp.values():        # no other origin, no scheme
            self.assertRegex(src, r"^('[a-z-]+'|data:)( '[a-z-]+')*$", csp)
        # HEAD: the same head, no body; of a stream: only GET
        head = request(srv.http_port, b'HEAD / HTTP/1.1\r\n\r\n')
        self.assertEqual(head, (200, headers, b''))
        st, h, body = request(srv.http_port,
                              b'HEAD /metrics HTTP/1.1\r\n\r\n')
        self.assertEqual((st, body), (200, b''))
        self.assertGreater(int(h['content-length']), 0)
        for path in ('/events?sub=a', '/ws'):
            st, h, body = request(srv.http_port, b'HEAD %s HTTP/1.1\r\n'
                                  b'\r\n' % path.encode())
            self.assertEqual((st, h['allow'], body), (405, 'GET', b''), path)
        st, h, _ = request(srv.http_port, b'PUT / HTTP/1.1\r\n\r\n')
        self.assertEqual((st, h['allow']), (405, 'GET, HEAD'))
        after = {k: int(v) for k, v in srv.stats().items()}
        self.assertEqual(after['http_requests'] - before['http_requests'], 6)
        self.assertEqual(after['http_bad_requests'] -
                         before['http_bad_requests'], 3)


class TlsTest(HttpCase):

    def test_https_listener(self):
        srv, port, ctx = self.https_server()

        def wrap(s):
            return ctx.wrap_socket(s, server_hostname='localhost')
        st, _, body = get(port, '/healthz', wrap=wrap)
        self.assertEqual((st, body), (200, b'ok\n'))
        self.publish(srv, [('t/1', 'v')])
        s = wrap(socket.create_connection(('127.0.0.1', port), timeout=5))
        self.addCleanup(s.close)
        s.sendall(b'GET /events?sub=t/%23 HTTP/1.1\r\n\r\n')
        data = b''
        while b'event: ok' not in data:
            chunk = s.recv(4096)
            self.assertTrue(chunk)
            data += chunk
        self.assertIn(b'event: val\ndata: t/1 1 v\n\n', data)


if __name__ == '__main__':
    ht.main()
