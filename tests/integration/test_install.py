"""Operations: `make install` into a DESTDIR and the installed daemon
running from there; `make uninstall`; dropping privileges after binding."""
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.environ.get('HERALD_TESTS',
                                  os.path.dirname(os.path.abspath(__file__))))
import herald_test as ht  # noqa: E402

BUILDDIR = os.environ.get('HERALD_BUILDDIR',
                          os.path.join(os.path.dirname(
                              os.path.abspath(__file__)), '..', '..'))


def make(*args):
    """Run make in the build tree; returns (status, output)."""
    p = subprocess.run(['make', '-C', BUILDDIR, '--no-print-directory'] +
                       list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    return p.returncode, p.stdout.decode('utf-8', 'replace')


def configured_prefix():
    """The prefix and sbindir configure chose, from the Makefile."""
    vals = {}
    with open(os.path.join(BUILDDIR, 'Makefile')) as f:
        for line in f:
            for name in ('prefix', 'exec_prefix', 'sbindir', 'datarootdir',
                         'mandir', 'PACKAGE_VERSION'):
                if line.startswith(name + ' = '):
                    vals[name] = line.split(' = ', 1)[1].strip()
    # Expand ${prefix} and ${exec_prefix} the way make would.
    for _ in range(4):
        for k, v in vals.items():
            vals[k] = v.replace('${prefix}', vals.get('prefix', '')) \
                       .replace('${exec_prefix}', vals.get('exec_prefix', '')) \
                       .replace('${datarootdir}', vals.get('datarootdir', ''))
    return vals


class Install(ht.HeraldTestCase):

    def setUp(self):
        if not os.path.exists(os.path.join(BUILDDIR, 'Makefile')):
            self.skipTest('no configured build tree at %s' % BUILDDIR)
        self.destdir = tempfile.mkdtemp(prefix='herald-destdir-')
        self.addCleanup(shutil.rmtree, self.destdir, True)

    def test_install_run_uninstall(self):
        rc, out = make('install', 'DESTDIR=' + self.destdir)
        self.assertEqual(rc, 0, out[-2000:])
        v = configured_prefix()
        sbin = self.destdir + v['sbindir']
        man = self.destdir + v['mandir']
        daemon = os.path.join(sbin, 'heraldd')
        self.assertTrue(os.access(daemon, os.X_OK), 'installed heraldd')
        for page in ('man8/heraldd.8', 'man5/heraldd.conf.5',
                     'man7/herald-protocol.7'):
            self.assertTrue(os.path.exists(os.path.join(man, page)), page)
        # The installed daemon prints the version set in configure.ac...
        out = subprocess.run([daemon, '-V'], stdout=subprocess.PIPE,
                             timeout=10).stdout.decode()
        self.assertEqual(out.strip(), 'heraldd %s' % v['PACKAGE_VERSION'])
        # ... and serves clients.
        saved = ht.HERALDD
        ht.HERALDD = daemon
        try:
            srv = self.server()
            i = self.conn(srv.ingest_port)
            i.pub('inst/x', 'installed')
            s = i.sync()
            c = self.conn(srv.port)
            self.assertEqual(c.cmd('GET inst/x'),
                             ['VAL inst/x %d installed' % s, '+OK GET inst/x'])
            srv.stop()
        finally:
            ht.HERALDD = saved
        rc, out = make('uninstall', 'DESTDIR=' + self.destdir)
        self.assertEqual(rc, 0, out[-2000:])
        self.assertFalse(os.path.exists(daemon), 'uninstalled')
        left = [os.path.join(d, f) for d, _, fs in os.walk(self.destdir)
                for f in fs]
        self.assertEqual(left, [], 'make uninstall leaves nothing')


class Privileges(ht.HeraldTestCase):

    def test_drop_to_user(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to change user')
        try:
            nobody = pwd.getpwnam('nobody')
        except KeyError:
            self.skipTest('no user nobody')
        srv = self.server({'user': 'nobody', 'log.file':
                           os.path.join(tempfile.gettempdir(),
                                        'herald-priv-%d.log' % os.getpid())},
                          tmp=tempfile.mkdtemp(prefix='herald-priv-'))
        self.addCleanup(lambda: os.path.exists(srv.overrides['log.file']) and
                        os.unlink(srv.overrides['log.file']))
        # Every process runs as nobody once the listeners are bound.
        pids = [srv.pid] + list(srv.children())
        for pid in pids:
            with open('/proc/%d/status' % pid) as f:
                uids = [ln.split()[1:] for ln in f if ln.startswith('Uid:')][0]
            self.assertEqual(set(map(int, uids)), {nobody.pw_uid},
                             'pid %d runs as nobody' % pid)
        # The bus file belongs to the user, so a restart can open it.
        self.assertEqual(os.stat(srv.bus_file).st_uid, nobody.pw_uid)
        i = self.conn(srv.ingest_port)
        i.pub('priv/x', 'v')
        s = i.sync()
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('GET priv/x'),
                         ['VAL priv/x %d v' % s, '+OK GET priv/x'])


if __name__ == '__main__':
    ht.main()
