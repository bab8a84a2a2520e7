/*
 * libherald's tests.  The pure parts (addresses, the server's lines,
 * back-off, names) alone; fake servers for what a real one never does
 * (not herald, silent, closing mid-line); and the real heraldd ($HERALDD)
 * for the rest: publish, subscribe, refusals, the caller's own loop and
 * libevent, and reconnecting across a restart with and without loss.
 * Every wait is bounded.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lh.h"

#define WAIT_MS		5000	/* the longest any single wait may take */
#define PORT_DIR	"/tmp/herald-test-ports"	/* as herald_test.py */

/* --- pure parts ---------------------------------------------------------- */

START_TEST(addr_good)
{
	struct lh_addr a;
	char err[256];

	ck_assert_int_eq(lh_addr_parse("127.0.0.1:7400", &a, err, 256), 0);
	ck_assert_str_eq(a.host, "127.0.0.1");
	ck_assert_str_eq(a.port, "7400");
	ck_assert_int_eq(lh_addr_parse("[::1]:1", &a, err, 256), 0);
	ck_assert_str_eq(a.host, "::1");
	ck_assert_str_eq(a.port, "1");
	ck_assert_int_eq(lh_addr_parse("localhost:65535", &a, err, 256), 0);
	ck_assert_int_eq(lh_addr_parse("unix:/run/h.sock", &a, err, 256), 0);
	ck_assert_int_eq(a.is_unix, 1);
	ck_assert_str_eq(a.path, "/run/h.sock");
}
END_TEST

START_TEST(addr_bad)
{
	static const char *bad[] = { "", "localhost", "host:", ":7400",
	    "host:0", "host:65536", "host:12ab", "host:-1", "::1:7400",
	    "[::1]7400", "[::1", "unix:", "unix:relative/path", "host: 1" };
	struct lh_addr a;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(lh_addr_parse(bad[i], &a, err, 256) == -1,
		    "accepted \"%s\"", bad[i]);
		ck_assert_msg(strstr(err, "address") != NULL, "%s", err);
	}
}
END_TEST

/* Parse a copy of s. */
static struct lh_line
parse(const char *s, char *buf)
{
	struct lh_line l;

	strcpy(buf, s);
	lh_parse_line(buf, strlen(buf), &l);
	return l;
}

START_TEST(lines_good)
{
	char b[256];
	struct lh_line l;

	l = parse("HELLO herald/1 41", b);
	ck_assert_int_eq(l.kind, LH_L_HELLO);
	ck_assert_str_eq(l.word, "herald/1");
	ck_assert_uint_eq(l.seq, 41);
	l = parse("MSG plant/a 18446744073709551615  a b ", b);
	ck_assert_int_eq(l.kind, LH_L_MSG);
	ck_assert_str_eq(l.word, "plant/a");
	ck_assert_uint_eq(l.seq, UINT64_MAX);
	ck_assert_str_eq(l.rest, " a b ");	/* payload keeps its spaces */
	ck_assert_uint_eq(l.rest_len, 5);
	l = parse("val t 7 x", b);		/* verbs in any case */
	ck_assert_int_eq(l.kind, LH_L_VAL);
	l = parse("GAP 3 9", b);
	ck_assert_int_eq(l.kind, LH_L_GAP);
	ck_assert_uint_eq(l.seq, 3);
	ck_assert_uint_eq(l.seq2, 9);
	l = parse("STAT clients 12", b);
	ck_assert_int_eq(l.kind, LH_L_STAT);
	ck_assert_str_eq(l.word, "clients");
	l = parse("+OK SUB a/# 12", b);
	ck_assert_int_eq(l.kind, LH_L_OK);
	ck_assert_str_eq(l.word, "SUB");
	ck_assert_str_eq(l.rest, "a/# 12");
	l = parse("-ERR line-too-long", b);
	ck_assert_int_eq(l.kind, LH_L_ERR);
	ck_assert_str_eq(l.word, "line-too-long");
	ck_assert_uint_eq(l.rest_len, 0);
	l = parse("-ERR forbidden a/b", b);
	ck_assert_str_eq(l.rest, "a/b");
	ck_assert_int_eq(parse("PONG", b).kind, LH_L_PONG);
	ck_assert_int_eq(parse("PONG tok", b).kind, LH_L_PONG);
	ck_assert_int_eq(parse("HB 5", b).kind, LH_L_HB);
	l = parse("BYE shutdown", b);
	ck_assert_int_eq(l.kind, LH_L_BYE);
	ck_assert_str_eq(l.word, "shutdown");
}
END_TEST

START_TEST(hello_auth)
{
	char b[256];
	struct lh_line l;

	l = parse("HELLO herald/1 41 auth", b);
	ck_assert_int_eq(l.kind, LH_L_HELLO);
	ck_assert_uint_eq(l.seq, 41);
	ck_assert_str_eq(l.rest, "auth");
	l = parse("HELLO herald/1 7", b);
	ck_assert_int_eq(l.kind, LH_L_HELLO);
	ck_assert_str_eq(l.rest, "");
}
END_TEST

/* A token "h.<payload>.s" with payload's base64url (no padding). */
static void
token_of(const char *payload, char *out, size_t len)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
	    "wxyz0123456789-_";
	size_t n = strlen(payload), o = 0;

	o += snprintf(out, len, "eyJhbGciOiJIUzI1NiJ9.");
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)payload[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)payload[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)payload[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	snprintf(out + o, len - o, ".c2ln");
}

