#!/usr/bin/env python3
"""herald integration: the processes (titles, restart of a killed worker or
producer), signals (HUP reload, TERM/INT stop, USR1), restart on the same
bus file, and one instance per pidfile and port."""

import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402


def spread_conns(tc, srv, n=12, limit=60):
    """Open client connections until both workers hold at least one;
    returns {role: [conn, ...]}."""
    conns = []
    by = {}
    while len(conns) < limit:
        for _ in range(n):
            conns.append(tc.conn(srv.port))
        owners = srv.worker_of(conns)
        by = {}
        for c, role in owners.items():
            by.setdefault(role, []).append(c)
        if len([r for r in by if r]) >= 2:
            break
    tc.assertNotIn(None, by, 'connections not found in any worker\'s fds')
    tc.assertEqual(len(by), 2, 'connections never spread over both '
                   'workers: %r' % {r: len(v) for r, v in by.items()})
    return by


class Processes(ht.HeraldTestCase):

    def test_titles(self):
        srv = self.server()
        roles = srv.pids()
        self.assertTrue(ht.proc_cmdline(srv.pid).startswith(
            'heraldd: master process'), ht.proc_cmdline(srv.pid))
        self.assertIn('producer', roles)
        self.assertIn('worker 1', roles)
        self.assertIn('worker 2', roles)
        self.assertNotIn('worker 3', roles)
        self.assertNotIn('other', roles, 'children with other titles: %r'
                         % roles.get('other'))
        for role, pid in roles.items():
            if role == 'master':
                continue
            cl = ht.proc_cmdline(pid)
            want = 'heraldd: producer' if role == 'producer' else \
                'heraldd: worker process %s' % role.split()[1]
            self.assertTrue(cl.startswith(want), '%s: %r' % (role, cl))

    def test_kill_worker(self):
        srv = self.server()
        by = spread_conns(self, srv)
        victim_role = 'worker 1'
        other_role = 'worker 2'
        victims, others = by[victim_role], by[other_role]
        for c in victims + others:
            c.sub('kw/#')
        # a publisher that the kill does not touch
        for _ in range(40):
            i = self.conn(srv.ingest_port)
            if srv.worker_of([i], srv.ingest_port)[i] != victim_role:
                break
        for k in range(100):
            i.pub('kw/t', str(k))
        i.sync()
        old = srv.kill_child(victim_role, signal.SIGKILL)
        for k in range(100, 200):
            i.pub('kw/t', str(k))
            if k == 150:
                time.sleep(0.2)
        i.sync()
        new = srv.wait_role(victim_role, not_pid=old, timeout=3)
        self.assertIsNotNone(new, '%s not restarted within 3 s' % victim_role)
        for c in others:
            got = []
            last = 0
            while len(got) < 200:
                m = ht.parse_msg(c.line())
                self.assertTrue(m and m[0] == 'MSG', 'client of %s: %r' %
                                (other_role, m))
                self.assertGreater(m[2], last)
                last = m[2]
                got.append(int(m[3]))
            self.assertEqual(got, list(range(200)))
        for c in victims:
            self.assertTrue(c.closed_by_peer(3), 'a client of the killed '
                            'worker is still open')
        # the restarted worker serves: new connections, on both workers
        by2 = spread_conns(self, srv)
        for cs in by2.values():
            self.assertEqual(cs[0].cmd('PING'), ['PONG'])
        self.assertEqual(srv.pids().get(other_role), srv.pids()[other_role])

    def test_kill_producer(self):
        srv = self.server()
        sub = self.conn(srv.port)
        sub.sub('kp/#')
        i = self.conn(srv.ingest_port)
        for k in range(50):
            i.pub('kp/t', str(k))
        s1 = i.sync()
        old = srv.kill_child('producer', signal.SIGKILL)
        new = srv.wait_role('producer', not_pid=old, timeout=3)
        self.assertIsNotNone(new, 'producer not restarted within 3 s')
        # publishers reconnect: the ingest port accepts again within 3 s
        deadline = time.monotonic() + 3
        i2 = None
        while i2 is None:
            try:
                i2 = self.conn(srv.ingest_port, timeout=1)
            except (OSError, AssertionError) as e:
                if time.monotonic() > deadline:
                    self.fail('ingest does not accept 3 s after the producer '
                              'was killed: %s' % e)
                time.sleep(0.1)
        for k in range(50, 100):
            i2.pub('kp/t', str(k))
        s2 = i2.sync()
        self.assertGreater(s2, s1)
        self.assertEqual(i2.hello_seq >= s1, True,
                         'HELLO head after restart %d < %d' %
                         (i2.hello_seq, s1))
        seqs = []
        vals = []
        while True:
            m = ht.parse_msg(sub.line())
            self.assertTrue(m and m[0] == 'MSG', m)
            seqs.append(m[2])
            vals.append(int(m[3]))
            if m[3] == '99':
                break
        self.assertEqual(seqs, sorted(set(seqs)), 'seqs strictly increase, '
                         'none used twice')
        self.assertEqual(vals[:50], list(range(50)))
        self.assertEqual(vals[-50:], list(range(50, 100)))
        self.assertEqual(len(vals), 100)
        lines = sub.cmd('GET kp/t')
        self.assertEqual(lines[0], 'VAL kp/t %d 99' % seqs[-1])

    def test_kill_producer_client_pub(self):
        srv = self.server({'clients.publish': 'cmd/#'})
        c = self.conn(srv.port)
        c.pub('cmd/a', '1')
        s1 = c.sync()
        old = srv.kill_child('producer', signal.SIGKILL)
        self.assertIsNotNone(srv.wait_role('producer', not_pid=old))
        deadline = time.monotonic() + 5
        while True:
            c.pub('cmd/a', '2')
            lines = c.cmd('SYNC', timeout=5)
            m = re.match(r'^\+OK SYNC (\d+)$', lines[-1])
            if m or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(m, 'SYNC after the producer restart: %r' % lines)
        self.assertGreater(int(m.group(1)), s1)
        self.assertRegex(c.cmd('GET cmd/a')[0], r'^VAL cmd/a \d+ 2$')


    def test_failed_restart_is_retried(self):
        """A worker that cannot be restarted (the master is out of file
        descriptors: socketpair fails) is tried again with the back-off of
        a crash, logged and counted, and serves again once it can."""
        import resource
        srv = self.server()
        old = srv.pids()['worker 1']
        soft, hard = resource.prlimit(srv.pid, resource.RLIMIT_NOFILE)
        # 0, 1 and 2 are open: no descriptor is left to the master
        resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (3, hard))
        try:
            os.kill(old, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while srv.log().count('cannot start worker 1') < 3 and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIsNone(srv.pids().get('worker 1'))
        finally:
            resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (soft, hard))
        log = srv.log()
        self.assertRegex(log, r'cannot start worker 1: socketpair: Too '
                         r'many open files')
        delays = [int(d) for d in
                  re.findall(r'restarting worker 1 in (\d+) ms', log)]
        self.assertGreaterEqual(len(delays), 3, log)
        self.assertEqual(delays[:3], [100, 200, 400], 'the back-off of a '
                         'crash, doubling')
        new = srv.wait_role('worker 1', not_pid=old, timeout=5)
        self.assertIsNotNone(new, 'worker 1 not started once it can be')
        self.assertGreaterEqual(int(srv.stats()['spawn_failures']), 3)
        # new connections are served on both workers
        for cs in spread_conns(self, srv).values():
            for c in cs:
                self.assertEqual(c.cmd('PING'), ['PONG'])

    def test_kill_master(self):
        """Children die with the master; the ports are free again."""
        srv = self.server()
        pids = srv.pids()
        c = self.conn(srv.port)
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait(5)
        deadline = time.monotonic() + 3
        alive = [r for r, p in pids.items() if ht.pid_alive(p)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [r for r, p in pids.items() if ht.pid_alive(p)]
        self.assertEqual(alive, [], 'children still alive 3 s after the '
                         'master was killed')
        self.assertTrue(c.closed_by_peer(3))
        srv.start()                     # same ports, same pidfile
        self.assertEqual(self.conn(srv.port).cmd('PING'), ['PONG'])


    def test_stopped_worker_is_reported(self):
        """A worker whose loop stands still (SIGSTOP) is reported by the
        master within a few seconds, is not killed, and is reported
        running again after SIGCONT."""
        srv = self.server()
        pid = srv.pids()['worker 1']
        os.kill(pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 10
            while 'has not run its loop' not in srv.log() and \
                    time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertRegex(srv.log(), r'worker 1 \(pid %d\) has not run '
                             r'its loop for [5-9] s' % pid)
        finally:
            os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while 'runs again' not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertRegex(srv.log(), r'worker 1 \(pid %d\) runs again' % pid)
        self.assertEqual(srv.pids()['worker 1'], pid, 'restarted')
        self.assertEqual(srv.log().count('has not run its loop'), 1)


class Signals(ht.HeraldTestCase):

    CONF = 'clients = {\n  max_subs = %d;\n  max_errors = %d;\n};\n'

    def test_hup_reload(self):
        srv = self.server(config=self.CONF % (3, 16))
        pids0 = srv.pids()
        by = spread_conns(self, srv)
        conns = [c for cs in by.values() for c in cs]
        a = by['worker 1'][0]
        b = by['worker 2'][0]
        for c in (a, b):
            c.sub('h/1')
            c.sub('h/2')
        srv.write_config(self.CONF % (2, 16))
        srv.signal(signal.SIGHUP)
        for c in (a, b):
            deadline = time.monotonic() + 3
            while True:
                lines = c.cmd('SUB h/3')
                if lines[-1].startswith('-ERR'):
                    break
                self.assertEqual(c.cmd('UNSUB h/3'), ['+OK UNSUB h/3'])
                if time.monotonic() > deadline:
                    self.fail('clients.max_subs 3 -> 2 not applied 3 s '
                              'after HUP')
                time.sleep(0.1)
            self.assertErr(lines[-1], 'too-many-subs')
        # nobody was disconnected, no process replaced
        for c in conns:
            self.assertEqual(c.cmd('PING'), ['PONG'])
        self.assertEqual(srv.pids(), pids0)
        # and the subscriptions still deliver
        i = self.conn(srv.ingest_port)
        i.pub('h/1', 'x')
        for c in (a, b):
            c.expect(r'^MSG h/1 \d+ x$')
        # new connections get the new limit too
        n = self.conn(srv.port)
        n.sub('h/1')
        n.sub('h/2')
        self.assertErr(self.assertOne(n.cmd('SUB h/3')), 'too-many-subs')

    def test_hup_to_every_process(self):
        """`pkill -HUP heraldd` (or a logrotate postrotate written that
        way) signals every process: the children ignore HUP (the master
        reloads and tells them), so no client is dropped and no child is
        replaced."""
        srv = self.server()
        pids0 = srv.pids()
        by = spread_conns(self, srv, n=20)
        conns = [c for cs in by.values() for c in cs]
        for c in conns:
            c.sub('hup/#')
        for role, pid in pids0.items():
            if role != 'master':
                os.kill(pid, signal.SIGHUP)
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while 'reload accepted' not in srv.log() and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn('reload accepted', srv.log())
        time.sleep(0.2)
        self.assertEqual(srv.pids(), pids0, 'a process died of SIGHUP')
        i = self.conn(srv.ingest_port)
        i.pub('hup/x', 'after')
        i.sync()
        for k, c in enumerate(conns):
            self.assertRegex(c.line(), r'^MSG hup/x \d+ after$',
                             'client %d of %d' % (k, len(conns)))
        self.assertNotIn('killed by signal', srv.log())

    def test_hup_live_settings(self):
        srv = self.server(config='clients = { max_line = 4096; };\n')
        pids0 = srv.pids()
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('PUB cmd/x v'), ['-ERR forbidden cmd/x'])
        self.assertEqual(c.cmd('PING ' + 'a' * 100), ['PONG ' + 'a' * 100])
        c.sub('cmd/#')
        srv.write_config('clients = {\n  max_line = 64;\n'
                         '  publish = ["cmd/#"];\n  heartbeat = 1;\n'
                         '  max_errors = 2;\n};\n')
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while True:
            lines = c.cmd('PING ' + 'a' * 100)
            if lines[-1].startswith('-ERR') or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertErr(lines[-1], 'line-too-long')
        # publish patterns, heartbeat, max_errors: live too
        c.pub('cmd/x', 'allowed')
        c.expect(r'^MSG cmd/x \d+ allowed$')
        c.expect(r'^HB \d+$', timeout=2.5)
        c.send('FOO\nBAR\n')
        lines, eof = c.read_all(quiet=1.5, timeout=5)
        lines = [ln for ln in lines if not ln.startswith('HB ')]
        self.assertEqual(lines[:1], ['-ERR unknown-command FOO'])
        self.assertEqual(lines[1:], ['-ERR unknown-command BAR',
                                     'BYE too-many-errors'],
                         'clients.max_errors 16 -> 2 after HUP')
        self.assertTrue(eof)
        self.assertEqual(srv.pids(), pids0)

    def test_hup_restart_setting(self):
        """A changed setting that needs a restart is reported, not
        applied, and disturbs nobody."""
        srv = self.server({'workers': None},
                          config='workers = 2;\n' + self.CONF % (3, 16))
        pids0 = srv.pids()
        by = spread_conns(self, srv)
        conns = [c for cs in by.values() for c in cs]
        srv.write_config('workers = 3;\n' + self.CONF % (2, 16))
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 3
        while 'workers' not in srv.log()[srv.log().rfind('HUP'):] and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn('workers', srv.log()[srv.log().rfind('HUP'):],
                      'the log says that workers needs a restart')
        time.sleep(0.3)
        self.assertEqual(srv.pids(), pids0, 'workers = 3 needs a restart')
        for c in conns:
            self.assertEqual(c.cmd('PING'), ['PONG'])
        # the live part of the same file was applied
        c = conns[0]
        c.sub('r/1')
        c.sub('r/2')
        self.assertErr(self.assertOne(c.cmd('SUB r/3')), 'too-many-subs')

    def test_hup_broken_config(self):
        srv = self.server(config=self.CONF % (3, 16))
        pids0 = srv.pids()
        by = spread_conns(self, srv)
        conns = [c for cs in by.values() for c in cs]
        srv.write_config('clients = {\n  max_subs = 1\n  oops;;\n')
        srv.signal(signal.SIGHUP)
        time.sleep(1.0)
        self.assertTrue(srv.running(), 'master died on a broken config')
        self.assertEqual(srv.pids(), pids0)
        for c in conns:
            self.assertEqual(c.cmd('PING'), ['PONG'])
        # the old config stays: 3 subscriptions allowed
        c = conns[0]
        for p in ('x/1', 'x/2', 'x/3'):
            c.sub(p)
        self.assertErr(self.assertOne(c.cmd('SUB x/4')), 'too-many-subs')
        # a new connection still works
        n = self.conn(srv.port)
        self.assertEqual(n.cmd('PING'), ['PONG'])
        self.assertIn('heraldd.conf', srv.log(), 'the reload error is logged')

    def check_stop(self, sig):
        srv = self.server({'shutdown_grace': 3})
        by = spread_conns(self, srv)
        conns = [c for cs in by.values() for c in cs]
        for c in conns[:4]:
            c.sub('#')
        i = self.conn(srv.ingest_port)
        pids = srv.pids()
        t0 = time.monotonic()
        srv.signal(sig)
        rc = srv.wait_exit(3 + 1.5)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(rc, 'master still running %.1f s after %s '
                             '(shutdown_grace 3)' % (elapsed, sig.name))
        self.assertEqual(rc, 0, 'master exit status after %s' % sig.name)
        for k, c in enumerate(conns):
            lines, eof = c.read_all(quiet=1.0, timeout=3)
            self.assertTrue(eof, 'client %d not closed' % k)
            self.assertEqual(lines[-1:], ['BYE shutdown'],
                             'client %d of %d: %r' % (k, len(conns), lines))
        lines, eof = i.read_all(quiet=1.0, timeout=3)
        self.assertEqual((lines[-1:], eof), (['BYE shutdown'], True),
                         'the ingest connection')
        time.sleep(0.2)
        for role, pid in pids.items():
            self.assertFalse(ht.pid_alive(pid), '%s still alive' % role)

    def test_term(self):
        self.check_stop(signal.SIGTERM)

    def test_int(self):
        self.check_stop(signal.SIGINT)

    def test_usr1_reopens_log(self):
        srv = self.server(start=False)
        logf = os.path.join(srv.tmp, 'heraldd.log')
        srv.overrides['log.file'] = logf
        srv.start()
        deadline = time.monotonic() + 3
        while not os.path.exists(logf) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(logf), 'log.file not created')
        os.rename(logf, logf + '.1')
        srv.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 3
        while not os.path.exists(logf) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(logf), 'USR1 did not reopen the log')
        self.assertTrue(srv.running())
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('PING'), ['PONG'])


