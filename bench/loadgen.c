/*
 * loadgen: hold many subscribers on a pub/sub server, publish at a paced
 * rate, and report what arrived, how late, and what it cost the server.
 * Speaks herald, MQTT 3.1.1 (QoS 0), Redis RESP and NATS, the subscribers
 * over TLS, WebSocket or server-sent events if asked; see bench/README.md.  Every phase of a run ends with
 * one line:
 *
 *   RESULT server=herald scenario=broadcast phase=step rate=100 ... p99_us=...
 *
 * The parent only drives and measures: subscriber children hold the
 * connections (lg_sub.c), a publisher child paces the messages (lg_pub.c).
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define POLL_MS		50	/* the parent's pace while it waits */
#define PUB_READY_S	10	/* seconds the publisher may take to connect */
#define DRAIN_MAX_S	15	/* seconds a step waits for late deliveries at most */
#define STORM_MAX_S	120	/* seconds a storm may take to resync */
#define STORM_AFTER_S	3	/* seconds of publishing after the resync */
#define STORM_POLL_MS	5	/* the parent's pace while it watches a storm */

static struct lg_opts O;
static struct lg_ctl *C;
static int child_pids[LG_MAX_CHILDREN + 1];
static int parent_fds[LG_MAX_CHILDREN];
static struct proc_sample S_start, S_conn;
static uint64_t held_at_conn;

/* Now, CLOCK_MONOTONIC, in nanoseconds (the clock of the payloads). */
uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A TCP connection to host:port, blocking unless nb; -1 on failure. */
int
tcp_connect_nb(const char *host, int port, int nb)
{
	struct sockaddr_in sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 &&
	    !(nb && errno == EINPROGRESS)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
sleep_s(double s)
{
	if (s > 0)
		usleep((useconds_t)(s * 1e6));
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
"usage: loadgen --proto herald|mqtt|redis|nats --port PORT[,PORT...] [options]\n"
"  (subscriber i connects to the i %% n-th PORT: the nodes of a cluster)\n"
"  --name NAME          server label in RESULT lines (default: the protocol)\n"
"  --scenario NAME      scenario label in RESULT lines\n"
"  --host ADDR          server address (127.0.0.1)\n"
"  --pub-port PORT      the publisher's port (default: --port)\n"
"  --pid PID            server process (tree) to sample for RSS/PSS/CPU\n"
"  --subs N             subscribers (1000)      --slow N   never-reading ones (0)\n"
"  --idle N             subscribers of a topic nobody publishes to (0)\n"
"  --topics T           subscriber i takes topic i %% T (1)\n"
"  --payload BYTES      payload size, >= %d (64)\n"
"  --addrs A            source addresses 127.0.0.1..A (16)\n"
"  --children K         subscriber processes (default: one per %d\n"
"                       subscribers, at least one per core)\n"
"  --inflight N         connects in flight per child (256)\n"
"  --hold S             hold the subscribers idle S seconds (0)\n"
"  --rates R1,R2,...    publish at each rate (msg/s), one step each\n"
"  --duration S         seconds of publishing per step (5)\n"
"  --drain S            a step ends S seconds after the last progress (1)\n"
"  --stop-on-fail       end the ladder at the first step with loss or slow p99\n"
"  --p99-limit MS       a step passes with no loss and p99 below MS (100)\n"
"  --storm-at S         reconnect storm: drop all after S s of publishing\n"
"  --storm-move         ... and each resumes on the next --port (a failover)\n"
"  --series S           sample the server's memory every S seconds\n"
"  --mark-at S          print \"MARK step=N t_ns=T\" S seconds into each step\n"
"                       (CLOCK_MONOTONIC): a driver acts on the server then\n"
"  --reconnect          a subscriber (or the publisher) the server closes\n"
"                       connects again and resumes where it was\n"
"  --pub-nagle          the publisher leaves Nagle's algorithm on, as a\n"
"                       naive publisher would (default: TCP_NODELAY)\n"
"  --connect-timeout S  give up connecting after S s without progress (20)\n"
"  --auth-token TOKEN   herald: each subscriber sends AUTH TOKEN before its\n"
"                       SUB, in the same write (at connect and reconnect)\n"
"  --tls                the subscribers connect with TLS (no verification);\n"
"                       the publisher stays plaintext: give --pub-port\n"
"  --tls-ca FILE        --tls, verifying the server's certificate against the\n"
"                       CA certificates in FILE and its address (--host)\n"
"  --ws PATH            the subscribers open a WebSocket on PATH (herald:\n"
"                       subprotocol herald.v1; nats: its websocket port)\n"
"                       and speak the protocol in its frames\n"
"  --sse PATH           herald: the subscribers send GET PATH?sub=TOPIC and\n"
"                       read server-sent events\n",
	    LG_TS_DIGITS + 1, LG_CHILD_CONNS);
	exit(2);
}