START_TEST(token_exp)
{
	static const struct {
		const char	*payload;
		int		 rc;
		int64_t		 exp;
	} cases[] = {
		{ "{\"sub\":\"bob\",\"exp\":1700000000}", 1, 1700000000 },
		{ "{\"exp\":0}", 1, 0 },
		{ "{\"exp\":1700000000.9}", 1, 1700000000 },	/* down */
		{ "{\"sub\":\"bob\"}", 0, 0 },		/* no exp */
		{ "{}", 0, 0 },
		{ "{\"exp\":-1}", -1, 0 },
		{ "{\"exp\":9007199254740993}", -1, 0 },	/* > 2^53 */
		{ "{\"exp\":\"1700000000\"}", -1, 0 },	/* a string */
		{ "{\"exp\":null}", -1, 0 },
		{ "{\"exp\":true}", -1, 0 },
		{ "{\"exp\":1,\"exp\":2}", -1, 0 },		/* duplicate */
		{ "[1700000000]", -1, 0 },			/* not an object */
		{ "\"exp\"", -1, 0 },
		{ "{\"exp\":17", -1, 0 },			/* cut short */
		{ "", -1, 0 },
	};
	char tok[4 * LH_TOKEN_JSON_MAX];
	int64_t exp;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		token_of(cases[i].payload, tok, sizeof(tok));
		exp = -42;
		ck_assert_msg(lh_token_exp(tok, strlen(tok), &exp) ==
		    cases[i].rc, "%s", cases[i].payload);
		if (cases[i].rc == 1)
			ck_assert_int_eq(exp, cases[i].exp);
		else
			ck_assert_int_eq(exp, -42);	/* left alone */
	}
}
END_TEST

START_TEST(token_exp_malformed)
{
	static const char *bad[] = {
		"", ".", "..", "...", "abc", "a.b", "a.b.c.d",
		"h.eyJleHAiOjF9",			/* two parts */
		"h.eyJleHAiOjF9=.s",			/* padding */
		"h.eyJleHAiOjF9!.s",			/* not base64url */
		"h.eyJleHAiOjF9+.s",			/* base64, not url */
		"h.e.s",				/* impossible length */
		"h.eyJleHAiOjEyfR.s",			/* bits left over */
		"h.AA.s",				/* a NUL byte */
	};
	char big[LH_TOKEN_JSON_MAX * 2];
	int64_t exp = -42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(lh_token_exp(bad[i], strlen(bad[i]), &exp) == -1,
		    "took \"%s\"", bad[i]);
	/* a payload longer than any token holds */
	memset(big, 'e', sizeof(big));
	memcpy(big, "h.", 2);
	memcpy(big + sizeof(big) - 3, ".s", 3);
	ck_assert_int_eq(lh_token_exp(big, strlen(big), &exp), -1);
	/* the length given is what is read: a valid token cut short */
	ck_assert_int_eq(lh_token_exp("h.eyJleHAiOjF9.s", 9, &exp), -1);
	ck_assert_int_eq(lh_token_exp("h.eyJleHAiOjF9.s", 16, &exp), 1);
	ck_assert_int_eq(exp, 1);
}
END_TEST

START_TEST(lines_bad)
{
	static const char *bad[] = { "", "SSH-2.0-OpenSSH_9.2", "MSG t 1",
	    "MSG t x p", "MSG bad//topic 1 p", "MSG t 18446744073709551616 p",
	    "GAP 9 3", "GAP 1", "GAP 1 2 3", "HB", "HB x", "STAT clients",
	    "STAT clients -1", "HELLO herald/1", "+OK", "-ERR", "BYE",
	    "NEWS x" };
	char b[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i], b).kind == LH_L_BAD, "took \"%s\"",
		    bad[i]);
}
END_TEST

