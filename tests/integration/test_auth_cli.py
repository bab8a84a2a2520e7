#!/usr/bin/env python3
"""herald integration: the operator's authentication commands.  herald
passwd (from the standard input and from a terminal without echo, a new
file mode 0600, a user replaced in place or added, other lines and the
mode kept, errors leaving the file alone) checked with Python's crypt(3)
and with the daemon's own users module; herald token (HS256 checked with
Python's hmac, ES256 with an EC key made by the openssl command) checked
with the daemon's own token checker (tests/integration/auth_check).

No daemon is started.  Python 3 standard library only.
"""

import base64
import fcntl
import hashlib
import hmac
import json
import os
import pty
import re
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import termios
import time
import unittest
import warnings

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)
    import crypt  # noqa: E402  (deprecated; in Debian 12's python3.11)

BUILDDIR = ht.BUILDDIR
SRCDIR = ht.SRCDIR
HERALD = ht.HERALD
CHECK = os.path.join(BUILDDIR, 'tests', 'integration', 'auth_check')
RUN_TIMEOUT = 30        # yescrypt takes a few tens of ms; a loaded machine
SECRET = b'0123456789abcdef0123456789abcdef'


def b64url(s):
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


def run(argv, stdin=b''):
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


def on_terminal(argv, answers, env=None, controlling=False):
    """Run argv on a new pseudo-terminal (its controlling terminal too if
    controlling, for a program that opens /dev/tty), typing each answer
    after a prompt ends in ': '; (status, everything it showed)."""
    master, slave = pty.openpty()

    def take_tty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True, env=env,
                            preexec_fn=take_tty if controlling else None)
    os.close(slave)
    text, pending = b'', list(answers)
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                text += data
                if pending and text.endswith(b': '):
                    os.write(master, pending.pop(0) + b'\n')
            elif proc.poll() is not None:
                break
        return proc.wait(RUN_TIMEOUT), text.decode('utf-8', 'replace')
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)


