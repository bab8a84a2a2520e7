/*
 * Stress test of the bus: one writer process appends records of random
 * size as fast as it can into a small ring while four reader processes
 * read them without locks, some slowly so that they get lapped.  Every
 * record's content is derived from its seq, so readers check every byte,
 * and account for every seq they lost (BUS_LAPPED + bus_tail).  Readers
 * also check retained values for consistency while they change.
 *
 * Exits 0 and prints a one-line summary, or 1 with the first mismatch.
 * BUS_STRESS_SECONDS sets the writing time (default 10).
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"

#define READERS		4
#define RING_SIZE	(256 * 1024)
#define PAYLOAD_MAX	2000
#define TOPICS		97
#define BATCH		256
#define BUF_SIZE	(256 * 1024)
#define STALL_SECONDS	60	/* a reader with no progress this long fails */
#define TABLE_SIZE	(1024 * 1024)	/* payloads are slices of this */

/* What each reader reports, in shared memory. */
struct result {
	uint64_t	seen;		/* records read and verified */
	uint64_t	lost;		/* seqs reported lost by bus_tail */
	uint64_t	laps;		/* BUS_LAPPED returns */
	uint64_t	retained_checks;
	uint64_t	last_seq;
	int		ok;
	char		why[256];
};

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* The topic of seq; returns its length. */
static size_t
topic_of(uint64_t seq, char *t)
{
	return snprintf(t, 32, "s/%u/x", (unsigned)(seq % TOPICS));
}

/* Random printable bytes, the same in every process (made before fork). */
static char	table[TABLE_SIZE];

static void
table_init(void)
{
	for (size_t i = 0; i < TABLE_SIZE; i++)
		table[i] = 0x21 + mix(i) % 94;
}

/*
 * The payload of seq: 1..PAYLOAD_MAX printable bytes at a place in the
 * table that depends on seq, so that checking it is one memcmp.
 */