START_TEST(seq_parse)
{
	uint64_t v;

	ck_assert_int_eq(lh_parse_seq("0", 1, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(lh_parse_seq("00000000000000000042", 20, &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(lh_parse_seq("000000000000000000042", 21, &v), -1);
	ck_assert_int_eq(lh_parse_seq("18446744073709551616", 20, &v), -1);
	ck_assert_int_eq(lh_parse_seq("", 0, &v), -1);
	ck_assert_int_eq(lh_parse_seq("1a", 2, &v), -1);
}
END_TEST

START_TEST(backoff)
{
	uint64_t rng = 12345, prev_cap = 0;
	int distinct = 0;
	uint64_t first = lh_backoff_ms(0, 100, 5000, &rng);

	for (int attempt = 0; attempt < 20; attempt++) {
		uint64_t cap = 100;
		for (int i = 0; i < attempt && cap < 5000; i++)
			cap *= 2;
		if (cap > 5000)
			cap = 5000;
		ck_assert_uint_ge(cap, prev_cap);
		prev_cap = cap;
		for (int k = 0; k < 50; k++) {
			uint64_t d = lh_backoff_ms(attempt, 100, 5000, &rng);
			ck_assert_uint_le(d, cap);
			ck_assert_uint_ge(d, cap - cap / 2);
			distinct += d != first;
		}
	}
	ck_assert_int_gt(distinct, 900);	/* jittered */
	ck_assert_uint_le(lh_backoff_ms(1000, 1, 1, &rng), 1);
}
END_TEST

START_TEST(names)
{
	ck_assert(herald_valid_topic("plant/line3/pump7/temp"));
	ck_assert(!herald_valid_topic("a/+/b"));
	ck_assert(!herald_valid_topic("a//b"));
	ck_assert(!herald_valid_topic(NULL));
	ck_assert(herald_valid_pattern("a/+/b/#"));
	ck_assert(!herald_valid_pattern("a/#/b"));
	ck_assert(herald_valid_payload(" x ", 3));
	ck_assert(!herald_valid_payload("", 0));
	ck_assert(!herald_valid_payload("a\nb", 3));
	ck_assert(!herald_valid_payload("a\0b", 3));
	for (int e = HERALD_ESYS; e <= HERALD_OK; e++) {
		ck_assert(strcmp(herald_strerror(e), "unknown error") != 0);
		for (int f = e + 1; f <= HERALD_OK; f++)
			ck_assert_str_ne(herald_strerror(e),
			    herald_strerror(f));
	}
}
END_TEST

START_TEST(escape)
{
	char out[32];

	lh_escape(out, sizeof(out), "a\\b\x01\xff", 5);
	ck_assert_str_eq(out, "a\\x5cb\\x01\\xff");
	lh_escape(out, 12, "0123456789abcdef", 16);
	ck_assert_str_eq(out, "01234567...");
}
END_TEST

START_TEST(bad_options)
{
	struct herald_options o;
	int err = 0;

	herald_options_init(&o);
	o.connect_timeout_ms = 0;
	ck_assert_ptr_null(herald_connect("127.0.0.1:1", &o, &err));
	ck_assert_int_eq(err, HERALD_EINVAL);
	ck_assert_ptr_null(herald_new(NULL, NULL));
}
END_TEST

/* --- helpers: clients, recording callbacks ------------------------------- */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Options for tests: short timeouts, quick reconnects. */
static struct herald_options
test_opts(int reconnect)
{
	struct herald_options o;

	herald_options_init(&o);
	o.connect_timeout_ms = 2000;
	o.timeout_ms = WAIT_MS;
	o.reconnect = reconnect;
	o.reconnect_min_ms = 20;
	o.reconnect_max_ms = 200;
	return o;
}

#define REC_MAX 4096
struct rec {
	int		 n;
	struct {
		char	 topic[64];
		char	 payload[128];
		uint64_t seq;
		int	 is_value;
	} m[REC_MAX];
	int		 events[8];	/* count per event type */
	uint64_t	 gap_first, gap_last;
	char		 gap_name[64];
	char		 err_name[64];
	int		 close_on_msg;	/* herald_close inside the callback */
	int		 blocking_rc;	/* herald_sync inside the callback */
};

static void
rec_msg(struct herald_client *c, const struct herald_msg *m, void *arg)
{
	struct rec *r = arg;

	if (r->n < REC_MAX) {
		snprintf(r->m[r->n].topic, 64, "%s", m->topic);
		snprintf(r->m[r->n].payload, 128, "%s", m->payload);
		r->m[r->n].seq = m->seq;
		r->m[r->n].is_value = m->is_value;
		r->n++;
	}
	if (r->blocking_rc == 1)
		r->blocking_rc = herald_sync(c, NULL);
	if (r->close_on_msg)
		herald_close(c);
}

static void
rec_event(struct herald_client *c, const struct herald_event *ev, void *arg)
{
	struct rec *r = arg;

	r->events[ev->type]++;
	if (ev->type == HERALD_EVENT_GAP) {
		r->gap_first = ev->first;
		r->gap_last = ev->last;
		snprintf(r->gap_name, 64, "%s", ev->name ? ev->name : "");
	}
	if (ev->type == HERALD_EVENT_ERROR)
		snprintf(r->err_name, 64, "%s", ev->name ? ev->name : "");
}

/* Run c until r has n messages (or fail after WAIT_MS). */
static void
run_until(struct herald_client *c, struct rec *r, int n)
{
	uint64_t deadline = now_ms() + WAIT_MS;

	while (r->n < n) {
		ck_assert_msg(now_ms() < deadline, "only %d of %d messages "
		    "within %d ms", r->n, n, WAIT_MS);
		herald_run_once(c, 100);
	}
}

/* A connected client (fails the test if it cannot connect). */
static struct herald_client *
must_connect(int port, struct herald_options *o)
{
	char addr[64];
	int err;
	struct herald_client *c;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	c = herald_connect(addr, o, &err);
	ck_assert_msg(c != NULL, "connect %s: %s", addr, herald_strerror(err));
	return c;
}

/* --- fake servers -------------------------------------------------------- */

/*
 * A server on a free loopback port that accepts one connection, writes
 * script, then closes after linger_ms (or stays silent that long).
 * Returns the port; *pid is the server process.
 */
static int
fake_server(const char *script, int linger_ms, pid_t *pid)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	if ((*pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(10);
		int c = accept(fd, NULL, NULL);
		char buf[4096];
		(void)!write(c, script, strlen(script));
		usleep(linger_ms * 1000);
		/* Read what came, so that closing sends FIN, not RST. */
		fcntl(c, F_SETFL, O_NONBLOCK);
		while (read(c, buf, sizeof(buf)) > 0)
			;
		_exit(0);
	}
	close(fd);
	return ntohs(sin.sin_port);
}

static void
fake_done(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Connect (blocking, no reconnect) to a fake server; the error. */
static int
fake_connect(const char *script, int linger_ms, char *msg, size_t len)
{
	struct herald_options o = test_opts(0);
	char addr[64];
	pid_t pid;
	int rc;

	o.connect_timeout_ms = 500;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d",
	    fake_server(script, linger_ms, &pid));
	struct herald_client *c = herald_new(addr, &o);
	rc = herald_open(c);
	snprintf(msg, len, "%s", herald_errmsg(c));
	herald_close(c);
	fake_done(pid);
	return rc;
}

START_TEST(fake_not_herald)
{
	char msg[512];

	ck_assert_int_eq(fake_connect("SSH-2.0-OpenSSH_9.2\r\n", 1000, msg,
	    sizeof(msg)), HERALD_EPROTO);
	ck_assert_msg(strstr(msg, "not a herald server") != NULL, "%s", msg);
	ck_assert_msg(strstr(msg, "SSH-2.0") != NULL, "%s", msg);
}
END_TEST

START_TEST(fake_wrong_version)
{
	char msg[512];

	ck_assert_int_eq(fake_connect("HELLO herald/2 0\n", 1000, msg,
	    sizeof(msg)), HERALD_EPROTO);
	ck_assert_msg(strstr(msg, "herald/2") != NULL, "%s", msg);
}
END_TEST

START_TEST(fake_closes_before_hello)
{
	char msg[512];

	ck_assert_int_eq(fake_connect("", 0, msg, sizeof(msg)),
	    HERALD_ECLOSED);
	ck_assert_msg(strstr(msg, "before HELLO") != NULL, "%s", msg);
}
END_TEST

START_TEST(fake_silent)
{
	char msg[512];
	uint64_t t0 = now_ms();

	ck_assert_int_eq(fake_connect("", 3000, msg, sizeof(msg)),
	    HERALD_ETIMEOUT);
	ck_assert_msg(strstr(msg, "no HELLO") != NULL, "%s", msg);
	ck_assert_uint_lt(now_ms() - t0, 2000);
}
END_TEST

START_TEST(fake_closes_mid_line)
{
	struct herald_options o = test_opts(0);
	struct rec *r = calloc(1, sizeof(*r));
	pid_t pid;
	int port = fake_server("HELLO herald/1 3\nVAL a/b 3 x\n"
	    "+OK SUB a/# 3\nMSG a/b 4 half a li", 50, &pid);
	char addr[64];
	int rc;

	/* Subscribe first: the SUB goes out with HELLO's answer. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	struct herald_client *c = herald_new(addr, &o);
	ck_assert_int_eq(herald_sub(c, "a/#", rec_msg, r), HERALD_OK);
	rc = herald_open(c);
	for (uint64_t end = now_ms() + WAIT_MS; rc == HERALD_OK &&
	    now_ms() < end; )
		rc = herald_run_once(c, 100);
	ck_assert_int_eq(rc, HERALD_EPROTO);
	ck_assert_msg(strstr(herald_errmsg(c), "middle of a line") != NULL,
	    "%s", herald_errmsg(c));
	ck_assert_int_eq(r->n, 1);		/* the VAL, not half a MSG */
	ck_assert_uint_eq(herald_position(c), 3);
	herald_close(c);
	fake_done(pid);
	free(r);
}
END_TEST

START_TEST(fake_garbage_after_hello)
{
	struct herald_options o = test_opts(0);
	pid_t pid;
	char addr[64];
	int rc;

	/* An answer nobody asked for. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", fake_server(
	    "HELLO herald/1 0\n+OK SYNC 5\n", 1000, &pid));
	struct herald_client *c = herald_new(addr, &o);
	rc = herald_open(c);
	for (uint64_t end = now_ms() + WAIT_MS; rc == HERALD_OK &&
	    now_ms() < end; )
		rc = herald_run_once(c, 100);
	ck_assert_int_eq(rc, HERALD_EPROTO);
	ck_assert_msg(strstr(herald_errmsg(c), "unexpected answer") != NULL,
	    "%s", herald_errmsg(c));
	herald_close(c);
	fake_done(pid);
}
END_TEST

/* A client subscribed to a/# before connecting to a fake server. */
static struct herald_client *
fake_subscriber(const char *script, struct rec *r, pid_t *pid)
{
	struct herald_options o = test_opts(0);
	char addr[64];

	o.on_event = rec_event;
	o.event_arg = r;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d",
	    fake_server(script, 2000, pid));
	struct herald_client *c = herald_new(addr, &o);
	ck_assert_int_eq(herald_sub(c, "a/#", rec_msg, r), HERALD_OK);
	ck_assert_int_eq(herald_open(c), HERALD_OK);
	return c;
}

START_TEST(fake_conflation)
{
	struct rec *r = calloc(1, sizeof(*r));
	pid_t pid;
	struct herald_client *c = fake_subscriber("HELLO herald/1 4\n"
	    "+OK SUB a/# 4\nGAP 5 9\nVAL a/x 9 v\nMSG a/x 10 w\n", r, &pid);

	run_until(c, r, 2);
	ck_assert_int_eq(r->events[HERALD_EVENT_GAP], 1);
	ck_assert_uint_eq(r->gap_first, 5);
	ck_assert_uint_eq(r->gap_last, 9);
	ck_assert_str_eq(r->gap_name, "");	/* not a resume's */
	ck_assert(r->m[0].is_value && !r->m[1].is_value);
	ck_assert_uint_eq(herald_position(c), 10);
	herald_close(c);
	fake_done(pid);
	free(r);
}
END_TEST

START_TEST(fake_error_attribution)
{
	struct rec *r = calloc(1, sizeof(*r));
	pid_t pid;
	/* A PUB's refusal while a SUB waits for its answer is the PUB's. */
	struct herald_client *c = fake_subscriber("HELLO herald/1 0\n"
	    "-ERR forbidden x/y\n+OK SUB a/# 0\n", r, &pid);

	ck_assert_int_eq(herald_pub(c, "x/y", "v", 1), HERALD_OK);
	ck_assert_int_eq(herald_wait(c), HERALD_ESERVER);
	ck_assert_msg(strstr(herald_errmsg(c), "refused PUB: -ERR forbidden "
	    "x/y") != NULL, "%s", herald_errmsg(c));
	ck_assert_int_eq(r->events[HERALD_EVENT_SUBSCRIBED], 1);
	ck_assert_str_eq(r->err_name, "x/y");
	herald_close(c);
	fake_done(pid);
	free(r);
}
END_TEST

START_TEST(fake_ping_unanswered)
{
	struct herald_options o = test_opts(0);
	pid_t pid;
	int rc = HERALD_OK;

	o.ping_interval_ms = 150;
	struct herald_client *c = must_connect(fake_server(
	    "HELLO herald/1 0\n", 3000, &pid), &o);
	uint64_t t0 = now_ms();
	while (rc == HERALD_OK && now_ms() - t0 < WAIT_MS)
		rc = herald_run_once(c, -1);
	ck_assert_int_eq(rc, HERALD_ETIMEOUT);
	ck_assert_msg(strstr(herald_errmsg(c), "no answer to PING") != NULL,
	    "%s", herald_errmsg(c));
	ck_assert_uint_ge(now_ms() - t0, 250);	/* silence, then PING */
	ck_assert_uint_lt(now_ms() - t0, 1500);
	herald_close(c);
	fake_done(pid);
}
END_TEST

START_TEST(fake_not_reading_gives_eagain)
{
	struct herald_options o = test_opts(0);
	static char big[60000];
	pid_t pid;
	int rc = HERALD_OK, n;

	/* Blocking: herald_pub waits for room, then gives up. */
	memset(big, 'x', sizeof(big));
	o.out_limit = 256 * 1024;
	o.timeout_ms = 300;
	struct herald_client *c = must_connect(fake_server(
	    "HELLO herald/1 0\n", 3000, &pid), &o);
	for (n = 0; n < 2000 && rc == HERALD_OK; n++)
		rc = herald_pub(c, "big/x", big, sizeof(big));
	ck_assert_int_eq(rc, HERALD_ETIMEOUT);
	herald_close(c);
	fake_done(pid);
	/* Non-blocking (and not connected yet): HERALD_EAGAIN at once. */
	o.nonblocking = 1;
	o.reconnect = 1;
	c = herald_new("127.0.0.1:1", &o);
	ck_assert_int_eq(herald_open(c), HERALD_OK);
	rc = HERALD_OK;
	for (n = 0; n < 100 && rc == HERALD_OK; n++)
		rc = herald_pub(c, "big/x", big, sizeof(big));
	ck_assert_int_eq(rc, HERALD_EAGAIN);
	ck_assert_int_eq(n, 5);		/* 4 fit in 256 KiB, the 5th not */
	herald_close(c);
}
END_TEST

/* --- the real daemon ----------------------------------------------------- */

static const char *heraldd;

struct daemon {
	pid_t	 pid;
	int	 port, ingest;
	char	 dir[64];
	char	 bus[128];
	const char *extra[8];
};

/* A free loopback port, reserved like herald_test.py does. */
static int
reserve_port(void)
{
	char path[128], pidtext[32];

	mkdir(PORT_DIR, 0777);
	for (int tries = 0; tries < 500; tries++) {
		int port = 20000 + rand() % (32767 - 20000);
		struct sockaddr_in sin = { .sin_family = AF_INET,
		    .sin_port = htons(port) };
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		snprintf(path, sizeof(path), "%s/%d", PORT_DIR, port);
		int pf = ok ? open(path, O_WRONLY | O_CREAT | O_EXCL, 0644) :
		    -1;
		if (pf == -1)
			continue;
		int n = snprintf(pidtext, sizeof(pidtext), "%d\n", getpid());
		(void)!write(pf, pidtext, n);
		close(pf);
		return port;
	}
	ck_abort_msg("no free port");
	return 0;
}

static void
release_port(int port)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%d", PORT_DIR, port);
	unlink(path);
}

/* Start heraldd -f on d's ports and bus; wait until it answers. */
static void
daemon_start(struct daemon *d)
{
	char listen[64], ingest[64], bus[160], pidf[96], log[96];
	const char *argv[40];
	int n = 0;

	snprintf(listen, sizeof(listen), "listen=127.0.0.1:%d", d->port);
	snprintf(ingest, sizeof(ingest), "ingest=127.0.0.1:%d", d->ingest);
	snprintf(bus, sizeof(bus), "bus.file=%s", d->bus);
	snprintf(pidf, sizeof(pidf), "pidfile=%s/pid", d->dir);
	snprintf(log, sizeof(log), "%s/log", d->dir);
	const char *base[] = { listen, ingest, bus, pidf, "workers=2",
	    "status.interval=0", "shutdown_grace=1", "bus.size=4M" };
	argv[n++] = heraldd;
	argv[n++] = "-f";
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		argv[n++] = "-o";
		argv[n++] = base[i];
	}
	for (int i = 0; d->extra[i] != NULL; i++) {
		argv[n++] = "-o";
		argv[n++] = d->extra[i];
	}
	argv[n] = NULL;
	if ((d->pid = fork()) == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(heraldd, (char **)argv);
		_exit(127);
	}
	struct herald_options o = test_opts(0);
	o.connect_timeout_ms = 200;
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", d->port);
	for (uint64_t end = now_ms() + 10000; ; usleep(20000)) {
		struct herald_client *c = herald_connect(addr, &o, NULL);
		if (c != NULL) {
			herald_close(c);
			return;
		}
		ck_assert_msg(waitpid(d->pid, NULL, WNOHANG) == 0,
		    "heraldd exited at start (see %s)", log);
		ck_assert_msg(now_ms() < end, "heraldd not ready");
	}
}

/* Stop the daemon (TERM, then KILL its process group). */
static void
daemon_stop(struct daemon *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	for (uint64_t end = now_ms() + 5000; now_ms() < end; usleep(10000))
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
			break;
	killpg(d->pid, SIGKILL);
	waitpid(d->pid, NULL, WNOHANG);
	d->pid = 0;
}

static struct daemon dmn;

static void
daemon_setup(void)
{
	memset(&dmn, 0, sizeof(dmn));
	srand(getpid() ^ time(NULL));
	snprintf(dmn.dir, sizeof(dmn.dir), "/tmp/herald-lh-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dmn.dir));
	snprintf(dmn.bus, sizeof(dmn.bus), "%s/bus", dmn.dir);
	dmn.port = reserve_port();
	dmn.ingest = reserve_port();
}

static void
daemon_teardown(void)
{
	char cmd[128];

	daemon_stop(&dmn);
	release_port(dmn.port);
	release_port(dmn.ingest);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dmn.dir);
	(void)!system(cmd);
}

/* Publish topic=payload through the ingest listener, confirmed. */
static uint64_t
publish(const char *topic, const char *payload)
{
	struct herald_options o = test_opts(0);
	struct herald_client *i = must_connect(dmn.ingest, &o);
	uint64_t seq = 0;

	ck_assert_int_eq(herald_pub(i, topic, payload, strlen(payload)), 0);
	ck_assert_int_eq(herald_sync(i, &seq), HERALD_OK);
	herald_close(i);
	return seq;
}

START_TEST(pub_get_stats)
{
	struct herald_options o = test_opts(0);
	struct herald_client *c, *i;
	struct herald_stat *st;
	char *payload;
	size_t len, n;
	uint64_t seq, vseq;

	daemon_start(&dmn);
	c = must_connect(dmn.port, &o);
	i = must_connect(dmn.ingest, &o);
	ck_assert_int_eq(herald_pub(i, "t/a", " spaced value ", 14), 0);
	ck_assert_int_eq(herald_sync(i, &seq), HERALD_OK);
	ck_assert_uint_gt(seq, 0);
	ck_assert_int_eq(herald_get(c, "t/a", &payload, &len, &vseq), 0);
	ck_assert_str_eq(payload, " spaced value ");
	ck_assert_uint_eq(len, 14);
	ck_assert_uint_eq(vseq, seq);
	free(payload);
	ck_assert_int_eq(herald_get(c, "t/none", &payload, &len, &vseq),
	    HERALD_ENOTFOUND);
	ck_assert_ptr_null(payload);
	ck_assert_int_eq(herald_get(c, "bad//topic", &payload, NULL, NULL),
	    HERALD_EINVAL);
	ck_assert_int_eq(herald_pub(i, "t/a", "", 0), HERALD_EINVAL);
	ck_assert_int_eq(herald_pub(i, "t/a", "a\nb", 3), HERALD_EINVAL);
	ck_assert_int_eq(herald_stats(c, &st, &n), HERALD_OK);
	int have_head = 0;
	for (size_t k = 0; k < n; k++)
		if (strcmp(st[k].name, "head_seq") == 0) {
			have_head = 1;
			ck_assert_uint_eq(st[k].value, seq);
		}
	ck_assert(have_head);
	free(st);
	herald_close(i);
	herald_close(c);
}
END_TEST

START_TEST(sub_snapshot_live_unsub)
{
	struct herald_options o = test_opts(0);
	struct rec *r = calloc(1, sizeof(*r));
	struct herald_client *c;

	daemon_start(&dmn);
	publish("s/a", "1");
	uint64_t h = publish("s/b", "2");
	o.on_event = rec_event;
	o.event_arg = r;
	c = must_connect(dmn.port, &o);
	ck_assert_int_eq(herald_sub(c, "s/#", rec_msg, r), HERALD_OK);
	ck_assert_int_eq(herald_sub(c, "s/#", rec_msg, r), HERALD_EINVAL);
	ck_assert_int_eq(herald_sub(c, "s/#/x", rec_msg, r), HERALD_EINVAL);
	ck_assert_int_eq(herald_wait(c), HERALD_OK);
	ck_assert_int_eq(r->n, 2);
	ck_assert(r->m[0].is_value && r->m[1].is_value);
	ck_assert_int_eq(r->events[HERALD_EVENT_SUBSCRIBED], 1);
	ck_assert_uint_eq(herald_position(c), h);
	uint64_t s = publish("s/c", "3");
	run_until(c, r, 3);
	ck_assert_str_eq(r->m[2].topic, "s/c");
	ck_assert_uint_eq(r->m[2].seq, s);
	ck_assert_int_eq(r->m[2].is_value, 0);
	ck_assert_uint_eq(herald_position(c), s);
	ck_assert_int_eq(herald_unsub(c, "s/#"), HERALD_OK);
	ck_assert_int_eq(herald_unsub(c, "s/#"), HERALD_EINVAL);
	ck_assert_int_eq(herald_wait(c), HERALD_OK);
	publish("s/d", "4");
	for (uint64_t end = now_ms() + 300; now_ms() < end; )
		herald_run_once(c, 50);
	ck_assert_int_eq(r->n, 3);
	herald_close(c);
	free(r);
}
END_TEST

START_TEST(pub_refused)
{
	struct herald_options o = test_opts(0);
	struct rec *r = calloc(1, sizeof(*r));
	uint64_t seq;

	daemon_start(&dmn);
	o.on_event = rec_event;
	o.event_arg = r;
	struct herald_client *c = must_connect(dmn.port, &o);
	/* clients.publish is empty: the client listener refuses PUBs. */
	ck_assert_int_eq(herald_pub(c, "x/y", "v", 1), HERALD_OK);
	ck_assert_int_eq(herald_sync(c, &seq), HERALD_ESERVER);
	ck_assert_msg(strstr(herald_errmsg(c), "-ERR forbidden x/y") != NULL,
	    "%s", herald_errmsg(c));
	ck_assert_int_eq(r->events[HERALD_EVENT_ERROR], 1);
	ck_assert_str_eq(r->err_name, "x/y");
	ck_assert_int_eq(herald_sync(c, &seq), HERALD_OK);	/* cleared */
	herald_close(c);
	free(r);
}
END_TEST

START_TEST(sub_refused)
{
	struct herald_options o = test_opts(0);
	struct rec *r = calloc(1, sizeof(*r));

	dmn.extra[0] = "clients.max_subs=1";
	daemon_start(&dmn);
	o.on_event = rec_event;
	o.event_arg = r;
	struct herald_client *c = must_connect(dmn.port, &o);
	ck_assert_int_eq(herald_sub(c, "a/#", rec_msg, r), HERALD_OK);
	ck_assert_int_eq(herald_sub(c, "b/#", rec_msg, r), HERALD_OK);
	ck_assert_int_eq(herald_wait(c), HERALD_ESERVER);
	ck_assert_msg(strstr(herald_errmsg(c), "too-many-subs") != NULL, "%s",
	    herald_errmsg(c));
	ck_assert_str_eq(r->err_name, "b/#");
	ck_assert_int_eq(herald_wait(c), HERALD_OK);
	herald_close(c);
	free(r);
}
END_TEST

/* libevent: quit the loop once enough messages came. */
struct ev_test {
	struct event_base	*base;
	int			 n, want;
};

static void
ev_msg(struct herald_client *c, const struct herald_msg *m, void *arg)
{
	struct ev_test *t = arg;

	if (!m->is_value && ++t->n == t->want)
		event_base_loopbreak(t->base);
}

START_TEST(attach_libevent)
{
	struct ev_test t = { event_base_new(), 0, 50 };
	struct herald_options o = test_opts(1);
	struct timeval limit = { WAIT_MS / 1000, 0 };
	char addr[64];

	daemon_start(&dmn);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", dmn.port);
	struct herald_client *c = herald_new(addr, &o);
	ck_assert_int_eq(herald_attach(c, t.base), HERALD_OK);
	ck_assert_int_eq(herald_sub(c, "e/#", ev_msg, &t), HERALD_OK);
	ck_assert_int_eq(herald_open(c), HERALD_OK);	/* not blocking */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", dmn.ingest);
	struct herald_client *i = herald_new(addr, &o);
	ck_assert_int_eq(herald_attach(i, t.base), HERALD_OK);
	ck_assert_int_eq(herald_open(i), HERALD_OK);
	/* Run until subscribed, then publish from the same loop. */
	while (!herald_is_connected(c) || !herald_is_connected(i))
		event_base_loop(t.base, EVLOOP_ONCE);
	ck_assert_int_eq(herald_wait(c), HERALD_OK);
	for (int k = 0; k < t.want; k++)
		ck_assert_int_eq(herald_pub(i, "e/x", "v", 1), HERALD_OK);
	event_base_loopexit(t.base, &limit);
	event_base_dispatch(t.base);
	ck_assert_int_eq(t.n, t.want);
	herald_close(i);
	herald_close(c);
	event_base_free(t.base);
}
END_TEST

START_TEST(own_poll_loop)
{
	struct herald_options o = test_opts(1);
	struct rec *r = calloc(1, sizeof(*r));
	char addr[64];

	daemon_start(&dmn);
	o.nonblocking = 1;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", dmn.port);
	struct herald_client *c = herald_new(addr, &o);
	ck_assert_int_eq(herald_sub(c, "p/#", rec_msg, r), HERALD_OK);
	ck_assert_int_eq(herald_open(c), HERALD_OK);
	publish("p/a", "1");
	for (uint64_t end = now_ms() + WAIT_MS; r->n < 1; ) {
		struct pollfd p = { herald_fd(c), 0, 0 };
		int ev = herald_events(c), ready = 0;
		p.events = (ev & HERALD_READ ? POLLIN : 0) |
		    (ev & HERALD_WRITE ? POLLOUT : 0);
		int t = herald_timeout(c);
		poll(&p, p.fd >= 0, t < 0 || t > 100 ? 100 : t);
		if (p.revents & (POLLIN | POLLERR | POLLHUP))
			ready |= HERALD_READ;
		if (p.revents & (POLLOUT | POLLERR | POLLHUP))
			ready |= HERALD_WRITE;
		ck_assert_int_eq(herald_process(c, ready), HERALD_OK);
		ck_assert(now_ms() < end);
	}
	ck_assert_str_eq(r->m[0].payload, "1");
	herald_close(c);
	free(r);
}
END_TEST

START_TEST(callbacks_may_close)
{
	struct herald_options o = test_opts(0);
	struct rec *r = calloc(1, sizeof(*r));

	daemon_start(&dmn);
	publish("k/a", "1");
	publish("k/b", "2");
	struct herald_client *c = must_connect(dmn.port, &o);
	r->blocking_rc = 1;		/* herald_sync inside: refused */
	r->close_on_msg = 1;		/* then close: freed after */
	ck_assert_int_eq(herald_sub(c, "k/#", rec_msg, r), HERALD_OK);
	herald_run_once(c, WAIT_MS);	/* c is gone after this */
	ck_assert_int_eq(r->n, 1);	/* no delivery after the close */
	ck_assert_int_eq(r->blocking_rc, HERALD_EINVAL);
	free(r);
}
END_TEST

/* A subscriber runs until it has n messages, across what happens. */
static void
wait_msgs(struct herald_client *c, struct rec *r, int n)
{
	uint64_t end = now_ms() + 3 * WAIT_MS;

	while (r->n < n && now_ms() < end)
		herald_run_once(c, 100);
	ck_assert_msg(r->n >= n, "%d of %d messages", r->n, n);
}

START_TEST(resume_across_restart)
{
	struct herald_options o = test_opts(1);
	struct rec *r = calloc(1, sizeof(*r));
	char v[16];

	daemon_start(&dmn);
	o.on_event = rec_event;
	o.event_arg = r;
	struct herald_client *c = must_connect(dmn.port, &o);
	ck_assert_int_eq(herald_sub(c, "r/#", rec_msg, r), HERALD_OK);
	ck_assert_int_eq(herald_wait(c), HERALD_OK);
	for (int k = 1; k <= 10; k++) {
		snprintf(v, sizeof(v), "%d", k);
		publish("r/x", v);
	}
	wait_msgs(c, r, 10);
	daemon_stop(&dmn);
	/* The subscriber notices, and retries while the daemon is down. */
	for (uint64_t end = now_ms() + 300; now_ms() < end; )
		herald_run_once(c, 20);
	ck_assert_int_ge(r->events[HERALD_EVENT_DISCONNECTED], 1);
	daemon_start(&dmn);
	/* Published before the subscriber is back: replayed to it. */
	for (int k = 11; k <= 20; k++) {
		snprintf(v, sizeof(v), "%d", k);
		publish("r/x", v);
	}
	wait_msgs(c, r, 20);
	ck_assert_int_eq(r->events[HERALD_EVENT_GAP], 0);
	ck_assert_int_ge(r->events[HERALD_EVENT_CONNECTED], 2);
	for (int k = 0; k < 20; k++) {
		snprintf(v, sizeof(v), "%d", k + 1);
		ck_assert_str_eq(r->m[k].payload, v);
		ck_assert_int_eq(r->m[k].is_value, 0);
		if (k > 0)
			ck_assert_uint_gt(r->m[k].seq, r->m[k - 1].seq);
	}
	ck_assert_int_eq(r->n, 20);		/* no duplicates */
	herald_close(c);
	free(r);
}
END_TEST

START_TEST(gap_across_restart)
{
	struct herald_options o = test_opts(1);
	struct rec *r = calloc(1, sizeof(*r));
	char v[128];
	int port = dmn.port;

	dmn.extra[0] = "max_payload=1024";
	dmn.extra[1] = "bus.size=64K";
	daemon_start(&dmn);
	o.on_event = rec_event;
	o.event_arg = r;
	struct herald_client *c = must_connect(dmn.port, &o);
	ck_assert_int_eq(herald_sub(c, "g/#", rec_msg, r), HERALD_OK);
	ck_assert_int_eq(herald_wait(c), HERALD_OK);
	uint64_t seen = publish("g/x", "first");
	wait_msgs(c, r, 1);
	/* Away: the daemon comes back where this client cannot reach it,
	 * and 200 KB go through a 64 KB ring meanwhile. */
	daemon_stop(&dmn);
	dmn.port = reserve_port();
	daemon_start(&dmn);
	struct herald_options io = test_opts(0);
	struct herald_client *i = must_connect(dmn.ingest, &io);
	memset(v, 'p', 100);
	v[100] = '\0';
	for (int k = 0; k < 2000; k++)
		ck_assert_int_eq(herald_pub(i, "g/x", v, 100), HERALD_OK);
	ck_assert_int_eq(herald_pub(i, "g/x", "last", 4), HERALD_OK);
	uint64_t head;
	ck_assert_int_eq(herald_sync(i, &head), HERALD_OK);
	herald_close(i);
	daemon_stop(&dmn);
	release_port(dmn.port);
	dmn.port = port;
	daemon_start(&dmn);
	/* Back: the GAP is reported, then the newest value. */
	wait_msgs(c, r, 2);
	ck_assert_int_eq(r->events[HERALD_EVENT_GAP], 1);
	ck_assert_uint_eq(r->gap_first, seen + 1);
	ck_assert_uint_eq(r->gap_last, head);
	ck_assert_str_eq(r->gap_name, "g/#");
	ck_assert_str_eq(r->m[1].payload, "last");
	ck_assert_int_eq(r->m[1].is_value, 1);
	ck_assert_uint_eq(herald_position(c), head);
	herald_close(c);
	free(r);
}
END_TEST

START_TEST(bus_reset)
{
	struct herald_options o = test_opts(1);
	struct rec *r = calloc(1, sizeof(*r));

	daemon_start(&dmn);
	o.on_event = rec_event;
	o.event_arg = r;
	for (int k = 0; k < 5; k++)
		publish("z/x", "old");
	struct herald_client *c = must_connect(dmn.port, &o);
	ck_assert_int_eq(herald_sub(c, "z/#", rec_msg, r), HERALD_OK);
	ck_assert_int_eq(herald_wait(c), HERALD_OK);
	ck_assert_uint_eq(herald_position(c), 5);
	daemon_stop(&dmn);
	snprintf(dmn.bus, sizeof(dmn.bus), "%s/bus2", dmn.dir);
	daemon_start(&dmn);			/* a new, empty bus */
	publish("z/y", "new");
	wait_msgs(c, r, 2);
	ck_assert_int_eq(r->events[HERALD_EVENT_RESET], 1);
	ck_assert_str_eq(r->m[1].topic, "z/y");
	ck_assert_uint_eq(r->m[1].seq, 1);
	herald_close(c);
	free(r);
}
END_TEST

START_TEST(unix_ingest)
{
	char addr[128], sock[128];
	int err;

	snprintf(sock, sizeof(sock), "ingest=unix:%s/in.sock", dmn.dir);
	dmn.extra[0] = sock;
	daemon_start(&dmn);
	snprintf(addr, sizeof(addr), "unix:%s/in.sock", dmn.dir);
	struct herald_options o = test_opts(0);
	struct herald_client *i = herald_connect(addr, &o, &err);
	ck_assert_msg(i != NULL, "%s", herald_strerror(err));
	ck_assert_int_eq(herald_pub(i, "u/x", "via unix", 8), HERALD_OK);
	ck_assert_int_eq(herald_sync(i, NULL), HERALD_OK);
	herald_close(i);
	struct herald_client *c = must_connect(dmn.port, &o);
	char *p;
	ck_assert_int_eq(herald_get(c, "u/x", &p, NULL, NULL), HERALD_OK);
	ck_assert_str_eq(p, "via unix");
	free(p);
	herald_close(c);
}
END_TEST

START_TEST(refused_and_bad_addresses)
{
	struct herald_options o = test_opts(0);
	char addr[64];
	struct herald_client *c;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", dmn.port);	/* closed */
	c = herald_new(addr, &o);
	ck_assert_int_eq(herald_open(c), HERALD_ECONNECT);
	ck_assert_msg(strstr(herald_errmsg(c), "Connection refused") != NULL,
	    "%s", herald_errmsg(c));
	ck_assert_int_eq(herald_pub(c, "a/b", "x", 1), HERALD_ECLOSED);
	herald_close(c);
	c = herald_new("no-port-here", &o);
	ck_assert_int_eq(herald_open(c), HERALD_EINVAL);
	ck_assert_msg(strstr(herald_errmsg(c), "bad address") != NULL, "%s",
	    herald_errmsg(c));
	herald_close(c);
	c = herald_new("nosuchhost.invalid:7400", &o);
	ck_assert_int_eq(herald_open(c), HERALD_EADDR);
	ck_assert_msg(strstr(herald_errmsg(c), "nosuchhost.invalid") != NULL,
	    "%s", herald_errmsg(c));
	herald_close(c);
	/* A non-blocking client keeps trying: no error, a retry pending. */
	o.nonblocking = 1;
	o.reconnect = 1;
	c = herald_new(addr, &o);
	ck_assert_int_eq(herald_open(c), HERALD_OK);
	for (uint64_t end = now_ms() + 300; now_ms() < end; )
		ck_assert_int_eq(herald_run_once(c, 50), HERALD_OK);
	ck_assert_int_eq(herald_is_connected(c), 0);
	ck_assert_int_ge(herald_timeout(c), 0);
	herald_close(c);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("libherald");
	TCase *tc = tcase_create("pure");

	tcase_add_test(tc, addr_good);
	tcase_add_test(tc, addr_bad);
	tcase_add_test(tc, lines_good);
	tcase_add_test(tc, lines_bad);
	tcase_add_test(tc, hello_auth);
	tcase_add_test(tc, token_exp);
	tcase_add_test(tc, token_exp_malformed);
	tcase_add_test(tc, seq_parse);
	tcase_add_test(tc, backoff);
	tcase_add_test(tc, names);
	tcase_add_test(tc, escape);
	tcase_add_test(tc, bad_options);
	suite_add_tcase(s, tc);

	tc = tcase_create("fake servers");
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, fake_not_herald);
	tcase_add_test(tc, fake_wrong_version);
	tcase_add_test(tc, fake_closes_before_hello);
	tcase_add_test(tc, fake_silent);
	tcase_add_test(tc, fake_closes_mid_line);
	tcase_add_test(tc, fake_garbage_after_hello);
	tcase_add_test(tc, fake_conflation);
	tcase_add_test(tc, fake_error_attribution);
	tcase_add_test(tc, fake_ping_unanswered);
	tcase_add_test(tc, fake_not_reading_gives_eagain);
	suite_add_tcase(s, tc);

	heraldd = getenv("HERALDD");
	if (heraldd == NULL || access(heraldd, X_OK) != 0) {
		printf("no heraldd ($HERALDD): the daemon tests are skipped\n");
		return s;
	}
	tc = tcase_create("daemon");
	tcase_set_timeout(tc, 40);
	tcase_add_checked_fixture(tc, daemon_setup, daemon_teardown);
	tcase_add_test(tc, pub_get_stats);
	tcase_add_test(tc, sub_snapshot_live_unsub);
	tcase_add_test(tc, pub_refused);
	tcase_add_test(tc, sub_refused);
	tcase_add_test(tc, attach_libevent);
	tcase_add_test(tc, own_poll_loop);
	tcase_add_test(tc, callbacks_may_close);
	tcase_add_test(tc, resume_across_restart);
	tcase_add_test(tc, gap_across_restart);
	tcase_add_test(tc, bus_reset);
	tcase_add_test(tc, unix_ingest);
	tcase_add_test(tc, refused_and_bad_addresses);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
