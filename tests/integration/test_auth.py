#!/usr/bin/env python3
"""herald integration: identity and permissions (herald-protocol(7),
"Identity and permissions"; heraldd.conf(5), "auth").

The real heraldd with a users file made by `herald passwd`, an ACL, and
token keys (an HS256 secret; an EC P-256 public key made by the openssl
command); tokens minted by `herald token`, or built here (HS256 with
Python's hmac) where a test needs one the CLI refuses to make (alg none,
a future nbf, no exp).

Python 3 standard library only.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402
from test_auth_cli import run  # noqa: E402

HERALD = ht.HERALD
SECRET = b'0123456789abcdef0123456789abcdef-herald'
RUN_TIMEOUT = 30
PASSWORDS = {'alice': 'alice-pw', 'bob': 'bob-pw', 'ops': 'ops-pw'}
ACL = """# who reads and publishes what
user *
read status/#
read users/%u/#
user alice
read plant/#
publish devices/%u/#
user ops
read #
publish #
"""


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def hs256(claims, header=None, key=SECRET):
    """A compact JWS signed with key (HMAC-SHA256)."""
    head = b64url(json.dumps(header or {'alg': 'HS256', 'typ': 'JWT'}))
    body = b64url(json.dumps(claims))
    sig = hmac.new(key, ('%s.%s' % (head, body)).encode(),
                   hashlib.sha256).digest()
    return '%s.%s.%s' % (head, body, b64url(sig))


class AuthCase(ht.HeraldTestCase):
    """Files in a temp dir shared by the tests of a class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(HERALD, os.X_OK):
            raise unittest.SkipTest('no herald command at %s' % HERALD)
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix='herald-auth-')
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.users = cls.path('users')
        for user, pw in PASSWORDS.items():
            rc, _, err = run([HERALD, 'passwd', cls.users, user],
                             (pw + '\n').encode())
            assert rc == 0, err
        cls.acl = cls.write('acl', ACL)
        cls.hs_key = cls.write('hs.key', SECRET.decode() + '\n')

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    @classmethod
    def write(cls, name, text):
        p = cls.path(name)
        with open(p, 'w') as f:
            f.write(text)
        os.chmod(p, 0o600)
        return p

    def auth_config(self, **auth):
        """A config file's text with an auth group of these settings."""
        items = {'users': self.users, 'acl': self.acl,
                 'jwt_keys': [self.hs_key], 'fail_delay_ms': 50}
        items.update(auth)
        body = []
        for k, v in items.items():
            if v is None:
                continue
            if isinstance(v, bool):
                body.append('%s = %s;' % (k, 'true' if v else 'false'))
            elif isinstance(v, int):
                body.append('%s = %d;' % (k, v))
            elif isinstance(v, list):
                body.append('%s = [%s];' % (k, ', '.join(
                    json.dumps(x) for x in v)))
            else:
                body.append('%s = %s;' % (k, json.dumps(v)))
        return 'auth: {\n  %s\n};\n' % '\n  '.join(body)

    def auth_server(self, overrides=None, workers=1, **auth):
        return self.server(overrides, config=self.auth_config(**auth),
                           workers=workers)

    def token(self, sub, *args, key=None):
        rc, out, err = run([HERALD, 'token', '--key', key or self.hs_key,
                            '--sub', sub] + list(args))
        self.assertEqual(rc, 0, err)
        return out.strip()

    def login(self, c, user, pw=None):
        lines = c.cmd('AUTH %s %s' % (user, pw or PASSWORDS[user]))
        self.assertEqual(lines, ['+OK AUTH %s' % user])