class AuthCli(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        for prog in (HERALD, CHECK):
            if not os.access(prog, os.X_OK):
                raise unittest.SkipTest('no %s' % prog)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='herald-auth-')
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data, mode=0o600):
        p = self.path(name)
        with open(p, 'wb') as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def passwd(self, path, user, stdin):
        return run([HERALD, 'passwd', path, user], stdin)

    def users_check(self, path, user, pw):
        rc, out, err = run([CHECK, 'users', path, user], pw.encode() + b'\n')
        return out.strip()

    def lines(self, path):
        with open(path) as f:
            return f.read().splitlines()

    # --- herald passwd ----------------------------------------------------

    def test_passwd_new_file(self):
        p = self.path('users')
        rc, out, err = self.passwd(p, 'alice', b'correct horse\n')
        self.assertEqual((rc, out, err), (0, '', ''))
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600)
        lines = self.lines(p)
        self.assertEqual(len(lines), 1)
        user, h = lines[0].split(':', 1)
        self.assertEqual(user, 'alice')
        self.assertRegex(h, r'^\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+\$'
                         r'[./0-9A-Za-z]{43}$')
        self.assertEqual(crypt.crypt('correct horse', h), h)
        self.assertNotEqual(crypt.crypt('correct horse ', h), h)
        self.assertEqual(self.users_check(p, 'alice', 'correct horse'), 'ok')
        self.assertEqual(self.users_check(p, 'alice', 'correct'),
                         'wrong password')
        self.assertEqual(self.users_check(p, 'bob', 'correct horse'),
                         'unknown user')
        # No temporary file is left behind.
        self.assertEqual(os.listdir(self.dir), ['users'])

    def test_passwd_replaces_and_adds(self):
        bob = crypt.crypt('bobs pw', crypt.mksalt(crypt.METHOD_SHA512))
        p = self.write('users', ('# our users\nalice:%s\nbob:%s\n' % (
            crypt.crypt('old', crypt.mksalt(crypt.METHOD_SHA512)),
            bob)).encode(), 0o640)
        rc, out, err = self.passwd(p, 'alice', b'new\r\n')
        self.assertEqual((rc, err), (0, ''))
        lines = self.lines(p)
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[0], '# our users')
        self.assertTrue(lines[1].startswith('alice:$y$'))
        self.assertEqual(lines[2], 'bob:' + bob)
        self.assertEqual(self.users_check(p, 'alice', 'new'), 'ok')
        self.assertEqual(self.users_check(p, 'alice', 'old'),
                         'wrong password')
        self.assertEqual(self.users_check(p, 'bob', 'bobs pw'), 'ok')
        # The mode of an existing file is kept.
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o640)
        rc, out, err = self.passwd(p, 'carol@example.com', b'c pw\n')
        self.assertEqual(rc, 0, err)
        lines = self.lines(p)
        self.assertEqual(len(lines), 4)
        self.assertTrue(lines[3].startswith('carol@example.com:$y$'))
        self.assertEqual(self.users_check(p, 'carol@example.com', 'c pw'),
                         'ok')

    def test_passwd_terminal(self):
        """On a terminal: asked twice, never echoed."""
        p = self.path('users')
        for answers, rc_want in (((b'tty secret', b'tty secret'), 0),
                                 ((b'tty secret', b'tty secreT'), 3)):
            with self.subTest(answers=answers):
                rc, text = self.on_terminal([HERALD, 'passwd', p, 'dana'],
                                            answers)
                self.assertEqual(rc, rc_want, text)
                self.assertIn('Password: ', text)
                self.assertIn('Again: ', text)
                self.assertNotIn('secret', text)
                if rc_want:
                    self.assertIn('the passwords differ', text)
        self.assertEqual(self.users_check(p, 'dana', 'tty secret'), 'ok')

    def on_terminal(self, argv, answers):
        return on_terminal(argv, answers)

    def test_passwd_errors(self):
        p = self.write('users', b'alice:' + crypt.crypt(
            'a', crypt.mksalt(crypt.METHOD_SHA512)).encode() + b'\njunk\n')
        before = open(p, 'rb').read()
        for argv, stdin, rc_want, what in (
                (['passwd', p], b'x\n', 2, 'expected FILE and USER'),
                (['passwd', p, 'a:b'], b'x\n', 2, "bad user name 'a:b'"),
                (['passwd', p, '*'], b'x\n', 2, "bad user name '*'"),
                (['passwd', p, 'bob'], b'\n', 3, 'empty password'),
                (['passwd', p, 'bob'], b'', 3, 'no password'),
                (['passwd', p, 'bob'], b'x' * 300 + b'\n', 3, 'longer than'),
                (['passwd', p, 'bob'], b'pw\n', 3,
                 p + ':2: expected user:hash (the file is left as it was)'),
                (['passwd', self.path('no/such/dir'), 'bob'], b'pw\n', 3,
                 'No such file or directory')):
            with self.subTest(argv=argv, stdin=stdin[:10]):
                rc, out, err = run([HERALD] + argv, stdin)
                self.assertEqual((rc, out), (rc_want, ''), err)
                self.assertIn(what, err)
                self.assertNotIn('pw', err.replace(p, ''))
        self.assertEqual(open(p, 'rb').read(), before)
        self.assertEqual(sorted(os.listdir(self.dir)), ['users'])

    # --- herald token -------------------------------------------------------

    def token(self, *args):
        rc, out, err = run([HERALD, 'token'] + list(args))
        self.assertEqual((rc, err), (0, ''))
        self.assertRegex(out, r'^[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+\.'
                         r'[-_A-Za-z0-9]+\n$')
        return out.strip()

    def jwt_check(self, key, tok, *aud):
        rc, out, err = run([CHECK, 'jwt', key] + list(aud),
                           tok.encode() + b'\n')
        self.assertIn(rc, (0, 1), err)
        return out.splitlines()

    def test_token_hs256(self):
        key = self.write('hs.key', SECRET + b'\n')
        t0 = int(time.time())
        tok = self.token('--key', key, '--sub', 'alice', '--exp', '600',
                         '--aud', 'herald', '--read', 'a/#', '--read',
                         'b/+/c', '--publish', 'devices/alice/#')
        h, p, s = tok.split('.')
        # Checked here with Python's own HMAC, over the text as sent.
        want = hmac.new(SECRET, (h + '.' + p).encode(),
                        hashlib.sha256).digest()
        self.assertEqual(b64url(s), want)
        self.assertEqual(json.loads(b64url(h)),
                         {'alg': 'HS256', 'typ': 'JWT'})
        claims = json.loads(b64url(p))
        self.assertEqual(claims['sub'], 'alice')
        self.assertEqual(claims['aud'], 'herald')
        self.assertEqual(claims['exp'] - claims['iat'], 600)
        self.assertLessEqual(abs(claims['iat'] - t0), 60)
        self.assertEqual(claims['herald'], {
            'read': ['a/#', 'b/+/c'], 'publish': ['devices/alice/#']})
        # And with the daemon's checker.
        self.assertEqual(self.jwt_check(key, tok, 'herald'), [
            'ok alice %d' % claims['exp'], 'read a/#', 'read b/+/c',
            'publish devices/alice/#'])
        self.assertEqual(self.jwt_check(key, tok, 'other'),
                         ['wrong audience'])
        other = self.write('other.key', b'another secret, long enough!!!!!')
        self.assertEqual(self.jwt_check(other, tok), ['bad signature'])

    def test_token_defaults(self):
        key = self.write('hs.key', SECRET)
        tok = self.token('--key', key, '--sub', 'bob')
        claims = json.loads(b64url(tok.split('.')[1]))
        self.assertEqual(claims['exp'] - claims['iat'], 3600)
        self.assertNotIn('herald', claims)
        self.assertNotIn('aud', claims)
        self.assertEqual(self.jwt_check(key, tok),
                         ['ok bob %d' % claims['exp']])
        tok = self.token('--key', key, '--sub', 'bob', '--exp', '0',
                         '--publish', 'x')
        claims = json.loads(b64url(tok.split('.')[1]))
        self.assertNotIn('exp', claims)
        self.assertEqual(claims['herald'], {'publish': ['x']})
        self.assertEqual(self.jwt_check(key, tok), ['ok bob 0', 'publish x'])

    def test_token_es256(self):
        if shutil.which('openssl') is None:
            self.skipTest('no openssl command')
        priv, pub = self.path('ec.pem'), self.path('ec.pub')
        for argv in (['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
                      'ec_paramgen_curve:P-256', '-out', priv],
                     ['openssl', 'pkey', '-in', priv, '-pubout', '-out',
                      pub]):
            rc, out, err = run(argv)
            self.assertEqual(rc, 0, err)
        tok = self.token('--key', priv, '--sub', 'dev7', '--read',
                         'cmd/dev7/#')
        h, p, s = tok.split('.')
        self.assertEqual(json.loads(b64url(h))['alg'], 'ES256')
        self.assertEqual(len(b64url(s)), 64)        # r || s, not DER
        exp = json.loads(b64url(p))['exp']
        self.assertEqual(self.jwt_check(pub, tok),
                         ['ok dev7 %d' % exp, 'read cmd/dev7/#'])
        # An HS256 key does not check an ES256 token.
        key = self.write('hs.key', SECRET)
        self.assertEqual(self.jwt_check(key, tok),
                         ["no key for the token's algorithm"])

    def test_token_errors(self):
        key = self.write('hs.key', SECRET)
        short = self.write('short.key', b'too short\n')
        for argv, rc_want, what in (
                ([], 2, '--key and --sub are needed'),
                (['--key', key], 2, '--key and --sub are needed'),
                (['--key', key, '--sub', 'a b'], 2, "bad user name 'a b'"),
                (['--key', key, '--sub', 'a', '--read', 'a/#/b'], 2,
                 "bad pattern 'a/#/b'"),
                (['--key', key, '--sub', 'a', '--exp', '-5'], 2,
                 "bad --exp '-5'"),
                (['--key', key, '--sub', 'a', 'extra'], 2,
                 "unexpected 'extra'"),
                (['--key', self.path('none'), '--sub', 'a'], 3,
                 'No such file or directory'),
                (['--key', short, '--sub', 'a'], 3,
                 short + ': an HS256 secret of fewer than 32 bytes')):
            with self.subTest(argv=argv):
                rc, out, err = run([HERALD, 'token'] + argv)
                self.assertEqual((rc, out), (rc_want, ''), err)
                self.assertIn(what, err)
                self.assertNotIn('too short', err)

    # --- documentation ------------------------------------------------------

    def test_documented(self):
        with open(os.path.join(SRCDIR, 'man', 'herald.1')) as f:
            page = f.read()
        for cmd in ('passwd', 'token'):
            self.assertTrue(re.search(r'(?m)^\.It Cm %s\b' % cmd, page),
                            cmd)
        for opt in ('key', 'sub', 'exp', 'aud', 'read', 'publish'):
            self.assertTrue(re.search(r'(?m)^\.It Fl Fl %s\b' % opt, page),
                            opt)
        rc, out, err = run([HERALD, '--help'])
        self.assertEqual(rc, 0)
        self.assertIn('  passwd ', out)
        self.assertIn('  token ', out)


if __name__ == '__main__':
    ht.main()
