#!/usr/bin/env python3
"""herald integration: herald-security(7)'s walk-through works as written.

The page's literal blocks are taken from man/herald-security.7 and run in
a temp dir (/etc/herald becomes that dir, herald.example.net becomes
localhost): the users made with herald passwd, the ACL, the HS256 and
ES256 keys, the throwaway CA and server certificate made with openssl,
the configuration assembled from the page's auth, listen and tls blocks.
Then the real heraldd runs with it, and what the page says happens does:
AUTH, a forbidden SUB, anonymous reads, tokens from herald token, TLS with
the CA file from herald and from openssl s_client.

Python 3 standard library only.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

SRCDIR = ht.SRCDIR
PAGE = os.path.join(SRCDIR, 'man', 'herald-security.7')
HERALD = ht.HERALD
RUN_TIMEOUT = 30


def literal_blocks(path):
    """The text of every .Bd -literal ... .Ed block, roff escapes undone
    and continued lines joined."""
    blocks, cur = [], None
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('.Bd -literal'):
                cur = []
            elif line == '.Ed' and cur is not None:
                text = '\n'.join(cur).replace('\\e', '\\').replace('\\&', '')
                blocks.append(text.replace('\\\n', ' '))
                cur = None
            elif cur is not None:
                cur.append(line)
    return blocks


def settings(block):
    """{group.name: value text} of a configuration block (one setting a
    line, groups opened with `name = {`)."""
    out, group = {}, None
    for line in block.split('\n'):
        line = line.strip()
        m = re.match(r'^(\w+) = \{$', line)
        if m:
            group = m.group(1)
            continue
        if line.startswith('}'):
            group = None
            continue
        m = re.match(r'^(\w+) = (.*);$', line)
        if m:
            key = '%s.%s' % (group, m.group(1)) if group else m.group(1)
            out[key] = m.group(2)
    return out


def run(cmd, cwd, stdin=b''):
    p = subprocess.run(cmd, shell=isinstance(cmd, str), cwd=cwd,
                       input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=RUN_TIMEOUT,
                       env=dict(os.environ, PATH=os.path.dirname(HERALD) +
                                ':' + os.environ.get('PATH', '')))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@unittest.skipIf(shutil.which('openssl') is None, 'no openssl command')
class Walkthrough(ht.HeraldTestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='herald-secdoc-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.blocks = [self.local(b) for b in literal_blocks(PAGE)]

    def local(self, text):
        return text.replace('/etc/herald', self.dir).replace(
            'herald.example.net', 'localhost')

    def block(self, first):
        """The block whose text starts with first."""
        for b in self.blocks:
            if b.startswith(first):
                return b
        self.fail('herald-security(7) has no block starting %r' % first)

    def shell(self, block, prompt):
        """Run each command line of block that starts with prompt."""
        for line in block.split('\n'):
            if not line.startswith(prompt):
                continue
            rc, out, err = run(line[len(prompt):], self.dir)
            self.assertEqual(rc, 0, '%s: %s' % (line, err))

    def test_the_walkthrough(self):
        # users and passwords, from the page's commands
        for line in self.block('# herald passwd').split('\n'):
            user = line.split()[-1]
            rc, _, err = run(line[2:], self.dir, b'pw-%s\n' % user.encode())
            self.assertEqual(rc, 0, err)
        acl = self.block('# %s/acl' % self.dir)
        with open(os.path.join(self.dir, 'acl'), 'w') as f:
            f.write(acl + '\n')
        # keys and certificates, from the page's commands
        self.shell(self.block('# openssl rand'), '# ')
        self.shell(self.block('$ openssl genpkey'), '$ ')
        self.shell(self.block('$ openssl req -x509'), '$ ')
        for name in ('jwt.key', 'jwt-es256.pub', 'server.pem', 'server.key',
                     'ca.pem', 'users'):
            self.assertTrue(os.path.exists(os.path.join(self.dir, name)),
                            name)
        # the configuration: the page's auth, key and tls blocks
        conf = {}
        conf.update(settings(self.block('auth = {\n    users')))
        conf.update(settings(self.block('auth = {\n    jwt_keys')))
        conf.update(settings(self.block('listen = ["tls:')))
        self.assertEqual(conf['listen'], '["tls:0.0.0.0:7443"]')
        tls_port = ht.free_port()
        del conf['listen']
        groups = {}
        for k, v in conf.items():
            g, name = k.split('.', 1)
            groups.setdefault(g, []).append('%s = %s;' % (name, v))
        text = ''.join('%s = {\n    %s\n};\n' % (g, '\n    '.join(v))
                       for g, v in groups.items())
        rc, out, err = run([ht.HERALDD, '-t', '-c', '/dev/stdin', '-o',
                            'listen=tls:127.0.0.1:%d' % tls_port],
                           self.dir, text.encode())
        self.assertEqual(rc, 0, err + text)
        srv = self.server(config=text, start=False)
        srv.overrides['listen'] = '127.0.0.1:%d, tls:127.0.0.1:%d' % (
            srv.port, tls_port)
        srv.start()
        i = self.conn(srv.ingest_port)
        for t in ('plant/a/temp', 'secret/x', 'public/news', 'status/up'):
            i.pub(t, 'v')
        i.sync()

        # AUTH as the page's nc session shows
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('AUTH alice pw-alice'), ['+OK AUTH alice'])
        c.sub('plant/#')
        self.assertEqual(c.cmd('SUB secret/#'), ['-ERR forbidden secret/#'])
        anon = self.conn(srv.port)
        anon.sub('public/#')                  # auth.anonymous
        self.assertEqual(anon.cmd('GET status/up'),
                         ['-ERR forbidden status/up'])
        # herald --user over TLS with the CA file, and a token
        env = dict(os.environ, HERALD_PASSWORD='pw-alice')
        p = subprocess.run([HERALD, '-s', 'localhost:%d' % tls_port, '--ca',
                            os.path.join(self.dir, 'ca.pem'), '--user',
                            'alice', 'get', 'plant/a/temp'], env=env,
                           capture_output=True, timeout=RUN_TIMEOUT)
        self.assertEqual((p.returncode, p.stdout), (0, b'v\n'), p.stderr)
        tok_lines = self.block('$ herald token').split('\n')
        rc, tok, err = run(tok_lines[0][2:], self.dir)
        self.assertEqual(rc, 0, err)
        t = self.conn(srv.port)
        self.assertEqual(t.cmd('AUTH ' + tok.strip()), ['+OK AUTH dashboard'])
        self.assertEqual(t.cmd('SUB plant/#'), ['-ERR forbidden plant/#'])
        t.sub('plant/+/temp')                # the token's own read list
        # openssl s_client with the CA file verifies the server
        p = subprocess.run(['openssl', 's_client', '-connect',
                            'localhost:%d' % tls_port, '-CAfile',
                            os.path.join(self.dir, 'ca.pem'),
                            '-verify_return_error', '-quiet'],
                           input=b'QUIT\n', capture_output=True,
                           timeout=RUN_TIMEOUT)
        self.assertIn(b'HELLO herald/1', p.stdout, p.stderr)
        self.assertIn(b'BYE quit', p.stdout)


if __name__ == '__main__':
    unittest.main()