class BeforeAuth(AuthCase):
    """auth.required: HELLO says so, and only AUTH, PING and QUIT run."""

    def test_refusals_before_auth(self):
        srv = self.auth_server(required=True)
        c = self.conn(srv.port)
        self.assertEqual(c.hello, 'HELLO herald/1 %d auth' % c.hello_seq)
        for line, verb in (('SUB a/b', 'SUB'), ('sub a/b 5', 'sub'),
                           ('UNSUB a/b', 'UNSUB'), ('GET a/b', 'GET'),
                           ('PUB a/b x', 'PUB'), ('SYNC', 'SYNC'),
                           ('STATS', 'STATS'),
                           ('SUB a/#/b', 'SUB'),    # whatever its words
                           ('GET', 'GET')):
            self.assertEqual(c.cmd(line), ['-ERR auth-required %s' % verb],
                             line)
        self.assertEqual(c.cmd('PING x'), ['PONG x'])
        self.assertErr(c.cmd('FROB')[0], 'unknown-command', 'FROB')
        self.login(c, 'alice')
        _, h = c.sub('plant/#')
        self.assertEqual(c.cmd('QUIT'), ['BYE quit'])
        # QUIT needs no AUTH
        d = self.conn(srv.port)
        self.assertEqual(d.cmd('QUIT'), ['BYE quit'])

    def test_auth_required_counts_as_bad(self):
        srv = self.auth_server(required=True,
                               overrides={'clients.max_errors': 4})
        c = self.conn(srv.port)
        for _ in range(3):
            self.assertEqual(c.cmd('GET a'), ['-ERR auth-required GET'])
        c.sendline('SUB a')
        self.assertEqual(c.line(), '-ERR auth-required SUB')
        self.assertEqual(c.line(), 'BYE too-many-errors')

    def test_ingest_on_a_local_address_stays_trusted(self):
        srv = self.auth_server(required=True)
        i = self.conn(srv.ingest_port)
        self.assertNotIn('auth', i.hello)
        i.pub('anything/at/all', 'v')
        i.sync()
        c = self.conn(srv.port)
        self.login(c, 'ops')
        self.assertEqual(c.cmd('GET anything/at/all')[-1],
                         '+OK GET anything/at/all')


