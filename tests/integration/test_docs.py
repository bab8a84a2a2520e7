#!/usr/bin/env python3
"""The operator documentation and service files stay true to the daemon.

Checks the manual pages (mandoc lint, rendering), the example
configuration (accepted by heraldd -t, every setting present at its
default, the same reload/restart marks as heraldd -o help), heraldd.conf(5)
(every setting documented, the same reload/restart marks), the -t error
format, the init script (sh -n, LSB header, a start/status/reload/stop
cycle against the built daemon) and the systemd unit (systemd-analyze
verify).

Run by make check as `python3 test_docs.py` with HERALDD set to the built
daemon (default: ../../heraldd from this file).  Exit status 0 = pass,
77 = everything skipped, 1 = a failure; the last line is "N passed, N
failed".  Python 3 standard library only.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.normpath(os.path.join(HERE, "..", ".."))
HERALDD = os.path.abspath(os.environ.get("HERALDD") or
                          os.path.join(SRCDIR, "heraldd"))

# Every page in man/ (heraldd.8, heraldd.conf.5, herald-protocol.7,
# herald.1, libherald.3): each must lint clean and render.
MAN_PAGES = sorted("man/" + f for f in os.listdir(os.path.join(SRCDIR, "man"))
                   if re.match(r"^[a-z.-]+\.[1-8]$", f))
EXAMPLE_CONF = os.path.join(SRCDIR, "contrib", "heraldd.conf")
CONF_PAGE = os.path.join(SRCDIR, "man", "heraldd.conf.5")
PROTOCOL_PAGE = os.path.join(SRCDIR, "man", "herald-protocol.7")
INIT_SCRIPT = os.path.join(SRCDIR, "contrib", "heraldd.init")
UNIT_FILE = os.path.join(SRCDIR, "contrib", "heraldd.service")
LOGROTATE_FILE = os.path.join(SRCDIR, "contrib", "heraldd.logrotate")
STATS_C = os.path.join(SRCDIR, "worker", "stats.c")

# Settings whose default is a build-dependent path ($localstatedir,
# $runstatedir): the example shows the Debian paths; compare file names.
PATH_SETTINGS = {"bus.file", "pidfile"}


def run(args, timeout=60, env=None, **kw):
    """Run a command; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout, env=env, **kw)