class Persistence(ht.HeraldTestCase):

    def test_restart_keeps_bus(self):
        srv = self.server()
        i = self.conn(srv.ingest_port)
        for k in range(30):
            i.pub('keep/%d' % (k % 3), 'v%d' % k)
        s = i.sync()
        i.close()
        self.assertEqual(srv.stop(), 0, 'exit status after TERM')
        srv.start()
        c = self.conn(srv.port)
        self.assertGreaterEqual(c.hello_seq, s)
        for k in range(3):
            lines = c.cmd('GET keep/%d' % k)
            self.assertEqual(lines, ['VAL keep/%d %d v%d' % (k, s - 2 + k,
                                                            27 + k),
                                     '+OK GET keep/%d' % k])
        vals, h = c.sub('keep/+')
        self.assertEqual(len(vals), 3)
        self.assertGreaterEqual(h, s)
        i = self.conn(srv.ingest_port)
        i.pub('keep/0', 'after')
        s2 = i.sync()
        self.assertGreater(s2, s)
        m = c.expect(r'^MSG keep/0 (\d+) after$')
        self.assertGreater(int(m.group(1)), s)
        # resume across the restart
        r = self.conn(srv.port)
        lines = r.cmd('SUB keep/+ %d' % (s - 1))
        self.assertRegex(lines[-1], r'^\+OK SUB keep/\+ \d+$')
        rest = lines[:-1]
        if rest:            # gap branch is allowed if history was dropped
            self.assertRegex(rest[0], r'^GAP %d \d+$' % s)
        else:
            self.assertEqual(r.line(), 'MSG keep/2 %d v29' % s)
            self.assertEqual(r.line(), 'MSG keep/0 %d after' % s2)

    def test_restart_after_kill(self):
        srv = self.server()
        i = self.conn(srv.ingest_port)
        i.pub('k9/a', 'x')
        s = i.sync()
        i.close()
        srv.kill()
        srv.start()
        c = self.conn(srv.port)
        self.assertGreaterEqual(c.hello_seq, s)
        self.assertEqual(c.cmd('GET k9/a'), ['VAL k9/a %d x' % s,
                                             '+OK GET k9/a'])


    def test_restart_after_kill_mid_flood(self):
        """kill -9 of everything while PUBs pour in: the bus file is still
        usable, and seq never goes backwards."""
        import threading
        srv = self.server({'bus.size': '1M', 'max_payload': 1024})
        i = self.conn(srv.ingest_port)
        for k in range(100):
            i.pub('mf/%d' % (k % 10), 'before%d' % k)
        s = i.sync()
        stop = threading.Event()

        def flood():
            try:
                p = ht.Conn(srv.ingest_port, timeout=2)
                k = 0
                while not stop.is_set():
                    p.send(''.join('PUB mf/%d %d%s\n' % (j % 10, k + j,
                                                           'z' * 200)
                                   for j in range(50)))
                    k += 50
            except Exception:
                pass

        th = threading.Thread(target=flood, daemon=True)
        th.start()
        time.sleep(0.5)
        srv.kill()
        stop.set()
        th.join(5)
        srv.start()
        c = self.conn(srv.port)
        self.assertGreaterEqual(c.hello_seq, s)
        for k in range(10):
            lines = c.cmd('GET mf/%d' % k)
            self.assertEqual(lines[-1], '+OK GET mf/%d' % k, lines)
            m = ht.parse_msg(lines[0])
            self.assertLessEqual(m[2], c.hello_seq)
        i = self.conn(srv.ingest_port)
        i.pub('mf/0', 'after')
        s2 = i.sync()
        self.assertGreater(s2, c.hello_seq)
        self.assertEqual(c.cmd('GET mf/0'), ['VAL mf/0 %d after' % s2,
                                             '+OK GET mf/0'])


