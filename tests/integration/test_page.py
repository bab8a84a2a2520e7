#!/usr/bin/env python3
"""herald integration: the status page (GET /, heraldd(8) HTTP listener)
in a real browser, Debian's headless Chromium driven by python3-selenium:
values published on the ingest port appear in its table with their seq,
a numeric topic gets a sparkline, the connection shows live with the
server's HELLO; after a restart that loses the history (an anonymous
bus) the page reconnects by itself, shows the GAP, and values flow
again.  A GAP the server sends (the browser stopped and conflated) is
shown too, with the rows it affected.  A screenshot is left in the build tree
(tests/integration/test_page.png).

Skipped (exit 77) only when the browser cannot start: no chromium, no
chromedriver, no python3-selenium, or a session that does not open."""

import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.environ.get('HERALD_TESTS') or
                os.path.dirname(os.path.abspath(__file__)))
import herald_test as ht  # noqa: E402

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
SCREENSHOT = os.path.join(ht.BUILDDIR, 'tests', 'integration',
                          'test_page.png')
WAIT = 15.0     # for anything the page shows (a reconnect backs off)

# What the page shows, read from its DOM as a user would see it.
READ_PAGE = """
const rows = {};
for (const tr of document.querySelectorAll('#rows tr')) {
  const pl = tr.querySelector('polyline');
  rows[tr.dataset.topic] = {
    value: tr.querySelector('td.value').textContent,
    seq: tr.querySelector('td.seq').textContent,
    age: tr.querySelector('td.age').textContent,
    gap: tr.classList.contains('gap'),
    points: pl ? pl.getAttribute('points').split(' ').length : 0 };
}
return { state: document.getElementById('state').dataset.state,
  stateText: document.getElementById('state').textContent,
  hello: document.getElementById('hello').textContent,
  gapShown: !document.getElementById('gap').hidden,
  gaps: [...document.querySelectorAll('#gaps li')].map(li => li.textContent),
  rows };
"""


