#!/usr/bin/env python3
"""herald integration: WebSocket on the HTTP listener (GET /ws, subprotocol
herald.v1; herald-protocol(7) OTHER FRAMINGS), with a real client library
(Debian's python3-websockets) where it can say what is tested, and a raw
socket for what a library refuses to send (an unmasked frame) or to
leave unread (a slow client): the handshake, the line protocol in text
frames (several lines in a frame, a line over frames), ping, close, the
close codes of the frames the framing refuses, conflation, and the same
seqs for line, SSE and WebSocket clients."""

import asyncio
import base64
import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402
import test_http  # noqa: E402

websockets = ht.debian_module('websockets')

T = ht.TIMEOUT
KEY = base64.b64encode(b'0123456789abcdef').decode()


def handshake(key=KEY, version='13', protocol='herald.v1', extra=''):
    raw = 'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n' \
          'Connection: Upgrade\r\n'
    if key is not None:
        raw += 'Sec-WebSocket-Key: %s\r\n' % key
    if version is not None:
        raw += 'Sec-WebSocket-Version: %s\r\n' % version
    if protocol is not None:
        raw += 'Sec-WebSocket-Protocol: %s\r\n' % protocol
    return (raw + extra + '\r\n').encode()


def frame(op, payload, fin=True, mask=True):
    """A client's frame, built by hand: the test's side of the wire."""
    b = bytes([(0x80 if fin else 0) | op])
    n, m = len(payload), 0x80 if mask else 0
    if n < 126:
        b += bytes([m | n])
    elif n < 65536:
        b += bytes([m | 126]) + struct.pack('>H', n)
    else:
        b += bytes([m | 127]) + struct.pack('>Q', n)
    if mask:
        k = os.urandom(4)
        b += k
        payload = bytes(c ^ k[i % 4] for i, c in enumerate(payload))
    return b + payload


class RawWS:
    """A WebSocket connection on a plain socket: its frames read one by
    one as (opcode, payload)."""

    def __init__(self, port, rcvbuf=None, wrap=None, request=None):
        s = socket.socket()
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(T)
        s.connect(('127.0.0.1', port))
        self.sock = wrap(s) if wrap is not None else s
        self.buf = b''
        self.sock.sendall(request or handshake())
        while b'\r\n\r\n' not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b'\r\n\r\n')
        self.status, self.headers, _ = test_http.parse_response(
            head + b'\r\n\r\n')

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError('connection closed')
        self.buf += chunk

    def _need(self, n):
        while len(self.buf) < n:
            self._fill()

    def frame(self):
        self._need(2)
        op, n = self.buf[0] & 0x0f, self.buf[1] & 0x7f
        assert self.buf[0] & 0x80 and not self.buf[1] & 0x80, self.buf[:2]
        at = 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack('>H', self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack('>Q', self.buf[2:10])[0], 10
        self._need(at + n)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return op, payload

    def lines(self):
        """The lines of the next text frame."""
        op, payload = self.frame()
        assert op == 1, (op, payload)
        assert payload.endswith(b'\n'), payload
        return payload.decode().splitlines()

    def close_code(self):
        """Read up to the server's close frame: its code."""
        while True:
            op, payload = self.frame()
            if op == 8:
                return struct.unpack('>H', payload[:2])[0]

    def send(self, data):
        self.sock.sendall(data)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 3 * T))


class WsCase(test_http.HttpCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if websockets is None:
            raise unittest.SkipTest('no python3-websockets')

    def url(self, srv):
        return 'ws://127.0.0.1:%d/ws' % srv.http_port

    def connect(self, srv, **kw):
        return websockets.connect(self.url(srv), subprotocols=['herald.v1'],
                                  open_timeout=T, close_timeout=T, **kw)

    def raw(self, srv, **kw):
        r = RawWS(srv.http_port, **kw)
        self.addCleanup(r.close)
        return r

    def stat(self, srv, name):
        return int(srv.stats()[name])


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), T)


async def lines(ws, n):
    """The next n lines, from however many frames carry them."""
    got = ''
    while got.count('\n') < n:
        got += await recv(ws)
    return got