/* Parse "7400" or "7400,7410,7420" (subscribers spread over them). */
static void
parse_ports(const char *s)
{
	char *end;

	O.nports = 0;
	do {
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0 || v > 65535 || O.nports == LG_MAX_PORTS)
			usage();
		O.ports[O.nports++] = (int)v;
		s = end + 1;
	} while (*end == ',');
	if (*end != '\0')
		usage();
	O.port = O.ports[0];
}

/* Parse "10,20,50" into O.rates. */
static void
parse_rates(const char *s)
{
	char *end;

	O.nrates = 0;
	while (*s && O.nrates < LG_MAX_LADDER) {
		double r = strtod(s, &end);

		if (end == s || r <= 0)
			usage();
		O.rates[O.nrates++] = r;
		s = *end == ',' ? end + 1 : end;
	}
}

static void
parse_options(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "proto", 1, 0, 'P' }, { "name", 1, 0, 'n' },
		{ "scenario", 1, 0, 'S' }, { "host", 1, 0, 'h' },
		{ "port", 1, 0, 'p' }, { "pub-port", 1, 0, 'q' },
		{ "pid", 1, 0, 'i' }, { "subs", 1, 0, 's' },
		{ "slow", 1, 0, 'w' }, { "topics", 1, 0, 't' },
		{ "payload", 1, 0, 'b' }, { "addrs", 1, 0, 'a' },
		{ "children", 1, 0, 'k' }, { "inflight", 1, 0, 'f' },
		{ "hold", 1, 0, 'H' }, { "rates", 1, 0, 'r' },
		{ "duration", 1, 0, 'd' }, { "drain", 1, 0, 'D' },
		{ "stop-on-fail", 0, 0, 'x' }, { "p99-limit", 1, 0, 'l' },
		{ "storm-at", 1, 0, 'm' }, { "series", 1, 0, 'e' },
		{ "connect-timeout", 1, 0, 'T' }, { "verbose", 0, 0, 'v' },
		{ "pub-nagle", 0, 0, 'N' }, { "auth-token", 1, 0, 'A' },
		{ "tls", 0, 0, 'L' }, { "tls-ca", 1, 0, 'C' },
		{ "storm-move", 0, 0, 'M' }, { "ws", 1, 0, 'W' },
		{ "sse", 1, 0, 'E' }, { "idle", 1, 0, 'I' },
		{ "mark-at", 1, 0, 'K' }, { "reconnect", 0, 0, 'R' },
		{ 0, 0, 0, 0 }
	};
	int ch;

	snprintf(O.host, sizeof(O.host), "127.0.0.1");
	O.subs = 1000;
	O.topics = 1;
	O.payload = 64;
	O.naddrs = 16;
	O.inflight = 256;
	O.duration = 5;
	O.drain = 1;
	O.connect_timeout = 20;
	O.p99_limit_ms = 100;
	O.scenario = "custom";
	while ((ch = getopt_long(argc, argv, "v", lo, NULL)) != -1) {
		switch (ch) {
		case 'P': if (wire_proto_parse(optarg, &O.proto)) usage(); break;
		case 'n': O.name = optarg; break;
		case 'S': O.scenario = optarg; break;
		case 'h': snprintf(O.host, sizeof(O.host), "%s", optarg); break;
		case 'p': parse_ports(optarg); break;
		case 'q': O.pub_port = atoi(optarg); break;
		case 'i': O.server_pid = atoi(optarg); break;
		case 's': O.subs = atoi(optarg); break;
		case 'w': O.slow = atoi(optarg); break;
		case 'I': O.idle = atoi(optarg); break;
		case 'K': O.mark_at = atof(optarg); break;
		case 'R': O.reconnect = 1; break;
		case 't': O.topics = atoi(optarg); break;
		case 'b': O.payload = atoi(optarg); break;
		case 'a': O.naddrs = atoi(optarg); break;
		case 'k': O.children = atoi(optarg); break;
		case 'f': O.inflight = atoi(optarg); break;
		case 'H': O.hold = atof(optarg); break;
		case 'r': parse_rates(optarg); break;
		case 'd': O.duration = atof(optarg); break;
		case 'D': O.drain = atof(optarg); break;
		case 'x': O.stop_on_fail = 1; break;
		case 'l': O.p99_limit_ms = atof(optarg); break;
		case 'm': O.storm_at = atof(optarg); break;
		case 'N': O.pub_nagle = 1; break;
		case 'A': O.auth_token = optarg; break;
		case 'L': O.tls = 1; break;
		case 'C': O.tls = 1; O.tls_ca = optarg; break;
		case 'M': O.storm_move = 1; break;
		case 'W': O.xport = XP_WS; O.path = optarg; break;
		case 'E': O.xport = XP_SSE; O.path = optarg; break;
		case 'e': O.series = atof(optarg); break;
		case 'T': O.connect_timeout = atof(optarg); break;
		case 'v': O.verbose = 1; break;
		default: usage();
		}
	}
	if (O.name == NULL)
		O.name = wire_proto_name(O.proto);
	if (O.pub_port == 0 && O.tls && O.nrates > 0) {
		fprintf(stderr, "loadgen: --tls needs --pub-port, a plaintext "
		    "listener for the publisher\n");
		exit(2);
	}
	if (O.pub_port == 0)
		O.pub_port = O.port;
	if (O.port <= 0 || O.subs < 1 || O.slow < 0 || O.idle < 0 ||
	    O.topics < 1 ||
	    O.topics > LG_MAX_TOPICS || O.payload <= LG_TS_DIGITS ||
	    O.payload > LG_MAX_PAYLOAD - 1024 || O.naddrs < 1 ||
	    O.naddrs > LG_MAX_ADDRS || O.inflight < 1)
		usage();
	if (O.auth_token != NULL && (O.proto != PROTO_HERALD ||
	    strlen(O.auth_token) > LG_MAX_TOKEN)) {
		fprintf(stderr, "loadgen: --auth-token is for herald, at most "
		    "%d bytes\n", LG_MAX_TOKEN);
		exit(2);
	}
	if ((O.xport == XP_WS && O.proto != PROTO_HERALD &&
	    O.proto != PROTO_NATS) || (O.xport == XP_SSE &&
	    (O.proto != PROTO_HERALD || O.auth_token != NULL ||
	    O.storm_at > 0)) || (O.xport != XP_TCP && O.tls)) {
		fprintf(stderr, "loadgen: --ws is for herald and nats, --sse "
		    "for herald (without --auth-token or a storm), neither "
		    "with --tls\n");
		exit(2);
	}
	if (O.mark_at > 0 && O.storm_at > 0) {
		fprintf(stderr, "loadgen: --mark-at or --storm-at, not both\n");
		exit(2);
	}
	if (O.storm_at > 0 && O.nrates != 1) {
		fprintf(stderr, "loadgen: --storm-at needs exactly one rate\n");
		exit(2);
	}
}

