#!/usr/bin/env python3
"""The load generator of the benchmarks (bench/loadgen, bench/README.md)
against the real daemon: each way it carries the subscribers (the line
protocol on a plain connection, WebSocket on /ws with herald.v1,
server-sent events on /events; and NATS's websocket listener when
nats-server is installed) gets every message published and says so, and
a refused upgrade is a failed subscriber with the server's answer as
the reason.  A few hundred subscribers and a second of publishing: what
is checked is that the benchmarks' figures count messages really
received, never how fast."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

LOADGEN = os.path.join(ht.BUILDDIR, 'bench', 'loadgen')
SUBS = 300


def loadgen(*args):
    """Run the load generator to its end: (RESULT lines as dicts, stderr)."""
    p = subprocess.run([LOADGEN, '--subs', str(SUBS), '--rates', '50',
                        '--duration', '1', '--connect-timeout', '3'] +
                       list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    results = []
    for line in p.stdout.splitlines():
        if line.startswith('RESULT '):
            results.append(dict(w.split('=', 1) for w in line.split()[1:]
                                if '=' in w))
    return results, p.stderr


class LoadgenTest(ht.HeraldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(LOADGEN, os.X_OK):
            raise unittest.SkipTest('no bench/loadgen at %s' % LOADGEN)

    def assertAllReceived(self, results, err):
        step = [r for r in results if r.get('phase') == 'step']
        self.assertEqual(len(step), 1, err)
        r = step[0]
        self.assertEqual(int(r['held']), SUBS, err)
        self.assertEqual(int(r['failed']), 0, err)
        self.assertEqual(int(r['errors']), 0, err)
        self.assertGreater(int(r['published']), 0, err)
        self.assertEqual(int(r['expected']),
                         int(r['published']) * SUBS, err)
        self.assertEqual(int(r['received']), int(r['expected']), err)

    def test_line_protocol(self):
        srv = self.server()
        self.assertAllReceived(*loadgen(
            '--proto', 'herald', '--port', str(srv.port),
            '--pub-port', str(srv.ingest_port)))

    def test_websocket(self):
        srv = self.server()
        self.assertAllReceived(*loadgen(
            '--proto', 'herald', '--port', str(srv.http_port),
            '--pub-port', str(srv.ingest_port), '--ws', '/ws'))

    def test_sse(self):
        srv = self.server()
        self.assertAllReceived(*loadgen(
            '--proto', 'herald', '--port', str(srv.http_port),
            '--pub-port', str(srv.ingest_port), '--sse', '/events'))

    def test_refused_upgrade(self):
        """A path the server does not serve: every subscriber fails, with
        the status line as the reason; nothing is counted as received."""
        srv = self.server()
        results, err = loadgen(
            '--proto', 'herald', '--port', str(srv.http_port),
            '--pub-port', str(srv.ingest_port), '--ws', '/nowhere')
        conn = [r for r in results if r.get('phase') == 'connect'][0]
        self.assertEqual(int(conn['ready']), 0, err)
        self.assertEqual(int(conn['failed']), SUBS, err)
        self.assertIn('/nowhere: HTTP/1.1 404', err)

    @unittest.skipUnless(shutil.which('nats-server'), 'no nats-server')
    def test_nats_websocket(self):
        """NATS sends binary frames, an op possibly split over frames or
        several in one: the stream decoder reads them all the same."""
        tmp = tempfile.mkdtemp(prefix='herald-test-')
        self.addCleanup(shutil.rmtree, tmp, True)
        port, ws_port = ht.free_port(), ht.free_port()
        conf = os.path.join(tmp, 'nats.conf')
        with open(conf, 'w') as f:
            f.write('listen: "127.0.0.1:%d"\nwebsocket {\n'
                    '  listen: "127.0.0.1:%d"\n  no_tls: true\n}\n'
                    % (port, ws_port))
        nats = subprocess.Popen(['nats-server', '-c', conf],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.addCleanup(nats.wait)
        self.addCleanup(nats.kill)
        deadline = time.monotonic() + ht.READY_TIMEOUT
        while True:
            try:
                socket.create_connection(('127.0.0.1', ws_port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or nats.poll() is not None:
                    self.fail('nats-server did not start')
                time.sleep(0.05)
        self.assertAllReceived(*loadgen(
            '--proto', 'nats', '--port', str(ws_port), '--pub-port',
            str(port), '--ws', '/'))


if __name__ == '__main__':
    ht.main()