class Failures(AuthCase):
    def failure_lines(self, srv, lines):
        out = []
        for line in lines:
            c = self.conn(srv.port)
            out.append(c.cmd(line))
        return out

    def test_every_cause_gives_the_same_line(self):
        if shutil.which('openssl') is None:
            self.skipTest('no openssl command')
        ec_priv, ec_pub = self.path('ec.pem'), self.path('ec.pub')
        for argv in (['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
                      'ec_paramgen_curve:P-256', '-out', ec_priv],
                     ['openssl', 'pkey', '-in', ec_priv, '-pubout', '-out',
                      ec_pub]):
            subprocess.run(argv, check=True, timeout=RUN_TIMEOUT,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        srv = self.auth_server(jwt_keys=[self.hs_key, ec_pub],
                               jwt_audience='plant-a')
        now = int(time.time())
        with open(ec_pub, 'rb') as f:
            pub_bytes = f.read()
        causes = {
            'unknown user': 'AUTH mallory alice-pw',
            'wrong password': 'AUTH alice bob-pw',
            'bad signature': 'AUTH ' + hs256(
                {'sub': 'alice', 'exp': now + 60, 'aud': 'plant-a'},
                key=b'another secret of thirty-two bytes!!'),
            'expired': 'AUTH ' + hs256({'sub': 'alice', 'exp': now - 5,
                                        'aud': 'plant-a'}),
            'no exp': 'AUTH ' + hs256({'sub': 'alice', 'aud': 'plant-a'}),
            'not yet': 'AUTH ' + hs256({'sub': 'alice', 'exp': now + 60,
                                        'nbf': now + 3600,
                                        'aud': 'plant-a'}),
            'wrong aud': 'AUTH ' + hs256({'sub': 'alice', 'exp': now + 60,
                                          'aud': 'plant-b'}),
            'alg none': 'AUTH %s.%s.' % (
                b64url(json.dumps({'alg': 'none'})),
                b64url(json.dumps({'sub': 'alice', 'exp': now + 60,
                                   'aud': 'plant-a'}))),
            'hs256 with the public key': 'AUTH ' + hs256(
                {'sub': 'alice', 'exp': now + 60, 'aud': 'plant-a'},
                key=pub_bytes),
            'malformed': 'AUTH not.a-token',
            'bad sub': 'AUTH ' + hs256({'sub': 'a:b', 'exp': now + 60,
                                        'aud': 'plant-a'}),
            'bad user name': 'AUTH al:ice pw',
        }
        for cause, line in causes.items():
            c = self.conn(srv.port)
            self.assertEqual(c.cmd(line), ['-ERR auth-failed'], cause)
            # and the connection stays anonymous
            self.assertErr(c.cmd('SUB plant/#')[0], 'forbidden', 'plant/#')
        # the good ones pass
        c = self.conn(srv.port)
        good = self.token('alice', '--aud', 'plant-a', key=ec_priv)
        self.assertEqual(c.cmd('AUTH ' + good), ['+OK AUTH alice'])
        st = c.stats()
        self.assertEqual(int(st['auth_failures']), len(causes))
        # the log never holds the secret
        log = srv.log()
        for secret in ('alice-pw', 'bob-pw', causes['expired'][5:],
                       causes['bad signature'][5:]):
            self.assertNotIn(secret, log)

    def test_log_names_the_cause(self):
        """Failures are logged one line a second at most (a limiter
        counts the others): spaced out, each cause shows."""
        srv = self.auth_server()
        now = int(time.time())
        causes = {
            'unknown user': 'AUTH mallory alice-pw',
            'wrong password': 'AUTH alice bob-pw',
            'expired': 'AUTH ' + hs256({'sub': 'alice', 'exp': now - 5}),
            'bad signature': 'AUTH ' + hs256(
                {'sub': 'alice', 'exp': now + 60},
                key=b'another secret of thirty-two bytes!!'),
        }
        for cause, line in causes.items():
            c = self.conn(srv.port)
            self.assertEqual(c.cmd(line), ['-ERR auth-failed'])
            deadline = time.monotonic() + 3
            while not re.search(r'AUTH .*failed: %s' % cause, srv.log()):
                self.assertLess(time.monotonic(), deadline, cause)
                time.sleep(0.1)
            time.sleep(1.05)    # the limiter's second is over
        log = srv.log()
        for secret in ('alice-pw', 'bob-pw', causes['expired'][5:]):
            self.assertNotIn(secret, log)

    def test_max_failures_then_bye(self):
        srv = self.auth_server(overrides={'clients.max_auth_failures': 3})
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('AUTH alice x'), ['-ERR auth-failed'])
        self.assertEqual(c.cmd('AUTH alice y'), ['-ERR auth-failed'])
        c.sendline('AUTH alice z')
        self.assertEqual(c.line(), '-ERR auth-failed')
        self.assertEqual(c.line(), 'BYE auth-failed')
        c.expect_eof()
        # a success in between starts the count again
        d = self.conn(srv.port)
        self.assertEqual(d.cmd('AUTH alice x'), ['-ERR auth-failed'])
        self.assertEqual(d.cmd('AUTH alice y'), ['-ERR auth-failed'])
        self.login(d, 'alice')
        self.assertEqual(d.cmd('AUTH bob x'), ['-ERR auth-failed'])
        self.assertEqual(d.cmd('PING'), ['PONG'])

    def test_failure_is_delayed_without_blocking_the_worker(self):
        srv = self.auth_server(fail_delay_ms=600)
        a = self.conn(srv.port)
        b = self.conn(srv.port)      # one worker: the same loop
        t0 = time.monotonic()
        a.sendline('AUTH alice wrong')
        a.sendline('PING after')     # waits for the AUTH's answer
        time.sleep(0.05)
        self.assertEqual(b.cmd('PING meanwhile'), ['PONG meanwhile'])
        self.assertLess(time.monotonic() - t0, 0.6,
                        'another client waited for the delay')
        self.assertEqual(a.line(), '-ERR auth-failed')
        self.assertGreaterEqual(time.monotonic() - t0, 0.6)
        self.assertEqual(a.line(), 'PONG after')

    def test_password_hashes_do_not_hold_the_loop(self):
        """Forty uncached password checks queue; a PING sent after them
        all is answered before the last of them."""
        n = 40
        users = self.path('many-users')
        for i in range(n):
            rc, _, err = run([HERALD, 'passwd', users, 'u%d' % i],
                             b'pw%d\n' % i)
            self.assertEqual(rc, 0, err)
        srv = self.auth_server(users=users, acl=None)
        conns = [self.conn(srv.port) for _ in range(n)]
        probe = self.conn(srv.port)
        for i, c in enumerate(conns):
            c.sendline('AUTH u%d pw%d' % (i, i))
        self.assertEqual(probe.cmd('PING p'), ['PONG p'])
        pong = time.monotonic()
        last = conns[-1].line(timeout=30)
        done = time.monotonic()
        self.assertEqual(last, '+OK AUTH u%d' % (n - 1))
        self.assertLess(pong, done)
        for i, c in enumerate(conns[:-1]):
            self.assertEqual(c.line(timeout=30), '+OK AUTH u%d' % i)