class OrderedStop(ht.HeraldTestCase):
    """TERM stops the workers first (each passes on the PUBs it has read
    and says BYE), then the producer: no PUB a worker took is lost."""

    def replay(self, srv, pattern):
        """{topic: [payload, ...]} of every message on pattern in the bus,
        oldest first (a resume from seq 0)."""
        c = self.conn(srv.port, timeout=10)
        head = c.hello_seq
        lines = c.cmd('SUB %s 0' % pattern)
        self.assertRegex(lines[-1], r'^\+OK SUB ', lines[:3])
        self.assertEqual(len(lines), 1, 'the bus no longer holds it all: '
                         '%r' % lines[:3])
        got = {}
        seq = 0
        while seq < head:
            m = ht.parse_msg(c.line())
            self.assertTrue(m and m[0] == 'MSG', m)
            seq = m[2]
            got.setdefault(m[1], []).append(m[3])
        return got

    def check_term_waits(self, everyone):
        """PUBs and a SYNC a worker has read wait for the producer (held
        with SIGSTOP) when TERM comes: the SYNC is still answered +OK
        before BYE shutdown, and the PUBs are in the bus after a
        restart."""
        srv = self.server({'shutdown_grace': 4})
        i = self.conn(srv.ingest_port)
        i.pub('ts/x', 'before')
        s0 = i.sync()
        pids = srv.pids()
        prod = pids['producer']
        os.kill(prod, signal.SIGSTOP)
        try:
            i.send(''.join('PUB ts/a %d\n' % k for k in range(100)) +
                   'SYNC\n')
            time.sleep(0.3)     # read and passed on by the worker
            for pid in pids.values() if everyone else [srv.pid]:
                os.kill(pid, signal.SIGTERM)
            time.sleep(0.3)     # the workers wait for the producer
            self.assertTrue(ht.pid_alive(prod))
        finally:
            os.kill(prod, signal.SIGCONT)
        lines, eof = i.read_all(quiet=1.0, timeout=6)
        self.assertEqual(lines, ['+OK SYNC %d' % (s0 + 100),
                                 'BYE shutdown'])
        self.assertTrue(eof)
        self.assertEqual(srv.wait_exit(8), 0)
        srv.restart()
        self.assertEqual(self.replay(srv, 'ts/a'),
                         {'ts/a': [str(k) for k in range(100)]})

    def test_term_waits_for_the_producer(self):
        self.check_term_waits(everyone=False)

    def test_term_to_every_process(self):
        """As from `pkill -TERM heraldd`: the producer, told at the same
        time as the workers, waits until they have closed their
        connections to it."""
        self.check_term_waits(everyone=True)

    def test_term_under_publishing(self):
        """Publishers pipeline PUBs, a SYNC every 20, right up to TERM.
        After a restart on the kept bus file, every PUB that got its
        +OK SYNC is in the bus, and what each connection has in the bus
        is a prefix of what it sent: never a hole."""
        import threading
        # most is 6 x 150k records: the bus holds them all
        srv = self.server({'shutdown_grace': 3, 'bus.size': '64M'})
        npub, block, window, most = 6, 20, 4, 150000

        class Pub:
            def __init__(self, k):
                self.topic = 'tl/%d' % k
                self.conn = ht.Conn(srv.ingest_port, timeout=10)
                self.sent = 0       # PUBs sent
                self.synced = 0     # PUBs covered by a +OK SYNC
                self.errors = []
                self.credit = threading.Semaphore(window)
                self.end = threading.Event()

            def write(self):
                try:
                    while not self.end.is_set() and self.sent < most:
                        if not self.credit.acquire(timeout=0.2):
                            continue
                        self.conn.send(''.join(
                            'PUB %s %d\n' % (self.topic, self.sent + j)
                            for j in range(block)) + 'SYNC\n')
                        self.sent += block
                except OSError:
                    pass

            def read(self):
                try:
                    while True:
                        ln = self.conn.recv_line(10)
                        if ln is None or ln == 'BYE shutdown':
                            break
                        if ln.startswith('+OK SYNC '):
                            self.synced += block
                            self.credit.release()
                        else:
                            self.errors.append(ln)
                except (OSError, AssertionError):
                    pass
                self.end.set()

        pubs = [Pub(k) for k in range(npub)]
        threads = [threading.Thread(target=f, daemon=True)
                   for p in pubs for f in (p.write, p.read)]
        for t in threads:
            t.start()
        time.sleep(0.8)
        self.assertTrue(all(p.synced > 0 for p in pubs),
                        [p.synced for p in pubs])
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(8), 0)
        for p in pubs:
            p.end.set()
        for t in threads:
            t.join(12)
            self.assertFalse(t.is_alive())
        for p in pubs:
            p.conn.close()
        srv.restart()
        got = self.replay(srv, 'tl/#')
        for p in pubs:
            self.assertEqual(p.errors, [], p.topic)
            stored = got.get(p.topic, [])
            print('\n  %s: sent %d, synced %d, in the bus %d' %
                  (p.topic, p.sent, p.synced, len(stored)), end='')
            self.assertEqual(stored, [str(k) for k in range(len(stored))],
                             '%s: not a prefix of what was sent' % p.topic)
            self.assertGreaterEqual(len(stored), p.synced, p.topic)
            self.assertLessEqual(len(stored), p.sent, p.topic)


