"""
The integration test harness of herald: start the real heraldd on free
loopback ports in a temp dir, talk to it over TCP, and always kill it.

Used by every tests/integration/test_*.py:

    sys.path.insert(0, os.environ.get('HERALD_TESTS', os.path.dirname(...)))
    import herald_test as ht
    class T(ht.HeraldTestCase): ...
    if __name__ == '__main__': ht.main()

Python 3.11 standard library only.
"""

import atexit
import os
import re
import select
import shutil
import signal
import signal as _sig
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HERALDD = os.environ.get('HERALDD') or os.path.normpath(
    os.path.join(HERE, '..', '..', 'heraldd'))
# The build and source trees (make check sets them; a test run by hand
# finds them from here), and the herald command built there.
BUILDDIR = os.environ.get('HERALD_BUILDDIR') or \
    os.path.normpath(os.path.join(HERE, '..', '..'))
SRCDIR = os.environ.get('HERALD_SRCDIR') or \
    os.path.normpath(os.path.join(HERE, '..', '..'))
HERALD = os.path.join(BUILDDIR, 'client', 'herald')

TIMEOUT = 5.0           # default for every socket operation
READY_TIMEOUT = 10.0    # wait_ready
SANITIZER_MARKS = ('AddressSanitizer', 'runtime error:',
                   'LeakSanitizer', 'ThreadSanitizer')

FINAL_RE = re.compile(r'^(\+OK|-ERR|PONG|BYE)( |$)')
MSG_RE = re.compile(r'^(MSG|VAL) (\S+) (\d+) (.*)$', re.S)
GAP_RE = re.compile(r'^GAP (\d+) (\d+)$')
HELLO_RE = re.compile(r'^HELLO herald/1 (\d+)( auth)?$')

_live_servers = []


PORT_DIR = os.path.join(tempfile.gettempdir(), 'herald-test-ports')
PORT_RANGE = (20000, 32767)     # below Linux's ephemeral range (32768-)
_my_ports = []