async def closed_code(ws):
    """Wait for the server to close: the code of its close frame (no
    line may come before it)."""
    try:
        while True:
            got = await recv(ws)
            if not got.startswith('BYE '):
                raise AssertionError('a line before the close: %r' % got)
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


class HandshakeTest(WsCase):

    def test_upgrade_and_hello(self):
        srv = self.http_server()

        async def go():
            async with self.connect(srv) as ws:
                self.assertEqual(ws.subprotocol, 'herald.v1')
                self.assertEqual(await recv(ws), 'HELLO herald/1 0\n')
        run(go())
        # the accept hash of RFC 6455's own example
        r = self.raw(srv, request=handshake('dGhlIHNhbXBsZSBub25jZQ=='))
        self.assertEqual(r.status, 101)
        self.assertEqual(r.headers['sec-websocket-accept'],
                         's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
        self.assertEqual(r.headers['sec-websocket-protocol'], 'herald.v1')
        self.assertEqual(r.lines(), ['HELLO herald/1 0'])

    def test_bad_handshakes_refused_and_counted(self):
        srv = self.http_server()

        async def wrong_subprotocol():
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                async with websockets.connect(
                        self.url(srv), subprotocols=['mqtt'],
                        open_timeout=T):
                    pass
            return cm.exception.status_code
        self.assertEqual(run(wrong_subprotocol()), 400)
        port = srv.http_port
        cases = [
            (handshake(protocol=None), 400),
            (handshake(version='8'), 426),
            (handshake(version=None), 426),
            (handshake(key=None), 400),
            (handshake(key='c2hvcnQ='), 400),               # 5 bytes
            (handshake(key='!' * 22 + '=='), 400),           # not base64
            (b'GET /ws HTTP/1.1\r\nHost: x\r\n\r\n', 426),   # no Upgrade
            (handshake(extra='Sec-WebSocket-Key: %s\r\n' % KEY), 400),
        ]
        for raw, want in cases:
            st, headers, _ = test_http.request(port, raw)
            self.assertEqual(st, want, raw)
            if want == 426:
                self.assertEqual(headers['sec-websocket-version'], '13')
        self.assertEqual(self.stat(srv, 'http_bad_requests'), len(cases) + 1)
        self.assertEqual(self.stat(srv, 'clients'), 1)  # STATS's own

    def test_token_or_auth_line(self):
        import test_auth
        d = test_http.AuthTest.tmpdir(self)
        key = os.path.join(d, 'hs.key')
        with open(key, 'w') as f:
            f.write(test_auth.SECRET.decode() + '\n')
        os.chmod(key, 0o600)
        srv = self.http_server(config=(
            'auth: { jwt_keys = ["%s"]; required = true; '
            'fail_delay_ms = 0; };\n' % key))
        import time
        good = test_auth.hs256({'sub': 'alice', 'exp': int(time.time()) +
                                600, 'herald': {'read': ['a/#']}})
        bad = test_auth.hs256({'sub': 'alice', 'exp': int(time.time()) - 5})
        r = self.raw(srv, request=handshake(
            extra='Authorization: Bearer %s\r\n' % bad))
        self.assertEqual(r.status, 401)
        # no token: the line protocol's own AUTH
        r = self.raw(srv)
        self.assertEqual(r.lines(), ['HELLO herald/1 0 auth'])
        r.send(frame(1, b'SUB a/#\n'))
        self.assertTrue(r.lines()[0].startswith('-ERR auth-required'))
        r.send(frame(1, b'AUTH %s\nSUB a/#\n' % good.encode()))
        got = []
        while len(got) < 2:
            got += r.lines()
        self.assertEqual(got, ['+OK AUTH alice', '+OK SUB a/# 0'])
        # a token in the request: authenticated from the start
        r = self.raw(srv, request=handshake(
            extra='Authorization: Bearer %s\r\n' % good))
        self.assertEqual(r.lines(), ['HELLO herald/1 0'])
        r.send(frame(1, b'SUB a/#\n'))
        self.assertEqual(r.lines(), ['+OK SUB a/# 0'])


class LinesTest(WsCase):

    def test_sub_pub_msg_and_resume(self):
        srv = self.http_server({'clients.publish': 't/#'})

        async def go():
            async with self.connect(srv) as sub, self.connect(srv) as pub:
                await recv(sub)
                await recv(pub)
                await sub.send('SUB t/#\n')
                self.assertEqual(await recv(sub), '+OK SUB t/# 0\n')
                await pub.send('PUB t/1 one\nPUB t/2 two\nSYNC\n')
                self.assertEqual(await recv(pub), '+OK SYNC 2\n')
                self.assertEqual(await lines(sub, 2),
                                 'MSG t/1 1 one\nMSG t/2 2 two\n')
            async with self.connect(srv) as ws:
                await recv(ws)
                await ws.send('SUB t/# 1\n')
                self.assertEqual(await lines(ws, 2),
                                 '+OK SUB t/# 2\nMSG t/2 2 two\n')
        run(go())

    def test_lines_in_one_frame_and_over_frames(self):
        srv = self.http_server()

        async def go():
            async with self.connect(srv) as ws:
                await recv(ws)
                await ws.send('PING a\nPING b\n')      # two in one frame
                self.assertEqual(await lines(ws, 2), 'PONG a\nPONG b\n')
                await ws.send(['PI', 'NG ', 'c\n'])    # one message, 3 frames
                self.assertEqual(await recv(ws), 'PONG c\n')
                await ws.send('PING ')                 # two messages
                await ws.send('d\nPING e\n')
                self.assertEqual(await lines(ws, 2), 'PONG d\nPONG e\n')
                # a ping between the fragments of a message
                r = self.raw(srv)
                r.lines()
                r.send(frame(1, b'PING ', fin=False) + frame(9, b'p1') +
                       frame(0, b'f\n'))
                self.assertEqual(r.frame(), (10, b'p1'))
                self.assertEqual(r.lines(), ['PONG f'])
        run(go())

    def test_ping_and_close(self):
        srv = self.http_server()

        async def go():
            async with self.connect(srv) as ws:
                await recv(ws)
                pong = await ws.ping(b'hb')
                await asyncio.wait_for(pong, T)
                await ws.close()
                self.assertEqual(ws.close_code, 1000)
            async with self.connect(srv) as ws:
                await recv(ws)
                await ws.send('QUIT\n')
                self.assertEqual(await recv(ws), 'BYE quit\n')
                self.assertEqual(await closed_code(ws), 1000)
        run(go())
        self.assertEqual(self.stat(srv, 'ws_protocol_errors'), 0)


    def test_heartbeat_is_a_text_frame(self):
        srv = self.http_server({'clients.heartbeat': '1'})
        r = self.raw(srv)
        self.assertEqual(r.lines(), ['HELLO herald/1 0'])
        self.assertEqual(r.lines(), ['HB 0'])     # within ht.TIMEOUT


class BadFramesTest(WsCase):

    def test_unmasked_frame_closes_1002(self):
        srv = self.http_server()
        r = self.raw(srv)
        r.lines()
        r.send(frame(1, b'PING x\n', mask=False))
        self.assertEqual(r.close_code(), 1002)
        # a continuation with no message begun, too
        r = self.raw(srv)
        r.lines()
        r.send(frame(0, b'PING x\n'))
        self.assertEqual(r.close_code(), 1002)
        self.assertEqual(self.stat(srv, 'ws_protocol_errors'), 2)

    def test_binary_frame_closes_1003(self):
        srv = self.http_server()

        async def go():
            async with self.connect(srv) as ws:
                await recv(ws)
                await ws.send(b'PING x\n')
                return await closed_code(ws)
        self.assertEqual(run(go()), 1003)
        self.assertEqual(self.stat(srv, 'ws_protocol_errors'), 1)

    def test_oversize_frame_and_line_close_1009(self):
        srv = self.http_server({'clients.max_line': '100'})

        async def go(parts):
            async with self.connect(srv) as ws:
                await recv(ws)
                for p in parts:
                    await ws.send(p)
                return await closed_code(ws)
        self.assertEqual(run(go(['x' * 101])), 1009)          # one frame
        self.assertEqual(run(go([['x' * 60, 'x' * 60]])), 1009)  # message
        self.assertEqual(run(go(['PING ' + 'x' * 60,           # one line
                                 'x' * 60 + '\n'])), 1009)
        # within the limit, however many frames
        async def fine():
            async with self.connect(srv) as ws:
                await recv(ws)
                await ws.send('PING ' + 'y' * 60)
                await ws.send('y' * 30 + '\n')
                return await recv(ws)
        self.assertEqual(run(fine()), 'PONG ' + 'y' * 90 + '\n')
        self.assertEqual(self.stat(srv, 'ws_protocol_errors'), 3)


class FanoutTest(WsCase):

    def test_line_sse_and_ws_clients_get_the_same_seqs(self):
        srv = self.http_server(workers=1)
        line = self.conn(srv.port)
        line.sub('f/#')
        e = self.events(srv, 'sub=f/%23')
        self.assertEqual(e.event()['event'], 'ok')
        wss = [self.raw(srv) for _ in range(3)]
        for w in wss:
            w.lines()
            w.send(frame(1, b'SUB f/#\n'))
            self.assertEqual(w.lines(), ['+OK SUB f/# 0'])
        n = 300
        last = self.publish(srv, [('f/%d' % (i % 7), 'v%d' % i)
                                  for i in range(n)])
        want = list(range(1, last + 1))
        seqs = []
        while len(seqs) < n:
            ln = line.line()
            seqs.append(int(ln.split(' ')[2]))
        self.assertEqual(seqs, want)
        seqs = []
        while len(seqs) < n:
            ev = e.event()
            self.assertEqual(ev['event'], 'msg')
            seqs.append(int(ev['id']))
        self.assertEqual(seqs, want)
        for w in wss:
            got = []
            while len(got) < n:
                got += w.lines()
            self.assertEqual([int(ln.split(' ')[2]) for ln in got], want)
            self.assertEqual(got[-1], 'MSG f/%d %d v%d' % ((n - 1) % 7, n, n - 1))

    def test_slow_ws_client_is_conflated(self):
        srv = self.http_server({'clients.out_limit': '4K',
                                'tcp.sndbuf': '8K'}, workers=1)
        r = self.raw(srv, rcvbuf=4096)
        r.lines()
        r.send(frame(1, b'SUB s/+\n'))
        self.assertEqual(r.lines(), ['+OK SUB s/+ 0'])
        last = self.flood(srv)      # it reads nothing until then
        seen, gaps = [], []
        while not seen or seen[-1] < last:
            for ln in r.lines():
                w = ln.split(' ')
                if w[0] == 'GAP':
                    gaps.append((int(w[1]), int(w[2])))
                    seen.append(int(w[2]))
                elif w[0] == 'MSG':
                    seen.append(int(w[2]))
                else:
                    self.assertEqual(w[0], 'VAL', ln)
        self.assertTrue(gaps, 'a WS client that did not read was not '
                        'conflated')
        self.assertEqual(seen, sorted(set(seen)))
        self.assertGreater(self.stat(srv, 'slow_consumers'), 0)


class TlsTest(WsCase):

    def test_wss(self):
        srv, port, ctx = self.https_server()
        self.publish(srv, [('t/1', 'v')])

        async def go():
            async with websockets.connect(
                    'wss://127.0.0.1:%d/ws' % port, ssl=ctx,
                    server_hostname='localhost',
                    subprotocols=['herald.v1'], open_timeout=T) as ws:
                self.assertEqual(await recv(ws), 'HELLO herald/1 1\n')
                await ws.send('SUB t/#\n')
                self.assertEqual(await lines(ws, 2),
                                 'VAL t/1 1 v\n+OK SUB t/# 1\n')
                await ws.send(b'\x00')
                return await closed_code(ws)
        self.assertEqual(run(go()), 1003)


if __name__ == '__main__':
    ht.main()