def start_browser(datadir):
    """A headless Chromium under chromedriver; SkipTest if none starts."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            raise unittest.SkipTest('no %s (Debian: chromium, '
                                    'chromium-driver)' % path)
    webdriver = ht.debian_module('selenium.webdriver')
    if webdriver is None:
        raise unittest.SkipTest('no python3-selenium')
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                '--user-data-dir=' + datadir, '--window-size=900,700'):
        opts.add_argument(arg)
    try:
        drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except WebDriverException as e:
        raise unittest.SkipTest('chromium did not start: %s' %
                                str(e).strip()[:300])
    drv.set_page_load_timeout(WAIT)
    drv.set_script_timeout(WAIT)
    return drv


class PageTest(ht.HeraldTestCase):

    def setUp(self):
        datadir = tempfile.mkdtemp(prefix='herald-chromium-')
        self.addCleanup(shutil.rmtree, datadir, True)
        self.drv = start_browser(datadir)
        self.addCleanup(self.drv.quit)

    def screenshot(self):
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        self.drv.save_screenshot(SCREENSHOT)

    def page(self):
        return self.drv.execute_script(READ_PAGE)

    def wait(self, what, pred, timeout=WAIT):
        """The page as soon as pred(page) holds; fails (with what and a
        screenshot) if it does not within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.page()
            if pred(p):
                return p
            if time.monotonic() > deadline:
                self.screenshot()
                self.fail('page: no %s within %.0f s; it shows %r' %
                          (what, timeout, p))
            time.sleep(0.1)

    def publish(self, srv, items):
        with ht.Conn(srv.ingest_port) as p:
            for topic, value in items:
                p.pub(topic, value)
            return p.sync()

    def open_live(self, srv, query=''):
        self.drv.get('http://127.0.0.1:%d/%s' % (srv.http_port, query))
        return self.wait('live state', lambda p: p['state'] == 'live')

    def test_values_sparkline_restart_gap_and_resume(self):
        # no bus file: a restart loses the history the page stands on
        srv = self.server({'bus.file': ''}, workers=1)
        self.publish(srv, [('sys/t/name', 'before')])
        p = self.open_live(srv)
        self.assertRegex(p['hello'], r'^HELLO herald/1 1$')
        # the default pattern is sys/#: the snapshot's value is there
        self.assertEqual(p['rows']['sys/t/name']['value'], 'before')
        self.assertEqual(p['rows']['sys/t/name']['seq'], '1')
        self.assertNotIn('other/x', p['rows'])
        # (a plot takes a point per half second: these are 0.6 s apart)
        for value in ('1.5', '2.5'):
            self.publish(srv, [('sys/t/load', value), ('other/x', '9')])
            time.sleep(0.6)
        last = self.publish(srv, [('sys/t/load', '0.5'),
                                  ('sys/t/name', '<b>&amp;</b>')])
        # (plots are drawn once a second)
        p = self.wait('the published values and a plot', lambda p:
                      p['rows'].get('sys/t/name', {}).get('seq') ==
                      str(last) and p['rows']['sys/t/load']['points'] == 3)
        load = p['rows']['sys/t/load']
        self.assertEqual((load['value'], load['seq']), ('0.5', str(last - 1)))
        self.assertEqual(p['rows']['sys/t/name']['points'], 0)
        # a value is text, never markup
        self.assertEqual(p['rows']['sys/t/name']['value'], '<b>&amp;</b>')
        self.assertNotIn('other/x', p['rows'])
        self.assertFalse(p['gapShown'])
        self.wait('a ticking age', lambda p:
                  p['rows']['sys/t/load']['age'] not in ('0s', ''))

        srv.restart()       # BYE shutdown; back with seq starting over
        p = self.wait('a GAP after the restart', lambda p:
                      p['gapShown'] and p['state'] == 'live')
        self.assertEqual(p['hello'], 'HELLO herald/1 0')
        self.assertEqual(len(p['gaps']), 1, p['gaps'])
        self.assertIn('seq %d on' % (last + 1), p['gaps'][0])
        self.assertIn('sys/t/load', p['gaps'][0])
        self.assertTrue(all(r['gap'] for r in p['rows'].values()), p)
        # new values flow again, from the new server's seqs
        self.publish(srv, [('sys/t/load', '3.5'), ('sys/t/new', 'x')])
        p = self.wait('values after the restart', lambda p:
                      p['rows'].get('sys/t/new', {}).get('seq') == '2')
        self.assertEqual(p['rows']['sys/t/load']['value'], '3.5')
        self.assertEqual(p['rows']['sys/t/load']['seq'], '1')
        self.assertTrue(p['gapShown'])      # until dismissed
        self.screenshot()
        self.drv.find_element('id', 'dismiss').click()
        p = self.page()
        self.assertFalse(p['gapShown'])
        self.assertFalse(any(r['gap'] for r in p['rows'].values()), p)

    def test_restart_keeping_the_bus_resumes_without_a_gap(self):
        srv = self.server(workers=1)
        self.open_live(srv)
        self.publish(srv, [('sys/r/x', '1')])
        self.wait('a value', lambda p: 'sys/r/x' in p['rows'])
        srv.restart()
        # replayed if it is in before the page is back, else live: the
        # same value, seq and no GAP either way
        last = self.publish(srv, [('sys/r/x', '2')])
        p = self.wait('the value after the restart', lambda p:
                      p['state'] == 'live' and
                      p['rows']['sys/r/x']['seq'] == str(last))
        self.assertEqual(p['rows']['sys/r/x']['value'], '2')
        # a MSG (a resume), not a VAL of a new snapshot (whose age is
        # shown as at least)
        self.assertNotIn('\u2265', p['rows']['sys/r/x']['age'])
        self.assertRegex(p['hello'], r'^HELLO herald/1 [12]$')
        self.assertFalse(p['gapShown'], p)

    def browser_pids(self):
        """Every process of the browser (chromedriver's descendants)."""
        kids = {}
        for d in os.listdir('/proc'):
            if d.isdigit():
                kids.setdefault(ht.proc_ppid(int(d)), []).append(int(d))
        out, todo = [], [self.drv.service.process.pid]
        while todo:
            for k in kids.get(todo.pop(), []):
                out.append(k)
                todo.append(k)
        return out

    def test_gap_from_the_server_marks_the_rows_it_affected(self):
        # the browser stopped while more is published than the server may
        # hold for it: it is conflated (herald-protocol(7), Slow
        # consumers), GAP, then the VALs of the topics that changed
        srv = self.server({'clients.out_limit': '4K', 'tcp.sndbuf': '8K'},
                          workers=1)
        self.publish(srv, [('sys/a', '1')])
        self.open_live(srv)
        probe = self.conn(srv.port)
        probe.sub('sys/s/+')
        pids = self.browser_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            last = self.publish(srv, [('sys/s/%d' % (i % 4), 'v%04d' % i +
                                       'z' * 500) for i in range(2000)])
            # (the probe, on the same worker, has the last: so has the page
            # been given all it will be, or found slow)
            probe.read_until(lambda ln: ln.split(' ')[:3][-1] == str(last))
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        p = self.wait('a GAP', lambda p: p['gapShown'] and
                      p['rows'].get('sys/s/3', {}).get('seq') == str(last))
        self.assertEqual(p['state'], 'live')
        # (one GAP or more: it may be found slow again as it catches up)
        self.assertTrue(all('fell behind' in g for g in p['gaps']), p)
        self.assertIn('sys/s/3', p['gaps'][-1])
        self.assertTrue(p['rows']['sys/s/3']['gap'])
        self.assertFalse(p['rows']['sys/a']['gap'])
        self.assertTrue(p['rows']['sys/s/3']['value'].startswith('v1999z'))

    def test_token_in_the_page_url_is_passed_on(self):
        import test_auth
        key = os.path.join(tempfile.mkdtemp(prefix='herald-page-'), 'hs.key')
        self.addCleanup(shutil.rmtree, os.path.dirname(key), True)
        with open(key, 'w') as f:
            f.write(test_auth.SECRET.decode() + '\n')
        os.chmod(key, 0o600)
        srv = self.server(config='auth: { jwt_keys = ["%s"]; required = '
                          'true; fail_delay_ms = 0; };\n' % key)
        token = test_auth.hs256({'sub': 'page', 'exp': int(time.time()) +
                                 600, 'herald': {'read': ['sys/#']}})
        p = self.open_live(srv, '?token=' + token)
        self.assertRegex(p['hello'], r'^HELLO herald/1 \d+$')   # no auth
        self.publish(srv, [('sys/t/x', 'ok')])
        self.wait('a value', lambda p: 'sys/t/x' in p['rows'])


if __name__ == '__main__':
    ht.main()