def _port_free(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _reserve(port):
    """Claim port among concurrently running test processes (a file
    holding our pid; a dead holder's claim is taken over)."""
    os.makedirs(PORT_DIR, exist_ok=True)
    path = os.path.join(PORT_DIR, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    holder = int(f.read().strip() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder and holder != os.getpid() and pid_alive(holder):
                return False
            try:
                os.unlink(path)
            except OSError:
                pass
            continue
        os.write(fd, b'%d\n' % os.getpid())
        os.close(fd)
        _my_ports.append(path)
        return True
    return False


def _release_ports():
    for path in _my_ports:
        try:
            os.unlink(path)
        except OSError:
            pass


def free_port(host='127.0.0.1'):
    """A TCP port that is free on host, outside the ephemeral range (so no
    client connection takes it as its source port), and reserved against
    the other test processes running at the same time."""
    import random
    for _ in range(200):
        port = random.randrange(*PORT_RANGE)
        if _port_free(host, port) and _reserve(port):
            return port
    # fall back to what the kernel picks
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def debian_module(name):
    """Import a module a Debian package installs (python3-websockets,
    python3-prometheus-client), also for a python3 that is not Debian's
    own (a pyenv one) and so does not look there; None if missing."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        if '/usr/lib/python3/dist-packages' not in sys.path:
            sys.path.append('/usr/lib/python3/dist-packages')
        try:
            return importlib.import_module(name)
        except ImportError:
            return None


def have_daemon():
    return os.path.isfile(HERALDD) and os.access(HERALDD, os.X_OK)


def esc(data):
    """Escape bytes (or a latin-1 str) as herald-protocol(7) escapes a detail."""
    if isinstance(data, str):
        data = data.encode('latin-1')
    out = []
    for b in data:
        if b < 0x20 or b > 0x7e or b == 0x5c:
            out.append('\\x%02x' % b)
        else:
            out.append(chr(b))
    return ''.join(out)


def parse_msg(line):
    """('MSG'|'VAL', topic, seq, payload) or None."""
    m = MSG_RE.match(line)
    if not m:
        return None
    return m.group(1), m.group(2), int(m.group(3)), m.group(4)


def parse_gap(line):
    m = GAP_RE.match(line)
    return (int(m.group(1)), int(m.group(2))) if m else None


def proc_cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            raw = f.read()
    except OSError:
        return None
    return raw.replace(b'\0', b' ').decode('latin-1').strip()


def proc_ppid(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
    except OSError:
        return None
    # comm may contain spaces: the fields after the last ')'
    rest = st[st.rindex(')') + 2:].split()
    return int(rest[1])


def proc_rss_kb(pid, field='VmRSS'):
    """VmRSS (or another /proc/<pid>/status field, e.g. RssAnon) in kB."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
    except OSError:
        return False
    state = st[st.rindex(')') + 2:].split()[0]
    return state != 'Z'


def socket_inodes(pid):
    """Inodes of the sockets process pid holds."""
    inodes = set()
    d = '/proc/%d/fd' % pid
    try:
        names = os.listdir(d)
    except OSError:
        return inodes
    for n in names:
        try:
            t = os.readlink(os.path.join(d, n))
        except OSError:
            continue
        if t.startswith('socket:['):
            inodes.add(int(t[8:-1]))
    return inodes


def _hexaddr(host, port):
    a = socket.inet_aton(host)
    return '%02X%02X%02X%02X:%04X' % (a[3], a[2], a[1], a[0], port)


def server_side_inodes(server_port, client_addrs):
    """Map (client host, client port) -> inode of the server's end of that
    TCP connection, from /proc/net/tcp."""
    want = {}
    for host, port in client_addrs:
        want[_hexaddr(host, port)] = (host, port)
    out = {}
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            p = line.split()
            local, remote, inode = p[1], p[2], int(p[9])
            if int(local.split(':')[1], 16) != server_port:
                continue
            if remote in want and inode != 0:
                out[want[remote]] = inode
    return out


# --------------------------------------------------------------------------
class DaemonDied(AssertionError):
    pass


class Server:
    """One heraldd -f in its own temp dir, on free loopback ports."""

    def __init__(self, overrides=None, config=None, workers=2, start=True,
                 base=True, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix='herald-test-')
        self.port = free_port()
        self.ingest_port = free_port()
        while self.ingest_port == self.port:
            self.ingest_port = free_port()
        self.http_port = free_port()
        while self.http_port in (self.port, self.ingest_port):
            self.http_port = free_port()
        self.workers = workers
        self.overrides = dict(overrides or {})
        self.config_text = config
        self.base = base
        self.proc = None
        self.final_log = None
        self.log_path = os.path.join(self.tmp, 'log')
        self.conf_path = os.path.join(self.tmp, 'heraldd.conf')
        self.pidfile = os.path.join(self.tmp, 'heraldd.pid')
        self.bus_file = os.path.join(self.tmp, 'bus')
        self.exit_status = None
        if start:
            self.start()

    # -- command line ---------------------------------------------------
    def base_overrides(self):
        o = {}
        if self.base:
            o = {
                'listen': '127.0.0.1:%d' % self.port,
                'ingest': '127.0.0.1:%d' % self.ingest_port,
                'http': '127.0.0.1:%d' % self.http_port,
                'bus.file': self.bus_file,
                'pidfile': self.pidfile,
                'workers': str(self.workers),
                'status.interval': '0',
                'bus.size': '4M',
            }
        o.update({k: str(v) for k, v in self.overrides.items()})
        # an override given as None is left out (set it in the file)
        return {k: v for k, v in o.items()
                if self.overrides.get(k, '') is not None}

    def argv(self):
        argv = [HERALDD, '-f']
        if self.config_text is not None:
            with open(self.conf_path, 'w') as f:
                f.write(self.config_text)
            argv += ['-c', self.conf_path]
        for k, v in self.base_overrides().items():
            argv += ['-o', '%s=%s' % (k, v)]
        return argv

    def write_config(self, text):
        self.config_text = text
        with open(self.conf_path, 'w') as f:
            f.write(text)

    # -- life -------------------------------------------------------------
    def start(self, wait=True):
        self.final_log = None
        self.exit_status = None
        self.log_file = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.log_file,
                                     stderr=self.log_file,
                                     start_new_session=True, cwd=self.tmp)
        self.pid = self.proc.pid
        _live_servers.append(self)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Poll until both listeners answer with HELLO."""
        deadline = time.monotonic() + timeout
        last = None
        ports = [self.port]
        if 'ingest' not in self.overrides:
            ports.append(self.ingest_port)
        for port in ports:
            while True:
                if self.proc.poll() is not None:
                    raise DaemonDied('heraldd exited with %s before it was '
                                     'ready; log:\n%s' % (self.proc.returncode,
                                                          self.log_tail()))
                try:
                    c = Conn(port, timeout=1.0)
                    c.close()
                    break
                except (OSError, AssertionError) as e:
                    last = e
                if time.monotonic() > deadline:
                    raise AssertionError('heraldd not ready on port %d '
                                         'after %.0f s (%s); log:\n%s' %
                                         (port, timeout, last,
                                          self.log_tail()))
                time.sleep(0.05)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=None):
        """TERM, wait, then KILL the whole process group. Returns the exit
        status of the master (negative = killed by that signal)."""
        if self.proc is None:
            return self.exit_status
        if grace is None:
            grace = int(self.base_overrides().get('shutdown_grace', 5)) + 3
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self.exit_status = self.proc.returncode
        return self.exit_status

    def kill(self):
        """SIGKILL the whole process group (master and children)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # children re-parented elsewhere still carry our process group
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.02)
        if self in _live_servers:
            _live_servers.remove(self)
        try:
            self.log_file.close()
        except Exception:
            pass
        self.final_log = self.log()

    def restart(self):
        """Stop, then start again on the same temp dir (bus file, ports)."""
        self.stop()
        self.proc = None
        return self.start()

    def cleanup(self):
        """Stop, fail on a sanitizer report, remove the temp dir."""
        self.stop()
        text = self.final_log if self.final_log is not None else self.log()
        shutil.rmtree(self.tmp, ignore_errors=True)
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise AssertionError('heraldd log has "%s":\n%s' %
                                     (mark, text[-6000:]))

    # -- looking at it ----------------------------------------------------
    def log(self):
        if self.final_log is not None:
            return self.final_log
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('latin-1')
        except OSError:
            return ''

    def log_tail(self, n=40):
        return '\n'.join(self.log().splitlines()[-n:])

    def children(self):
        """{pid: cmdline} of the master's children."""
        out = {}
        for d in os.listdir('/proc'):
            if not d.isdigit():
                continue
            pid = int(d)
            if proc_ppid(pid) == self.pid and pid_alive(pid):
                cl = proc_cmdline(pid)
                if cl is not None:
                    out[pid] = cl
        return out

    def pids(self):
        """{role: pid}: 'master', 'producer', 'worker 1', ... from the
        process titles.  A child just forked has no title yet: wait a
        moment for it ('other' lists what still has none)."""
        deadline = time.monotonic() + 1.0
        while True:
            roles = self._roles()
            if 'other' not in roles or time.monotonic() > deadline:
                return roles
            time.sleep(0.02)

    def _roles(self):
        roles = {}
        cl = proc_cmdline(self.pid)
        if cl is not None and pid_alive(self.pid):
            roles['master'] = self.pid
        for pid, cl in self.children().items():
            m = re.match(r'^heraldd: worker process (\d+)\b', cl)
            if m:
                roles['worker %s' % m.group(1)] = pid
            elif cl.startswith('heraldd: producer'):
                roles['producer'] = pid
            else:
                roles.setdefault('other', []).append((pid, cl))
        return roles

    def worker_pids(self):
        return {r: p for r, p in self.pids().items()
                if r.startswith('worker ')}

    def kill_child(self, role, sig=_sig.SIGKILL):
        pid = self.pids()[role]
        os.kill(pid, sig)
        return pid

    def wait_role(self, role, not_pid=None, timeout=3.0):
        """Wait until role runs with a pid other than not_pid."""
        deadline = time.monotonic() + timeout
        while True:
            pid = self.pids().get(role)
            if pid is not None and pid != not_pid:
                return pid
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def worker_of(self, conns, port=None):
        """{conn: role} of the child process that holds the server's end
        of each connection (to port, default the client listener); None
        when not found."""
        port = self.port if port is None else port
        addrs = [c.sock.getsockname() for c in conns]
        inodes = server_side_inodes(port, addrs)
        owner = {}
        for role, pid in self.pids().items():
            if role in ('master', 'other'):
                continue
            for ino in socket_inodes(pid):
                owner[ino] = role
        out = {}
        for c, a in zip(conns, addrs):
            out[c] = owner.get(inodes.get(tuple(a)))
        return out

    def workers_rss_kb(self, field='VmRSS'):
        return sum(proc_rss_kb(p, field) for p in self.worker_pids().values())

    # -- talking to it ----------------------------------------------------
    def connect(self, **kw):
        return Conn(self.port, **kw)

    def ingest(self, **kw):
        return Conn(self.ingest_port, **kw)

    def stats(self):
        c = self.connect()
        try:
            return c.stats()
        finally:
            c.close()


# --------------------------------------------------------------------------
class Conn:
    """One line-protocol connection. Lines are str (latin-1, no LF)."""

    def __init__(self, port, host='127.0.0.1', timeout=TIMEOUT, hello=True,
                 rcvbuf=None, source=None):
        self.timeout = timeout
        self.buf = b''     # received; lines before self.off are taken
        self.off = 0
        self.eof = False
        self.reset = False
        unix = isinstance(port, str)    # a unix socket's path
        self.sock = socket.socket(socket.AF_UNIX if unix else
                                  socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(port if unix else (host, port))
        except Exception:
            self.sock.close()
            raise
        self.hello_seq = None
        self.hello = None
        if hello:
            line = self.recv_line()
            if line is None:
                self.close()
                raise AssertionError('connection closed before HELLO')
            m = HELLO_RE.match(line)
            if not m:
                self.close()
                raise AssertionError('expected HELLO herald/1 <seq>, got %r'
                                     % line)
            self.hello = line
            self.hello_seq = int(m.group(1))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('latin-1')
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def sendline(self, line):
        if isinstance(line, str):
            line = line.encode('latin-1')
        self.send(line + b'\n')

    def _fill(self, deadline):
        """Read more into buf; False on EOF; raises socket.timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout('timed out')
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            # counts as the end of the stream; self.reset tells them apart
            self.reset = True
            data = b''
        if not data:
            self.eof = True
            return False
        # drop what was taken here, not per line: taking n buffered lines
        # one by one must cost O(n), or a reader behind a fast stream
        # falls further behind with every line
        self.buf = self.buf[self.off:] + data
        self.off = 0
        return True

    def recv_line(self, timeout=None):
        """The next line without LF; None on EOF; raises AssertionError on
        timeout."""
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b'\n', self.off)
            if i >= 0:
                line = self.buf[self.off:i]
                self.off = i + 1
                return line.decode('latin-1')
            if self.eof:
                if len(self.buf) > self.off:
                    rest, self.buf, self.off = self.buf[self.off:], b'', 0
                    raise AssertionError('connection closed after a partial '
                                         'line %r' % rest[:200])
                return None
            try:
                if not self._fill(deadline):
                    continue
            except socket.timeout:
                part = self.buf[self.off:]
                raise AssertionError('no line within %.1f s (%d bytes '
                                     'buffered without LF: %r%s)'
                                     % (timeout, len(part), part[:120],
                                        '...' if len(part) > 120
                                        else '')) from None

    def line(self, timeout=None):
        """Like recv_line, but EOF is a failure."""
        line = self.recv_line(timeout)
        if line is None:
            raise AssertionError('connection closed, expected a line')
        return line

    def cmd(self, line, timeout=None):
        """Send one command; return every line up to and including the
        final one (+OK / -ERR / PONG / BYE)."""
        self.sendline(line)
        return self.read_final(timeout)

    def read_final(self, timeout=None):
        out = []
        while True:
            ln = self.recv_line(timeout)
            if ln is None:
                raise AssertionError('connection closed before a final line; '
                                     'got %r' % out)
            out.append(ln)
            if FINAL_RE.match(ln):
                return out

    def expect(self, regex, timeout=None):
        """The next line must match regex; returns the match."""
        ln = self.line(timeout)
        m = re.match(regex, ln, re.S)
        if not m:
            raise AssertionError('expected /%s/, got %r' % (regex, ln))
        return m

    def read_until(self, pred, timeout=None, limit=1000000):
        """Lines up to and including the first one for which pred is true."""
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('no matching line within %.1f s; last '
                                     'lines: %r' % (timeout, out[-5:]))
            ln = self.recv_line(left)
            if ln is None:
                raise AssertionError('connection closed while waiting; last '
                                     'lines: %r' % out[-5:])
            out.append(ln)
            if pred(ln):
                return out
        raise AssertionError('too many lines')

    def read_all(self, quiet=0.5, timeout=30.0):
        """Every line until EOF or until nothing came for `quiet` seconds.
        Returns (lines, eof)."""
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ln = self.recv_line(quiet)
            except AssertionError:
                return out, False
            if ln is None:
                return out, True
            out.append(ln)
        return out, self.eof

    def assert_no_line(self, within=0.3):
        """Nothing arrives within `within` seconds (EOF counts as nothing
        arriving only if no data)."""
        deadline = time.monotonic() + within
        while self.buf.find(b'\n', self.off) < 0 and not self.eof:
            try:
                if not self._fill(deadline):
                    break
            except socket.timeout:
                break
        if len(self.buf) > self.off:
            raise AssertionError('expected no line, got %r' %
                                 self.buf[self.off:self.off + 300])

    def expect_eof(self, timeout=None):
        """The server closes: no more lines, then EOF."""
        ln = self.recv_line(timeout)
        if ln is not None:
            raise AssertionError('expected the connection to close, got %r'
                                 % ln)

    def closed_by_peer(self, timeout=None):
        """True once EOF or a reset is seen (lines are discarded)."""
        try:
            while self.recv_line(timeout) is not None:
                pass
            return True
        except ConnectionError:
            return True

    def stats(self):
        lines = self.cmd('STATS')
        if lines[-1] != '+OK STATS':
            raise AssertionError('STATS ended with %r' % lines[-1])
        st = {}
        for ln in lines[:-1]:
            m = re.match(r'^STAT (\S+) (\S+)$', ln)
            if m:
                st[m.group(1)] = m.group(2)
        return st

    def sync(self):
        """SYNC; returns the seq."""
        lines = self.cmd('SYNC')
        m = re.match(r'^\+OK SYNC (\d+)$', lines[-1])
        if not m:
            raise AssertionError('SYNC answered %r' % lines)
        return int(m.group(1))

    def sub(self, pattern, since=None):
        """SUB; returns (lines before +OK, h). Asserts the +OK."""
        line = 'SUB %s' % pattern if since is None else \
            'SUB %s %s' % (pattern, since)
        lines = self.cmd(line)
        m = re.match(r'^\+OK SUB (\S+) (\d+)$', lines[-1])
        if not m or m.group(1) != pattern:
            raise AssertionError('%s answered %r' % (line, lines))
        return lines[:-1], int(m.group(2))

    def pub(self, topic, payload):
        self.sendline('PUB %s %s' % (topic, payload))


# --------------------------------------------------------------------------
class HeraldTestCase(unittest.TestCase):
    """A test case whose servers are always stopped (and checked for
    sanitizer reports) after the test."""

    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        if not have_daemon():
            raise unittest.SkipTest('no heraldd at %s' % HERALDD)

    def server(self, overrides=None, **kw):
        srv = Server(overrides, **kw)
        self._servers = getattr(self, '_servers', []) + [srv]
        self.addCleanup(srv.cleanup)
        return srv

    @classmethod
    def class_server(cls, overrides=None, **kw):
        srv = Server(overrides, **kw)
        cls.addClassCleanup(srv.cleanup)
        return srv

    def conn(self, port, **kw):
        c = Conn(port, **kw)
        self.addCleanup(c.close)
        return c

    def assertErr(self, line, code, detail=None):
        """line is `-ERR code detail`, free text allowed after the detail."""
        if detail is None:
            ok = re.match(r'^-ERR %s( .*)?$' % re.escape(code), line or '',
                          re.S)
        else:
            want = '-ERR %s %s' % (code, detail)
            ok = line == want or (line or '').startswith(want + ' ')
        if not ok:
            raise AssertionError('expected %r, got %r' %
                                 ('-ERR %s %s' % (code, detail)
                                  if detail is not None else
                                  '-ERR %s ...' % code, line))

    def assertOne(self, lines, what='answer'):
        self.assertEqual(len(lines), 1, '%s: expected one line, got %r' %
                         (what, lines))
        return lines[0]


class _Result(unittest.TextTestResult):
    npassed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.npassed += 1

    def _tail(self, test):
        for srv in getattr(test, '_servers', []):
            self.stream.write('--- heraldd log (%s) ---\n%s\n' %
                              (srv.tmp, srv.log_tail(30)))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._tail(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._tail(test)


def _kill_all():
    for srv in list(_live_servers):
        try:
            srv.kill()
        except Exception:
            pass


atexit.register(_kill_all)
atexit.register(_release_ports)


def main():
    """Run the calling module's tests; print `N passed, N failed[, N
    skipped]`; exit 0, 1, or 77 when everything was skipped."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: (_kill_all(), os._exit(1)))
    module = sys.modules['__main__']
    loader = unittest.TestLoader()
    argv = sys.argv[1:]
    if argv:
        suite = loader.loadTestsFromNames(argv, module)
    else:
        suite = loader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=_Result)
    t0 = time.monotonic()
    result = runner.run(suite)
    _kill_all()
    _release_ports()
    skipped = len(result.skipped)
    failed = len(result.failures) + len(result.errors) + \
        len(result.unexpectedSuccesses)
    passed = result.npassed
    line = '%d passed, %d failed' % (passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    sys.stdout.write('(%.1f s)\n%s\n' % (time.monotonic() - t0, line))
    sys.stdout.flush()
    if failed:
        sys.exit(1)
    if passed == 0 and skipped:
        sys.exit(77)
    sys.exit(0)
