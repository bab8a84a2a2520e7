#!/usr/bin/env python3
"""herald integration: TLS listeners (tls:HOST:PORT, heraldd.conf(5) TLS).

Certificates are made by the test with the openssl command in its temp
dir; the clients are Python's ssl module and openssl s_client; the server
is the real heraldd."""

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

OPENSSL = shutil.which('openssl')


def openssl(*args, cwd):
    r = subprocess.run([OPENSSL] + list(args), cwd=cwd, capture_output=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError('openssl %s: %s' % (' '.join(args),
                                                 r.stderr.decode()))


class PKI:
    """A temp dir of CAs and certificates, made with openssl(1)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='herald-tls-')

    def path(self, name):
        return os.path.join(self.dir, name)

    def ca(self, name):
        openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt',
                'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
                '-keyout', name + '.key', '-out', name + '.pem',
                '-subj', '/CN=%s' % name, cwd=self.dir)
        return self.path(name + '.pem')

    def cert(self, name, ca, cn, server=True):
        """A key and a certificate signed by CA ca (its name)."""
        openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                '-nodes', '-keyout', name + '.key', '-out', name + '.csr',
                '-subj', '/CN=%s' % cn, cwd=self.dir)
        ext = os.path.join(self.dir, name + '.ext')
        with open(ext, 'w') as f:
            f.write('subjectAltName=DNS:localhost,IP:127.0.0.1\n'
                    if server else 'extendedKeyUsage=clientAuth\n')
        openssl('x509', '-req', '-in', name + '.csr', '-CA', ca + '.pem',
                '-CAkey', ca + '.key', '-CAcreateserial', '-days', '2',
                '-extfile', ext, '-out', name + '.pem', cwd=self.dir)
        return self.path(name + '.pem'), self.path(name + '.key')

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def client_ctx(cafile, cert=None, key=None, maximum=None, minimum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    if cert:
        ctx.load_cert_chain(cert, key)
    if maximum:
        ctx.maximum_version = maximum
    if minimum:
        ctx.minimum_version = minimum
    return ctx


class TLSConn(ht.Conn):
    """A line-protocol connection over TLS (Python's ssl)."""

    def __init__(self, port, ctx, session=None, timeout=ht.TIMEOUT,
                 hello=True, rcvbuf=None):
        self.timeout = timeout
        self.buf, self.off, self.eof, self.reset = b'', 0, False, False
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(timeout)
        try:
            raw.connect(('127.0.0.1', port))
            self.sock = ctx.wrap_socket(raw, server_hostname='localhost',
                                        session=session)
        except Exception:
            raw.close()
            raise
        self.hello = self.hello_seq = None
        if hello:
            line = self.recv_line()
            m = ht.HELLO_RE.match(line or '')
            if not m:
                self.close()
                raise AssertionError('expected HELLO over TLS, got %r'
                                     % line)
            self.hello, self.hello_seq = line, int(m.group(1))

    def fingerprint(self):
        return hashlib.sha256(self.sock.getpeercert(True)).hexdigest()


def stat(srv, name):
    return int(srv.stats()[name])


def wait_for(pred, timeout=10, what='condition'):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(0.05)


@unittest.skipIf(OPENSSL is None, 'no openssl command')
class TLSCase(ht.HeraldTestCase):
    """A server with a plaintext and a TLS client listener."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = PKI()
        cls.addClassCleanup(cls.pki.cleanup)
        cls.ca = cls.pki.ca('ca')
        cls.cert, cls.key = cls.pki.cert('server', 'ca', 'localhost')

    def tls_server(self, extra=None, workers=2, ingest_tls=False):
        self.tls_port = ht.free_port()
        o = {'tls.cert': self.cert, 'tls.key': self.key,
             'log.level': 'debug', 'workers': workers}
        # listen is set once the harness knows its plaintext port
        srv = self.server(dict(o, **(extra or {})), start=False,
                          workers=workers)
        srv.overrides['listen'] = '127.0.0.1:%d, tls:127.0.0.1:%d' % (
            srv.port, self.tls_port)
        if ingest_tls:
            srv.overrides['ingest'] = 'tls:127.0.0.1:%d' % srv.ingest_port
        srv.start()
        return srv

    def tls(self, ctx=None, port=None, **kw):
        c = TLSConn(port or self.tls_port, ctx or client_ctx(self.ca), **kw)
        self.addCleanup(c.close)
        return c


class Basics(TLSCase):

    def test_sub_pub_msg_over_tls(self):
        """Handshake, HELLO, SUB, MSG and PUB's SYNC over TLS."""
        srv = self.tls_server()
        sub = self.tls()
        self.assertEqual(sub.sock.version()[:3], 'TLS')
        sub.sub('a/#')
        ing = self.conn(srv.ingest_port)
        ing.pub('a/b', 'hello over tls')
        seq = ing.sync()
        m = sub.expect(r'^MSG a/b (\d+) hello over tls$')
        self.assertEqual(int(m.group(1)), seq)
        self.assertEqual(sub.cmd('PING'), ['PONG'])
        self.assertGreaterEqual(stat(srv, 'tls_handshakes'), 1)
        self.assertEqual(stat(srv, 'tls_handshake_failures'), 0)

    def test_openssl_s_client(self):
        """openssl s_client: HELLO first, then the answers."""
        srv = self.tls_server()
        p = subprocess.run(
            [OPENSSL, 's_client', '-connect', '127.0.0.1:%d' % self.tls_port,
             '-CAfile', self.ca, '-verify_return_error', '-quiet',
             '-servername', 'localhost'],
            input=b'PING\nQUIT\n', capture_output=True, timeout=20)
        lines = p.stdout.decode('latin-1').splitlines()
        self.assertRegex(lines[0] if lines else '', ht.HELLO_RE.pattern,
                         p.stderr.decode('latin-1'))
        self.assertIn('PONG', lines)
        self.assertIn('BYE quit', lines, srv.log_tail())

    def test_tls_ingest_listener(self):
        """An ingest listener on TLS: PUB through it reaches a plaintext
        subscriber."""
        srv = self.tls_server(ingest_tls=True)
        sub = self.conn(srv.port)
        sub.sub('in/#')
        ing = self.tls(port=srv.ingest_port)
        ing.pub('in/x', 'via tls ingest')
        seq = ing.sync()
        m = sub.expect(r'^MSG in/x (\d+) via tls ingest$')
        self.assertEqual(int(m.group(1)), seq)

    def test_plaintext_to_tls_port(self):
        """Plaintext and garbage sent to a TLS port: closed cleanly (no
        reset), counted, logged; a TLS client already there is unharmed."""
        srv = self.tls_server(workers=1)
        sub = self.tls()
        sub.sub('p/#')
        before = stat(srv, 'tls_handshake_failures')
        for data in (b'SUB p/#\nPING\n', os.urandom(3000)):
            raw = socket.create_connection(('127.0.0.1', self.tls_port),
                                           timeout=5)
            try:
                raw.sendall(data)
                got = b''
                while True:     # (an alert may come before the end)
                    chunk = raw.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                self.assertNotIn(b'HELLO', got)
            except ConnectionResetError:
                self.fail('the server reset the connection: %s'
                          % srv.log_tail())
            finally:
                raw.close()
        wait_for(lambda: stat(srv, 'tls_handshake_failures') >= before + 2,
                 what='tls_handshake_failures to count both')
        self.assertRegex(srv.log(), r'TLS handshake failed: .*: closed')
        ing = self.conn(srv.ingest_port)
        ing.pub('p/q', 'still here')
        sub.expect(r'^MSG p/q \d+ still here$')
        self.assertEqual(sub.cmd('PING'), ['PONG'])

    def test_handshake_timeout(self):
        """A connection that never finishes its handshake is closed after
        TLS_HANDSHAKE_MS (10 s), and counted."""
        srv = self.tls_server(workers=1)
        raw = socket.create_connection(('127.0.0.1', self.tls_port),
                                       timeout=20)
        self.addCleanup(raw.close)
        t0 = time.monotonic()
        self.assertEqual(raw.recv(100), b'')
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 9)
        self.assertLess(took, 15)
        self.assertEqual(stat(srv, 'tls_handshake_timeouts'), 1)
        self.assertIn('handshake not done within 10000 ms', srv.log())

    def test_min_version_13(self):
        """tls.min_version 1.3 refuses a TLS 1.2 client; a 1.3 one works."""
        srv = self.tls_server({'tls.min_version': '1.3'})
        ctx12 = client_ctx(self.ca, maximum=ssl.TLSVersion.TLSv1_2)
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            self.tls(ctx12)
        p = subprocess.run(
            [OPENSSL, 's_client', '-connect', '127.0.0.1:%d' % self.tls_port,
             '-tls1_2', '-CAfile', self.ca],
            input=b'', capture_output=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        c = self.tls(client_ctx(self.ca, minimum=ssl.TLSVersion.TLSv1_3))
        self.assertEqual(c.sock.version(), 'TLSv1.3')
        wait_for(lambda: stat(srv, 'tls_handshake_failures') >= 2,
                 what='both refusals counted')

    def test_tls12_default(self):
        """By default TLS 1.2 is accepted."""
        self.tls_server()
        c = self.tls(client_ctx(self.ca, maximum=ssl.TLSVersion.TLSv1_2))
        self.assertEqual(c.sock.version(), 'TLSv1.2')
        self.assertEqual(c.cmd('PING'), ['PONG'])

    def test_big_records(self):
        """Lines longer than a TLS record (16 KB) arrive whole, in order,
        plain and over TLS alike."""
        srv = self.tls_server({'max_payload': 200000})
        sub = self.tls()
        sub.sub('big/#')
        ing = self.conn(srv.ingest_port)
        sizes = [16383, 16384, 16385, 40000, 150000, 10, 70000]
        payloads = []
        for i, n in enumerate(sizes):
            p = ('%d:' % i + 'x' * n)[:n]
            payloads.append(p)
            ing.pub('big/%d' % i, p)
        ing.sync()
        for i, p in enumerate(payloads):
            m = sub.expect(r'^MSG big/%d \d+ (.*)$' % i, timeout=10)
            self.assertEqual(len(m.group(1)), len(p))
            self.assertEqual(m.group(1), p)


class ClientCertificates(TLSCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_ca = cls.pki.ca('other')
        cls.alice = cls.pki.cert('alice', 'ca', 'alice', server=False)
        cls.mallory = cls.pki.cert('mallory', 'other', 'mallory',
                                   server=False)

    def refused(self, ctx):
        """The handshake, or the first read after it (TLS 1.3 refuses a
        client's certificate after the client thinks it is done), fails."""
        try:
            c = TLSConn(self.tls_port, ctx, hello=False)
        except (ssl.SSLError, ConnectionError):
            return True
        try:
            line = c.recv_line(5)
            return line is None
        except (ssl.SSLError, ConnectionError):
            return True
        finally:
            c.close()

    def test_client_cert_required(self):
        """With tls.client_ca: no certificate, or one from another CA, is
        refused; one the CA signed is accepted, and its CN is the peer's."""
        srv = self.tls_server({'tls.client_ca': self.ca})
        self.assertTrue(self.refused(client_ctx(self.ca)))
        self.assertTrue(self.refused(client_ctx(self.ca, *self.mallory)))
        alice = client_ctx(self.ca, *self.alice)
        c = self.tls(alice)
        self.assertEqual(c.cmd('PING'), ['PONG'])
        wait_for(lambda: 'peer CN "alice"' in srv.log(),
                 what='the peer CN in the debug log')
        self.assertNotIn('peer CN "mallory"', srv.log())
        wait_for(lambda: stat(srv, 'tls_handshake_failures') >= 2,
                 what='both refusals counted')
        # a resumed session keeps its verified peer
        sess = c.sock.session
        c2 = self.tls(alice, session=sess)
        self.assertTrue(c2.sock.session_reused)
        self.assertEqual(c2.cmd('PING'), ['PONG'])


    def test_cert_user(self):
        """auth.cert_user: the verified certificate's CN is the user, with
        its ACL permissions, before HELLO (which asks for no AUTH); a CN
        that cannot be a user leaves the connection to AUTH."""
        acl = self.pki.path('cert.acl')
        with open(acl, 'w') as f:
            f.write('user alice\nread plant/#\n')
        bad = self.pki.cert('bad', 'ca', 'not:a:user', server=False)
        srv = self.tls_server({'tls.client_ca': self.ca,
                               'auth.cert_user': 'true',
                               'auth.required': 'true', 'auth.acl': acl})
        c = self.tls(client_ctx(self.ca, *self.alice))
        self.assertNotIn('auth', c.hello)
        c.sub('plant/#')
        self.assertErr(c.cmd('SUB secret/#')[0], 'forbidden', 'secret/#')
        d = self.tls(client_ctx(self.ca, *bad))
        self.assertTrue(d.hello.endswith(' auth'), d.hello)
        self.assertEqual(d.cmd('SUB plant/#'), ['-ERR auth-required SUB'])
        # the plaintext listener knows no certificate: AUTH is required
        p = self.conn(srv.port)
        self.assertTrue(p.hello.endswith(' auth'), p.hello)


class Reload(TLSCase):

    def test_new_certificate_on_hup(self):
        """HUP with a new certificate: new handshakes show it, an
        established connection keeps receiving; a bad one on HUP is
        refused, logged, and the one in use stays."""
        srv = self.tls_server()
        old = self.tls()
        old.sub('r/#')
        fp_old = old.fingerprint()
        cert2, key2 = self.pki.cert('server2', 'ca', 'localhost')
        with open(cert2, 'rb') as f:
            c2 = f.read()
        with open(key2, 'rb') as f:
            k2 = f.read()
        # new files at the configured paths, as an operator renews
        cert_path, key_path = srv.overrides['tls.cert'], srv.overrides[
            'tls.key']
        with open(cert_path + '.new', 'wb') as f:
            f.write(c2)
        with open(key_path + '.new', 'wb') as f:
            f.write(k2)
        os.replace(key_path + '.new', key_path)
        os.replace(cert_path + '.new', cert_path)
        srv.signal(signal.SIGHUP)

        def new_seen():
            c = TLSConn(self.tls_port, client_ctx(self.ca))
            try:
                return c.fingerprint() != fp_old
            finally:
                c.close()
        # every worker must have it: several connections in a row
        wait_for(lambda: all(new_seen() for _ in range(8)),
                 what='the new certificate on new connections')
        fp_new = TLSConn(self.tls_port, client_ctx(self.ca)).fingerprint()
        ing = self.conn(srv.ingest_port)
        ing.pub('r/1', 'after reload')
        old.expect(r'^MSG r/1 \d+ after reload$')
        self.assertEqual(old.fingerprint(), fp_old)
        # a broken certificate on HUP: refused, the new one stays
        with open(cert_path, 'w') as f:
            f.write('not a certificate\n')
        srv.signal(signal.SIGHUP)
        wait_for(lambda: srv.log().count('TLS keeps the certificate it '
                                         'has') >= 3,
                 what='the refusal logged by the master and both workers')
        for _ in range(6):
            c = TLSConn(self.tls_port, client_ctx(self.ca))
            self.assertEqual(c.fingerprint(), fp_new)
            c.close()
        ing.pub('r/2', 'still')
        old.expect(r'^MSG r/2 \d+ still$')

    def setUp(self):
        # this class rewrites the certificate files: a copy of its own
        pki = PKI()
        self.addCleanup(pki.cleanup)
        for n in ('server.pem', 'server.key'):
            shutil.copy(self.pki.path(n), pki.path(n))
        self.cert, self.key = pki.path('server.pem'), pki.path('server.key')


class Resumption(TLSCase):

    def test_resumption_across_workers(self):
        """A session made with one worker resumes on any, after a reload
        too: reconnect with it until each of the 2 workers has resumed
        one."""
        srv = self.tls_server(workers=2)
        # After a reload each worker has a context of its own: only the
        # ticket keys the master gave them all make the sessions common.
        srv.signal(signal.SIGHUP)
        wait_for(lambda: srv.log().count('configuration reloaded') >= 2,
                 what='both workers reloaded')
        ctx = client_ctx(self.ca)
        first = self.tls(ctx)
        first.cmd('PING')       # (TLS 1.3: the ticket comes after HELLO)
        sess = first.sock.session
        self.assertIsNotNone(sess)
        resumed_on = set()
        for _ in range(200):
            c = TLSConn(self.tls_port, ctx, session=sess)
            try:
                if c.sock.session_reused:
                    role = srv.worker_of([c], port=self.tls_port)[c]
                    if role:
                        resumed_on.add(role)
            finally:
                c.close()
            if len(resumed_on) == 2:
                break
        self.assertEqual(resumed_on, {'worker 1', 'worker 2'})
        self.assertGreaterEqual(stat(srv, 'tls_resumed'), 2)
        self.assertRegex(srv.log(), r'worker 1 debug: .*resumed')
        self.assertRegex(srv.log(), r'worker 2 debug: .*resumed')

    def test_upgrade_resumes(self):
        """An upgrade tells a TLS client BYE restart (its state cannot
        move), while a plaintext one moves; the session resumes on the new
        master, whose workers have the ticket keys."""
        srv = self.tls_server(workers=2)
        ctx = client_ctx(self.ca)
        c = self.tls(ctx)
        c.cmd('PING')           # (TLS 1.3: the ticket comes after HELLO)
        sess = c.sock.session
        plain = srv.connect()
        plain.cmd('SUB t/#')
        r = subprocess.run([ht.HERALDD, '-o', 'pidfile=%s' % srv.pidfile,
                            '-s', 'upgrade'], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = c.read_until(lambda l: l.startswith('BYE'), timeout=5)
        self.assertEqual(lines[-1], 'BYE restart')
        again = TLSConn(self.tls_port, ctx, session=sess)
        self.addCleanup(again.close)
        self.assertTrue(again.sock.session_reused)
        self.assertEqual(again.cmd('PING x')[-1], 'PONG x')
        self.assertEqual(plain.cmd('PING y')[-1], 'PONG y')
        self.assertEqual(stat(srv, 'handover_restarts'), 1)
        plain.close()

    def test_tls12_resumption(self):
        """TLS 1.2 tickets resume too."""
        srv = self.tls_server(workers=2)
        ctx = client_ctx(self.ca, maximum=ssl.TLSVersion.TLSv1_2)
        first = self.tls(ctx)
        sess = first.sock.session
        reused = 0
        for _ in range(6):
            c = TLSConn(self.tls_port, ctx, session=sess)
            reused += c.sock.session_reused
            c.close()
        self.assertEqual(reused, 6)
        self.assertGreaterEqual(stat(srv, 'tls_resumed'), 6)


class SlowTLS(TLSCase):

    def burst(self, policy):
        """A TLS subscriber that reads nothing while a burst is published,
        then reads it all."""
        # small socket buffers: the burst is far more than they hold
        self.tls_server({'clients.slow_policy': policy,
                         'clients.out_limit': '256K', 'bus.size': '8M',
                         'tcp.sndbuf': '8K'}, workers=1)
        srv = self._servers[-1]
        sub = self.tls(rcvbuf=4096)
        sub.sub('s/#')
        ing = self.conn(srv.ingest_port)
        n = 3000
        for i in range(n):
            ing.sendline('PUB s/%d %s' % (i % 10, ('%d-' % i) * 60))
        last = ing.sync()
        first = last - n + 1
        time.sleep(1)           # the server fills the socket and waits
        return sub, first, last

    def test_slow_tls_subscriber_conflate(self):
        """Under conflate, every seq of the burst is accounted for in
        order: a MSG, or within a GAP (then VALs); nothing lost silently."""
        sub, first, last = self.burst('conflate')
        covered, prev, gaps = set(), 0, 0
        while last not in covered:
            ln = sub.line(timeout=20)
            g = ht.parse_gap(ln)
            if g:
                self.assertGreater(g[0], prev, 'GAP before what was sent')
                gaps += 1
                covered.update(range(g[0], g[1] + 1))
                prev = g[1]
                continue
            m = ht.parse_msg(ln)
            self.assertIsNotNone(m, ln)
            # a VAL is a topic's newest value up to the GAP's end
            self.assertEqual(m[3], ('%d-' % (m[2] - first)) * 60)
            if m[0] == 'VAL':
                self.assertLessEqual(m[2], prev)
                continue
            self.assertGreater(m[2], prev, 'MSG out of order')
            prev = m[2]
            covered.add(m[2])
        self.assertGreater(gaps, 0, 'the burst did not make it slow')
        self.assertEqual(set(range(first, last + 1)) - covered, set())

    def test_slow_tls_subscriber_disconnect(self):
        """Under disconnect: what comes before BYE slow-consumer is in
        order, whole, and without holes."""
        sub, first, last = self.burst('disconnect')
        prev = None
        while True:
            ln = sub.recv_line(timeout=20)
            if ln is None or ln == 'BYE slow-consumer':
                break
            m = ht.parse_msg(ln)
            self.assertIsNotNone(m, ln)
            if prev is not None:
                self.assertEqual(m[2], prev + 1)
            self.assertEqual(m[3], ('%d-' % (m[2] - first)) * 60)
            prev = m[2]
            self.assertLess(prev, last, 'the whole burst came: not slow')
        self.assertIsNotNone(prev)
        self.assertEqual(ln, 'BYE slow-consumer')

    def test_slow_tls_subscriber_keeps_up(self):
        """A slow reader within out_limit gets every seq in order."""
        self.tls_server({'clients.out_limit': '64M', 'bus.size': '16M',
                         'tcp.sndbuf': '8K'}, workers=1)
        srv = self._servers[-1]
        sub = self.tls(rcvbuf=4096)
        sub.sub('k/#')
        ing = self.conn(srv.ingest_port)
        n = 4000
        done = threading.Event()

        def publish():
            for i in range(n):
                ing.sendline('PUB k/%d %s' % (i % 7, 'y' * (1 + i % 300)))
            done.set()
        t = threading.Thread(target=publish, daemon=True)
        t.start()
        prev = None
        count = 0
        while count < n:
            if count % 500 == 0:
                time.sleep(0.2)         # slow: the server must wait
            m = ht.parse_msg(sub.line(timeout=20))
            self.assertIsNotNone(m)
            if prev is not None:
                self.assertEqual(m[2], prev + 1)
            prev = m[2]
            self.assertEqual(len(m[3]), 1 + count % 300)
            count += 1
        t.join(10)


class ConfigCheck(TLSCase):

    def check(self, *opts):
        argv = [ht.HERALDD, '-t', '-o', 'bus.file=', '-o', 'pidfile=']
        for o in opts:
            argv += ['-o', o]
        p = subprocess.run(argv, capture_output=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        return p.returncode, (p.stdout + p.stderr).decode('latin-1')

    def test_good(self):
        rc, out = self.check('listen=tls:127.0.0.1:7400,tls:[::1]:7400',
                             'tls.cert=' + self.cert, 'tls.key=' + self.key,
                             'tls.client_ca=' + self.ca,
                             'tls.min_version=1.3',
                             'tls.ciphers=ECDHE+AESGCM')
        self.assertEqual(rc, 0, out)
        # the key in the certificate's file
        both = self.pki.path('both.pem')
        with open(both, 'w') as f:
            f.write(open(self.cert).read() + open(self.key).read())
        rc, out = self.check('listen=tls:127.0.0.1:7400', 'tls.cert=' + both)
        self.assertEqual(rc, 0, out)

    def test_errors(self):
        other_cert, other_key = self.pki.cert('other', 'ca', 'other')
        unreadable = self.pki.path('unreadable.pem')
        shutil.copy(self.key, unreadable)
        os.chmod(unreadable, 0)
        garbage = self.pki.path('garbage.pem')
        with open(garbage, 'w') as f:
            f.write('-----BEGIN CERTIFICATE-----\nnope\n')
        L = 'listen=tls:127.0.0.1:7400'
        C, K = 'tls.cert=' + self.cert, 'tls.key=' + self.key
        cases = [
            ((L,), r'tls\.cert: a tls: listener needs a certificate'),
            ((L, 'tls.cert=/nonexistent/c.pem', K),
             r'tls\.cert: /nonexistent/c\.pem: No such file'),
            ((L, C, 'tls.key=' + other_key),
             r'tls\.key: .*other\.key: does not match the certificate'),
            ((L, 'tls.cert=' + garbage, K),
             r'tls\.cert: .*garbage\.pem: no PEM certificate'),
            ((L, C), r'tls\.cert: .*server\.pem: no PEM private key'),
            ((L, C, K, 'tls.client_ca=' + garbage),
             r'tls\.client_ca: .*garbage\.pem: '),
            ((L, C, K, 'tls.min_version=1.1'),
             r'tls\.min_version: "1\.1" is not 1\.2 or 1\.3'),
            ((L, C, K, 'tls.ciphers=NOPE-NOTHING'),
             r'tls\.ciphers: "NOPE-NOTHING": '),
            (('ingest=tls:unix:/tmp/x', C, K),
             r'TLS is for TCP listeners only'),
            (('listen=tls:127.0.0.1', C, K), r'expected host:port'),
        ]
        if os.geteuid() != 0:
            cases.append(((L, C, 'tls.key=' + unreadable),
                          r'tls\.key: .*unreadable\.pem: Permission denied'))
        for opts, want in cases:
            with self.subTest(opts=opts):
                rc, out = self.check(*opts)
                self.assertEqual(rc, 1, out)
                self.assertRegex(out, want)


if __name__ == '__main__':
    ht.main()