class Cache(AuthCase):
    def test_one_cache_for_every_worker(self):
        """A password checked on one worker is not hashed again on the
        other (STAT auth_hashes), nor after a reconnect; a wrong one
        always is."""
        srv = self.auth_server(workers=2)
        first = self.conn(srv.port)
        self.login(first, 'alice')
        w1 = srv.worker_of([first])[first]
        self.assertIsNotNone(w1)
        self.assertEqual(first.stats()['auth_hashes'], '1')
        for _ in range(50):
            other = self.conn(srv.port)
            w2 = srv.worker_of([other])[other]
            if w2 is not None and w2 != w1:
                break
            other.close()
        else:
            self.fail('50 connections all went to one worker')
        self.login(other, 'alice')
        self.assertEqual(other.stats()['auth_hashes'], '1')
        self.assertEqual(other.cmd('AUTH alice nope'), ['-ERR auth-failed'])
        self.assertEqual(other.stats()['auth_hashes'], '2')


class Tokens(AuthCase):
    def test_refresh_replaces_the_expiry(self):
        srv = self.auth_server()
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('AUTH ' + self.token('alice', '--exp', '2')),
                         ['+OK AUTH alice'])
        c.sub('plant/#')
        time.sleep(1)
        self.assertEqual(c.cmd('AUTH ' + self.token('alice', '--exp', '30')),
                         ['+OK AUTH alice'])
        # a token for someone else is no refresh
        self.assertEqual(c.cmd('AUTH ' + self.token('bob', '--exp', '30')),
                         ['-ERR auth-failed'])
        time.sleep(3)
        self.assertEqual(c.cmd('PING'), ['PONG'])
        i = self.conn(srv.ingest_port)
        i.pub('plant/a', '1')
        i.sync()
        self.assertRegex(c.line(), r'^MSG plant/a \d+ 1$')

    def test_expiry_without_refresh(self):
        srv = self.auth_server()
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('AUTH ' + self.token('alice', '--exp', '2')),
                         ['+OK AUTH alice'])
        c.sub('plant/#')
        self.assertEqual(c.line(timeout=5), 'BYE auth-expired')
        c.expect_eof()
        self.assertEqual(self.conn(srv.port).stats()['auth_expired'], '1')
        # a password has no expiry: nothing happens to it
        d = self.conn(srv.port)
        self.login(d, 'alice')
        d.assert_no_line(within=2.5)

    def test_claims_replace_the_acl(self):
        srv = self.auth_server()
        c = self.conn(srv.port)
        tok = self.token('alice', '--read', 'other/+/x', '--publish', 'o/#')
        self.assertEqual(c.cmd('AUTH ' + tok), ['+OK AUTH alice'])
        self.assertErr(c.cmd('SUB plant/#')[0], 'forbidden', 'plant/#')
        self.assertErr(c.cmd('SUB status/a')[0], 'forbidden', 'status/a')
        c.sub('other/+/x')
        c.sub('other/a/x')
        self.assertErr(c.cmd('SUB other/#')[0], 'forbidden', 'other/#')
        c.sendline('PUB devices/alice/t 1')
        self.assertErr(c.line(), 'forbidden', 'devices/alice/t')
        c.pub('o/k', '1')
        c.sync()
        # without the claim, the ACL's
        d = self.conn(srv.port)
        self.assertEqual(d.cmd('AUTH ' + self.token('alice')),
                         ['+OK AUTH alice'])
        d.sub('plant/#')
        self.assertErr(d.cmd('SUB other/a/x')[0], 'forbidden', 'other/a/x')

    def test_keys_can_be_rotated(self):
        old = self.write('old.key', 'an old secret that is long enough!!\n')
        srv = self.auth_server(jwt_keys=[self.hs_key, old])
        for key in (self.hs_key, old):
            c = self.conn(srv.port)
            self.assertEqual(c.cmd('AUTH ' + self.token('bob', key=key)),
                             ['+OK AUTH bob'])


