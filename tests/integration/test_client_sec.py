#!/usr/bin/env python3
"""herald integration: the client side of security (libherald and
herald(1)) against the real daemon.  TLS: the server's certificate checked
against a CA file (a wrong CA, the system's store, a certificate for
another name refused, each with exit 5 and OpenSSL's reason), a client
certificate, unusable files, a session resumed when the client
reconnects.  AUTH: a password (right, wrong: exit 4; from
$HERALD_PASSWORD and from the terminal), a token (--token and
$HERALD_TOKEN), none where the server requires one, a token renewed by
libherald's callback on a live subscription past the first token's expiry,
BYE auth-expired without renewal, and a reconnect that authenticates again
before it resumes.

Certificates are made by the test with the openssl command.  A group of
tests is skipped only when heraldd lacks its settings (heraldd -o help
lists no tls.cert, or no auth.users).  Python 3 standard library only.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402
from test_client import Proc  # noqa: E402
from test_auth_cli import on_terminal  # noqa: E402

BUILDDIR = ht.BUILDDIR
HERALD = ht.HERALD
SEC_CLIENT = os.path.join(BUILDDIR, 'tests', 'integration', 'sec_client')
RUN_TIMEOUT = 20
FAST = {'shutdown_grace': 1}
EXIT_FAIL, EXIT_AUTH, EXIT_TLS = 3, 4, 5
SECRET = b'k' * 40 + b'\n'          # an HS256 key file
PASSWORD = 'pw-of-bob'


def server_settings():
    """The settings heraldd knows (heraldd -o help)."""
    if not ht.have_daemon():
        return set()
    p = subprocess.run([ht.HERALDD, '-o', 'help'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return {ln.split()[0] for ln in p.stdout.decode().splitlines()
            if ln.strip()}


SETTINGS = server_settings()


def run(argv, stdin=b'', env=None, timeout=RUN_TIMEOUT):
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env)
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


def openssl(*args):
    subprocess.run(('openssl',) + args, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Pki:
    """Two CAs (the good one and a stranger), a server certificate for
    localhost and 127.0.0.1, one for another name only, and client
    certificates from each CA."""

    def __init__(self, d):
        self.d = d
        self.ca = self.make_ca('ca')
        self.other_ca = self.make_ca('other-ca')
        self.srv = self.issue('srv', 'ca', 'localhost',
                              'DNS:localhost,IP:127.0.0.1')
        self.wrong_name = self.issue('wrong', 'ca', 'other.test',
                                     'DNS:other.test')
        self.client = self.issue('client', 'ca', 'bob', None)
        self.stranger = self.issue('stranger', 'other-ca', 'bob', None)

    def path(self, name):
        return os.path.join(self.d, name)

    def make_ca(self, name):
        openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt',
                'ec_paramgen_curve:P-256', '-nodes', '-keyout',
                self.path(name + '.key'), '-out', self.path(name + '.pem'),
                '-days', '2', '-subj', '/CN=herald test ' + name)
        return self.path(name + '.pem')

    def issue(self, name, ca, cn, san):
        key, csr, pem = (self.path(name + x) for x in ('.key', '.csr',
                                                        '.pem'))
        openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=' + cn)
        args = ['x509', '-req', '-in', csr, '-CA', self.path(ca + '.pem'),
                '-CAkey', self.path(ca + '.key'), '-CAcreateserial',
                '-out', pem, '-days', '2']
        if san:
            ext = self.path(name + '.ext')
            with open(ext, 'w') as f:
                f.write('subjectAltName=%s\n' % san)
            args += ['-extfile', ext]
        openssl(*args)
        return pem, key


class SecTest(ht.HeraldTestCase):

    NEEDS = ()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for prog in (HERALD, SEC_CLIENT):
            if not os.access(prog, os.X_OK):
                raise unittest.SkipTest('no %s' % prog)
        for s in cls.NEEDS:
            if s not in SETTINGS:
                raise unittest.SkipTest('heraldd has no %s setting yet' % s)
        cls.dir = tempfile.mkdtemp(prefix='herald-sec-')
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)

    def herald(self, *args, env=None, stdin=b''):
        return run([HERALD] + list(args), stdin=stdin, env=env)

    def sub(self, *args, env=None):
        p = Proc([HERALD] + list(args), env=env)
        self.addCleanup(p.kill)
        return p

    def pub(self, srv, topic, payload):
        """Publish through the trusted loopback ingest listener."""
        rc, out, err = self.herald('-i', '127.0.0.1:%d' % srv.ingest_port,
                                   *self.ingest_auth(), 'pub', topic,
                                   payload)
        self.assertEqual(rc, 0, err)

    def ingest_auth(self):
        return ()


# --- TLS ------------------------------------------------------------------

class Tls(SecTest):

    NEEDS = ('tls.cert',)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if shutil.which('openssl') is None:
            raise unittest.SkipTest('no openssl command')
        cls.pki = Pki(cls.dir)

    def tls_server(self, cert=None, **extra):
        cert, key = cert or self.pki.srv
        srv = self.server(dict(FAST, **extra), start=False)
        srv.tls_port = ht.free_port()
        srv.overrides.update({
            'listen': '127.0.0.1:%d,tls:127.0.0.1:%d' % (srv.port,
                                                         srv.tls_port),
            'tls.cert': cert, 'tls.key': key})
        srv.start()
        return srv

    def get(self, srv, host, *opts):
        return self.herald('-s', '%s:%d' % (host, srv.tls_port), *opts,
                           'get', 'tl/a')

    def test_ca_file_verifies_the_server(self):
        srv = self.tls_server()
        self.pub(srv, 'tl/a', 'secret value')
        for host in ('127.0.0.1', 'localhost'):
            with self.subTest(host=host):
                rc, out, err = self.get(srv, host, '--ca', self.pki.ca)
                self.assertEqual((rc, out, err), (0, 'secret value\n', ''))
        # and a subscription: snapshot, then live
        p = self.sub('-s', 'localhost:%d' % srv.tls_port, '--ca',
                     self.pki.ca, 'sub', '-c', '2', 'tl/#')
        self.assertEqual(p.lines(1), ['tl/a secret value'])
        self.pub(srv, 'tl/b', 'live')
        self.assertEqual(p.lines(2)[1], 'tl/b live')
        self.assertEqual(p.wait(), 0)

    def test_wrong_ca_and_system_store_refuse(self):
        srv = self.tls_server()
        for opts in (('--ca', self.pki.other_ca), ('--tls',)):
            with self.subTest(opts=opts):
                rc, out, err = self.get(srv, '127.0.0.1', *opts)
                self.assertEqual((rc, out), (EXIT_TLS, ''), err)
                self.assertIn("the server's certificate does not verify: "
                              "unable to get local issuer certificate", err)

    def test_certificate_for_another_name_refused(self):
        srv = self.tls_server(cert=self.pki.wrong_name)
        for host, why in (('127.0.0.1', 'IP address mismatch'),
                          ('localhost', 'hostname mismatch')):
            with self.subTest(host=host):
                rc, out, err = self.get(srv, host, '--ca', self.pki.ca)
                self.assertEqual(rc, EXIT_TLS, err)
                self.assertIn('TLS handshake with %s:%d: the server\'s '
                              'certificate does not verify: %s' %
                              (host, srv.tls_port, why), err)

    def test_client_certificate(self):
        srv = self.tls_server(**{'tls.client_ca': self.pki.ca})
        self.pub(srv, 'tl/a', 'for bob')
        cert, key = self.pki.client
        rc, out, err = self.get(srv, 'localhost', '--ca', self.pki.ca,
                                '--cert', cert, '--key', key)
        self.assertEqual((rc, out, err), (0, 'for bob\n', ''))
        # the certificate and its key in one file
        both = os.path.join(self.dir, 'client-both.pem')
        with open(both, 'w') as f:
            f.write(open(cert).read() + open(key).read())
        rc, out, err = self.get(srv, 'localhost', '--cert', both,
                                '--ca', self.pki.ca)
        self.assertEqual((rc, out, err), (0, 'for bob\n', ''))
        # none, or one from a CA the server does not take
        for opts in ((), ('--cert', self.pki.stranger[0], '--key',
                          self.pki.stranger[1])):
            with self.subTest(opts=opts):
                rc, out, err = self.get(srv, 'localhost', '--ca',
                                        self.pki.ca, *opts)
                self.assertEqual((rc, out), (EXIT_TLS, ''), err)
                self.assertRegex(err, r'herald: TLS (handshake )?with '
                                 r'localhost:\d+(:| failed:) \S')

    def test_unusable_files(self):
        srv = self.tls_server()
        missing = os.path.join(self.dir, 'missing.pem')
        cert, key = self.pki.client
        for opts, want in (
                (('--ca', missing), 'cannot use the CA file ' + missing),
                (('--ca', self.pki.ca, '--cert', missing),
                 'cannot use the certificate ' + missing),
                (('--ca', self.pki.ca, '--cert', cert, '--key',
                  self.pki.stranger[1]), 'cannot use the key ')):
            with self.subTest(opts=opts):
                rc, out, err = self.get(srv, 'localhost', *opts)
                self.assertEqual(rc, EXIT_TLS, err)
                self.assertIn(want, err)
        rc, out, err = self.get(srv, 'localhost', '--key', key)
        self.assertEqual(rc, 2)
        self.assertIn('--key needs --cert', err)
        rc, out, err = self.herald('-s', 'unix:/tmp/nothing', '--tls',
                                   'get', 'tl/a')
        self.assertEqual(rc, 2)
        self.assertIn('TLS needs a HOST:PORT address', err)

    def test_plain_client_on_a_tls_port_fails_cleanly(self):
        srv = self.tls_server()
        rc, out, err = self.herald('-t', '2', '-s', '127.0.0.1:%d' %
                                   srv.tls_port, 'get', 'tl/a')
        self.assertEqual(rc, EXIT_FAIL, err)

    def test_reconnect_resumes_the_session_and_the_stream(self):
        srv = self.tls_server(workers=1)
        self.pub(srv, 'tr/x', '0')
        p = Proc([SEC_CLIENT, 'localhost:%d' % srv.tls_port, 'tr/#', '6',
                  '', self.pki.ca])
        self.addCleanup(p.kill)
        self.assertIn('MSG tr/x 0', p.lines(3))   # CONNECTED, SUB, MSG
        resumed = int(srv.stats()['tls_resumed'])
        old = srv.kill_child('worker 1')
        srv.wait_role('worker 1', not_pid=old)
        for k in range(1, 6):
            self.pub(srv, 'tr/x', str(k))
        self.assertEqual(p.wait(), 0, p.stderr())
        text = p.buf['out'].decode()
        self.assertEqual(re.findall(r'MSG tr/x (\d+)', text),
                         [str(k) for k in range(6)])
        self.assertIn('EVENT DISCONNECTED', text)
        self.assertGreater(int(srv.stats()['tls_resumed']), resumed)


# --- AUTH -----------------------------------------------------------------

class Auth(SecTest):

    NEEDS = ('auth.users', 'auth.jwt_keys', 'auth.required')

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = os.path.join(cls.dir, 'users')
        rc, out, err = run([HERALD, 'passwd', cls.users, 'bob'],
                           PASSWORD.encode() + b'\n')
        assert rc == 0, err
        cls.key = os.path.join(cls.dir, 'hs256.key')
        with open(cls.key, 'wb') as f:
            f.write(SECRET)
        cls.acl = os.path.join(cls.dir, 'acl')
        with open(cls.acl, 'w') as f:
            f.write('user *\nread #\npublish #\n')
        cls.pub_token = cls.token(3600)

    @classmethod
    def token(cls, exp, sub='bob'):
        rc, out, err = run([HERALD, 'token', '--key', cls.key, '--sub', sub,
                            '--exp', str(exp), '--read', '#', '--publish',
                            '#'])
        assert rc == 0, err
        return out.strip()

    def ingest_auth(self):
        return ('--token', self.pub_token)

    def auth_server(self, **extra):
        o = dict(FAST, **{'auth.users': self.users,
                          'auth.jwt_keys': self.key,
                          'auth.required': 'true'})
        if 'auth.acl' in SETTINGS:
            o['auth.acl'] = self.acl
        o.update(extra)
        return self.server(o)

    def env(self, **kw):
        e = {k: v for k, v in os.environ.items()
             if k not in ('HERALD_PASSWORD', 'HERALD_TOKEN')}
        e.update(kw)
        return e

    def get(self, srv, *opts, env=None):
        return self.herald('-s', '127.0.0.1:%d' % srv.port, *opts, 'get',
                           'au/a', env=env or self.env())

    def test_password(self):
        srv = self.auth_server()
        self.pub(srv, 'au/a', 'v1')
        rc, out, err = self.get(srv, '--user', 'bob',
                                env=self.env(HERALD_PASSWORD=PASSWORD))
        self.assertEqual((rc, out, err), (0, 'v1\n', ''))
        rc, out, err = self.get(srv, '--user', 'bob',
                                env=self.env(HERALD_PASSWORD='wrong'))
        self.assertEqual((rc, out), (EXIT_AUTH, ''))
        self.assertEqual(err, 'herald: 127.0.0.1:%d refused the password '
                         'of bob: -ERR auth-failed\n' % srv.port)

    def test_password_asked_on_the_terminal(self):
        srv = self.auth_server()
        self.pub(srv, 'au/a', 'typed')
        rc, text = on_terminal(
            [HERALD, '-s', '127.0.0.1:%d' % srv.port, '--user', 'bob', 'get',
             'au/a'], [PASSWORD.encode()], env=self.env(), controlling=True)
        self.assertEqual(rc, 0, text)
        self.assertIn('Password for bob: ', text)
        self.assertNotIn(PASSWORD, text)
        self.assertIn('typed', text)

    def test_no_password_and_no_terminal(self):
        srv = self.auth_server()
        p = subprocess.run([HERALD, '-s', '127.0.0.1:%d' % srv.port,
                            '--user', 'bob', 'get', 'au/a'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env(),
                           start_new_session=True, timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b'no $HERALD_PASSWORD and no terminal', p.stderr)

    def test_token_from_option_and_environment(self):
        srv = self.auth_server()
        self.pub(srv, 'au/a', 'tok')
        tok = self.token(600)
        rc, out, err = self.get(srv, '--token', tok)
        self.assertEqual((rc, out, err), (0, 'tok\n', ''))
        rc, out, err = self.get(srv, env=self.env(HERALD_TOKEN=tok))
        self.assertEqual((rc, out, err), (0, 'tok\n', ''))
        # --user wins over $HERALD_TOKEN
        rc, out, err = self.get(srv, '--user', 'bob', env=self.env(
            HERALD_TOKEN='not.a.token', HERALD_PASSWORD=PASSWORD))
        self.assertEqual((rc, out, err), (0, 'tok\n', ''))
        bad = tok[:-2] + ('AA' if not tok.endswith('AA') else 'BB')
        rc, out, err = self.get(srv, '--token', bad)
        self.assertEqual(rc, EXIT_AUTH, err)
        self.assertIn('refused the token: -ERR auth-failed', err)

    def test_server_requires_auth_and_none_given(self):
        srv = self.auth_server()
        rc, out, err = self.get(srv)
        self.assertEqual(rc, EXIT_AUTH)
        self.assertIn('requires AUTH', err)

    def test_failed_auth_is_not_retried(self):
        # A subscriber that reconnects by itself makes one attempt only.
        srv = self.auth_server()
        p = self.sub('-s', '127.0.0.1:%d' % srv.port, '--user', 'bob',
                     'sub', 'au/#', env=self.env(HERALD_PASSWORD='wrong'))
        self.assertEqual(p.wait(), EXIT_AUTH)
        self.assertEqual(p.stderr().count('auth-failed'), 1, p.stderr())

    def test_token_refreshed_on_a_live_subscription(self):
        life = 4
        srv = self.auth_server()
        cmd = '%s token --key %s --sub bob --exp %d --read "#"' % (
            HERALD, self.key, life)
        env = self.env(HERALD_TOKEN=self.token(life))
        t0 = time.monotonic()
        n = 12
        p = Proc([SEC_CLIENT, '127.0.0.1:%d' % srv.port, 'rf/#', str(n),
                  cmd], env=env)
        self.addCleanup(p.kill)
        p.lines(2)      # EVENT AUTH, EVENT CONNECTED
        for k in range(n):
            self.pub(srv, 'rf/x', str(k))
            time.sleep(0.8)
        self.assertEqual(p.wait(), 0, p.stderr())
        took = time.monotonic() - t0
        self.assertGreater(took, life + 2)     # past the first exp
        text = p.buf['out'].decode()
        self.assertEqual(re.findall(r'MSG rf/x (\d+)', text),
                         [str(k) for k in range(n)])
        self.assertNotIn('DISCONNECTED', text)
        self.assertNotIn('auth-expired', text)
        self.assertGreaterEqual(text.count('REFRESH'), 2, text)
        # every renewal answered +OK AUTH: one AUTH event each, and one
        # for the connection
        self.assertEqual(text.count('EVENT AUTH'), text.count('REFRESH') + 1,
                         text)

    def test_auth_expired_without_refresh(self):
        srv = self.auth_server()
        p = self.sub('-s', '127.0.0.1:%d' % srv.port, '--token',
                     self.token(2), 'sub', 'ex/#', env=self.env())
        self.assertEqual(p.wait(timeout=15), EXIT_AUTH)
        self.assertIn('the token expired (BYE auth-expired)', p.stderr())
        # libherald reports it as its own error
        p = Proc([SEC_CLIENT, '127.0.0.1:%d' % srv.port, 'ex/#', '1', ''],
                 env=self.env(HERALD_TOKEN=self.token(2)))
        self.addCleanup(p.kill)
        self.assertEqual(p.wait(timeout=15), 14)    # -HERALD_EEXPIRED
        self.assertIn('EVENT DISCONNECTED -14', p.buf['out'].decode())

    def test_reconnect_authenticates_then_resumes(self):
        srv = self.auth_server()
        self.pub(srv, 'rc/x', '0')
        p = self.sub('-s', '127.0.0.1:%d' % srv.port, '--user', 'bob', 'sub',
                     '-f', 'json', 'rc/#',
                     env=self.env(HERALD_PASSWORD=PASSWORD))
        self.assertEqual(len(p.lines(1)), 1)
        for k in range(1, 4):
            self.pub(srv, 'rc/x', str(k))
        self.assertEqual(len(p.lines(4)), 4)
        srv.restart()
        for k in range(4, 8):
            self.pub(srv, 'rc/x', str(k))
        import json
        got = [json.loads(ln) for ln in p.lines(8, timeout=15)[1:]]
        self.assertEqual([g['payload'] for g in got],
                         [str(k) for k in range(1, 8)])
        self.assertTrue(all(g['type'] == 'msg' for g in got), got)
        p.stderr_has('reconnected to 127.0.0.1:%d' % srv.port)
        self.assertNotIn('gap', p.stderr())


if __name__ == '__main__':
    ht.main()
