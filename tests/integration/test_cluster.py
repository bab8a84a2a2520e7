#!/usr/bin/env python3
"""Cluster mode: several heraldd nodes on one real redis-server, started
by the test on a free loopback port in a temp dir and stopped after.

Every node's bus holds the same records under the same seq, so a client
resumes on any node; Redis away or slow does not stop a node.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS',
                                  os.path.dirname(os.path.abspath(__file__))))
import herald_test as ht  # noqa: E402

REDIS_SERVER = shutil.which('redis-server')


class Redis:
    """A redis-server of our own: AOF fsynced at every write, so a kill -9
    loses nothing it acknowledged."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, 'redis')
        os.makedirs(self.dir, exist_ok=True)
        self.port = ht.free_port()
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, 'log'), 'ab')
        self.proc = subprocess.Popen(
            [REDIS_SERVER, '--port', str(self.port), '--bind', '127.0.0.1',
             '--dir', self.dir, '--save', '', '--appendonly', 'yes',
             '--appendfsync', 'always', '--daemonize', 'no'],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.cmd('PING') == 'PONG':
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError('redis-server did not start')
            time.sleep(0.05)

    def cmd(self, *args):
        """One command, its reply as text (a simple RESP client)."""
        with socket.create_connection(('127.0.0.1', self.port), 5) as s:
            s.sendall(('*%d\r\n' % len(args)).encode() + b''.join(
                b'$%d\r\n%s\r\n' % (len(a.encode()), a.encode())
                for a in args))
            f = s.makefile('rb')
            line = f.readline().decode().rstrip('\r\n')
            if line[0] == '$':
                n = int(line[1:])
                return None if n < 0 else f.read(n + 2)[:-2].decode()
            return line[1:]

    def kill(self, wipe=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        if wipe:
            for f in os.listdir(self.dir):
                p = os.path.join(self.dir, f)
                if f != 'log':
                    shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)

    def signal(self, sig):
        self.proc.send_signal(sig)


@unittest.skipUnless(REDIS_SERVER, 'no redis-server (contrib/install-deps)')
class Cluster(ht.HeraldTestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='herald-cluster-')
        self.redis = Redis(self.tmp)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self.redis.kill)

    def node(self, **extra):
        o = {'cluster.redis': '127.0.0.1:%d' % self.redis.port,
             'cluster.timeout': '1000', 'workers': '1'}
        o.update(extra)
        return self.server(o)

    def wait_for(self, pred, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError('timed out waiting for ' + what)
            time.sleep(0.05)

    def wait_head(self, srv, seq, timeout=10.0):
        self.wait_for(lambda: int(srv.stats()['head_seq']) >= seq,
                      'head_seq %d on port %d' % (seq, srv.port), timeout)

    def test_pub_reaches_every_node(self):
        """A PUB on one node's ingest reaches subscribers on every node
        with the same seq and payload; GET agrees everywhere."""
        nodes = [self.node() for _ in range(3)]
        subs = [self.conn(n.port) for n in nodes]
        for s in subs:
            s.sub('t/#')
        ing = self.conn(nodes[0].ingest_port)
        ing.pub('t/a', 'hello world')
        seq = ing.sync()
        for s in subs:
            m = ht.parse_msg(s.line())
            self.assertEqual(m, ('MSG', 't/a', seq, 'hello world'))
        for n in nodes:
            c = self.conn(n.port)
            self.assertEqual(c.cmd('GET t/a')[0],
                             'VAL t/a %d hello world' % seq)
            st = c.stats()
            self.assertEqual(st['cluster_role'], '1')
            self.assertEqual(st['cluster_down'], '0')
            self.assertEqual(st['cluster_epoch'],
                             self.redis.cmd('GET', 'herald:epoch'))


if __name__ == '__main__':
    ht.main()