class Permissions(AuthCase):
    def test_acl_reads_and_publishes(self):
        srv = self.auth_server()
        i = self.conn(srv.ingest_port)
        for t in ('plant/a', 'status/x', 'users/alice/1', 'users/bob/1',
                  'secret/s'):
            i.pub(t, 'v')
        i.sync()
        c = self.conn(srv.port)
        self.login(c, 'alice')
        c.sub('plant/+')
        c.sub('status/#')
        c.sub('users/alice/#')               # %u of "user *"
        self.assertErr(c.cmd('SUB users/bob/#')[0], 'forbidden',
                       'users/bob/#')
        self.assertErr(c.cmd('SUB users/+/1')[0], 'forbidden', 'users/+/1')
        self.assertErr(c.cmd('SUB #')[0], 'forbidden', '#')
        self.assertEqual(c.cmd('GET users/alice/1')[-1],
                         '+OK GET users/alice/1')
        self.assertErr(c.cmd('GET secret/s')[0], 'forbidden', 'secret/s')
        # a forbidden GET of a topic that does not exist says forbidden
        self.assertErr(c.cmd('GET secret/none')[0], 'forbidden',
                       'secret/none')
        c.pub('devices/alice/temp', '21')
        c.sendline('PUB devices/bob/temp 21')
        self.assertErr(c.line(), 'forbidden', 'devices/bob/temp')
        c.sync()
        self.assertEqual(i.cmd('GET devices/alice/temp')[0].split()[-1],
                         '21')
        # a user with no block of its own gets "user *"
        b = self.conn(srv.port)
        self.login(b, 'bob')
        b.sub('users/bob/#')
        self.assertErr(b.cmd('SUB plant/#')[0], 'forbidden', 'plant/#')
        b.sendline('PUB devices/bob/t 1')
        self.assertErr(b.line(), 'forbidden', 'devices/bob/t')

    def test_user_name_not_a_segment_gets_no_percent_u(self):
        srv = self.auth_server()
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('AUTH ' + self.token('x+y')),
                         ['+OK AUTH x+y'])
        self.assertErr(c.cmd('SUB users/#')[0], 'forbidden', 'users/#')
        self.assertErr(c.cmd('SUB users/+/1')[0], 'forbidden', 'users/+/1')
        c.sub('status/a')

    def test_anonymous_reads(self):
        srv = self.auth_server(anonymous=['public/#', 'x/+/y'])
        c = self.conn(srv.port)
        self.assertNotIn('auth', c.hello)
        c.sub('public/#')
        c.sub('x/a/y')
        self.assertErr(c.cmd('SUB x/#')[0], 'forbidden', 'x/#')
        self.assertErr(c.cmd('GET plant/a')[0], 'forbidden', 'plant/a')
        # publishing stays what clients.publish allows
        c.sendline('PUB public/a 1')
        self.assertErr(c.line(), 'forbidden', 'public/a')

    def test_no_acl_reads_everything(self):
        srv = self.auth_server(acl=None, overrides={
            'clients.publish': 'pub/#'})
        c = self.conn(srv.port)
        self.assertErr(c.cmd('SUB a')[0], 'forbidden', 'a')   # anonymous
        self.login(c, 'bob')
        c.sub('#')
        c.pub('pub/x', '1')
        c.sendline('PUB other/x 1')
        self.assertErr(c.read_until(lambda ln: ln.startswith('-ERR'))[-1],
                       'forbidden', 'other/x')


