"""A publisher faster than the producer is held back by TCP, never
refused: while the queue from its worker to the producer is full, the
worker stops reading it; when it drains, every PUB goes in, in order."""
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.environ.get('HERALD_TESTS',
                                  os.path.dirname(os.path.abspath(__file__))))
import herald_test as ht  # noqa: E402

N = 40000
PAYLOAD = 'p' * 1000        # 40 MB: more than the 8 MB queue and the socket buffers


class Backpressure(ht.HeraldTestCase):

    def test_stopped_producer_holds_publisher(self):
        srv = self.server({'workers': 1})
        producer = srv.pids()['producer']
        pub = self.conn(srv.ingest_port, timeout=30)
        os.kill(producer, signal.SIGSTOP)
        self.addCleanup(lambda: ht.pid_alive(producer) and
                        os.kill(producer, signal.SIGCONT))
        data = ''.join('PUB bp/t %06d%s\n' % (k, PAYLOAD)
                       for k in range(N)).encode()
        done = threading.Event()

        def flood():
            pub.sock.sendall(data)
            done.set()
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        # With the producer stopped the flood cannot all be taken: the
        # worker stops reading and the sender blocks; nothing is refused.
        time.sleep(2.0)
        self.assertFalse(done.is_set(), 'the publisher was not held back')
        pub.assert_no_line(within=0.2)
        os.kill(producer, signal.SIGCONT)
        t.join(30)
        self.assertTrue(done.is_set(), 'the flood went in after SIGCONT')
        s = pub.sync()
        self.assertEqual(s, N, 'every PUB entered the bus, none refused')
        c = self.conn(srv.port)
        self.assertEqual(c.cmd('GET bp/t'),
                         ['VAL bp/t %d %06d%s' % (N, N - 1, PAYLOAD),
                          '+OK GET bp/t'])
        self.assertEqual(int(srv.stats()['busy']), 0)


if __name__ == '__main__':
    ht.main()