/* Start the subscriber children, each with its share of the subscribers. */
static void
spawn_children(void)
{
	int total = O.subs + O.slow + O.idle, k, i, lo = 0, fds[2];
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);

	k = O.children > 0 ? O.children : (total + LG_CHILD_CONNS - 1) / LG_CHILD_CONNS;
	/* at least one reader per core, so that reading is never one core's */
	if (O.children == 0 && k < ncpu && total >= 2 * ncpu)
		k = ncpu;
	if (k > LG_MAX_CHILDREN || (total + k - 1) / k > LG_CHILD_CONNS) {
		fprintf(stderr, "loadgen: %d subscribers need more than %d "
		    "children\n", total, LG_MAX_CHILDREN);
		exit(2);
	}
	C->nchildren = k;
	for (i = 0; i < k; i++) {
		int hi = lo + (total - lo) / (k - i);
		pid_t pid;

		if (pipe2(fds, O_CLOEXEC) == -1)
			exit(1);
		if ((pid = fork()) == -1) {
			perror("fork");
			exit(1);
		}
		if (pid == 0) {
			int j;

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(fds[1]);
			for (j = 0; j < i; j++)
				close(parent_fds[j]);
			sub_child_main(&O, C, i, lo, hi, fds[0]);
		}
		close(fds[0]);
		parent_fds[i] = fds[1];
		child_pids[i] = (int)pid;
		lo = hi;
	}
}