def alive(pid):
    """1 if process pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def need_heraldd(test):
    if not (os.path.isfile(HERALDD) and os.access(HERALDD, os.X_OK)):
        test.skipTest("no daemon at %s (set HERALDD)" % HERALDD)


def settings_help():
    """[(path, default, live)] from `heraldd -o help`."""
    r = run([HERALDD, "-o", "help"])
    if r.returncode != 0:
        raise AssertionError("heraldd -o help exited %d: %s" %
                             (r.returncode, r.stderr))
    out = []
    for line in r.stdout.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        out.append((words[0], words[1], not line.rstrip().endswith(
            "[restart]")))
    if not out:
        raise AssertionError("heraldd -o help listed no setting")
    return out


def strip_comment(line):
    """A libconfig line without its # or // comment (outside strings)."""
    out, in_str, i = [], False, 0
    while i < len(line):
        c = line[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == "#" or line.startswith("//", i):
            break
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse_example(path):
    """{setting path: (value text, comment)} of a simple libconfig file:
    one setting or group opening or group closing a line."""
    settings, groups = {}, []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = strip_comment(raw).strip()
            comment = raw[len(strip_comment(raw)):].strip()
            if not line:
                continue
            m = re.match(r"^([A-Za-z][-A-Za-z0-9_*]*)\s*[:=]\s*\{$", line)
            if m:
                groups.append(m.group(1))
                continue
            if re.match(r"^\};?$", line):
                if not groups:
                    raise AssertionError("%s:%d: unbalanced }" % (path, n))
                groups.pop()
                continue
            m = re.match(r"^([A-Za-z][-A-Za-z0-9_*]*)\s*[:=]\s*(.*?);?$",
                         line)
            if not m:
                raise AssertionError("%s:%d: cannot parse %r" %
                                     (path, n, line))
            name = ".".join(groups + [m.group(1)])
            settings[name] = (m.group(2).strip(), comment)
    return settings


def normalize(value):
    """A libconfig value as the text heraldd -o help shows a default."""
    v = value.strip()
    if v.startswith("[") or v.startswith("("):
        items = re.findall(r'"((?:[^"\\]|\\.)*)"', v)
        return ",".join(items) if items else '""'
    if v.startswith('"') and v.endswith('"'):
        return v[1:-1] if len(v) > 2 else '""'
    return v


def man_items(page):
    """{setting path: text of its .It Cm item} of heraldd.conf(5)."""
    items, cur = {}, None
    with open(page) as f:
        for line in f:
            m = re.match(r"^\.It Cm (\S+)", line)
            if m:
                cur = m.group(1)
                items[cur] = ""
                continue
            if line.startswith((".It", ".El", ".Sh", ".Ss")):
                cur = None
                continue
            if cur is not None:
                items[cur] += line
    return items


class ManPages(unittest.TestCase):
    def test_lint(self):
        """Every page lints clean under mandoc -T lint -W warning."""
        if shutil.which("mandoc") is None:
            self.skipTest("mandoc is not installed")
        for page in MAN_PAGES:
            with self.subTest(page=page):
                r = run(["mandoc", "-T", "lint", "-W", "warning",
                         os.path.join(SRCDIR, page)])
                msgs = [l for l in (r.stdout + r.stderr).splitlines()
                        if l.strip() and "mandoc.db" not in l]
                self.assertEqual(msgs, [], "mandoc lint of %s" % page)
                self.assertEqual(r.returncode, 0, "mandoc lint of %s" % page)

    def test_render(self):
        """Every page renders to a non-empty text with its NAME section."""
        env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80",
                   LC_ALL="C.UTF-8")
        if shutil.which("man") is not None:
            cmd = ["man", "-l"]
        elif shutil.which("mandoc") is not None:
            cmd = ["mandoc", "-T", "utf8"]
        else:
            self.skipTest("neither man nor mandoc is installed")
        for page in MAN_PAGES:
            with self.subTest(page=page):
                r = run(cmd + [os.path.join(SRCDIR, page)], env=env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("NAME", r.stdout)
                self.assertGreater(len(r.stdout.splitlines()), 20)

    def test_stats_names(self):
        """herald-protocol(7) lists every STATS name the server sends."""
        try:
            with open(STATS_C) as f:
                src = f.read()
        except OSError:
            self.skipTest("no %s" % STATS_C)
        # the table's rows: { "name", SRC_..., or C("name", CTR_...
        names = set(re.findall(r'(?:\{\s*|C\()"(\w+)",\s*(?:SRC_|CTR_)',
                               src))
        if not names:
            self.fail("no STATS names found in worker/stats.c")
        with open(PROTOCOL_PAGE) as f:
            page = f.read()
        listed = set(re.findall(r"^\.It Li (\w+)$", page, re.M))
        self.assertEqual(sorted(names - listed), [],
                         "STATS names missing from herald-protocol.7")


class Configuration(unittest.TestCase):
    def setUp(self):
        need_heraldd(self)

    def test_example_passes_check(self):
        """heraldd -t -c contrib/heraldd.conf accepts the example."""
        r = run([HERALDD, "-t", "-c", EXAMPLE_CONF])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration ok", r.stdout)

    def test_example_has_every_setting_at_default(self):
        """The example sets every setting, to its default, marked as
        heraldd -o help marks it ([restart] or [reload])."""
        example = parse_example(EXAMPLE_CONF)
        known = set()
        for path, default, live in settings_help():
            known.add(path)
            with self.subTest(setting=path):
                self.assertIn(path, example, "missing from the example")
                value, comment = example[path]
                got, want = normalize(value), default
                if path in PATH_SETTINGS:
                    got, want = os.path.basename(got), os.path.basename(want)
                self.assertEqual(got, want, "not the default")
                self.assertIn("[reload]" if live else "[restart]", comment)
        self.assertEqual(sorted(set(example) - known), [],
                         "the example sets unknown settings")

    def test_man_page_documents_every_setting(self):
        """heraldd.conf(5) has an item for every setting, saying whether a
        reload changes it, as heraldd -o help does."""
        items = man_items(CONF_PAGE)
        for path, default, live in settings_help():
            with self.subTest(setting=path):
                self.assertIn(path, items, "missing from heraldd.conf.5")
                text = items[path]
                if live:
                    self.assertIn("Changes on reload", text)
                    self.assertNotIn("Needs a restart", text)
                else:
                    self.assertIn("Needs a restart", text)
                    self.assertNotIn("Changes on reload", text)

    def test_broken_config_is_reported_with_its_line(self):
        """heraldd -t reports an error on line 3 as FILE:3: and exits 1."""
        cases = {
            "syntax": "workers = ;\n",
            "unknown": "no_such_setting = 1;\n",
            "type": 'clients = { max = "many"; };\n',
            "range": "workers = 100000;\n",
        }
        for name, line3 in cases.items():
            with self.subTest(error=name), tempfile.TemporaryDirectory() \
                    as tmp:
                path = os.path.join(tmp, "broken.conf")
                with open(path, "w") as f:
                    f.write("# a broken configuration\nmax_payload = 1024;\n"
                            + line3 + "shutdown_grace = 2;\n")
                r = run([HERALDD, "-t", "-c", path])
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn(path + ":3:", r.stderr)


class InitScript(unittest.TestCase):
    def test_syntax(self):
        """sh -n accepts the init script."""
        r = run(["sh", "-n", INIT_SCRIPT])
        self.assertEqual(r.returncode, 0, r.stderr)
        if shutil.which("dash") is not None:
            r = run(["dash", "-n", INIT_SCRIPT])
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_lsb_header(self):
        """The LSB header names the service and its dependencies."""
        with open(INIT_SCRIPT) as f:
            text = f.read()
        m = re.search(r"^### BEGIN INIT INFO\n(.*?)^### END INIT INFO",
                      text, re.M | re.S)
        self.assertIsNotNone(m, "no LSB header")
        header = m.group(1)
        for key, want in [("Provides", "heraldd"),
                          ("Required-Start", "$network"),
                          ("Required-Start", "$remote_fs"),
                          ("Required-Start", "$syslog"),
                          ("Default-Start", "2 3 4 5"),
                          ("Default-Stop", "0 1 6")]:
            self.assertRegex(header, r"(?m)^# %s:.*%s" %
                             (re.escape(key), re.escape(want)))

    def test_usage(self):
        """An unknown action is a usage error (LSB: 2)."""
        r = run(["sh", INIT_SCRIPT, "no-such-action"],
                env=dict(os.environ, HERALDD_DEFAULTS="/dev/null"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("Usage", r.stderr)

    def setup_daemon(self):
        """A configuration and pidfile of its own for the built daemon;
        returns (init, pidfile, log_text): init(action) runs the script
        on them and returns (status, output)."""
        need_heraldd(self)
        if shutil.which("start-stop-daemon") is None:
            self.skipTest("start-stop-daemon is not installed")
        tmp = tempfile.mkdtemp(prefix="herald-init-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "heraldd.conf")
        pidfile = os.path.join(tmp, "heraldd.pid")
        log = os.path.join(tmp, "heraldd.log")
        with open(conf, "w") as f:
            f.write('workers = 1;\nlisten = ["127.0.0.1:0"];\n'
                    'http = ["127.0.0.1:0"];\n'
                    'ingest = ["unix:%s"];\nshutdown_grace = 2;\n'
                    'bus = { file = ""; size = "1M"; '
                    'retained_bytes = "1M"; };\n'
                    'log = { file = "%s"; syslog = false; };\n'
                    'status = { interval = 0; };\n'
                    % (os.path.join(tmp, "ingest.sock"), log))
        env = dict(os.environ, DAEMON=HERALDD, CONF=conf, PIDFILE=pidfile,
                   EXTRA_OPTS="", STOP_TIMEOUT="10",
                   HERALDD_DEFAULTS="/dev/null")

        def kill_left():
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        self.addCleanup(kill_left)

        def init(action):
            r = run(["sh", INIT_SCRIPT, action], env=env, timeout=60)
            return r.returncode, r.stdout + r.stderr

        def log_text():
            try:
                with open(log) as f:
                    return "\n--- log ---\n" + f.read()
            except OSError:
                return ""
        return init, pidfile, log_text

    def test_cycle(self):
        """start, status, reload, stop, status against the built daemon."""
        init, pidfile, log_text = self.setup_daemon()
        rc, out = init("status")
        self.assertEqual(rc, 3, "status before start: " + out)
        rc, out = init("start")
        self.assertEqual(rc, 0, "start: " + out + log_text())
        rc, out = init("status")
        self.assertEqual(rc, 0, "status after start: " + out + log_text())
        with open(pidfile) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.assertIn(b"heraldd", f.read())
        rc, out = init("start")
        self.assertEqual(rc, 0, "start when running: " + out)
        rc, out = init("reload")
        self.assertEqual(rc, 0, "reload: " + out + log_text())
        for _ in range(50):
            if "reload accepted" in log_text():
                break
            time.sleep(0.1)
        self.assertIn("reload accepted", log_text())
        rc, out = init("stop")
        self.assertEqual(rc, 0, "stop: " + out + log_text())
        self.assertFalse(alive(pid), "the master still runs after stop")
        rc, out = init("status")
        self.assertEqual(rc, 3, "status after stop: " + out)
        rc, out = init("reload")
        self.assertEqual(rc, 7, "reload when stopped: " + out)
        rc, out = init("stop")
        self.assertEqual(rc, 0, "stop when stopped: " + out)
        # A pidfile left by a dead process: LSB status 1.
        dead = subprocess.Popen(["true"])
        dead.wait()
        with open(pidfile, "w") as f:
            f.write("%d\n" % dead.pid)
        rc, out = init("status")
        self.assertEqual(rc, 1, "status with a stale pidfile: " + out)

    def test_upgrade(self):
        """upgrade moves the running daemon to a new master (heraldd -s
        upgrade, the Debian package's postinst path): the pidfile of
        the script names it, the old master is gone; not running: 7."""
        init, pidfile, log_text = self.setup_daemon()
        rc, out = init("upgrade")
        self.assertEqual(rc, 7, "upgrade when stopped: " + out)
        rc, out = init("start")
        self.assertEqual(rc, 0, "start: " + out + log_text())
        with open(pidfile) as f:
            old = int(f.read().strip())
        rc, out = init("upgrade")
        self.assertEqual(rc, 0, "upgrade: " + out + log_text())
        with open(pidfile) as f:
            new = int(f.read().strip())
        self.assertNotEqual(new, old, "the pidfile names the old master")
        self.assertFalse(alive(old), "the old master still runs")
        rc, out = init("status")
        self.assertEqual(rc, 0, "status after upgrade: " + out)
        rc, out = init("stop")
        self.assertEqual(rc, 0, "stop: " + out + log_text())
        # start-stop-daemon returns once the process no longer matches
        # the binary: its memory is gone, its exit may still be running
        # (long under ASan)
        deadline = time.monotonic() + 10
        while alive(new) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(alive(new), "the new master still runs after stop")


class SystemdUnit(unittest.TestCase):
    def test_verify(self):
        """systemd-analyze verify finds nothing to say about the unit."""
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        tmp = tempfile.mkdtemp(prefix="herald-unit-")
        self.addCleanup(shutil.rmtree, tmp, True)
        exe = HERALDD if os.access(HERALDD, os.X_OK) else shutil.which("true")
        unit = os.path.join(tmp, "heraldd.service")
        with open(UNIT_FILE) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/sbin/heraldd ", text)
        with open(unit, "w") as f:
            f.write(text.replace("/usr/sbin/heraldd", exe))
        r = run(["systemd-analyze", "verify", "--man=no", unit])
        if "--man" in r.stderr and ("unrecognized" in r.stderr or
                                    "Unknown option" in r.stderr):
            r = run(["systemd-analyze", "verify", unit])
        out = r.stdout + r.stderr
        about_unit = [l for l in out.splitlines()
                      if "heraldd.service" in l or unit in l]
        if r.returncode != 0 and not about_unit:
            self.skipTest("systemd-analyze cannot run here: " +
                          out.strip().replace("\n", "; ")[:200])
        self.assertEqual(about_unit, [], out)
        self.assertEqual(r.returncode, 0, out)

    def test_settings(self):
        """The unit keeps what the daemon relies on."""
        with open(UNIT_FILE) as f:
            text = f.read()
        for want in ["Type=notify", "NotifyAccess=all",
                     "ExecStart=/usr/sbin/heraldd -f -c "
                     "/etc/herald/heraldd.conf",
                     "ExecReload=/bin/kill -HUP $MAINPID",
                     "Restart=on-failure", "LimitNOFILE=1048576",
                     "KillMode=mixed", "StateDirectory=herald"]:
            self.assertRegex(text, r"(?m)^%s$" % re.escape(want))


class Logrotate(unittest.TestCase):
    def test_syntax(self):
        """logrotate -d accepts the file and signals with USR1."""
        with open(LOGROTATE_FILE) as f:
            text = f.read()
        self.assertIn("/var/log/herald/*.log", text)
        self.assertIn("USR1", text)
        if shutil.which("logrotate") is None:
            self.skipTest("logrotate is not installed")
        tmp = tempfile.mkdtemp(prefix="herald-logrotate-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "heraldd")
        with open(conf, "w") as f:
            f.write(text.replace("/var/log/herald", tmp))
        os.chmod(conf, 0o644)
        r = run(["logrotate", "-d", "-s", os.path.join(tmp, "state"), conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("error", (r.stdout + r.stderr).lower())
        if os.geteuid() != 0:
            return      # rotating for real needs root (create root adm)
        # Rotate for real: the postrotate script must signal the pid in the
        # pidfile with USR1 (a sleep stands in for heraldd: USR1 ends it).
        pidfile = os.path.join(tmp, "heraldd.pid")
        sleeper = subprocess.Popen(["sleep", "60"])
        self.addCleanup(sleeper.kill)
        with open(pidfile, "w") as f:
            f.write("%d\n" % sleeper.pid)
        with open(os.path.join(tmp, "heraldd.log"), "w") as f:
            f.write("a line\n")
        with open(conf, "w") as f:
            f.write(text.replace("/var/log/herald", tmp)
                    .replace("/run/heraldd.pid", pidfile))
        r = run(["logrotate", "-f", "-s", os.path.join(tmp, "state"), conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(os.path.join(tmp, "heraldd.log.1")))
        self.assertEqual(sleeper.wait(timeout=10), -signal.SIGUSR1)


class Result(unittest.TextTestResult):
    """Counts passes too; a test with failing subtests fails once."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = []
        self.bad = set()

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.bad.add(test.id())

    def addSuccess(self, test):
        super().addSuccess(test)
        if test.id() not in self.bad:
            self.passed.append(test)


def main():
    print("source: %s\ndaemon: %s" % (SRCDIR, HERALDD))
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=Result)
    result = runner.run(suite)
    def case_id(t):
        return getattr(t, "test_case", t).id()  # a subtest: its test
    failed = len(result.bad | {case_id(t) for t, _ in result.failures} |
                 {case_id(t) for t, _ in result.errors})
    passed = len([t for t in result.passed if t.id() not in result.bad])
    for test, reason in result.skipped:
        print("skipped %s: %s" % (test.id().split(".", 1)[-1], reason))
    sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    if failed:
        return 1
    if passed == 0:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
