#!/usr/bin/env python3
"""
Live upgrades (heraldd(8), "Upgrades"): USR2, or heraldd -s upgrade, hands
every connection over to the binary on disk.  Each test starts heraldd
from a copy of the built binary in its temp dir, then replaces that file
(a rename, as a package manager does) and upgrades to it.
"""

import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.environ.get('HERALD_TESTS',
                                  os.path.dirname(os.path.abspath(__file__))))
import herald_test as ht

NEXTSTATE = os.path.join(ht.BUILDDIR, 'tests', 'heraldd-nextstate')


class CopyServer(ht.Server):
    """heraldd started from a copy of the binary: the copy is replaced
    with the next version on disk."""

    def __init__(self, **kw):
        self.binary = None
        super().__init__(start=False, **kw)
        self.binary = os.path.join(self.tmp, 'heraldd')
        shutil.copy(ht.HERALDD, self.binary)
        self.start()

    def argv(self):
        a = super().argv()
        a[0] = self.binary
        return a

    def replace_binary(self, source=None, text=None):
        new = self.binary + '.new'
        if text is not None:
            with open(new, 'w') as f:
                f.write(text)
            os.chmod(new, 0o755)
        else:
            shutil.copy(source or ht.HERALDD, new)
        os.rename(new, self.binary)

    def master_pid(self):
        with open(self.pidfile) as f:
            return int(f.read().split()[0])

    def upgrade(self, timeout=60):
        """heraldd -s upgrade: (exit status, its output)."""
        r = subprocess.run([ht.HERALDD, '-o', 'pidfile=%s' % self.pidfile,
                            '-s', 'upgrade'], capture_output=True,
                           text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def fd_kinds(self, pid):
        """The sorted kinds of a process's descriptors."""
        out = []
        d = '/proc/%d/fd' % pid
        for fd in os.listdir(d):
            try:
                t = os.readlink(os.path.join(d, fd))
            except OSError:
                continue
            out.append(re.sub(r'[:\[].*', '', t) if not t.startswith('/')
                       else t)
        return sorted(out)


def stat_of(srv, name):
    return int(srv.stats()[name])


class Upgrade(ht.HeraldTestCase):

    def tmp_dir(self):
        d = tempfile.mkdtemp(prefix='herald-upgrade-')
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def server(self, **kw):
        srv = CopyServer(**kw)
        self.addCleanup(srv.cleanup)
        return srv

    def assert_serving(self, srv, sub):
        """The daemon still delivers to a client connected before."""
        with srv.ingest() as p:
            p.sendline('PUB t/check alive')
            self.assertEqual(p.cmd('SYNC')[-1][:3], '+OK')
        lines = sub.read_until(lambda l: 't/check' in l, timeout=5)
        self.assertIn('alive', lines[-1])

    # -- the hand-over --------------------------------------------------------
    def test_handover_2000_clients(self):
        """2,000 clients of every kind and a publisher at 1,000 msg/s:
        after the upgrade each has the same connection and has been sent
        every message of its topics once, in order, with no GAP or BYE."""
        srv = self.server(overrides={'clients.out_limit': '64M',
                                     'bus.size': '16M'})
        old_master = srv.pid
        old_fds = srv.fd_kinds(old_master)
        sel = selectors.DefaultSelector()
        clients = []

        def add(kind, topic, since=None, rcvbuf=None):
            s = socket.socket()
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.connect(('127.0.0.1', srv.port))
            s.setblocking(False)
            c = {'s': s, 'kind': kind, 'topic': topic, 'buf': b'',
                 'lines': [], 'reading': kind != 'slow',
                 'port': s.getsockname()[1]}
            sub = 'SUB %s%s\n' % (topic, '' if since is None else
                                  ' %d' % since)
            s.sendall(sub.encode())
            clients.append(c)
            sel.register(s, selectors.EVENT_READ, c)
            return c

        for i in range(1900):
            add('topic', 't/%d' % (i % 100))
        for i in range(20):
            add('all', 't/#')
        for i in range(20):
            add('partial', 't/%d' % i)
        for i in range(20):
            add('slow', 't/#', rcvbuf=4096)

        def pump(until, pub=None):
            while time.monotonic() < until:
                if pub is not None:
                    pub()
                for key, _ in sel.select(0.001):
                    c = key.data
                    if not c['reading']:
                        continue
                    try:
                        data = c['s'].recv(1 << 16)
                    except BlockingIOError:
                        continue
                    if not data:
                        c['eof'] = True
                        sel.unregister(c['s'])
                        continue
                    c['buf'] += data
                    *done, c['buf'] = c['buf'].split(b'\n')
                    c['lines'].extend(done)

        # every SUB confirmed
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pump(time.monotonic() + 0.05)
            if all(any(l.startswith(b'+OK SUB') for l in c['lines'])
                   for c in clients if c['reading']):
                break
        else:
            self.fail('SUBs not confirmed')
        for c in clients:
            if c['kind'] == 'slow':
                c['reading'] = False
        pubs = ht.Conn(srv.ingest_port)
        sent = [0]
        t0 = time.monotonic()

        def publish():      # 1,000 msg/s, t/0..t/99 in turn
            due = int((time.monotonic() - t0) * 1000)
            while sent[0] < due:
                n = sent[0]
                pubs.send(('PUB t/%d %d\n' % (n % 100, n)).encode())
                sent[0] += 1

        pump(time.monotonic() + 1.0, publish)
        # a partial line, and resumes that replay a second of history
        for c in clients:
            if c['kind'] == 'partial':
                c['s'].sendall(b'PIN')
        head = stat_of(srv, 'head_seq')
        for i in range(20):
            c = add('replay', 't/#', since=head - 900)
            c['first_seq'] = head - 899
        srv.replace_binary()
        up = subprocess.Popen([ht.HERALDD, '-o', 'pidfile=%s' % srv.pidfile,
                               '-s', 'upgrade'], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        while up.poll() is None:
            pump(time.monotonic() + 0.05, publish)
        out = up.stdout.read()
        self.assertEqual(up.returncode, 0, out + srv.log_tail())
        self.assertIn('upgraded: pid %d ->' % old_master, out)
        new_master = srv.master_pid()
        self.assertNotEqual(new_master, old_master)
        for c in clients:
            if c['kind'] == 'partial':
                c['s'].sendall(b'G 7\n')
            c['reading'] = True
        pump(time.monotonic() + 1.0, publish)
        last = sent[0] - 1
        self.assertEqual(pubs.cmd('SYNC')[-1][:8], '+OK SYNC')
        # everything delivered
        def last_payload(c):
            for l in reversed(c['lines']):
                if l.startswith(b'MSG '):
                    return int(l.split(b' ', 3)[3])
            return -1

        def wanted_last(c):
            if c['topic'] == 't/#':
                return last
            k = int(c['topic'][2:])
            return last - ((last - k) % 100)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pump(time.monotonic() + 0.1)
            if all(last_payload(c) == wanted_last(c) for c in clients):
                break
        stats = srv.stats()
        for c in clients:
            self.assertNotIn('eof', c, '%s client lost its connection'
                             % c['kind'])
            bad = [l for l in c['lines'] if l.startswith((b'GAP', b'BYE',
                                                          b'-ERR'))]
            self.assertEqual(bad, [], c['kind'])
            msgs = [l.split(b' ', 3) for l in c['lines']
                    if l.startswith(b'MSG ')]
            payloads = [int(m[3]) for m in msgs]
            seqs = [int(m[2]) for m in msgs]
            self.assertEqual(seqs, sorted(set(seqs)), '%s: seqs out of '
                             'order or twice' % c['kind'])
            step = 1 if c['topic'] == 't/#' else 100
            first = payloads[0] if payloads else None
            self.assertEqual(payloads, list(range(first, wanted_last(c) + 1,
                                                  step)),
                             '%s client (topic %s): not every message once, '
                             'in order' % (c['kind'], c['topic']))
            if c['kind'] == 'replay':
                self.assertEqual(seqs[0], c['first_seq'])
            if c['kind'] == 'partial':
                self.assertIn(b'PONG 7', c['lines'])
            self.assertEqual(c['s'].getsockname()[1], c['port'])
        # the publisher kept its connection; nobody reconnected
        self.assertEqual(pubs.cmd('PING x')[-1], 'PONG x')
        self.assertGreaterEqual(int(stats['clients_handed_over']),
                                len(clients) + 1)
        self.assertEqual(int(stats['handover_restarts']), 0)
        self.assertEqual(int(stats['clients_adopted']),
                         int(stats['clients_handed_over']))
        self.assertEqual(int(stats['upgrades']), 1)
        # the old master is gone; the new one holds what it held, and no
        # descriptor of the old one's leaked into it
        self.assertIsNotNone(srv.wait_exit(5))
        self.assertEqual(srv.fd_kinds(new_master), old_fds)
        self.assertIn('upgrade done', srv.log())
        for c in clients:
            c['s'].close()
        pubs.close()

    def test_new_workers_let_the_handover_go(self):
        """Each new worker sees its predecessor finish (the hand-over
        socket ends: it logs what it adopted and frees what adopting
        took) and then holds what the old worker held: none of the
        masters' sockets of the upgrade leaked into it."""
        srv = self.server()
        conns = [srv.connect() for _ in range(6)]
        for c in conns:
            c.cmd('SUB t/x')
        old = {r: srv.fd_kinds(p) for r, p in srv.worker_pids().items()}
        srv.replace_binary()
        srv.signal(signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while True:
            done = re.findall(r'worker (\d+) info: upgrade: adopted (\d+) '
                              r'clients', srv.log())
            if len(done) == len(old) and srv.master_pid() != srv.pid:
                break
            self.assertLess(time.monotonic(), deadline, srv.log_tail())
            time.sleep(0.05)
        self.assertEqual(sum(int(n) for _, n in done), len(conns))
        new_master = srv.master_pid()
        new = {}
        for pid in os.listdir('/proc'):
            if pid.isdigit() and ht.proc_ppid(int(pid)) == new_master:
                m = re.match(r'heraldd: worker process (\d+)',
                             ht.proc_cmdline(int(pid)) or '')
                if m:
                    new['worker ' + m.group(1)] = srv.fd_kinds(int(pid))
        self.assertEqual(new, old)
        for c in conns:
            self.assertTrue(c.cmd('PING a')[-1].startswith('PONG'))
            c.close()

    def test_upgrade_command_waits_for_the_end(self):
        """heraldd -s upgrade while the old master ends: from when its
        memory is gone (and with it its title: /proc/PID/cmdline reads
        empty) to when it is a zombie (its descriptors being closed), it
        is neither upgrading nor rolled back: the command waits, then
        reports the new master.  Two stand-ins play the masters, the old
        one ending with many descriptors to close."""
        pairs = 9000
        if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2 * pairs + 100:
            self.skipTest('needs %d open files' % (2 * pairs + 100))
        tmp = tempfile.mkdtemp(prefix='herald-test-')
        self.addCleanup(shutil.rmtree, tmp, True)
        pidfile = os.path.join(tmp, 'heraldd.pid')

        def stand_in(title, code):
            p = subprocess.Popen([title, '-c', code],
                                 executable=sys.executable,
                                 stdout=subprocess.PIPE)
            self.addCleanup(lambda: (p.poll() is None and p.kill(),
                                     p.wait(), p.stdout.close()))
            return p

        new = stand_in('heraldd: master process',
                       'import time; time.sleep(60)')
        ending = (
            'import os, resource, socket, time\n'
            'soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n'
            'resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n'
            'keep = [socket.socketpair() for _ in range(%d)]\n'
            'time.sleep(0.2)\n'
            'with open(%r, "w") as f:\n'
            '    f.write("%d\\n")\n'
            'os.rename(%r, %r)\n'
            'os._exit(0)\n' % (pairs, pidfile + '.new', new.pid,
                                pidfile + '.new', pidfile))
        old = stand_in('heraldd: master process', (
            'import os, signal\n'
            'signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])\n'
            'print("ready", flush=True)\n'
            'signal.sigwait([signal.SIGUSR2])\n'
            'os.execv(%r, ["heraldd: master process (upgrading)", "-c",'
            ' %r])\n' % (sys.executable, ending)))
        self.assertEqual(old.stdout.readline(), b'ready\n')
        with open(pidfile, 'w') as f:
            f.write('%d\n' % old.pid)
        r = subprocess.run([ht.HERALDD, '-o', 'pidfile=%s' % pidfile, '-s',
                            'upgrade'], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('upgraded: pid %d -> %d' % (old.pid, new.pid),
                      r.stdout)

    def test_sse_told_restart(self):
        """A server-sent events stream cannot move: BYE restart, then the
        stream ends (EventSource resumes with Last-Event-ID)."""
        srv = self.server()
        s = socket.create_connection(('127.0.0.1', srv.http_port),
                                     timeout=5)
        s.sendall(b'GET /events?sub=t/%23 HTTP/1.1\r\nHost: x\r\n\r\n')
        data = b''
        while b'event: ok' not in data:
            data += s.recv(4096)
        srv.replace_binary()
        rc, out = srv.upgrade()
        self.assertEqual(rc, 0, out)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        self.assertIn(b'event: bye\ndata: restart\n', data)
        self.assertEqual(stat_of(srv, 'handover_restarts'), 1)
        s.close()

    def test_identity_moves(self):
        """A client's identity, permissions and token expiry move with it:
        what it may read and publish is unchanged, and its token still
        expires on time."""
        key = os.path.join(self.tmp_dir(), 'hs.key')
        with open(key, 'w') as f:
            f.write('a secret of at least thirty-two bytes\n')
        srv = self.server(overrides={'auth.jwt_keys': key,
                                     'auth.anonymous': ''})
        tok = subprocess.run([ht.HERALD, 'token', '--key', key, '--sub',
                              'ann', '--exp', '4', '--read', 't/a/#',
                              '--publish', 't/p/#'], capture_output=True,
                             text=True, check=True,
                             timeout=30).stdout.strip()
        c = srv.connect()
        self.assertEqual(c.cmd('AUTH ' + tok), ['+OK AUTH ann'])
        c.cmd('SUB t/a/#')
        srv.replace_binary()
        rc, out = srv.upgrade()
        self.assertEqual(rc, 0, out)
        self.assertRegex(c.cmd('SUB t/a/x')[-1], r'^\+OK SUB t/a/x \d+$')
        self.assertEqual(c.cmd('SUB t/b/#'), ['-ERR forbidden t/b/#'])
        self.assertEqual(c.cmd('PUB t/q/x 1'), ['-ERR forbidden t/q/x'])
        c.sendline('PUB t/p/x 1')
        self.assertEqual(c.cmd('PING p'), ['PONG p'])
        lines = c.read_until(lambda l: l.startswith('BYE'), timeout=8)
        self.assertEqual(lines[-1], 'BYE auth-expired')
        self.assertEqual(stat_of(srv, 'handover_restarts'), 0)

    def test_idle_time_moves(self):
        """A client's idle time moves with it: idle 2.5 s of its 4 before
        the upgrade, it is told BYE idle about 1.5 s after, not 4."""
        srv = self.server(overrides={'clients.idle_timeout': '4'})
        c = srv.connect()
        time.sleep(2.5)
        srv.replace_binary()
        rc, out = srv.upgrade()
        self.assertEqual(rc, 0, out)
        t0 = time.monotonic()
        lines = c.read_until(lambda l: l.startswith('BYE'), timeout=6)
        self.assertEqual(lines[-1], 'BYE idle')
        self.assertLess(time.monotonic() - t0, 3.5)

    def test_systemd_notify(self):
        """Type=notify: READY=1 with the master's pid at start; the new
        master of an upgrade sends its own MAINPID before the old master
        ends; STOPPING=1 at a stop."""
        path = os.path.join(self.tmp_dir(), 'notify')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        self.addCleanup(sock.close)
        os.environ['NOTIFY_SOCKET'] = path
        try:
            srv = self.server()
        finally:
            del os.environ['NOTIFY_SOCKET']
        self.assertEqual(sock.recv(256).decode(),
                         'MAINPID=%d\nREADY=1' % srv.pid)
        srv.replace_binary()
        rc, out = srv.upgrade()
        self.assertEqual(rc, 0, out)
        new = srv.master_pid()
        self.assertEqual(sock.recv(256).decode(),
                         'MAINPID=%d\nREADY=1' % new)
        os.kill(new, signal.SIGTERM)
        self.assertEqual(sock.recv(256).decode(), 'STOPPING=1')

    # -- rollbacks --------------------------------------------------------------
    def rolled_back(self, srv, why, binary=None, text=None):
        sub = srv.connect()
        sub.cmd('SUB t/#')
        pids = srv.pids()
        if binary or text:
            srv.replace_binary(binary, text)
        rc, out = srv.upgrade()
        self.assertEqual(rc, 1, out)
        self.assertIn('rolled back', out)
        self.assertRegex(srv.log(), 'upgrade rolled back: .*' + why)
        self.assertEqual(srv.master_pid(), srv.pid)
        self.assertEqual(srv.pids(), pids)
        self.assert_serving(srv, sub)
        self.assertEqual(stat_of(srv, 'upgrade_rollbacks'), 1)
        self.assertEqual(stat_of(srv, 'clients_handed_over'), 0)
        self.assertIn('heraldd: master process', ht.proc_cmdline(srv.pid))
        self.assertNotIn('upgrading', ht.proc_cmdline(srv.pid))
        sub.close()

    def test_rollback_binary_exits(self):
        srv = self.server()
        self.rolled_back(srv, 'ended before it was ready|status 3',
                         text='#!/bin/sh\nexit 3\n')

    def test_rollback_config_broken(self):
        srv = self.server(config='max_payload = 4096;\n')
        srv.write_config('max_payload = ;\n')
        self.rolled_back(srv, 'before it was ready')
        self.assertRegex(srv.log(), r'heraldd\.conf:1')

    def test_rollback_state_version(self):
        srv = self.server()
        self.rolled_back(srv, 'state version %d' % 1, binary=NEXTSTATE)

    def test_rollback_workers_changed(self):
        srv = self.server(config='workers = 2;\n',
                          overrides={'workers': None})
        srv.write_config('workers = 3;\n')
        self.rolled_back(srv, 'workers is 3 in the configuration, 2 run')

    def test_rollback_bus_changed(self):
        srv = self.server(config='bus: { size = "4M"; };\n',
                          overrides={'bus.size': None})
        srv.write_config('bus: { size = "8M"; };\n')
        self.rolled_back(srv, 'a restart applies a change of bus')

    # -- faults during an upgrade -------------------------------------------
    def test_worker_crash(self):
        """A worker killed as the upgrade begins: the upgrade completes;
        the other worker's clients keep their connections."""
        srv = self.server()
        conns = [srv.connect() for _ in range(8)]
        for c in conns:
            c.cmd('SUB t/#')
        victim = srv.pids()['worker 1']
        os.kill(victim, signal.SIGKILL)
        srv.replace_binary()
        rc, out = srv.upgrade()
        self.assertEqual(rc, 0, out + srv.log_tail())
        kept = 0
        with srv.ingest() as p:
            p.sendline('PUB t/x after')
            p.cmd('SYNC')
        for c in conns:
            try:
                lines = c.read_until(lambda l: 't/x' in l or 'BYE' in l,
                                     timeout=3)
                kept += 't/x' in lines[-1]
            except (AssertionError, OSError):
                pass
        self.assertGreater(kept, 0)
        self.assertLess(kept, len(conns) + 1)
        with srv.connect() as c:       # and it serves new connections
            self.assertTrue(c.cmd('PING a')[-1].startswith('PONG'))

    def test_second_usr2_refused(self):
        """USR2 while an upgrade is under way is refused and logged; the
        first one completes."""
        srv = self.server()
        sub = srv.connect()
        sub.cmd('SUB t/#')
        w1 = srv.pids()['worker 1']
        srv.replace_binary()
        os.kill(w1, signal.SIGSTOP)    # its hand-over waits
        try:
            srv.signal(signal.SIGUSR2)
            deadline = time.monotonic() + 5
            while 'upgrading' not in (ht.proc_cmdline(srv.pid) or ''):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            time.sleep(0.3)
            srv.signal(signal.SIGUSR2)
            deadline = time.monotonic() + 5
            while 'under way already' not in srv.log():
                self.assertLess(time.monotonic(), deadline, srv.log_tail())
                time.sleep(0.02)
        finally:
            os.kill(w1, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while srv.master_pid() == srv.pid:
            self.assertLess(time.monotonic(), deadline, srv.log_tail())
            time.sleep(0.05)
        self.assert_serving(srv, sub)
        sub.close()


if __name__ == '__main__':
    ht.main()