/* The figures of all children added up (histograms too if h != NULL). */
static void
sum_slots(struct lg_slot *s, struct lg_hist *h)
{
	int i;

	memset(s, 0, sizeof(*s));
	if (h != NULL)
		memset(h, 0, sizeof(*h));
	for (i = 0; i < C->nchildren; i++) {
		struct lg_slot *c = &C->slot[i];

		s->connected += c->connected;
		s->ready += c->ready;
		s->failed += c->failed;
		s->closed += c->closed;
		s->resynced += c->resynced;
		s->recv += c->recv;
		s->stale += c->stale;
		s->vals += c->vals;
		s->gaps += c->gaps;
		s->gap_seqs += c->gap_seqs;
		s->errors += c->errors;
		s->tls_resumed += c->tls_resumed;
		if (c->first_conn_ns && (s->first_conn_ns == 0 ||
		    c->first_conn_ns < s->first_conn_ns))
			s->first_conn_ns = c->first_conn_ns;
		if (c->last_ready_ns > s->last_ready_ns)
			s->last_ready_ns = c->last_ready_ns;
		if (c->max_step == C->step && c->max_ns > s->max_ns)
			s->max_ns = c->max_ns;
		if (h != NULL)
			hist_merge(h, &c->hist);
	}
}

/* The children's errors, once each, on stderr. */
static void
report_errors(void)
{
	int i;

	for (i = 0; i < C->nchildren; i++)
		if (C->slot[i].last_error[0])
			fprintf(stderr, "loadgen: child %d: last error: %s\n", i,
			    C->slot[i].last_error);
	if (C->pub_error[0])
		fprintf(stderr, "loadgen: publisher: %s\n", C->pub_error);
}

static double
lg_cpu(void)
{
	return proc_cpu_pids(child_pids, C->nchildren + 1);
}

