#!/usr/bin/env python3
"""Clients and a publisher kept connected to a running heraldd while a
command (a package upgrade) runs; then checks that nobody noticed.

    upgrade_clients.py PORT INGEST_PORT -- COMMAND [ARG...]

Connects CLIENTS subscribers to PORT (half SUB debtest/#, half SUB
debtest/a) and a publisher to INGEST_PORT that sends PUB debtest/a and
debtest/b alternately at RATE lines a second, payload a counter.  After
LEAD seconds it runs COMMAND; TAIL seconds after COMMAND exits it stops
publishing.  Then every connection must still be the one it opened (no
EOF, a PING answered on it), and every subscriber must have received each
counter of its pattern exactly once, in order, with rising seqs, and no
GAP or BYE.  Exits 0 if so, 1 with the reasons otherwise (2 if COMMAND
fails).  Stdlib only, loopback, bounded by timeouts.
"""
import os
import selectors
import socket
import subprocess
import sys
import time

CLIENTS = 40            # enough to spread over every worker
RATE = 200              # PUBs a second: steady, far below any limit
LEAD = 2.0              # seconds of traffic before the command
TAIL = 2.0              # seconds of traffic after it
CMD_TIMEOUT = 120       # seconds the command may take
DRAIN_TIMEOUT = 15      # seconds for the last messages to arrive
PATTERNS = ('debtest/#', 'debtest/a')


class Peer:
    """One connection: lines received, and what went wrong on it."""

    def __init__(self, port, name):
        self.name = name
        # Blocking with a timeout: reads happen only when select says so,
        # and a send never leaves half a line behind.
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.buf = b''
        self.eof = False
        self.errors = []
        self.pongs = 0
        self.got = []           # (topic, seq, counter) of each MSG
        self.subscribed = False
        hello = self.read_line_blocking()
        if not hello.startswith('HELLO herald/1 '):
            raise SystemExit('%s: expected HELLO, got %r' % (name, hello))

    def read_line_blocking(self):
        while b'\n' not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit('%s: closed before a line' % self.name)
            self.buf += data
        line, self.buf = self.buf.split(b'\n', 1)
        return line.decode('latin-1')

    def on_readable(self):
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionError, OSError) as e:
            data = b''
            self.errors.append('recv: %s' % e)
        if not data:
            if not self.eof:
                self.errors.append('connection closed by the server')
            self.eof = True
            return
        self.buf += data
        *lines, self.buf = self.buf.split(b'\n')
        for raw in lines:
            self.on_line(raw.decode('latin-1'))

    def on_line(self, line):
        word = line.split(' ', 1)[0]
        if word == 'MSG':
            _, topic, seq, payload = line.split(' ', 3)
            self.got.append((topic, int(seq), int(payload)))
        elif word == 'PONG':
            self.pongs += 1
        elif word == '+OK' and line.startswith('+OK SUB '):
            self.subscribed = True
        elif word in ('HB', 'VAL'):
            pass
        else:           # GAP, BYE, -ERR and anything unforeseen
            self.errors.append('unexpected line %r' % line)


def main():
    if len(sys.argv) < 5 or sys.argv[3] != '--':
        sys.exit(__doc__)
    port, ingest = int(sys.argv[1]), int(sys.argv[2])
    command = sys.argv[4:]

    subs = []
    for i in range(CLIENTS):
        p = Peer(port, 'client %d' % i)
        p.pattern = PATTERNS[i % 2]
        p.sock.sendall(('SUB %s\n' % p.pattern).encode())
        subs.append(p)
    pub = Peer(ingest, 'publisher')
    pub.pattern = None
    peers = subs + [pub]
    sel = selectors.DefaultSelector()
    for p in peers:
        sel.register(p.sock, selectors.EVENT_READ, p)

    def pump(seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            for key, _ in sel.select(min(left, 0.05)):
                key.data.on_readable()

    deadline = time.monotonic() + 10
    while not all(p.subscribed for p in subs):
        if time.monotonic() > deadline:
            sys.exit('not every client got +OK SUB within 10 s')
        pump(0.05)

    sent = 0
    start = time.monotonic()
    proc = None
    cmd_end = None
    cmd_rc = None
    while True:
        now = time.monotonic()
        if proc is None and now - start >= LEAD:
            print('running: %s' % ' '.join(command), flush=True)
            proc = subprocess.Popen(command)
            cmd_start = now
        if proc is not None and cmd_rc is None:
            cmd_rc = proc.poll()
            if cmd_rc is not None:
                cmd_end = now
                print('command exited %d after %.1f s' %
                      (cmd_rc, now - cmd_start), flush=True)
            elif now - cmd_start > CMD_TIMEOUT:
                proc.kill()
                sys.exit('the command took more than %d s' % CMD_TIMEOUT)
        if cmd_end is not None and now - cmd_end >= TAIL:
            break
        due = int((now - start) * RATE)
        while sent < due:
            topic = 'debtest/a' if sent % 2 == 0 else 'debtest/b'
            try:
                pub.sock.sendall(('PUB %s %d\n' % (topic, sent)).encode())
            except OSError as e:
                pub.errors.append('send: %s' % e)
                break
            sent += 1
        pump(0.005)

    # Every subscriber has its last counter, or time is up.
    last = {'debtest/#': sent - 1, 'debtest/a': (sent - 1) // 2 * 2}
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        if all(p.eof or (p.got and p.got[-1][2] == last[p.pattern])
               for p in subs):
            break
        pump(0.1)
    # The same connections still answer.
    for p in peers:
        if not p.eof:
            try:
                p.sock.sendall(b'PING after\n')
            except OSError as e:
                p.errors.append('send PING: %s' % e)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and \
            not all(p.eof or p.pongs for p in peers):
        pump(0.1)

    failures = []
    for p in peers:
        if not p.eof and not p.pongs:
            p.errors.append('no PONG after the command')
        if p.pattern is not None:
            want = list(range(0, sent, 1 if p.pattern == 'debtest/#' else 2))
            counters = [c for _, _, c in p.got]
            if counters != want:
                missing = sorted(set(want) - set(counters))
                dup = len(counters) - len(set(counters))
                p.errors.append('%d of %d messages, %d missing (first %s), '
                                '%d duplicates, in order: %s' % (
                                    len(counters), len(want), len(missing),
                                    missing[:5], dup,
                                    counters == sorted(counters)))
            seqs = [s for _, s, _ in p.got]
            if any(b <= a for a, b in zip(seqs, seqs[1:])):
                p.errors.append('seqs do not rise')
        for e in p.errors[:5]:
            failures.append('%s: %s' % (p.name, e))
    print('%d PUBs at %d/s; %d subscribers and the publisher checked' %
          (sent, RATE, len(subs)))
    if cmd_rc != 0:
        failures.append('the command failed with status %d' % cmd_rc)
    if failures:
        print('FAILED:\n  ' + '\n  '.join(failures[:40]))
        return 2 if cmd_rc != 0 else 1
    print('every client kept its connection and got every message once')
    return 0


if __name__ == '__main__':
    sys.exit(main())
