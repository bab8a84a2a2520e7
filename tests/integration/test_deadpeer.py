#!/usr/bin/env python3
"""herald reliability: dead peers.  A client whose host vanishes (its link
is cut, nothing more is ever heard from it) is found and freed within the
bounds that tcp.user_timeout, the TCP keepalive settings and
clients.heartbeat give, and the clients on 127.0.0.1 do not notice.

The vanishing client lives in its own network namespace, joined to ours by
a veth pair addressed inside 127.0.0.0/8 (our rule for network tests):
host end 127.66.X.1/30, namespace end 127.66.X.2/30, with route_localnet
on both ends and a /32 route in each side's local table so that the other
end is not taken for a local loopback address.  heraldd listens on
127.0.0.1 and on the host end.  The test process creates the client's
socket inside the namespace (setns(2) around socket()), so it holds it like
any other socket; the link is cut by taking the namespace's end down: from
then on the server's packets vanish and no FIN or RST ever comes back.

Needs root (network namespaces) and iproute2; skipped with a message
otherwise.  Names are unique per process (the pid) and removed always.
StalledNotDead (no namespace) checks the other side: a live client that
merely stops reading is a slow consumer, not a dead peer."""

import ctypes
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

CLONE_NEWNET = 0x40000000

# Short settings under test: a dead peer is found within these.
KEEPIDLE, KEEPINTVL, KEEPCNT = 1, 1, 2
USER_TIMEOUT_MS = 2000
SLACK = 4.0             # seconds on top of a bound: a shared, busy machine
TCP = {'tcp.keepidle': KEEPIDLE, 'tcp.keepintvl': KEEPINTVL,
       'tcp.keepcnt': KEEPCNT, 'tcp.user_timeout': USER_TIMEOUT_MS}

# Lines that tell of a dead peer (timed out, reset, unreachable).
DEAD_LOG_RE = re.compile(r'(?i)timed out|timeout|dead|unreachable|'
                         r'no route|keepalive')