/* Print the fields every RESULT line has. */
static void
print_head(const char *phase, const struct proc_sample *end, double cpu_s)
{
	struct lg_slot s;
	double per_pss = 0, per_rss = 0, per_end = 0;

	sum_slots(&s, NULL);
	if (held_at_conn > 0) {
		/* memory per connection when the phase ended */
		per_end = ((double)end->pss_kb - (double)S_start.pss_kb) *
		    1024 / (double)held_at_conn;
		per_pss = ((double)S_conn.pss_kb - (double)S_start.pss_kb) *
		    1024 / (double)held_at_conn;
		per_rss = ((double)S_conn.rss_kb - (double)S_start.rss_kb) *
		    1024 / (double)held_at_conn;
	}
	printf("RESULT server=%s scenario=%s phase=%s proto=%s subs=%d slow=%d "
	    "idle=%d topics=%d payload=%d held=%llu failed=%llu closed=%llu "
	    "errors=%llu rss_start_kb=%llu rss_conn_kb=%llu rss_end_kb=%llu "
	    "pss_start_kb=%llu pss_conn_kb=%llu pss_end_kb=%llu "
	    "rss_per_conn_b=%.0f pss_per_conn_b=%.0f cpu_s=%.2f "
	    "cpu_total_s=%.2f server_procs=%d lg_cpu_s=%.2f "
	    "pss_end_per_conn_b=%.0f tls=%d",
	    O.name, O.scenario, phase, wire_proto_name(O.proto), O.subs, O.slow,
	    O.idle, O.topics, O.payload, (unsigned long long)s.connected,
	    (unsigned long long)s.failed, (unsigned long long)s.closed,
	    (unsigned long long)s.errors,
	    (unsigned long long)S_start.rss_kb, (unsigned long long)S_conn.rss_kb,
	    (unsigned long long)end->rss_kb, (unsigned long long)S_start.pss_kb,
	    (unsigned long long)S_conn.pss_kb, (unsigned long long)end->pss_kb,
	    per_rss, per_pss, cpu_s, end->cpu_s - S_start.cpu_s, end->nproc,
	    lg_cpu(), per_end, O.tls);
}

/*
 * Connect and subscribe everyone; returns when all are confirmed or no
 * progress was made for connect_timeout seconds.  Prints the connect
 * RESULT line.
 */
static void
connect_phase(void)
{
	uint64_t total = (uint64_t)(O.subs + O.slow + O.idle), last_n = 0;
	uint64_t last_change = now_ns(), t;
	struct proc_sample end;
	struct lg_slot s;
	double secs;

	C->phase = PH_CONNECT;
	spawn_children();
	for (;;) {
		sleep_s(POLL_MS / 1000.0);
		sum_slots(&s, NULL);
		t = now_ns();
		if (s.ready + s.failed >= total)
			break;
		if (s.ready + s.failed != last_n) {
			last_n = s.ready + s.failed;
			last_change = t;
		}
		if ((double)(t - last_change) / 1e9 > O.connect_timeout) {
			fprintf(stderr, "loadgen: connect stalled at %llu of "
			    "%llu\n", (unsigned long long)s.ready,
			    (unsigned long long)total);
			break;
		}
	}
	secs = s.last_ready_ns > s.first_conn_ns ?
	    (double)(s.last_ready_ns - s.first_conn_ns) / 1e9 : 0;
	sleep_s(0.5);			/* let the server settle */
	proc_sample_tree(O.server_pid, &S_conn);
	sum_slots(&s, NULL);
	held_at_conn = s.connected;
	end = S_conn;
	print_head("connect", &end, S_conn.cpu_s - S_start.cpu_s);
	printf(" ready=%llu connect_s=%.3f connect_rate=%.0f\n",
	    (unsigned long long)s.ready, secs,
	    secs > 0 ? (double)s.ready / secs : 0);
	fflush(stdout);
}

/* Print one sample of the server's memory (--series). */
static void
series_sample(uint64_t t0, uint64_t *rss_max)
{
	struct proc_sample p;

	if (proc_sample_tree(O.server_pid, &p) == -1)
		return;
	if (p.rss_kb > *rss_max)
		*rss_max = p.rss_kb;
	printf("SERIES server=%s scenario=%s t=%.1f rss_kb=%llu pss_kb=%llu "
	    "cpu_s=%.2f\n", O.name, O.scenario, (double)(now_ns() - t0) / 1e9,
	    (unsigned long long)p.rss_kb, (unsigned long long)p.pss_kb,
	    p.cpu_s - S_start.cpu_s);
	fflush(stdout);
}