class Reload(AuthCase):
    def test_hup_narrows_the_acl(self):
        acl = self.write('acl-hup', ACL)
        srv = self.auth_server(acl=acl, anonymous=['public/#'])
        i = self.conn(srv.ingest_port)
        c = self.conn(srv.port)
        self.login(c, 'alice')
        c.sub('plant/#')
        c.sub('plant/line1/#')
        c.sub('status/#')
        anon = self.conn(srv.port)
        anon.sub('public/#')
        anon.sub('public/a/#')
        self.write('acl-hup', ACL.replace('read plant/#',
                                          'read plant/line1/#'))
        srv.write_config(self.auth_config(acl=acl, anonymous=['public/a/#']))
        srv.signal(signal.SIGHUP)
        self.assertEqual(c.line(), '-ERR forbidden plant/#')
        self.assertEqual(anon.line(), '-ERR forbidden public/#')
        for t in ('plant/line2/x', 'plant/line1/x', 'public/b', 'public/a/1'):
            i.pub(t, 'v')
        i.sync()
        self.assertRegex(c.line(), r'^MSG plant/line1/x \d+ v$')
        self.assertRegex(anon.line(), r'^MSG public/a/1 \d+ v$')
        c.assert_no_line()
        anon.assert_no_line()
        self.assertErr(c.cmd('SUB plant/#')[0], 'forbidden', 'plant/#')
        self.assertEqual(c.cmd('UNSUB plant/#'),
                         ['-ERR not-subscribed plant/#'])

    def test_hup_reloads_users(self):
        users = self.path('users-hup')
        shutil.copy(self.users, users)
        srv = self.auth_server(users=users)
        c = self.conn(srv.port)
        self.login(c, 'bob')        # cached now
        rc, _, err = run([HERALD, 'passwd', users, 'bob'], b'new-pw\n')
        self.assertEqual(rc, 0, err)
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while True:     # the reload reaches the worker a little later
            d = self.conn(srv.port)
            if d.cmd('AUTH bob bob-pw') == ['-ERR auth-failed']:
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        self.login(d, 'bob', 'new-pw')
        self.assertEqual(c.cmd('PING'), ['PONG'])   # kept its identity

    def test_bad_files_refuse_the_reload(self):
        acl = self.write('acl-bad', ACL)
        srv = self.auth_server(acl=acl)
        self.write('acl-bad', ACL + 'reed plant/#\n')
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while 'reload refused' not in srv.log():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertRegex(srv.log(), r'acl-bad:\d+: ')
        c = self.conn(srv.port)
        self.login(c, 'alice')
        c.sub('plant/#')


class Check(AuthCase):
    def check(self, *overrides, config=None):
        argv = [ht.HERALDD, '-t']
        if config is not None:
            conf = self.write('check.conf', config)
            argv += ['-c', conf]
        for o in overrides:
            argv += ['-o', o]
        return run(argv)

    def test_ingest_reachable_from_other_machines(self):
        rc, _, err = self.check('ingest=0.0.0.0:7401')
        self.assertEqual(rc, 1)
        self.assertIn('ingest: 0.0.0.0:7401 is reachable', err)
        rc, out, err = self.check('ingest=0.0.0.0:7401',
                                  config=self.auth_config(required=True))
        self.assertEqual(rc, 0, err)

    def test_files_are_checked(self):
        bad = self.write('acl-t', 'user alice\nread a/#/b\n')
        rc, _, err = self.check(config=self.auth_config(acl=bad))
        self.assertEqual(rc, 1)
        self.assertRegex(err, r'acl-t:2: ')
        rc, _, err = self.check(config=self.auth_config(
            users=self.path('missing')))
        self.assertEqual(rc, 1)
        self.assertIn('missing', err)
        short = self.write('short.key', 'too short\n')
        rc, _, err = self.check(config=self.auth_config(jwt_keys=[short]))
        self.assertEqual(rc, 1)
        self.assertIn('short.key', err)
        self.assertNotIn('too short', err)
        rc, out, err = self.check(config=self.auth_config())
        self.assertEqual(rc, 0, err)


if __name__ == '__main__':
    unittest.main()