def run(*argv, check=True):
    """Run a command (no shell), bounded; returns CompletedProcess."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=15)
    if check and p.returncode != 0:
        raise RuntimeError('%s: exit %d: %s' % (' '.join(argv), p.returncode,
                                                 p.stderr.strip()))
    return p


def _libc_setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, 'setns: %s' % os.strerror(e))


def namespaces_unavailable():
    """None if this process can make a network namespace with a veth pair,
    else why not."""
    if os.geteuid() != 0:
        return 'not root: network namespaces need CAP_SYS_ADMIN'
    if shutil.which('ip') is None:
        return 'no ip(8) (iproute2; contrib/install-deps installs it)'
    probe = Veth(probe=True)
    try:
        probe.create()
    except Exception as e:
        return 'cannot make a network namespace with a veth pair: %s' % e
    finally:
        probe.destroy()
    return None


class Veth:
    """A network namespace joined to ours by a veth pair in 127.66/16."""

    def __init__(self, probe=False):
        pid = os.getpid()
        tag = '%s%d' % ('p' if probe else '', pid)
        self.ns = 'herald-dp-%s' % tag
        self.host_if = ('hdh%s' % tag)[:15]
        self.ns_if = ('hdn%s' % tag)[:15]
        used = run('ip', '-o', '-4', 'addr', 'show', check=False).stdout
        for k in range(16384):
            m = (pid + k) % 16384           # a /30 in 127.66.0.0/16
            net = '127.66.%d.' % (m >> 6)
            self.host_addr = net + str((m & 63) * 4 + 1)
            self.ns_addr = net + str((m & 63) * 4 + 2)
            if (' %s/' % self.host_addr) not in used and \
                    (' %s/' % self.ns_addr) not in used:
                break
        self.made = False

    def _sysctls(self, prefix, dev):
        for k, v in (('route_localnet', 1), ('accept_local', 1),
                     ('rp_filter', 0)):
            run(*(prefix + ['sysctl', '-qw',
                            'net.ipv4.conf.%s.%s=%d' % (dev, k, v)]))

    def create(self):
        nsx = ['ip', 'netns', 'exec', self.ns]
        run('ip', 'netns', 'add', self.ns)
        self.made = True
        run('ip', 'link', 'add', self.host_if, 'type', 'veth', 'peer',
            'name', self.ns_if)
        run('ip', 'link', 'set', self.ns_if, 'netns', self.ns)
        # only the host's own veth end: the host-wide "all" stays as it is
        self._sysctls([], self.host_if)
        for dev in ('all', 'lo', self.ns_if):
            self._sysctls(nsx, dev)
        run('ip', 'addr', 'add', self.host_addr + '/30', 'dev', self.host_if)
        run('ip', 'link', 'set', self.host_if, 'up')
        run('ip', '-n', self.ns, 'addr', 'add', self.ns_addr + '/30', 'dev',
            self.ns_if)
        run('ip', '-n', self.ns, 'link', 'set', 'lo', 'up')
        run('ip', '-n', self.ns, 'link', 'set', self.ns_if, 'up')
        # 127.0.0.0/8 is local on both sides: the other end is not
        run('ip', 'route', 'add', self.ns_addr + '/32', 'dev', self.host_if,
            'table', 'local')
        run('ip', '-n', self.ns, 'route', 'add', self.host_addr + '/32',
            'dev', self.ns_if, 'table', 'local')
        return self

    def destroy(self):
        if not self.made:
            return
        run('ip', 'link', 'del', self.host_if, check=False)
        run('ip', 'netns', 'del', self.ns, check=False)
        self.made = False

    def cut(self):
        """The client's host vanishes: its link goes down; the host end
        stays up and its packets are dropped without a word."""
        run('ip', '-n', self.ns, 'link', 'set', self.ns_if, 'down')

    def connect(self, port, **kw):
        """An ht.Conn whose socket lives in the namespace."""
        here = os.open('/proc/self/ns/net', os.O_RDONLY)
        there = os.open('/run/netns/%s' % self.ns, os.O_RDONLY)
        try:
            _libc_setns(there)
            try:
                return ht.Conn(port, host=self.host_addr, **kw)
            finally:
                _libc_setns(here)
        finally:
            os.close(here)
            os.close(there)


_unavailable = '(not probed)'


class DeadPeer(ht.HeraldTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        global _unavailable
        if _unavailable == '(not probed)':
            _unavailable = namespaces_unavailable()
        if _unavailable:
            raise unittest.SkipTest(_unavailable)

    def setUp(self):
        self.veth = Veth()
        self.addCleanup(self.veth.destroy)
        self.veth.create()

    def start(self, overrides):
        o = dict(TCP)
        o.update(overrides)
        srv = self.server(o, start=False)
        srv.overrides['listen'] = '127.0.0.1:%d,%s:%d' % (
            srv.port, self.veth.host_addr, srv.port)
        return srv.start()

    def clients(self, watch):
        return int(watch.stats()['clients'])

    def wait_all_acked(self, port, addr, timeout=3.0):
        """Wait until the server's end of the connection from addr has no
        unacknowledged bytes (tx_queue in /proc/net/tcp)."""
        want = ht._hexaddr(*addr)
        deadline = time.monotonic() + timeout
        while True:
            with open('/proc/net/tcp') as f:
                rows = [ln.split() for ln in f][1:]
            tx = [int(r[4].split(':')[0], 16) for r in rows
                  if r[2] == want and int(r[1].split(':')[1], 16) == port]
            if tx == [0]:
                return
            if time.monotonic() > deadline:
                self.fail('server end of %r: tx_queue %r after %.0f s' %
                          (addr, tx, timeout))
            time.sleep(0.02)

    def scenario(self, srv, stream, expect_bound, label):
        """Connect a normal subscriber and a watcher on 127.0.0.1 and the
        doomed client through the veth; cut its link; publish (if stream)
        while polling STATS.  Returns (seconds from cut to freed or None,
        lines of log written after the cut)."""
        normal = self.conn(srv.port, timeout=10)
        normal.sub('dp/#')
        watch = self.conn(srv.port, timeout=10)
        ing = self.conn(srv.ingest_port, timeout=10)
        dead = self.veth.connect(srv.port, timeout=10)
        self.addCleanup(dead.close)
        self.assertEqual(dead.sock.getsockname()[0], self.veth.ns_addr)
        dead.sub('dp/#' if stream else 'quiet/never')
        # the server's end of the doomed connection, and who holds it
        dead_addr = dead.sock.getsockname()
        ino = ht.server_side_inodes(srv.port, [dead_addr]).get(
            tuple(dead_addr))
        self.assertIsNotNone(ino, 'no server socket for %r' % (dead_addr,))
        seq = [0]
        last_normal = [0]

        def publish_one():
            ing.pub('dp/t%d' % (seq[0] % 3), 'v%d %.6f' % (seq[0],
                                                       time.time()))
            seq[0] += 1
            m = ht.parse_msg(normal.line())
            while m is None:        # an HB on the normal client
                m = ht.parse_msg(normal.line())
            self.assertEqual(m[0], 'MSG', 'normal client: %r' % (m,))
            self.assertGreater(m[2], last_normal[0], 'normal client: '
                               'seqs must increase')
            self.assertTrue(m[3].startswith('v%d ' % (seq[0] - 1)),
                            'normal client missed a message: %r' % (m,))
            last_normal[0] = m[2]

        if stream:
            for _ in range(5):
                publish_one()
            for _ in range(5):
                m = ht.parse_msg(dead.line())
                self.assertEqual(m[0], 'MSG')
        # nothing unacknowledged on the server's side before the cut
        # (a delayed ACK for the +OK SUB would start tcp.user_timeout)
        self.wait_all_acked(srv.port, dead_addr)
        base = self.clients(watch)
        log_before = len(srv.log())
        t_cut = time.monotonic()
        self.veth.cut()
        freed = None
        deadline = t_cut + expect_bound + SLACK
        polls = 0
        while time.monotonic() < deadline:
            if stream:
                publish_one()
            n = self.clients(watch)
            polls += 1
            if n == base - 1:
                freed = time.monotonic() - t_cut
                break
            self.assertEqual(n, base, 'STAT clients moved by something '
                             'else')
            time.sleep(0.1)
        if freed is not None:
            # the worker closed its end: no process of it holds the socket
            holders = [r for r, p in srv.pids().items()
                       if r not in ('master', 'other') and
                       ino in ht.socket_inodes(p)]
            self.assertEqual(holders, [], 'freed, but still held')
        # the clients on 127.0.0.1 carry on
        if stream:
            for _ in range(5):
                publish_one()
        for c in (normal, watch, ing):
            self.assertEqual([ln for ln in c.cmd('PING still')
                              if not ln.startswith('HB ')], ['PONG still'])
        new_log = srv.log()[log_before:].splitlines()
        print('\n  %s: freed %s after the cut (bound %.1f s + %.1f s slack),'
              ' %d STATS polls, %d published, %d new log lines: %r' %
              (label, 'never' if freed is None else '%.2f s' % freed,
               expect_bound, SLACK, polls, seq[0], len(new_log),
               new_log[:3]))
        return freed, new_log

    def assert_freed_within(self, freed, lower, bound, what):
        self.assertIsNotNone(freed, '%s: the dead client was not freed '
                             'within %.1f s of the cut' %
                             (what, bound + SLACK))
        self.assertLessEqual(freed, bound + SLACK, what)
        # freed by the timeout, not by anything earlier (a reset, say)
        self.assertGreaterEqual(freed, lower, '%s: freed %.2f s after the '
                                'cut, sooner than the timeout allows' %
                                (what, freed))

    def test_stream_user_timeout(self):
        """(a) A subscriber receiving a stream: the server has unacked
        data, so tcp.user_timeout finds it."""
        srv = self.start({'clients.heartbeat': 0})
        freed, _ = self.scenario(srv, True, USER_TIMEOUT_MS / 1000.0,
                                 'stream, user_timeout %d ms' %
                                 USER_TIMEOUT_MS)
        self.assert_freed_within(freed, USER_TIMEOUT_MS / 2000.0,
                                 USER_TIMEOUT_MS / 1000.0, 'user_timeout')

    def test_idle_keepalive(self):
        """(b) A fully idle subscriber, heartbeats off: TCP keepalive finds
        it (user_timeout then bounds the probing as well)."""
        srv = self.start({'clients.heartbeat': 0})
        bound = KEEPIDLE + KEEPINTVL * KEEPCNT
        freed, _ = self.scenario(srv, False, bound,
                                 'idle, keepalive %d+%dx%d s' %
                                 (KEEPIDLE, KEEPINTVL, KEEPCNT))
        self.assert_freed_within(freed, 0.5, bound, 'keepalive')

    def test_idle_heartbeat(self):
        """(c) An idle subscriber, keepalive off, heartbeat 1 s: the HB
        leaves unacked data, and tcp.user_timeout finds it."""
        srv = self.start({'clients.heartbeat': 1, 'tcp.keepalive': 'false'})
        bound = 1 + USER_TIMEOUT_MS / 1000.0 + 1    # + the 1 s tick
        freed, _ = self.scenario(srv, False, bound, 'idle, heartbeat 1 s')
        self.assert_freed_within(freed, 0.5, bound, 'heartbeat')

    def test_idle_undetected_without_probes(self):
        """Control: keepalive and heartbeats off, nothing is sent to the
        idle peer, so nothing finds it: the cases above are found by what
        they test, not by something else."""
        srv = self.start({'clients.heartbeat': 0, 'tcp.keepalive': 'false'})
        bound = 3.0
        freed, _ = self.scenario(srv, False, bound, 'idle, no probes')
        self.assertIsNone(freed, 'a silent dead peer was freed with neither '
                          'keepalive nor heartbeats, %.2f s after the cut' %
                          (freed or 0))
        self.assertEqual(srv.stats()['conn_errors'], '0')

    def test_dead_peer_is_logged_and_counted(self):
        """The daemon logs that it dropped a dead peer, and STATS
        conn_errors counts it (bugs-rel.md #1, fixed in main)."""
        srv = self.start({'clients.heartbeat': 0})
        e0 = int(srv.stats()['conn_errors'])
        freed, new_log = self.scenario(srv, True, USER_TIMEOUT_MS / 1000.0,
                                       'stream, logged and counted')
        self.assertIsNotNone(freed)
        hits = [ln for ln in new_log if DEAD_LOG_RE.search(ln)]
        self.assertEqual(len(hits), 1, 'one log line about the dead peer '
                         'after the cut; new lines: %r' % new_log[-5:])
        self.assertEqual(int(srv.stats()['conn_errors']) - e0, 1,
                         'STAT conn_errors')


class StalledAsDead(ht.HeraldTestCase):
    """No namespace needed: Linux applies TCP_USER_TIMEOUT to a peer
    whose window stays shut too (zero-window probes), so a live client
    that reads nothing for tcp.user_timeout is closed like a dead one.
    That is herald's documented behaviour (heraldd.conf(5)): nothing the
    protocol promises is lost, the client resumes with SUB ... since and
    gets the GAP and newest values that conflation would have given."""

    def test_stalled_client_is_dropped_after_user_timeout(self):
        srv = self.server({'tcp.user_timeout': USER_TIMEOUT_MS,
                           'clients.out_limit': '64K', 'tcp.sndbuf': '16K',
                           'clients.heartbeat': 0})
        s = self.conn(srv.port, rcvbuf=4096, timeout=10)
        s.sub('zw/#')
        i = self.conn(srv.ingest_port)
        for k in range(300):
            i.pub('zw/t', '%04d %s' % (k, 'x' * 1000))
        h = i.sync()
        # not before the timeout...
        time.sleep(USER_TIMEOUT_MS / 2000.0)
        self.assertEqual(srv.stats()['conn_errors'], '0',
                         'closed before tcp.user_timeout')
        # ...and within it, plus some seconds of probing
        deadline = time.monotonic() + USER_TIMEOUT_MS / 1000.0 + 6
        while srv.stats()['conn_errors'] == '0' and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        st = srv.stats()
        print('\n  stalled with tcp.user_timeout %d ms: conn_errors %s' %
              (USER_TIMEOUT_MS, st['conn_errors']))
        self.assertEqual(st['conn_errors'], '1')
        self.assertRegex(srv.log(), r'client \d+: (writev?|read): '
                         r'Connection timed out: closed')
        # it comes back and resumes: GAP, then the newest value
        lines, eof = s.read_all(quiet=0.5, timeout=10)
        self.assertTrue(eof or s.reset, 'still connected')
        c = self.conn(srv.port)
        c.sendline('SUB zw/# 1')
        self.assertEqual(c.read_final(), ['+OK SUB zw/# %d' % h])
        lines, eof = c.read_all(quiet=0.5, timeout=10)
        self.assertEqual(ht.parse_msg(lines[-1])[2], h, lines[-1:])


if __name__ == '__main__':
    ht.main()