/* Hold the subscribers idle for O.hold seconds: the idle RESULT line. */
static void
hold_phase(void)
{
	uint64_t t0 = now_ns(), rss_max = 0, next = t0;
	struct proc_sample a, b;

	proc_sample_tree(O.server_pid, &a);
	while (now_ns() - t0 < (uint64_t)(O.hold * 1e9)) {
		if (O.series > 0 && now_ns() >= next) {
			series_sample(t0, &rss_max);
			next += (uint64_t)(O.series * 1e9);
		}
		sleep_s(POLL_MS / 1000.0);
	}
	proc_sample_tree(O.server_pid, &b);
	print_head("idle", &b, b.cpu_s - a.cpu_s);
	printf(" hold_s=%.1f idle_cpu_pct=%.2f\n", O.hold,
	    100 * (b.cpu_s - a.cpu_s) / O.hold);
	fflush(stdout);
}

/* Deliveries expected for n messages round-robin over the topics. */
static uint64_t
expected_for(uint64_t n)
{
	uint64_t e = 0, t, T = (uint64_t)O.topics, S = (uint64_t)O.subs;

	for (t = 0; t < T && t < n; t++)
		e += (n / T + (t < n % T)) * (S / T + (t < S % T));
	return e;
}

/* Fork the publisher for one step and wait until it is connected. */
static int
start_publisher(double rate, double duration)
{
	uint64_t t0 = now_ns();
	pid_t pid;

	C->pub_ready = C->pub_done = C->pub_stop = 0;
	C->pub_go_ns = C->published = C->pub_late_max_ns = 0;
	C->pub_reconnects = 0;
	C->pub_error[0] = '\0';
	if ((pid = fork()) == -1)
		exit(1);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pub_child_main(&O, C, rate, duration);
	}
	child_pids[C->nchildren] = (int)pid;
	while (!C->pub_ready) {
		if (C->pub_done || now_ns() - t0 > PUB_READY_S * 1000000000ull) {
			fprintf(stderr, "loadgen: publisher failed: %s\n",
			    C->pub_error);
			C->pub_stop = 2;
			waitpid(pid, NULL, 0);
			return -1;
		}
		usleep(1000);
	}
	return 0;
}

/*
 * Note in q[0..2] the seconds dt by which half, 90 % and 99 % of n
 * subscribers were resubscribed, resynced of them now; *k is how many of
 * the three are known.
 */
static void
resync_quantiles(uint64_t resynced, uint64_t n, double dt, double q[3],
    int *k)
{
	static const double frac[3] = { 0.50, 0.90, 0.99 };

	for (; *k < 3 && resynced > 0 && resynced >= frac[*k] * n; (*k)++)
		q[*k] = dt;
}

/*
 * The storm: drop everyone at once, wait until all are resubscribed.  Also
 * notes when half, 90 % and 99 % of them were (q[0..2], seconds after the
 * drop, STORM_POLL_MS apart): a slow tail of a few clients (a SYN sent
 * again after 1 s) reads differently from a slow bulk.
 */
static double
storm(uint64_t go, uint64_t *ready_before, double q[3])
{
	struct lg_slot s;
	uint64_t t_drop, t;
	int k = 0;

	while (now_ns() < go + (uint64_t)(O.storm_at * 1e9))
		sleep_s(POLL_MS / 1000.0);
	sum_slots(&s, NULL);
	*ready_before = s.connected;
	t_drop = now_ns();
	C->phase = PH_DROP;
	for (;;) {
		sleep_s(STORM_POLL_MS / 1000.0);
		sum_slots(&s, NULL);
		t = now_ns();
		resync_quantiles(s.resynced, *ready_before,
		    (double)(t - t_drop) / 1e9, q, &k);
		if (s.resynced + s.failed >= *ready_before ||
		    t - t_drop > STORM_MAX_S * 1000000000ull)
			break;
	}
	sleep_s(STORM_AFTER_S);
	C->pub_stop = 1;
	return s.last_ready_ns > t_drop ?
	    (double)(s.last_ready_ns - t_drop) / 1e9 : -1;
}

/*
 * --mark-at: O.mark_at seconds into the step say so on stdout (a driver
 * acts on the server then: upgrades it, restarts it), then watch how the
 * subscribers held at the mark (*held) resubscribe (--reconnect), as the
 * storm does, until the publisher is done and every one the server
 * closed is back or given up (at most STORM_MAX_S).  Returns the mark's
 * time.
 */
