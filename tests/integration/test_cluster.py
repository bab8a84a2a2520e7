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


class RedisError(str):
    """An error reply."""


def lua(name):
    """A script of producer/cluster_lua.c, as the daemon sends it."""
    path = os.path.join(os.environ.get('HERALD_SRCDIR') or
                        os.path.join(os.path.dirname(
                            os.path.abspath(__file__)), '..', '..'),
                        'producer', 'cluster_lua.c')
    with open(path) as f:
        text = f.read()
    body = text[text.index('const char %s[] =' % name):]
    body = body[:body.index(';\n')]
    return ''.join(m.replace('\\n', '\n').replace('\\"', '"')
                   for m in re.findall(r'"((?:[^"\\]|\\.)*)"', body))


class Redis:
    """A redis-server of our own: AOF fsynced at every write, so a kill -9
    loses nothing it acknowledged."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, 'redis')
        os.makedirs(self.dir, exist_ok=True)
        self.port = ht.free_port()
        self.password = None
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
        """One command and its reply (a small RESP client)."""
        with socket.create_connection(('127.0.0.1', self.port), 5) as s:
            f = s.makefile('rb')
            if self.password is not None:
                s.sendall(self.encode(('AUTH', self.password)))
                f.readline()
            s.sendall(self.encode(args))
            return self.reply(f)

    @classmethod
    def reply(cls, f):
        """One RESP reply: str, int, list, None; an error as RedisError."""
        line = f.readline().decode().rstrip('\r\n')
        kind, rest = line[0], line[1:]
        if kind == '$':
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        if kind == '*':
            n = int(rest)
            return None if n < 0 else [cls.reply(f) for _ in range(n)]
        if kind == ':':
            return int(rest)
        if kind == '-':
            return RedisError(rest)
        return rest

    @staticmethod
    def encode(args):
        return ('*%d\r\n' % len(args)).encode() + b''.join(
            b'$%d\r\n%s\r\n' % (len(a.encode()), a.encode()) for a in args)

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


    def msgs_after(self, srv, since, last, pattern='t/#'):
        """Resume on srv from since and read up to seq last: the lines."""
        c = self.conn(srv.port)
        lines = c.sub(pattern, since)[0]
        return lines + c.read_until(
            lambda ln: (ht.parse_msg(ln) or ('', '', 0))[2] >= last,
            timeout=20)

    def test_same_order_everywhere(self):
        """10,000 PUBs over the three nodes' ingests (three connections at
        once) are in every node's bus in one and the same order, each
        connection's in the order it sent them."""
        nodes = [self.node() for _ in range(3)]
        per = [3334, 3333, 3333]

        def publish(i):
            c = ht.Conn(nodes[i].ingest_port)
            try:
                c.send(''.join('PUB t/%d c%d-%d\n' % (n % 7, i, n)
                               for n in range(per[i])).encode())
                self.last[i] = c.sync()
            finally:
                c.close()
        self.last = [0, 0, 0]
        threads = [threading.Thread(target=publish, args=(i,))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        top = max(self.last)
        self.assertEqual(top, 10000)
        seen = []
        for n in nodes:
            lines = self.msgs_after(n, 0, top)
            msgs = [ht.parse_msg(ln) for ln in lines]
            self.assertTrue(all(m and m[0] == 'MSG' for m in msgs),
                            [ln for ln in lines if not ht.parse_msg(ln)][:3])
            self.assertEqual([m[2] for m in msgs], list(range(1, top + 1)))
            seen.append([(m[1], m[3]) for m in msgs])
        self.assertEqual(seen[0], seen[1])
        self.assertEqual(seen[0], seen[2])
        for i in range(3):
            mine = [int(p.split('-')[1]) for _, p in seen[0]
                    if p.startswith('c%d-' % i)]
            self.assertEqual(mine, list(range(per[i])))

    def test_failover_resume(self):
        """A client on A at position p; A is killed (-9); it resumes on B
        with SUB t/# p while C publishes: exactly the messages after p,
        nothing twice, nothing missing."""
        a, b, c = (self.node() for _ in range(3))
        sub = self.conn(a.port)
        sub.sub('t/#')
        pub = self.conn(c.ingest_port)
        for n in range(50):
            pub.pub('t/x', 'm%d' % n)
        pub.sync()
        lines = sub.read_until(lambda ln: ln.endswith(' m49'))
        p = ht.parse_msg(lines[-1])[2]
        stop = threading.Event()
        sent = []

        def keep_publishing():
            n = 50
            while not stop.is_set():
                pub.pub('t/x', 'm%d' % n)
                sent.append(n)
                n += 1
                time.sleep(0.002)
        t = threading.Thread(target=keep_publishing)
        t.start()
        try:
            time.sleep(0.2)
            a.kill()
            time.sleep(0.2)
            c2 = self.conn(b.port)
            got, h = c2.sub('t/#', p)
            time.sleep(0.3)
        finally:
            stop.set()
            t.join(10)
        last = pub.sync()
        got += c2.read_until(
            lambda ln: (ht.parse_msg(ln) or ('', '', 0))[2] >= last,
            timeout=20)
        msgs = [ht.parse_msg(ln) for ln in got]
        self.assertTrue(all(m and m[0] == 'MSG' for m in msgs), got[:5])
        self.assertEqual([m[2] for m in msgs], list(range(p + 1, last + 1)))
        self.assertEqual([m[3] for m in msgs],
                         ['m%d' % n for n in range(50, 50 + len(sent))])

    def values(self, srv, topics):
        c = self.conn(srv.port)
        return [c.cmd('GET %s' % t)[0] for t in topics]

    def test_late_node_and_old_bus(self):
        """A node started late reads the stream from its start; one
        restarted on a bus the stream no longer covers takes the newest
        values and a GAP: both then answer GET as the others, same seqs."""
        a = self.node(**{'cluster.trim': '100'})
        pub = self.conn(a.ingest_port)
        topics = ['t/%d' % i for i in range(20)]
        for n in range(60):
            pub.pub(topics[n % 20], 'v%d' % n)
        pub.sync()
        late = self.node(**{'cluster.trim': '100'})
        self.wait_head(late, 60)
        self.assertEqual(self.values(late, topics), self.values(a, topics))
        self.assertEqual(len(self.msgs_after(late, 0, 60)), 60)
        late.stop()
        for n in range(60, 1500):
            pub.pub(topics[n % 20], 'v%d' % n)
        top = pub.sync()
        self.assertLess(int(self.redis.cmd('XLEN', 'herald:stream')), 1000)
        late.start()
        self.wait_head(late, top)
        self.assertEqual(self.values(late, topics), self.values(a, topics))
        lines = self.conn(late.port).sub('t/#', 60)[0]
        self.assertEqual(ht.parse_gap(lines[0]), (61, top))
        self.assertEqual(sorted(lines[1:]),
                         sorted(ln.replace('VAL', 'VAL', 1)
                                for ln in self.values(a, topics)))
        pub.pub('t/0', 'after')
        seq = pub.sync()
        self.wait_head(late, seq)
        self.assertEqual(self.values(late, ['t/0']),
                         ['VAL t/0 %d after' % seq])

    def test_redis_killed_while_publishing(self):
        """Redis killed: clients stay, GET and PING answer, PUBs are held
        up to cluster.hold then answered -ERR busy; Redis back with its
        data: the held ones go in, in order, nothing lost."""
        o = {'cluster.hold': '32K'}
        a, b = self.node(**o), self.node(**o)
        sub = self.conn(b.port)
        sub.sub('h/#')
        pub = self.conn(a.ingest_port)
        pub.pub('h/0', 'before')
        base = pub.sync()
        self.redis.kill()
        self.wait_for(lambda: a.stats()['cluster_down'] == '1',
                      'cluster_down on A')
        self.assertEqual(self.conn(b.port).cmd('PING'), ['PONG'])
        self.assertEqual(self.values(a, ['h/0']),
                         ['VAL h/0 %d before' % base])
        payload = 'x' * 200
        refused, n = set(), 1

        def send(count):
            nonlocal n
            for _ in range(count):
                pub.pub('h/%d' % n, payload)
                n += 1
            pub.sendline('PING')
            for ln in pub.read_until(lambda ln: ln == 'PONG')[:-1]:
                m = re.match(r'^-ERR busy (h/\d+)', ln)
                self.assertTrue(m, ln)
                refused.add(int(m.group(1)[2:]))
        # 32K of 200-byte PUBs: full after about 160
        while a.stats()['cluster_full'] != '1':
            self.assertLess(n, 1000, 'cluster.hold never full')
            send(20)
            time.sleep(0.02)
        first_refused = n
        send(20)
        self.assertTrue(set(range(first_refused, n)) <= refused, refused)
        held = [k for k in range(1, n) if k not in refused]
        self.assertGreater(len(held), 100)
        self.assertEqual(a.stats()['cluster_full'], '1')
        self.redis.start()
        self.wait_for(lambda: a.stats()['cluster_down'] == '0',
                      'A back', timeout=15)
        last = base + len(held)
        for n in (a, b):
            self.wait_head(n, last)
            got = [ht.parse_msg(ln) for ln in self.msgs_after(n, base, last,
                                                             'h/#')]
            self.assertEqual([int(m[1][2:]) for m in got], held)
            self.assertEqual([m[2] for m in got],
                             list(range(base + 1, last + 1)))
        live = sub.read_until(lambda ln: ln.startswith('MSG h/%d ' %
                                                       held[-1]))
        self.assertEqual([int(ht.parse_msg(ln)[1][2:]) for ln in live],
                         [0] + held)
        self.assertEqual(a.stats()['cluster_full'], '0')
        self.assertGreaterEqual(int(a.stats()['cluster_reconnects']), 1)
        pub.pub('h/0', 'again')
        self.assertEqual(pub.sync(), last + 1)
        self.assertEqual(a.log().count('holding PUBs'), 1)

    def test_redis_restarted_empty(self):
        """Redis loses its data: the seq goes on above the nodes' heads (no
        seq is handed out twice), a node that missed records gets a GAP,
        and values come back as they are published."""
        a, b = self.node(), self.node()
        live = self.conn(a.port)
        live.sub('t/#')
        pub = self.conn(a.ingest_port)
        for n in range(5):
            pub.pub('t/x', 'old%d' % n)
        pub.sync()
        self.wait_head(b, 5)
        b.stop()
        for n in range(5, 10):
            pub.pub('t/x', 'old%d' % n)
        self.assertEqual(pub.sync(), 10)
        epoch = self.redis.cmd('GET', 'herald:epoch')
        self.redis.kill(wipe=True)
        self.redis.start()
        self.wait_for(lambda: self.redis.cmd('GET', 'herald:seq') == '10',
                      'A to raise the seq')
        self.assertNotEqual(self.redis.cmd('GET', 'herald:epoch'), epoch)
        pub = self.conn(a.ingest_port)
        pub.pub('t/x', 'new')
        self.assertEqual(pub.sync(), 11)
        b.start()
        self.wait_head(b, 11)
        lines = self.conn(b.port).sub('t/#', 5)[0]
        self.assertEqual(lines, ['GAP 6 11', 'VAL t/x 11 new'])
        got = live.read_until(lambda ln: ln.endswith(' new'))
        self.assertEqual([ht.parse_msg(ln)[2] for ln in got],
                         list(range(1, 12)))
        for n in (a, b):
            self.assertEqual(self.values(n, ['t/x']), ['VAL t/x 11 new'])
        self.assertIn('Redis lost the cluster\'s data', a.log())

    def test_redis_password(self):
        """cluster.password: the right one joins, a wrong one is refused
        (logged, cluster_down); neither appears in a log line."""
        self.redis.cmd('CONFIG', 'SET', 'requirepass', 'pw-s3cret')
        self.redis.password = 'pw-s3cret'
        good = self.node(**{'cluster.password': 'pw-s3cret'})
        bad = self.node(**{'cluster.password': 'wrong-s3cret'})
        pub = self.conn(good.ingest_port)
        pub.pub('t/x', 'in')
        self.assertEqual(pub.sync(), 1)
        self.wait_for(lambda: 'AUTH (cluster.user, cluster.password)' in
                      bad.log(), 'the refusal in the log')
        self.assertEqual(bad.stats()['cluster_down'], '1')
        self.assertEqual(good.stats()['cluster_down'], '0')
        for n in (good, bad):
            self.assertNotIn('s3cret', n.log())

    def test_stop_while_redis_away(self):
        """A node stopped while Redis is away waits for it at most
        shutdown_grace, then exits and says how many PUBs it held."""
        a = self.node(shutdown_grace=2)
        pub = self.conn(a.ingest_port)
        self.redis.kill()
        self.wait_for(lambda: a.stats()['cluster_down'] == '1', 'down')
        pub.pub('t/x', 'held')
        self.assertEqual(pub.cmd('PING'), ['PONG'])
        t0 = time.monotonic()
        self.assertEqual(a.stop(), 0)
        self.assertLess(time.monotonic() - t0, 4.5)
        self.assertIn('stopping with 1 PUBs Redis has not taken', a.log())

    def test_lua_scripts(self):
        """The scripts against Redis: a PUB batch numbers its records in
        order, a batch sent again is taken once, a gap in a node's PUB
        numbers or a changed epoch is refused with nothing added; a join
        raises the seq to the node's head; the catch-up says where to
        read from, or gives the values."""
        r = self.redis
        pub, join, catchup = (lua('cluster_lua_' + n) for n in
                              ('pub', 'join', 'catchup'))
        keys = ['herald:' + k for k in ('seq', 'stream', 'values', 'epoch',
                                         'pubs')]

        def joins(head, node, last):
            return r.cmd('EVAL', join, '4', keys[0], keys[3],
                         'herald:settle', keys[4], str(head), '77', '1000',
                         node, str(last))

        def pubs(no, *pairs, epoch='77', node='n1'):
            return r.cmd('EVAL', pub, '5', *keys, '1000', epoch, node,
                         str(no), *pairs)
        res = joins(5, 'n1', 0)
        self.assertEqual(res[0], '77')
        self.assertGreater(res[1], 0)           # a new epoch settles
        self.assertEqual(r.cmd('GET', keys[0]), '5')
        self.assertEqual(pubs(1, 'a', 'x', 'b', 'y'), 7)
        self.assertEqual(pubs(2, 'b', 'y', 'c', 'z'), 8)    # 2 again, 3
        self.assertEqual(pubs(2, 'b', 'y'), 8)
        self.assertTrue(pubs(5, 'd', 'w').startswith('ORDER'))
        self.assertTrue(pubs(4, 'd', 'w', epoch='78').startswith('EPOCH'))
        self.assertEqual(pubs(1, 'a', 'q', node='n2'), 9)
        self.assertEqual([e[0] for e in r.cmd('XRANGE', keys[1], '-', '+')],
                         ['6-0', '7-0', '8-0', '9-0'])
        self.assertEqual(r.cmd('XRANGE', keys[1], '8', '8')[0][1][:4],
                         ['t', 'c', 'p', 'z'])
        self.assertEqual(r.cmd('HGET', keys[2], 'a'), '9 q')
        self.assertEqual(r.cmd('HGET', keys[2], 'b'), '7 y')
        # where a node reads from
        self.assertEqual(r.cmd('EVAL', catchup, '3', *keys[:3], '5', '6'),
                         [0, 9, 6])
        self.assertEqual(r.cmd('EVAL', catchup, '3', *keys[:3], '9', '10'),
                         [0, 9, 0])
        res = r.cmd('EVAL', catchup, '3', *keys[:3], '0', '1')
        self.assertEqual(res[:3], [1, 9, 0])
        self.assertEqual(dict(zip(res[3][::2], res[3][1::2])),
                         {'a': '9 q', 'b': '7 y', 'c': '8 z'})
        # a node whose head is above Redis's seq raises it; epoch kept
        self.assertEqual(joins(100, 'n1', 3)[0], '77')
        self.assertEqual(r.cmd('GET', keys[0]), '100')
        self.assertEqual(pubs(4, 'e', 'v'), 101)
        self.assertEqual(r.cmd('EVAL', catchup, '3', *keys[:3], '9', '10'),
                         [0, 101, 101])

    def test_redis_stopped(self):
        """Redis stops answering for 2 s (SIGSTOP): the workers do not
        block (PING, heartbeats), a PUB meanwhile goes in once it answers
        again."""
        a = self.node(**{'clients.heartbeat': '1'})
        quiet = self.conn(a.port)
        quiet.sub('t/#')
        pub = self.conn(a.ingest_port)
        pub.pub('t/x', 'one')
        first = pub.sync()
        quiet.read_until(lambda ln: ln.endswith(' one'))
        self.redis.signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            pub.pub('t/x', 'two')
            pub.sendline('SYNC')
            c = self.conn(a.port)
            self.assertEqual(c.cmd('PING'), ['PONG'])
            self.assertEqual(self.values(a, ['t/x']),
                             ['VAL t/x %d one' % first])
            hb = quiet.read_until(lambda ln: ln.startswith('HB'),
                                  timeout=1.8)
            self.assertTrue(hb[-1].startswith('HB'))
            self.assertLess(time.monotonic() - t0, 2.0)
            time.sleep(max(0, 2.0 - (time.monotonic() - t0)))
        finally:
            self.redis.signal(signal.SIGCONT)
        self.assertEqual(pub.read_until(lambda ln: not ln.startswith('HB'),
                                        timeout=15)[-1],
                         '+OK SYNC %d' % (first + 1))
        quiet.read_until(lambda ln: ln == 'MSG t/x %d two' % (first + 1))


if __name__ == '__main__':
    ht.main()