static const char *
payload_of(uint64_t seq, size_t *len)
{
	uint64_t x = mix(seq + 0x9e3779b97f4a7c15ULL);

	*len = 1 + x % PAYLOAD_MAX;
	return table + (x >> 20) % (TABLE_SIZE - PAYLOAD_MAX);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Record a failure and end the reader. */
static void __attribute__((noreturn, format(printf, 2, 3)))
fail(struct result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	r->ok = 0;
	_exit(1);
}

/* Check one record, its whole line, against what the writer wrote. */
static void
check_rec(struct result *res, const struct bus_rec *r)
{
	char topic[32], head[64];
	size_t tl, pl, hl;
	const char *want;

	if (r->topic_len == 3 && memcmp(r->topic, "end", 3) == 0)
		return;
	tl = topic_of(r->seq, topic);
	want = payload_of(r->seq, &pl);
	hl = snprintf(head, sizeof(head), "MSG %s %llu ", topic,
	    (unsigned long long)r->seq);
	if (r->topic_len != tl || memcmp(r->topic, topic, tl) != 0)
		fail(res, "seq %llu: topic %.*s, expected %s",
		    (unsigned long long)r->seq, (int)r->topic_len, r->topic,
		    topic);
	if (r->payload_len != pl || memcmp(r->payload, want, pl) != 0)
		fail(res, "seq %llu: payload differs (%u bytes, expected %zu)",
		    (unsigned long long)r->seq, r->payload_len, pl);
	/* The line is exactly head, payload, LF, and the fields point in. */
	if (r->line_len != hl + pl + 1 || memcmp(r->line, head, hl) != 0 ||
	    r->topic != r->line + 4 || r->payload != r->line + hl ||
	    r->line[hl + pl] != '\n')
		fail(res, "seq %llu: line differs", (unsigned long long)r->seq);
}

/* Check one retained value: consistent, and never above the head. */
static void
check_value(struct result *res, struct bus *b, const struct bus_value *v)
{
	char topic[32];
	const char *want;
	size_t tl, pl;
	uint64_t head;

	if (v->topic_len == 3 && memcmp(v->topic, "end", 3) == 0)
		return;
	tl = topic_of(v->seq, topic);
	want = payload_of(v->seq, &pl);
	head = bus_head_seq(b);
	if (v->topic_len != tl || memcmp(v->topic, topic, tl) != 0 ||
	    v->payload_len != pl || memcmp(v->payload, want, pl) != 0)
		fail(res, "retained %.*s seq %llu is torn", (int)v->topic_len,
		    v->topic, (unsigned long long)v->seq);
	if (v->seq > head)
		fail(res, "retained seq %llu above head %llu",
		    (unsigned long long)v->seq, (unsigned long long)head);
	res->retained_checks++;
}

static int
value_cb(void *arg, const struct bus_value *v)
{
	void **a = arg;

	check_value(a[0], a[1], v);
	return 0;
}

/* Now and then, look at the retained table while it changes. */
static void
check_retained(struct result *res, struct bus *b, uint64_t n)
{
	static char buf[PAYLOAD_MAX + 64];
	struct bus_value v;
	char topic[32];
	void *arg[2] = { res, b };
	size_t tl = topic_of(n, topic);

	if (bus_retained_get(b, topic, tl, &v, buf, sizeof(buf)))
		check_value(res, b, &v);
	if (n % 8 == 0)
		bus_retained_foreach(b, "s/+/x", 5, value_cb, arg);
}

/*
 * Handle a lap: the ring lost seqs [*next, tail_seq - 1]; go on from the
 * tail.  A lapped reader must have lost at least one record.
 */
static void
lapped(struct result *res, struct bus *b, uint64_t *pos, uint64_t *next)
{
	uint64_t tpos, tseq;

	bus_tail(b, &tpos, &tseq);
	if (tseq <= *next)
		fail(res, "lapped at seq %llu but the tail is at seq %llu",
		    (unsigned long long)*next, (unsigned long long)tseq);
	res->laps++;
	res->lost += tseq - *next;
	*next = tseq;
	*pos = tpos;
}

/* Reader id: read everything up to the "end" record, checking it all. */
static void __attribute__((noreturn))
reader(struct bus *b, int id, struct result *res)
{
	static char buf[BUF_SIZE];
	struct bus_rec recs[BATCH];
	uint64_t pos = 0, next = 1, batches = 0;
	double progress = now(), nap = now();
	int slow = id >= READERS / 2;

	srand(id + 1);
	res->ok = 1;
	for (;;) {
		int n = bus_read(b, &pos, buf, sizeof(buf), recs, BATCH);
		if (n == BUS_LAPPED) {
			lapped(res, b, &pos, &next);
			continue;
		}
		if (n == BUS_TOO_BIG)	/* BUF_SIZE takes any record */
			fail(res, "record seq %llu too big for the buffer",
			    (unsigned long long)recs[0].seq);
		if (n == 0) {
			if (now() - progress > STALL_SECONDS)
				fail(res, "no progress at seq %llu",
				    (unsigned long long)next);
			sched_yield();
			continue;
		}
		progress = now();
		for (int i = 0; i < n; i++) {
			if (recs[i].seq != next)
				fail(res, "read seq %llu, expected %llu",
				    (unsigned long long)recs[i].seq,
				    (unsigned long long)next);
			check_rec(res, &recs[i]);
			next++;
			res->seen++;
			res->last_seq = recs[i].seq;
			if (recs[i].topic_len == 3 &&
			    memcmp(recs[i].topic, "end", 3) == 0)
				_exit(0);
		}
		if (++batches % 4 == 0)
			check_retained(res, b, batches / 4);
		/* Slow readers nap for about a millisecond every 10 to 30:
		 * the writer fills the ring in far less, so they get lapped. */
		if (slow && progress > nap) {
			usleep(500 + rand() % 1000);
			nap = now() + (10 + rand() % 20) / 1e3;
		}
	}
}

/* Append records for the given time; returns the final seq. */
static uint64_t
writer(struct bus *b, double seconds, uint64_t *bytes)
{
	double end = now() + seconds;
	uint64_t seq = 0;
	char topic[32];

	*bytes = 0;
	while (seq % 1024 != 0 || now() < end) {
		size_t tl = topic_of(seq + 1, topic), pl;
		const char *payload = payload_of(seq + 1, &pl);
		if ((seq = bus_append(b, topic, tl, payload, pl)) == 0) {
			fprintf(stderr, "bus_stress: append failed\n");
			exit(1);
		}
		*bytes += pl;
		/* Full speed, but let the readers have the CPU now and then:
		 * the machine may have fewer cores than we have processes. */
		if (seq % 64 == 0)
			sched_yield();
	}
	return bus_append(b, "end", 3, "done", 4);
}

/* Wait for the readers; 1 if all succeeded and accounted for every seq. */
static int
collect(pid_t *pids, struct result *res, uint64_t last)
{
	int ok = 1;

	for (int i = 0; i < READERS; i++) {
		int status;
		if (waitpid(pids[i], &status, 0) == -1 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0 || !res[i].ok) {
			fprintf(stderr, "bus_stress: reader %d failed: %s\n", i,
			    res[i].why[0] ? res[i].why : "died");
			ok = 0;
		} else if (res[i].seen + res[i].lost != last ||
		    res[i].last_seq != last) {
			fprintf(stderr, "bus_stress: reader %d: seen %llu + "
			    "lost %llu != %llu records\n", i,
			    (unsigned long long)res[i].seen,
			    (unsigned long long)res[i].lost,
			    (unsigned long long)last);
			ok = 0;
		}
	}
	return ok;
}

int
main(void)
{
	struct bus_config cfg = { NULL, RING_SIZE, 256, 1024 * 1024, 4 };
	const char *env = getenv("BUS_STRESS_SECONDS");
	double seconds = env != NULL ? atof(env) : 10, t0, t;
	uint64_t last, bytes, seen = 0, lost = 0, laps = 0, rchecks = 0;
	struct result *res;
	pid_t pids[READERS];
	char err[256];
	struct bus *b;

	if ((b = bus_open(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bus_stress: %s\n", err);
		return 1;
	}
	res = mmap(NULL, sizeof(*res) * READERS, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		perror("bus_stress: mmap");
		return 1;
	}
	memset(res, 0, sizeof(*res) * READERS);
	table_init();
	for (int i = 0; i < READERS; i++) {
		if ((pids[i] = fork()) == -1) {
			perror("bus_stress: fork");
			return 1;
		}
		if (pids[i] == 0)
			reader(b, i, &res[i]);
	}
	/* A hung reader must not hang the test suite. */
	alarm(seconds + STALL_SECONDS + 30);
	t0 = now();
	last = writer(b, seconds, &bytes);
	t = now() - t0;
	if (!collect(pids, res, last))
		return 1;
	for (int i = 0; i < READERS; i++) {
		seen += res[i].seen;
		lost += res[i].lost;
		laps += res[i].laps;
		rchecks += res[i].retained_checks;
	}
	if (laps == 0 || seen < (seen + lost) / 2) {
		fprintf(stderr, "bus_stress: %llu laps, %llu of %llu records "
		    "read: expected some laps and most records read\n",
		    (unsigned long long)laps, (unsigned long long)seen,
		    (unsigned long long)(seen + lost));
		for (int i = 0; i < READERS; i++)
			fprintf(stderr, "  reader %d: seen %llu lost %llu laps "
			    "%llu\n", i, (unsigned long long)res[i].seen,
			    (unsigned long long)res[i].lost,
			    (unsigned long long)res[i].laps);
		return 1;
	}
	printf("bus_stress: %d readers, %llu records (%.0f/s, %.1f MB/s) in "
	    "%.1f s, read %llu, lost %llu in %llu laps, %llu retained checks: "
	    "ok\n", READERS, (unsigned long long)last, last / t,
	    bytes / t / 1e6, t, (unsigned long long)seen,
	    (unsigned long long)lost, (unsigned long long)laps,
	    (unsigned long long)rchecks);
	bus_close(b);
	return 0;
}