class SingleInstance(ht.HeraldTestCase):

    def second(self, srv, **over):
        o = srv.base_overrides()
        o.update(over)
        argv = [ht.HERALDD, '-f']
        for k, v in o.items():
            argv += ['-o', '%s=%s' % (k, v)]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT,
                             start_new_session=True, stdin=subprocess.DEVNULL)
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            self.fail('a second heraldd (%r) is still running after 10 s'
                      % over)
        return p.returncode, out.decode('latin-1')

    def check_first_alive(self, srv):
        self.assertTrue(srv.running())
        with open(srv.pidfile) as f:
            self.assertEqual(f.read().strip(), str(srv.pid),
                             'the pidfile still names the first instance')
        for _ in range(6):
            c = self.conn(srv.port)
            self.assertEqual(c.cmd('PING'), ['PONG'])
            c.close()

    def test_missing_state_dirs_are_created(self):
        """The built-in pidfile and bus file live under localstatedir,
        which a fresh machine may not have: heraldd creates the missing
        directories (all levels) instead of failing to start."""
        import tempfile
        d = tempfile.mkdtemp(prefix='herald-test-dirs-')
        self.addCleanup(__import__('shutil').rmtree, d, True)
        pidfile = os.path.join(d, 'var', 'run', 'heraldd.pid')
        bus = os.path.join(d, 'var', 'lib', 'herald', 'heraldd.bus')
        srv = self.server({'pidfile': pidfile, 'bus.file': bus})
        with open(pidfile) as f:
            self.assertEqual(int(f.read()), srv.pid)
        self.assertTrue(os.path.isfile(bus))
        self.assertIn('created directory %s' % os.path.join(d, 'var', 'lib'),
                      srv.log())
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('PING'), ['PONG'])

    def test_same_pidfile(self):
        srv = self.server()
        import tempfile
        d = tempfile.mkdtemp(prefix='herald-test-2nd-')
        self.addCleanup(__import__('shutil').rmtree, d, True)
        rc, out = self.second(srv, listen='127.0.0.1:%d' % ht.free_port(),
                              ingest='127.0.0.1:%d' % ht.free_port(),
                              **{'bus.file': os.path.join(d, 'bus')})
        self.assertNotEqual(rc, 0, 'second instance with the same pidfile')
        self.assertIn(srv.pidfile, out)
        self.assertRegex(out, r'(?i)running|pid|lock')
        self.check_first_alive(srv)

    def test_same_port(self):
        srv = self.server()
        import tempfile
        d = tempfile.mkdtemp(prefix='herald-test-2nd-')
        self.addCleanup(__import__('shutil').rmtree, d, True)
        rc, out = self.second(srv, pidfile=os.path.join(d, 'pid'),
                              ingest='127.0.0.1:%d' % ht.free_port(),
                              **{'bus.file': os.path.join(d, 'bus')})
        self.assertNotEqual(rc, 0, 'second instance on the same port')
        self.assertIn(str(srv.port), out)
        self.check_first_alive(srv)

    def test_same_ingest_port(self):
        srv = self.server()
        import tempfile
        d = tempfile.mkdtemp(prefix='herald-test-2nd-')
        self.addCleanup(__import__('shutil').rmtree, d, True)
        rc, out = self.second(srv, pidfile=os.path.join(d, 'pid'),
                              listen='127.0.0.1:%d' % ht.free_port(),
                              **{'bus.file': os.path.join(d, 'bus')})
        self.assertNotEqual(rc, 0, 'second instance on the same ingest port')
        self.assertIn(str(srv.ingest_port), out)
        self.check_first_alive(srv)
        i = self.conn(srv.ingest_port)
        self.assertEqual(i.cmd('PING'), ['PONG'])


if __name__ == '__main__':
    ht.main()