static uint64_t
mark(uint64_t go, const struct lg_slot *before, uint64_t *held, double q[3])
{
	uint64_t t_mark, at = go + (uint64_t)(O.mark_at * 1e9), t;
	struct lg_slot s;
	int k = 0;

	while (!C->pub_done && (t = now_ns()) < at)
		sleep_s(at - t > POLL_MS * 1000000ull ? POLL_MS / 1000.0 :
		    (double)(at - t) / 1e9);
	sum_slots(&s, NULL);
	*held = s.connected;
	t_mark = now_ns();
	printf("MARK step=%llu t_ns=%llu\n", (unsigned long long)C->step,
	    (unsigned long long)t_mark);
	fflush(stdout);
	for (;;) {
		sleep_s(STORM_POLL_MS / 1000.0);
		sum_slots(&s, NULL);
		t = now_ns();
		resync_quantiles(s.resynced - before->resynced, *held,
		    (double)(t - t_mark) / 1e9, q, &k);
		if (C->pub_done && (s.resynced - before->resynced +
		    s.failed - before->failed >= s.closed - before->closed ||
		    t - t_mark > STORM_MAX_S * 1000000000ull))
			break;
	}
	return t_mark;
}

/*
 * One step: publish at rate for O.duration seconds (or through a storm),
 * wait for the deliveries, print the RESULT line.  Returns 1 if the step
 * passed (no loss, p99 under the limit), 0 if not, -1 if it could not run.
 */
