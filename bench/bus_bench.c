/*
 * Benchmark of the bus: records and bytes per second appended by the
 * writer alone, then with 1, 2 and 4 reader processes reading
 * concurrently, for 64-byte and 1 KiB payloads.  Not a test.
 *
 * usage: bus_bench [seconds per case (default 2)] [ring MiB (default 64)]
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"

#define READERS_MAX	4
#define TOPICS		1000
#define TOPIC_FMT	"bench/host%03d/value"	/* 19 bytes */
#define TOPIC_LEN	19
#define BATCH		1024
#define BUF_SIZE	(1024 * 1024)

/* What a reader reports, in shared memory. */
struct rstat {
	uint64_t	recs;
	uint64_t	bytes;		/* line bytes copied out */
	uint64_t	lost;
	double		secs;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read from the head on until the "end" record; report what was read. */
static void __attribute__((noreturn))
reader(struct bus *b, struct rstat *st)
{
	static char buf[BUF_SIZE];
	static struct bus_rec recs[BATCH];
	uint64_t pos = bus_head_pos(b), tpos, tseq, next = 0;
	double t0 = now();

	for (;;) {
		int n = bus_read(b, &pos, buf, sizeof(buf), recs, BATCH);
		if (n == BUS_LAPPED) {
			bus_tail(b, &tpos, &tseq);
			st->lost += tseq - next;
			pos = tpos;
			next = tseq;
			continue;
		}
		if (n == BUS_TOO_BIG) {	/* BUF_SIZE takes every payload */
			fprintf(stderr, "bus_bench: a record over %d bytes\n",
			    BUF_SIZE);
			exit(1);
		}
		if (n == 0) {
			sched_yield();
			continue;
		}
		for (int i = 0; i < n; i++)
			st->bytes += recs[i].line_len;
		st->recs += n;
		next = recs[n - 1].seq + 1;
		if (recs[n - 1].topic_len == 3 &&
		    memcmp(recs[n - 1].topic, "end", 3) == 0)
			break;
	}
	st->secs = now() - t0;
	_exit(0);
}

/* Append for the given time; returns records appended, *secs the time. */
static uint64_t
writer(struct bus *b, size_t plen, double seconds, double *secs)
{
	static char topics[TOPICS][32];
	char payload[1024];
	uint64_t n = 0;
	double t0, end;

	memset(payload, 'p', sizeof(payload));
	for (int i = 0; i < TOPICS; i++)
		snprintf(topics[i], sizeof(topics[i]), TOPIC_FMT, i);
	t0 = now();
	end = t0 + seconds;
	while (n % 4096 != 0 || now() < end) {
		if (bus_append(b, topics[n % TOPICS], TOPIC_LEN, payload,
		    plen) == 0) {
			fprintf(stderr, "bus_bench: append failed\n");
			exit(1);
		}
		n++;
	}
	*secs = now() - t0;
	bus_append(b, "end", 3, "x", 1);
	return n;
}

/* One case: a fresh bus, nreaders readers, the writer; print a row. */
static void
run_case(const struct bus_config *cfg, size_t plen, int nreaders,
    double seconds)
{
	struct rstat *st;
	pid_t pids[READERS_MAX];
	double wsecs, rrecs = 0, rbytes = 0;
	uint64_t n, lost = 0;
	char err[256];
	struct bus *b;

	if ((b = bus_open(cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bus_bench: %s\n", err);
		exit(1);
	}
	st = mmap(NULL, sizeof(*st) * READERS_MAX, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st == MAP_FAILED) {
		perror("bus_bench: mmap");
		exit(1);
	}
	memset(st, 0, sizeof(*st) * READERS_MAX);
	for (int i = 0; i < nreaders; i++)
		if ((pids[i] = fork()) == 0)
			reader(b, &st[i]);
	n = writer(b, plen, seconds, &wsecs);
	for (int i = 0; i < nreaders; i++) {
		waitpid(pids[i], NULL, 0);
		rrecs += st[i].recs / st[i].secs;
		rbytes += st[i].bytes / st[i].secs;
		lost += st[i].lost;
	}
	printf("%7zu  %7d  %12.0f  %11.1f  %12.0f  %12.0f  %11.1f  %8llu\n",
	    plen, nreaders, n / wsecs, n * (double)plen / wsecs / 1e6,
	    nreaders ? rrecs / nreaders : 0, rrecs, rbytes / 1e6,
	    (unsigned long long)lost);
	fflush(stdout);
	munmap(st, sizeof(*st) * READERS_MAX);
	bus_close(b);
}

int
main(int argc, char **argv)
{
	static const size_t payloads[] = { 64, 1024 };
	static const int readers[] = { 0, 1, 2, 4 };
	double seconds = argc > 1 ? atof(argv[1]) : 2;
	struct bus_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ring_size = (uint64_t)(argc > 2 ? atoi(argv[2]) : 64) << 20;
	cfg.retained_max = 2 * TOPICS;
	cfg.retained_bytes = 8 << 20;
	cfg.counter_slots = 2;
	printf("bus_bench: ring %llu MiB, %d topics (%d-byte names), %.1f s "
	    "per case, %ld CPUs online\n",
	    (unsigned long long)(cfg.ring_size >> 20), TOPICS, TOPIC_LEN,
	    seconds, sysconf(_SC_NPROCESSORS_ONLN));
	printf("%7s  %7s  %12s  %11s  %12s  %12s  %11s  %8s\n", "payload",
	    "readers", "append rec/s", "append MB/s", "read rec/s",
	    "read rec/s", "read MB/s", "lost");
	printf("%7s  %7s  %12s  %11s  %12s  %12s  %11s  %8s\n", "bytes", "",
	    "(writer)", "(payload)", "(each)", "(all)", "(lines,all)",
	    "(recs)");
	for (size_t p = 0; p < sizeof(payloads) / sizeof(*payloads); p++)
		for (size_t r = 0; r < sizeof(readers) / sizeof(*readers); r++)
			run_case(&cfg, payloads[p], readers[r], seconds);
	return 0;
}