static int
run_step(double rate)
{
	struct lg_slot before, after;
	struct lg_hist hb, ha;
	struct proc_sample pa, pb;
	uint64_t go, t_end, t_prog, last_recv, expected, got, rss_max = 0;
	uint64_t next_series, ready_before = 0, t_mark = 0;
	double resync_s = 0, resync_q[3] = { -1, -1, -1 }, secs, p99;
	int pass;

	C->step++;
	C->step_start_ns = now_ns();
	sum_slots(&before, &hb);
	if (start_publisher(rate, O.storm_at > 0 ? 0 : O.duration) == -1)
		return -1;
	proc_sample_tree(O.server_pid, &pa);
	go = now_ns() + 10000000u;
	next_series = go;
	C->pub_go_ns = go;
	if (O.storm_at > 0)
		resync_s = storm(go, &ready_before, resync_q);
	if (O.mark_at > 0)
		t_mark = mark(go, &before, &ready_before, resync_q);
	while (!C->pub_done) {
		if (O.series > 0 && now_ns() >= next_series) {
			series_sample(go, &rss_max);
			next_series += (uint64_t)(O.series * 1e9);
		}
		sleep_s(POLL_MS / 1000.0);
	}
	t_end = t_prog = now_ns();
	expected = expected_for(C->published);
	last_recv = 0;
	for (;;) {				/* the late deliveries */
		uint64_t t = now_ns();

		sum_slots(&after, NULL);
		got = after.recv - before.recv;
		if (got != last_recv) {
			last_recv = got;
			t_prog = t;
		}
		if (got >= expected || (double)(t - t_prog) / 1e9 >= O.drain ||
		    t - t_end > DRAIN_MAX_S * 1000000000ull)
			break;
		if (O.series > 0 && t >= next_series) {
			series_sample(go, &rss_max);
			next_series += (uint64_t)(O.series * 1e9);
		}
		sleep_s(POLL_MS / 1000.0);
	}
	proc_sample_tree(O.server_pid, &pb);
	sum_slots(&after, &ha);
	C->pub_stop = 2;
	waitpid(child_pids[C->nchildren], NULL, 0);
	child_pids[C->nchildren] = 0;
	hist_sub(&ha, &hb);
	got = after.recv - before.recv;
	secs = (double)(t_prog - go) / 1e9;
	p99 = (double)hist_quantile(&ha, 0.99) / 1e3;
	pass = C->published > 0 && got >= expected && p99 < O.p99_limit_ms * 1e3;
	print_head(O.storm_at > 0 ? "storm" : "step", &pb, pb.cpu_s - pa.cpu_s);
	printf(" rate=%g published=%llu pub_rate=%.0f pub_late_max_ms=%.1f "
	    "expected=%llu received=%llu lost=%lld loss_pct=%.4f "
	    "deliv_per_s=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f "
	    "p999_us=%.0f max_us=%.0f stale=%llu vals=%llu gaps=%llu "
	    "gap_seqs=%llu rss_max_kb=%llu pass=%d",
	    rate, (unsigned long long)C->published,
	    (double)C->published / ((double)(t_end - go) / 1e9),
	    (double)C->pub_late_max_ns / 1e6, (unsigned long long)expected,
	    (unsigned long long)got, (long long)(expected - got),
	    expected ? 100.0 * (double)(expected - got) / (double)expected : 0,
	    secs > 0 ? (double)got / secs : 0,
	    (double)hist_quantile(&ha, 0.50) / 1e3,
	    (double)hist_quantile(&ha, 0.90) / 1e3, p99,
	    (double)hist_quantile(&ha, 0.999) / 1e3,
	    (double)after.max_ns / 1e3,
	    (unsigned long long)(after.stale - before.stale),
	    (unsigned long long)(after.vals - before.vals),
	    (unsigned long long)(after.gaps - before.gaps),
	    (unsigned long long)(after.gap_seqs - before.gap_seqs),
	    (unsigned long long)(rss_max > pb.rss_kb ? rss_max : pb.rss_kb),
	    pass);
	if (O.storm_at > 0)
		printf(" dropped=%llu resynced=%llu tls_resumed=%llu "
		    "resync_s=%.3f resync_p50_s=%.3f resync_p90_s=%.3f "
		    "resync_p99_s=%.3f",
		    (unsigned long long)ready_before,
		    (unsigned long long)(after.resynced - before.resynced),
		    (unsigned long long)(after.tls_resumed - before.tls_resumed),
		    resync_s, resync_q[0], resync_q[1], resync_q[2]);
	if (O.mark_at > 0)		/* the times since the mark */
		printf(" mark_ns=%llu held_at_mark=%llu closed_step=%llu "
		    "resynced=%llu last_ready_ns=%llu pub_reconnects=%llu "
		    "resync_s=%.3f resync_p50_s=%.3f resync_p90_s=%.3f "
		    "resync_p99_s=%.3f",
		    (unsigned long long)t_mark,
		    (unsigned long long)ready_before,
		    (unsigned long long)(after.closed - before.closed),
		    (unsigned long long)(after.resynced - before.resynced),
		    (unsigned long long)after.last_ready_ns,
		    (unsigned long long)C->pub_reconnects,
		    after.resynced > before.resynced && after.last_ready_ns >
		    t_mark ? (double)(after.last_ready_ns - t_mark) / 1e9 : 0,
		    resync_q[0], resync_q[1], resync_q[2]);
	printf("\n");
	fflush(stdout);
	return pass;
}

/* Raise the soft open-file limit to the hard one (children inherit it). */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	int i, r;

	parse_options(argc, argv);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	C = mmap(NULL, sizeof(*C), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (C == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(C, 0, sizeof(*C));
	if (O.server_pid > 0 && proc_sample_tree(O.server_pid, &S_start) == -1)
		fprintf(stderr, "loadgen: no process %d to sample\n",
		    O.server_pid);
	connect_phase();
	if (O.hold > 0)
		hold_phase();
	for (i = 0; i < O.nrates; i++) {
		r = run_step(O.rates[i]);
		if (r == -1 || (r == 0 && O.stop_on_fail))
			break;
	}
	report_errors();
	C->phase = PH_EXIT;
	for (i = 0; i < C->nchildren; i++) {
		close(parent_fds[i]);
		waitpid(child_pids[i], NULL, 0);
	}
	return 0;
}
