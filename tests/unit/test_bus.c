/*
 * Unit tests of the bus (shm/bus.c): ring, seq index, retained table,
 * file backing and recovery, counters.  Every test is self-contained: an
 * anonymous bus, or files in its own temporary directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* memmem */
#endif
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"

#define KI		1024
#define RING		(64 * KI)

/*
 * The file format of version 2, as shm/bus.c lays it out; the corruption
 * tests poke at it.  If bus.c changes it, BUS_VERSION must change too.
 */
struct f_hdr {
	uint64_t	magic;
	uint32_t	version;
	uint32_t	hdr_size;
	uint64_t	total_size, ring_size, ring_off;
	uint64_t	index_entries, index_off;
	uint32_t	retained_max, slot_count;
	uint64_t	slots_off, heap_size, heap_off, counters_off;
	uint32_t	nclasses, counter_slots, counter_stride, geom_crc;
	alignas(64) uint64_t head_pos;
	uint64_t	head_seq, tail_pos, tail_seq;
	uint32_t	head_gen, tail_gen, writer_busy;
};

struct f_slot {
	uint32_t	lock, pad;
	uint64_t	seq, heap_off;
	uint32_t	payload_len, crc, hash;
	uint16_t	topic_len, state;
};

static char	tmpdir[256];

/* --- helpers ------------------------------------------------------------- */

static void
dir_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_bus.XXXXXX",
	    t != NULL && t[0] != '\0' ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
dir_teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(tmpdir);
}

static const char *
tmpfile_path(const char *name)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	return p;
}

static struct bus_config
config(const char *file, uint64_t ring, uint32_t rmax, uint64_t rbytes)
{
	struct bus_config c;

	memset(&c, 0, sizeof(c));
	c.file = file;
	c.ring_size = ring;
	c.retained_max = rmax;
	c.retained_bytes = rbytes;
	c.counter_slots = 4;
	return c;
}

static struct bus *
open_ok(const char *file, uint64_t ring, uint32_t rmax, uint64_t rbytes)
{
	struct bus_config c = config(file, ring, rmax, rbytes);
	char err[512] = "";
	struct bus *b = bus_open(&c, err, sizeof(err));

	ck_assert_msg(b != NULL, "bus_open: %s", err);
	return b;
}

static struct bus *
open_anon(void)
{
	return open_ok(NULL, RING, 64, 64 * KI);
}

/* bus_open must fail with an error containing each of the words. */
static void
open_fails(const struct bus_config *c, const char *w1, const char *w2)
{
	char err[512] = "";
	struct bus *b = bus_open(c, err, sizeof(err));

	ck_assert_msg(b == NULL, "bus_open should fail (%s)", w1);
	ck_assert_msg(strstr(err, w1) != NULL, "\"%s\" lacks \"%s\"", err, w1);
	ck_assert_msg(w2 == NULL || strstr(err, w2) != NULL,
	    "\"%s\" lacks \"%s\"", err, w2);
}

/* Deterministic payload bytes for a seq. */
static void
fill(char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = 'a' + (seed * 7 + i * 13) % 26;
}

/* Payload length giving a record of exactly size bytes with topic tlen. */
static size_t
plen_for(size_t size, size_t tlen)
{
	ck_assert(size % 8 == 0 && size >= 59 + tlen);
	return size - 59 - tlen;
}

/* Append a record of exactly size bytes on topic t, content from seq. */
static uint64_t
append_sized(struct bus *b, const char *t, size_t size)
{
	static char payload[RING];
	size_t plen = plen_for(size, strlen(t));
	uint64_t seq = bus_head_seq(b) + 1;

	fill(payload, plen, seq);
	ck_assert_uint_eq(bus_record_size(strlen(t), plen), size);
	ck_assert_uint_eq(bus_append(b, t, strlen(t), payload, plen), seq);
	return seq;
}

static uint64_t
append_str(struct bus *b, const char *t, const char *p)
{
	return bus_append(b, t, strlen(t), p, strlen(p));
}

/* Check that rec is the record append_sized wrote for seq on topic t. */
static void
check_sized(const struct bus_rec *r, uint64_t seq, const char *t)
{
	char expect[RING];
	int n;

	ck_assert_uint_eq(r->seq, seq);
	ck_assert_uint_eq(r->topic_len, strlen(t));
	ck_assert(memcmp(r->topic, t, strlen(t)) == 0);
	n = snprintf(expect, sizeof(expect), "MSG %s %llu ", t,
	    (unsigned long long)seq);
	ck_assert(memcmp(r->line, expect, n) == 0);
	ck_assert_ptr_eq(r->payload, r->line + n);
	ck_assert_uint_eq(r->line_len, n + r->payload_len + 1);
	fill(expect, r->payload_len, seq);
	ck_assert(memcmp(r->payload, expect, r->payload_len) == 0);
	ck_assert_int_eq(r->line[r->line_len - 1], '\n');
}

/* Map a whole file read-write. */
static char *
file_map(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDWR);
	char *p;

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(fstat(fd, &st), 0);
	*len = st.st_size;
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	close(fd);
	return p;
}

/* The used slot whose value starts with topic t, in a mapped bus file. */
static struct f_slot *
file_slot(char *base, const char *t)
{
	struct f_hdr *h = (struct f_hdr *)base;
	struct f_slot *s = (struct f_slot *)(base + h->slots_off);

	for (uint32_t i = 0; i < h->slot_count; i++)
		if (s[i].state == 1 && s[i].topic_len == strlen(t) &&
		    memcmp(base + h->heap_off + s[i].heap_off + 8, t,
		    strlen(t)) == 0)
			return &s[i];
	ck_abort_msg("no slot for %s", t);
	return NULL;
}

/* --- ring ---------------------------------------------------------------- */

START_TEST(test_empty)
{
	struct bus *b = open_anon();
	struct bus_rec recs[4];
	uint64_t pos = 0, seq = 0;
	char buf[256];

	ck_assert_uint_eq(bus_head_seq(b), 0);
	ck_assert_uint_eq(bus_head_pos(b), 0);
	bus_tail(b, &pos, &seq);
	ck_assert_uint_eq(pos, 0);
	ck_assert_uint_eq(seq, 1);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 4), 0);
	ck_assert_uint_eq(bus_retained_count(b), 0);
	ck_assert_uint_eq(bus_ring_size(b), RING);
	ck_assert_uint_eq(bus_retained_max(b), 64);
	ck_assert_str_eq(bus_repair_note(b), "");
	bus_close(b);
}
END_TEST

START_TEST(test_roundtrip)
{
	struct bus *b = open_anon();
	static const char *line[] = { "MSG a/b 1 hello\n", "MSG c 2 x\n",
	    "MSG plant/line3/temp 3  spaced  out \n" };
	struct bus_rec recs[8];
	uint64_t pos = 0, expect_pos = 0, hp, hs;
	char buf[4096];

	ck_assert_uint_eq(append_str(b, "a/b", "hello"), 1);
	ck_assert_uint_eq(append_str(b, "c", "x"), 2);
	ck_assert_uint_eq(append_str(b, "plant/line3/temp", " spaced  out "),
	    3);
	ck_assert_uint_eq(bus_head_seq(b), 3);
	ck_assert_uint_eq(bus_head_pos(b), bus_record_size(3, 5) +
	    bus_record_size(1, 1) + bus_record_size(16, 13));
	bus_head(b, &hp, &hs);
	ck_assert_uint_eq(hp, bus_head_pos(b));
	ck_assert_uint_eq(hs, 3);

	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(recs[i].seq, i + 1);
		ck_assert_uint_eq(recs[i].pos, expect_pos);
		ck_assert_uint_eq(recs[i].line_len, strlen(line[i]));
		ck_assert(memcmp(recs[i].line, line[i], strlen(line[i])) == 0);
		expect_pos += bus_record_size(recs[i].topic_len,
		    recs[i].payload_len);
	}
	ck_assert(memcmp(recs[0].topic, "a/b", 3) == 0);
	ck_assert_uint_eq(recs[0].topic_len, 3);
	ck_assert(memcmp(recs[0].payload, "hello", 5) == 0);
	ck_assert_uint_eq(recs[0].payload_len, 5);
	ck_assert_uint_eq(recs[2].payload_len, 13);
	ck_assert(memcmp(recs[2].payload, " spaced  out ", 13) == 0);
	ck_assert_uint_eq(pos, bus_head_pos(b));
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8), 0);
	ck_assert_uint_eq(pos, bus_head_pos(b));
	bus_close(b);
}
END_TEST

START_TEST(test_record_size)
{
	struct bus *b = open_anon();
	static char big[RING];

	/* Header 32 + "MSG " + topic + " " + 20-digit seq room + " " +
	 * payload + "\n", rounded up to 8. */
	ck_assert_uint_eq(bus_record_size(1, 0), 64);
	ck_assert_uint_eq(bus_record_size(1, 4), 64);
	ck_assert_uint_eq(bus_record_size(1, 5), 72);
	ck_assert_uint_eq(bus_record_size(255, 65536), 65856);
	/* A record above a quarter of the ring is refused. */
	memset(big, 'x', sizeof(big));
	ck_assert_uint_eq(bus_append(b, "t", 1, big, plen_for(RING / 4, 1)),
	    1);
	ck_assert_uint_eq(bus_append(b, "t", 1, big,
	    plen_for(RING / 4 + 8, 1)), 0);
	ck_assert_uint_eq(bus_append(b, "", 0, "x", 1), 0);
	ck_assert_uint_eq(bus_head_seq(b), 1);
	ck_assert_uint_eq(bus_head_pos(b), RING / 4);
	bus_close(b);
}
END_TEST

START_TEST(test_read_limits)
{
	struct bus *b = open_anon();
	struct bus_rec recs[8];
	uint64_t pos = 0;
	char buf[4096];

	for (int i = 0; i < 5; i++)
		append_sized(b, "lim", 128);
	/* maxrecs bounds a batch. */
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 2), 2);
	ck_assert_uint_eq(pos, 256);
	check_sized(&recs[1], 2, "lim");
	/* A line that does not fit the buffer waits for the next call. */
	ck_assert_int_eq(bus_read(b, &pos, buf, 2 * recs[0].line_len - 1,
	    recs, 8), 1);
	check_sized(&recs[0], 3, "lim");
	ck_assert_uint_eq(pos, 384);
	/* One that does not fit an empty buffer is said so, never 0. */
	ck_assert_int_eq(bus_read(b, &pos, buf, 10, recs, 8), BUS_TOO_BIG);
	ck_assert_uint_eq(pos, 384);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8), 2);
	check_sized(&recs[1], 5, "lim");
	/* A position past the head is not in the ring. */
	pos += 8;
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8),
	    BUS_LAPPED);
	bus_close(b);
}
END_TEST

/* Fill the ring with 512-byte records up to position target. */
static void
advance_to(struct bus *b, uint64_t target, uint64_t *sizes)
{
	uint64_t rest = target - bus_head_pos(b);
	uint64_t last = 512 + rest % 512;

	while (rest > last) {
		sizes[append_sized(b, "w", 512)] = 512;
		rest -= 512;
	}
	sizes[append_sized(b, "w", last)] = last;
	ck_assert_uint_eq(bus_head_pos(b), target);
}

/* Read everything new from *pos, checking seqs and contents. */
static int
drain(struct bus *b, uint64_t *pos, uint64_t *next, const uint64_t *sizes)
{
	static char buf[4 * RING];
	struct bus_rec recs[64];
	int n, total = 0;

	while ((n = bus_read(b, pos, buf, sizeof(buf), recs, 64)) > 0) {
		for (int i = 0; i < n; i++) {
			check_sized(&recs[i], *next, "w");
			ck_assert_uint_eq(bus_record_size(1,
			    recs[i].payload_len), sizes[*next]);
			(*next)++;
		}
		total += n;
	}
	ck_assert_int_eq(n, 0);
	return total;
}

/*
 * One boundary case: the head d bytes before the ring's end (second lap),
 * then records of size len.  Checks where they land and that a reader
 * that kept up and one that lags both read them all, in order.
 */
static void
wrap_case(uint64_t d, uint64_t len)
{
	struct bus *b = open_ok(NULL, RING, 16, 4 * KI);
	static uint64_t sizes[4096];
	uint64_t keep, keep_next, lag, lag_next, end = 2 * RING;
	uint64_t x = 2 * RING - d, seq, fpos;

	advance_to(b, x - 1024, sizes);
	bus_tail(b, &keep, &keep_next);
	drain(b, &keep, &keep_next, sizes);
	lag = keep;
	lag_next = keep_next;
	advance_to(b, x, sizes);
	drain(b, &keep, &keep_next, sizes);

	seq = append_sized(b, "w", len);
	sizes[seq] = len;
	ck_assert_int_eq(bus_find_seq(b, seq, &fpos), BUS_OK);
	if (d >= len)	/* fits before the end */
		ck_assert_uint_eq(fpos, x);
	else		/* skips to the next lap, with or without padding */
		ck_assert_uint_eq(fpos, end);
	ck_assert_uint_eq(bus_head_pos(b), fpos + len);
	ck_assert_int_eq(drain(b, &keep, &keep_next, sizes), 1);
	/* A few more, and a reader that lagged across the boundary. */
	for (int i = 0; i < 3; i++) {
		seq = append_sized(b, "w", len);
		sizes[seq] = len;
	}
	ck_assert_int_eq(drain(b, &keep, &keep_next, sizes), 3);
	drain(b, &lag, &lag_next, sizes);
	ck_assert_uint_eq(lag_next, seq + 1);
	ck_assert_uint_eq(lag, bus_head_pos(b));
	/* Reading from the tail starts with the tail's seq; find_seq
	 * agrees on where the ring starts. */
	bus_tail(b, &lag, &lag_next);
	seq = lag_next;
	ck_assert_int_eq(bus_find_seq(b, seq, &fpos), BUS_OK);
	ck_assert_uint_ge(fpos, lag);
	ck_assert_int_eq(bus_find_seq(b, seq - 1, &fpos), BUS_GONE);
	drain(b, &lag, &lag_next, sizes);
	ck_assert_uint_eq(lag_next, bus_head_seq(b) + 1);
	bus_close(b);
}

START_TEST(test_read_too_big)
{
	struct bus *b = open_anon();
	struct bus_rec recs[8];
	static char buf[RING];
	static uint64_t sizes[RING / 64];
	uint64_t pos = 0, big;
	size_t need;

	/* The longest line any record can have: a quarter of the ring. */
	ck_assert_uint_eq(bus_line_max(b), RING / 4 - 32);
	append_sized(b, "small", 128);
	/* After padding at the ring's end: its position is past *pos. */
	advance_to(b, RING - 64, sizes);
	pos = bus_head_pos(b);
	big = append_sized(b, "big/one", RING / 4);
	append_sized(b, "after", 128);
	need = RING / 4 - 32 - (20 - snprintf(NULL, 0, "%llu",
	    (unsigned long long)big));
	ck_assert_uint_le(need, bus_line_max(b));
	memset(recs, 0xff, sizeof(recs));
	ck_assert_int_eq(bus_read(b, &pos, buf, need - 1, recs, 8),
	    BUS_TOO_BIG);
	ck_assert_uint_eq(pos, RING - 64);
	ck_assert_uint_eq(recs[0].seq, big);
	ck_assert_uint_eq(recs[0].pos, RING);
	ck_assert_uint_eq(recs[0].line_len, need);
	ck_assert_uint_eq(recs[0].payload_len, plen_for(RING / 4, 7));
	ck_assert_ptr_null(recs[0].line);
	ck_assert_ptr_null(recs[0].payload);
	ck_assert_ptr_eq(recs[0].topic, buf);
	ck_assert_uint_eq(recs[0].topic_len, 7);
	ck_assert(memcmp(buf, "big/one", 7) == 0);
	/* ... and its size is what the ring gives it. */
	ck_assert_uint_eq(bus_record_size(recs[0].topic_len,
	    recs[0].payload_len), RING / 4);
	/* Not even the topic fits: still said, without it. */
	ck_assert_int_eq(bus_read(b, &pos, buf, 6, recs, 8), BUS_TOO_BIG);
	ck_assert_ptr_null(recs[0].topic);
	ck_assert_uint_eq(recs[0].seq, big);
	/* A buffer of exactly that takes it, and it alone. */
	ck_assert_int_eq(bus_read(b, &pos, buf, need, recs, 8), 1);
	check_sized(&recs[0], big, "big/one");
	ck_assert_int_eq(bus_read(b, &pos, buf, need, recs, 8), 1);
	check_sized(&recs[0], big + 1, "after");
	ck_assert_uint_eq(pos, bus_head_pos(b));
	bus_close(b);
}
END_TEST

START_TEST(test_wrap_boundaries)
{
	static const uint64_t lens[] = { 64, 72, 104, 128, 520 };

	/* Every distance to the end from 0 to 600 bytes, in 8-byte steps:
	 * fits exactly, leaves 8/16/24 bytes (no room for a padding
	 * header), leaves 32 or more (padding record). */
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
		for (uint64_t d = 0; d <= 600; d += 8)
			wrap_case(d, lens[l]);
}
END_TEST

START_TEST(test_lapped_exact)
{
	struct bus *b = open_anon();
	struct bus_rec recs[64];
	uint64_t pos = 0, tpos, tseq, next, n, lost_first, lost_last;
	char buf[64 * KI];

	/* 256-byte records: the ring holds exactly 256 of them. */
	for (int i = 0; i < 10; i++)
		append_sized(b, "w", 256);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 64), 10);
	next = 11;
	for (int i = 0; i < 600; i++)
		append_sized(b, "w", 256);
	n = bus_head_seq(b);
	ck_assert_uint_eq(n, 610);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 64),
	    BUS_LAPPED);
	ck_assert_uint_eq(pos, 10 * 256);	/* unchanged */
	bus_tail(b, &tpos, &tseq);
	/* The ring holds the newest 256 records exactly. */
	ck_assert_uint_eq(tseq, n - 256 + 1);
	ck_assert_uint_eq(tpos, (n - 256) * 256);
	lost_first = next;
	lost_last = tseq - 1;
	ck_assert_uint_eq(lost_first, 11);
	ck_assert_uint_eq(lost_last, 354);
	pos = tpos;
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 64), 64);
	check_sized(&recs[0], 355, "w");
	check_sized(&recs[63], 418, "w");
	bus_close(b);
}
END_TEST

START_TEST(test_lapped_padding)
{
	struct bus *b = open_anon();
	struct bus_rec recs[256];
	uint64_t pos, tpos, tseq, next = 1, seq = 0;
	static char buf[4 * RING];

	/* 1000-byte records do not divide the ring: padding every lap.  A
	 * reader lapped anywhere, padding included, has lost at least one
	 * record, and bus_tail says exactly which. */
	for (int round = 0; round < 200; round++) {
		pos = bus_head_pos(b);
		next = bus_head_seq(b) + 1;
		for (int i = 0; i < 66 + round % 5; i++)
			seq = append_sized(b, "w", 1000);
		int n = bus_read(b, &pos, buf, sizeof(buf), recs, 256);
		bus_tail(b, &tpos, &tseq);
		if (n == BUS_LAPPED) {
			ck_assert_uint_gt(tseq, next);
			pos = tpos;
			next = tseq;
			n = bus_read(b, &pos, buf, sizeof(buf), recs, 256);
		}
		ck_assert_int_gt(n, 0);
		for (int i = 0; i < n; i++)
			check_sized(&recs[i], next + i, "w");
		ck_assert_uint_eq(recs[n - 1].seq, seq);
	}
	bus_close(b);
}
END_TEST

/* A reader parked d bytes before the ring's end (where padding or a
 * gap will go) is lapped only once a record it needs is gone. */
static void
lapped_at_end(uint64_t d)
{
	struct bus *b = open_anon();
	static uint64_t sizes[4096];
	struct bus_rec recs[8];
	uint64_t park, next, p, tpos, tseq;
	char buf[4096];
	int rc = 0;

	advance_to(b, RING - d, sizes);
	park = bus_head_pos(b);
	next = bus_head_seq(b) + 1;
	for (int i = 0; i < 200 && rc != BUS_LAPPED; i++) {
		append_sized(b, "w", 1000);
		p = park;
		rc = bus_read(b, &p, buf, sizeof(buf), recs, 1);
		if (rc != BUS_LAPPED) {
			ck_assert_int_eq(rc, 1);
			check_sized(&recs[0], next, "w");
		}
	}
	ck_assert_int_eq(rc, BUS_LAPPED);
	bus_tail(b, &tpos, &tseq);
	ck_assert_uint_gt(tseq, next);	/* lost next .. tseq - 1 */
	ck_assert_int_eq(bus_find_seq(b, next, &p), BUS_GONE);
	p = tpos;
	ck_assert_int_eq(bus_read(b, &p, buf, sizeof(buf), recs, 1), 1);
	check_sized(&recs[0], tseq, "w");
	bus_close(b);
}

START_TEST(test_lapped_at_end)
{
	for (uint64_t d = 8; d <= 992; d += 8)
		lapped_at_end(d);
}
END_TEST

START_TEST(test_find_seq)
{
	struct bus *b = open_anon();
	uint64_t pos = 12345, tpos, tseq;
	struct bus_rec recs[8];
	char buf[4096];

	ck_assert_int_eq(bus_find_seq(b, 1, &pos), BUS_AHEAD);
	ck_assert_uint_eq(pos, 0);
	pos = 12345;
	ck_assert_int_eq(bus_find_seq(b, 2, &pos), BUS_AHEAD);
	ck_assert_uint_eq(pos, 12345);
	for (int i = 0; i < 1000; i++)
		append_sized(b, "w", 200);
	bus_tail(b, &tpos, &tseq);
	ck_assert_uint_gt(tseq, 1);
	ck_assert_int_eq(bus_find_seq(b, tseq, &pos), BUS_OK);
	ck_assert_uint_ge(pos, tpos);
	ck_assert_int_eq(bus_read(b, &tpos, buf, sizeof(buf), recs, 1), 1);
	ck_assert_uint_eq(recs[0].seq, tseq);
	ck_assert_uint_eq(recs[0].pos, pos);
	ck_assert_int_eq(bus_find_seq(b, 990, &pos), BUS_OK);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 1), 1);
	check_sized(&recs[0], 990, "w");
	ck_assert_int_eq(bus_find_seq(b, tseq - 1, &pos), BUS_GONE);
	ck_assert_int_eq(bus_find_seq(b, 1, &pos), BUS_GONE);
	ck_assert_int_eq(bus_find_seq(b, 0, &pos), BUS_GONE);
	ck_assert_int_eq(bus_find_seq(b, 1001, &pos), BUS_AHEAD);
	ck_assert_uint_eq(pos, bus_head_pos(b));
	ck_assert_int_eq(bus_find_seq(b, 1000, &pos), BUS_OK);
	ck_assert_uint_eq(pos + 200, bus_head_pos(b));
	ck_assert_int_eq(bus_find_seq(b, UINT64_MAX, &pos), BUS_AHEAD);
	bus_close(b);
}
END_TEST

START_TEST(test_shared_after_fork)
{
	struct bus *b = open_anon();
	int status;
	pid_t pid;

	append_str(b, "before", "fork");
	if ((pid = fork()) == 0) {
		/* The child reads what the parent appends after the fork. */
		struct bus_rec recs[4];
		uint64_t pos = 0;
		char buf[4096];
		for (int i = 0; i < 5000 && bus_head_seq(b) < 2; i++)
			usleep(1000);
		if (bus_read(b, &pos, buf, sizeof(buf), recs, 4) != 2 ||
		    recs[1].seq != 2 || memcmp(recs[1].payload, "fork", 4) != 0)
			_exit(1);
		bus_counter_add(b, 2, CTR_MSGS_OUT, 7);
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	append_str(b, "after", "fork");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(bus_counter_sum(b, CTR_MSGS_OUT), 7);
	bus_close(b);
}
END_TEST

/* --- retained ------------------------------------------------------------- */

/* Get topic t and check its payload and seq. */
static void
check_value(struct bus *b, const char *t, const char *payload, uint64_t seq)
{
	struct bus_value v;
	static char buf[RING];

	ck_assert_msg(bus_retained_get(b, t, strlen(t), &v, buf, sizeof(buf)),
	    "%s not retained", t);
	ck_assert_uint_eq(v.seq, seq);
	ck_assert_uint_eq(v.topic_len, strlen(t));
	ck_assert(memcmp(v.topic, t, strlen(t)) == 0);
	ck_assert_uint_eq(v.payload_len, strlen(payload));
	ck_assert(memcmp(v.payload, payload, strlen(payload)) == 0);
}

static int
missing(struct bus *b, const char *t)
{
	struct bus_value v;
	char buf[RING];

	return !bus_retained_get(b, t, strlen(t), &v, buf, sizeof(buf));
}

START_TEST(test_retained_basic)
{
	struct bus *b = open_anon();
	struct bus_value v;
	char buf[64];

	ck_assert(missing(b, "a/b"));
	append_str(b, "a/b", "one");
	check_value(b, "a/b", "one", 1);
	append_str(b, "a/c", "other");
	append_str(b, "a/b", "two");
	check_value(b, "a/b", "two", 3);
	check_value(b, "a/c", "other", 2);
	ck_assert_uint_eq(bus_retained_count(b), 2);
	ck_assert(missing(b, "a"));
	ck_assert(missing(b, "a/b/c"));
	/* A buffer too small for topic + payload finds nothing. */
	ck_assert_int_eq(bus_retained_get(b, "a/b", 3, &v, buf, 5), 0);
	ck_assert_int_eq(bus_retained_get(b, "a/b", 3, &v, buf, 6), 1);
	ck_assert_uint_eq(bus_retained_dropped(b), 0);
	bus_close(b);
}
END_TEST

/* The table is complete up to the newest append, also one it dropped. */
START_TEST(test_retained_seq)
{
	struct bus *b = open_ok(NULL, RING, 16, 64 * KI);
	char topic[16];

	ck_assert_uint_eq(bus_retained_seq(b), 0);
	append_str(b, "a/b", "one");
	ck_assert_uint_eq(bus_retained_seq(b), 1);
	for (int i = 0; i < 20; i++) {	/* past retained_max: dropped */
		snprintf(topic, sizeof(topic), "t/%d", i);
		append_str(b, topic, "x");
	}
	ck_assert_uint_gt(bus_retained_dropped(b), 0);
	ck_assert_uint_eq(bus_retained_seq(b), bus_head_seq(b));
	bus_close(b);
}
END_TEST

START_TEST(test_retained_classes)
{
	struct bus *b = open_ok(NULL, RING, 16, 16 * KI);
	static const size_t sizes[] = { 10, 100, 3000, 50, 1, 500, 6000, 7 };
	static char p[8 * KI];
	uint64_t seq;

	/* Growing and shrinking values move between size classes; blocks
	 * are freed as they are left, so a small heap never runs out. */
	for (int round = 0; round < 500; round++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[(i + round) % 8];
			fill(p, n, round * 8 + i);
			p[n] = '\0';
			seq = append_str(b, "grow", p);
			check_value(b, "grow", p, seq);
			append_str(b, "steady", "x");
		}
	}
	ck_assert_uint_eq(bus_retained_count(b), 2);
	ck_assert_uint_eq(bus_retained_dropped(b), 0);
	check_value(b, "steady", "x", bus_head_seq(b));
	bus_close(b);
}
END_TEST

struct seen {
	char	topics[16][64];
	int	n;
	int	stop_after;
};

static int
collect(void *arg, const struct bus_value *v)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, 16);
	snprintf(s->topics[s->n++], 64, "%.*s=%.*s", (int)v->topic_len,
	    v->topic, (int)v->payload_len, v->payload);
	return s->n == s->stop_after ? 42 : 0;
}

/* Run foreach with pattern p; 1 if the results (any order) are exactly
 * the n expected strings. */
static int
foreach_is(struct bus *b, const char *p, int n, ...)
{
	struct seen s;
	va_list ap;

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(bus_retained_foreach(b, p, strlen(p), collect, &s), 0);
	if (s.n != n)
		return 0;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *want = va_arg(ap, const char *);
		int found = 0;
		for (int j = 0; j < s.n; j++)
			found |= strcmp(s.topics[j], want) == 0;
		if (!found) {
			va_end(ap);
			return 0;
		}
	}
	va_end(ap);
	return 1;
}

START_TEST(test_retained_foreach)
{
	struct bus *b = open_anon();
	struct seen s;

	append_str(b, "a/b/c", "1");
	append_str(b, "a/x/c", "2");
	append_str(b, "a/b", "3");
	append_str(b, "b/c", "4");
	append_str(b, "a", "5");
	append_str(b, "a/b", "6");
	ck_assert(foreach_is(b, "#", 5, "a/b/c=1", "a/x/c=2", "a/b=6", "b/c=4",
	    "a=5"));
	ck_assert(foreach_is(b, "a/#", 4, "a/b/c=1", "a/x/c=2", "a/b=6",
	    "a=5"));
	ck_assert(foreach_is(b, "a/+/c", 2, "a/b/c=1", "a/x/c=2"));
	ck_assert(foreach_is(b, "+/c", 1, "b/c=4"));
	ck_assert(foreach_is(b, "+", 1, "a=5"));
	ck_assert(foreach_is(b, "a/b", 1, "a/b=6"));
	ck_assert(foreach_is(b, "a/b/c/d", 0));
	ck_assert(foreach_is(b, "zz/#", 0));
	/* The callback's non-zero answer stops the walk and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	ck_assert_int_eq(bus_retained_foreach(b, "#", 1, collect, &s), 42);
	ck_assert_int_eq(s.n, 2);
	bus_close(b);
}
END_TEST

START_TEST(test_retained_big_value_foreach)
{
	struct bus *b = open_ok(NULL, 256 * KI, 16, 256 * KI);
	static char p[40 * KI + 1];
	struct seen s;

	/* Values larger than foreach's first scratch buffer. */
	memset(p, 'q', sizeof(p) - 1);
	append_str(b, "big/one", p);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(bus_retained_foreach(b, "big/one", 7, collect, &s),
	    0);
	ck_assert_int_eq(s.n, 1);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(bus_retained_foreach(b, "big/+", 5, collect, &s), 0);
	ck_assert_int_eq(s.n, 1);
	check_value(b, "big/one", p, 1);
	bus_close(b);
}
END_TEST

START_TEST(test_retained_capacity)
{
	struct bus *b = open_ok(NULL, RING, 16, 64 * KI);
	char t[32];

	for (int i = 0; i < 20; i++) {
		snprintf(t, sizeof(t), "cap/%d", i);
		append_str(b, t, "v");
	}
	ck_assert_uint_eq(bus_retained_count(b), 16);
	ck_assert_uint_eq(bus_retained_dropped(b), 4);
	ck_assert(!missing(b, "cap/15"));
	ck_assert(missing(b, "cap/16"));
	ck_assert(missing(b, "cap/19"));
	/* Existing topics are still updated; the records are all in the
	 * ring regardless. */
	append_str(b, "cap/3", "new");
	check_value(b, "cap/3", "new", 21);
	ck_assert_uint_eq(bus_retained_dropped(b), 4);
	ck_assert_uint_eq(bus_head_seq(b), 21);
	bus_close(b);
}
END_TEST

START_TEST(test_retained_heap_full)
{
	/* 4 KiB heap: blocks of 64 .. 2048 bytes. */
	struct bus *b = open_ok(NULL, RING, 16, 4 * KI);
	static char p[4 * KI];
	struct bus_rec recs[4];
	uint64_t pos, seq;
	char t[32];

	memset(p, 'h', 1000);
	p[1000] = '\0';
	for (int i = 0; i < 4; i++) {
		snprintf(t, sizeof(t), "heap/%d", i);
		append_str(b, t, p);	/* a 1024-byte block each */
	}
	ck_assert_uint_eq(bus_retained_count(b), 4);
	/* A new topic with no block left is not retained, and counted. */
	seq = append_str(b, "heap/new", p);
	ck_assert(missing(b, "heap/new"));
	ck_assert_uint_eq(bus_retained_dropped(b), 1);
	/* ... but its record is in the ring. */
	ck_assert_int_eq(bus_find_seq(b, seq, &pos), BUS_OK);
	ck_assert_int_eq(bus_read(b, &pos, p + 1024, 3 * KI, recs, 4), 1);
	ck_assert_uint_eq(recs[0].seq, seq);
	/* An existing topic whose bigger value finds no block is removed,
	 * never left stale. */
	memset(p, 'H', 1900);
	p[1900] = '\0';
	append_str(b, "heap/2", p);
	ck_assert(missing(b, "heap/2"));
	ck_assert_uint_eq(bus_retained_count(b), 3);
	ck_assert_uint_eq(bus_retained_dropped(b), 2);
	/* Its freed 1024 block is reused by a new topic. */
	p[1000] = '\0';
	seq = append_str(b, "heap/again", p);
	check_value(b, "heap/again", p, seq);
	/* A smaller value of an existing topic always fits. */
	seq = append_str(b, "heap/0", "tiny");
	check_value(b, "heap/0", "tiny", seq);
	/* Values over half the heap are never retained. */
	memset(p, 'X', 2100);
	p[2100] = '\0';
	append_str(b, "heap/1", p);
	ck_assert(missing(b, "heap/1"));
	ck_assert_uint_eq(bus_retained_dropped(b), 3);
	ck_assert_uint_eq(bus_retained_count(b), 3);
	/* Freed blocks split for smaller classes once the bump is used up. */
	for (int i = 0; i < 12; i++) {
		snprintf(t, sizeof(t), "small/%d", i);
		append_str(b, t, "s");
	}
	ck_assert_uint_eq(bus_retained_count(b), 15);
	ck_assert_uint_eq(bus_retained_dropped(b), 3);
	bus_close(b);
}
END_TEST

START_TEST(test_retained_churn)
{
	struct bus *b = open_ok(NULL, RING, 16, 4 * KI);
	static char last[40][1600];
	struct bus_value v;
	struct seen s;
	char t[32], p[1600], buf[2048];
	uint32_t found = 0;

	/* 40 topics, values of varying size in a small heap: topics are
	 * removed when a value finds no room and others take their place,
	 * through tombstones.  Whatever is retained is the newest value. */
	for (int i = 0; i < 20000; i++) {
		int k = (i * 7919) % 40;
		size_t n = 1 + (i * 104729) % 1500;
		snprintf(t, sizeof(t), "churn/%d", k);
		fill(p, n, i);
		p[n] = '\0';
		append_str(b, t, p);
		memcpy(last[k], p, n + 1);
		if (bus_retained_get(b, t, strlen(t), &v, buf, sizeof(buf)))
			ck_assert(v.payload_len == n &&
			    memcmp(v.payload, p, n) == 0);
	}
	for (int k = 0; k < 40; k++) {
		snprintf(t, sizeof(t), "churn/%d", k);
		if (!bus_retained_get(b, t, strlen(t), &v, buf, sizeof(buf)))
			continue;
		found++;
		ck_assert_uint_eq(v.payload_len, strlen(last[k]));
		ck_assert(memcmp(v.payload, last[k], v.payload_len) == 0);
	}
	ck_assert_uint_gt(found, 0);
	ck_assert_uint_eq(bus_retained_count(b), found);
	ck_assert_uint_gt(bus_retained_dropped(b), 0);
	memset(&s, 0, sizeof(s));
	s.stop_after = 17;
	bus_retained_foreach(b, "churn/+", 7, collect, &s);
	ck_assert_uint_eq(s.n, found);
	bus_close(b);
}
END_TEST

/* --- file backing and recovery -------------------------------------------- */

START_TEST(test_reopen)
{
	const char *f = tmpfile_path("bus");
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct bus_rec recs[512];
	static char buf[4 * RING];
	uint64_t pos, seq, hs, tpos, tseq;

	for (int i = 0; i < 700; i++)
		append_sized(b, "w", 200);
	append_str(b, "keep/a", "alpha");
	append_str(b, "keep/b", "beta");
	hs = bus_head_seq(b);
	bus_tail(b, &tpos, &tseq);
	ck_assert_int_eq(bus_sync(b), 0);
	bus_close(b);

	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_str_eq(bus_repair_note(b), "");
	ck_assert_uint_eq(bus_head_seq(b), hs);
	bus_tail(b, &pos, &seq);
	ck_assert_uint_eq(pos, tpos);
	ck_assert_uint_eq(seq, tseq);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 512),
	    (int)(hs - tseq + 1));
	check_sized(&recs[0], tseq, "w");
	check_value(b, "keep/a", "alpha", hs - 1);
	check_value(b, "keep/b", "beta", hs);
	ck_assert_uint_eq(bus_retained_count(b), 3);
	ck_assert_int_eq(bus_find_seq(b, hs - 5, &pos), BUS_OK);
	ck_assert_uint_eq(append_str(b, "next", "one"), hs + 1);
	bus_close(b);
}
END_TEST

START_TEST(test_in_use)
{
	const char *f = tmpfile_path("bus");
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct bus_config c = config(f, RING, 16, 64 * KI);

	open_fails(&c, "in use by another heraldd", f);
	bus_close(b);
	b = open_ok(f, RING, 16, 64 * KI);
	bus_close(b);
}
END_TEST

START_TEST(test_refused_files)
{
	const char *f = tmpfile_path("bus");
	struct bus_config c = config(f, RING, 16, 64 * KI);
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct f_hdr *h;
	size_t len;
	char *m;

	append_str(b, "x", "y");
	bus_close(b);
	m = file_map(f, &len);
	h = (struct f_hdr *)m;

	/* Other geometry. */
	c.ring_size = 2 * RING;
	open_fails(&c, "was created with ring_size 65536",
	    "move the file away");
	c.ring_size = RING;
	c.retained_max = 32;
	open_fails(&c, "retained_max 16", "retained_max 32");
	c.retained_max = 16;
	c.retained_bytes = 128 * KI;
	open_fails(&c, "retained_bytes 65536", "set the same sizes");
	c.retained_bytes = 64 * KI;

	/* Another version. */
	h->version = BUS_VERSION + 1;
	open_fails(&c, "has version 3", "uses version 2");
	h->version = BUS_VERSION;
	/* Damaged geometry. */
	h->index_entries ^= 4;
	open_fails(&c, "damaged header", NULL);
	h->index_entries ^= 4;
	/* Not ours at all. */
	h->magic ^= 1;
	open_fails(&c, "not a herald bus file", f);
	h->magic ^= 1;
	munmap(m, len);

	/* Truncated, long and short. */
	ck_assert_int_eq(truncate(f, len - 4096), 0);
	open_fails(&c, "is truncated", "expected");
	ck_assert_int_eq(truncate(f, 100), 0);
	open_fails(&c, "is truncated", NULL);
	ck_assert_int_eq(truncate(f, 4), 0);
	open_fails(&c, "not a herald bus file", NULL);

	/* Bad configurations. */
	c.file = tmpfile_path("new");
	c.ring_size = RING + 8;
	open_fails(&c, "power of two", NULL);
	c.ring_size = RING;
	c.retained_max = 3;
	open_fails(&c, "retained_max", NULL);
	c.retained_max = 16;
	c.counter_slots = BUS_COUNTER_SLOTS_MAX + 1;
	open_fails(&c, "counter slots", NULL);
}
END_TEST

START_TEST(test_torn_record)
{
	const char *f = tmpfile_path("bus");
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct bus_rec recs[64];
	uint64_t pos, seq;
	size_t len;
	char buf[16 * KI], *m, *at;

	for (int i = 0; i < 50; i++)
		append_sized(b, "w", 200);
	append_str(b, "kept", "value");
	bus_close(b);

	/* Flip a payload byte of seq 30 in the middle of the ring. */
	m = file_map(f, &len);
	at = memmem(m, len, "MSG w 30 ", 9);
	ck_assert_ptr_nonnull(at);
	at[20] ^= 0x20;
	munmap(m, len);

	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_msg(strstr(bus_repair_note(b), "torn record after seq 29") !=
	    NULL,
	    "note: %s", bus_repair_note(b));
	/* Seq never goes back: 51 may have been seen, 52 is beyond it. */
	ck_assert_uint_ge(bus_head_seq(b), 51);
	ck_assert_int_eq(bus_find_seq(b, 30, &pos), BUS_GONE);
	ck_assert_int_eq(bus_find_seq(b, 31, &pos), BUS_GONE);
	ck_assert_int_eq(bus_find_seq(b, 51, &pos), BUS_GONE);
	/* The ring restarts empty so its seqs stay contiguous. */
	bus_tail(b, &pos, &seq);
	ck_assert_uint_eq(seq, bus_head_seq(b) + 1);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 64), 0);
	seq = append_str(b, "after", "crash");
	ck_assert_uint_gt(seq, 51);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 64), 1);
	ck_assert_uint_eq(recs[0].seq, seq);
	/* Retained values live elsewhere and survive. */
	check_value(b, "kept", "value", 51);
	bus_close(b);
}
END_TEST

START_TEST(test_torn_head)
{
	const char *f = tmpfile_path("bus");
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct f_hdr *h;
	size_t len;
	char *m;

	for (int i = 0; i < 10; i++)
		append_sized(b, "w", 200);
	bus_close(b);
	/* The writer died between storing head_pos and head_seq: the last
	 * record is whole, so it is kept and head_seq catches up. */
	m = file_map(f, &len);
	h = (struct f_hdr *)m;
	ck_assert_uint_eq(h->head_seq, 10);
	h->head_seq = 9;
	h->head_gen = 7;
	munmap(m, len);
	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_str_eq(bus_repair_note(b), "");
	ck_assert_uint_eq(bus_head_seq(b), 10);
	ck_assert_uint_eq(append_str(b, "n", "x"), 11);
	bus_close(b);

	/* Positions that make no sense: the ring is emptied, seq kept. */
	m = file_map(f, &len);
	h = (struct f_hdr *)m;
	h->tail_pos = h->head_pos + 64;
	munmap(m, len);
	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_msg(strstr(bus_repair_note(b), "emptied") != NULL, "note: %s",
	    bus_repair_note(b));
	ck_assert_uint_gt(append_str(b, "n", "y"), 11);
	bus_close(b);
}
END_TEST

START_TEST(test_bad_slots)
{
	const char *f = tmpfile_path("bus");
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct f_hdr *h;
	size_t len;
	char *m, *at, fill[1001];

	append_str(b, "tA", "alpha-value");
	append_str(b, "tB", "bravo-value");
	append_str(b, "tD", "delta-value");
	/* tB's record leaves the ring; tC's is still in it. */
	memset(fill, 'f', 1000);
	fill[1000] = '\0';
	for (int i = 0; i < 100; i++)
		append_str(b, "fill", fill);
	ck_assert_uint_eq(append_str(b, "tC", "charlie-value"), 104);
	bus_close(b);

	m = file_map(f, &len);
	h = (struct f_hdr *)m;
	/* tB: a value byte flipped (bad CRC); in the heap the topic is
	 * followed directly by the payload. */
	at = memmem(m + h->heap_off, h->heap_size, "tBbravo", 7);
	ck_assert_ptr_nonnull(at);
	at[3] ^= 1;
	/* tC: the writer died inside the update (odd seqlock). */
	file_slot(m, "tC")->lock |= 1;
	munmap(m, len);

	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_msg(strstr(bus_repair_note(b), "2 bad retained slot") !=
	    NULL, "note: %s", bus_repair_note(b));
	ck_assert_msg(strstr(bus_repair_note(b), "took 1 retained value(s) "
	    "back from the ring") != NULL, "note: %s", bus_repair_note(b));
	/* tB's value is lost with its slot: the ring no longer has it.
	 * tC's is taken back from its record. */
	ck_assert(missing(b, "tB"));
	check_value(b, "tC", "charlie-value", 104);
	check_value(b, "tA", "alpha-value", 1);
	check_value(b, "tD", "delta-value", 3);
	ck_assert_uint_eq(bus_retained_count(b), 4);
	/* The ring itself was fine. */
	ck_assert_uint_eq(bus_head_seq(b), 104);
	/* The topics can be retained again, their blocks were reclaimed. */
	append_str(b, "tB", "bravo-2");
	append_str(b, "tC", "charlie-2");
	check_value(b, "tB", "bravo-2", 105);
	check_value(b, "tC", "charlie-2", 106);
	ck_assert_uint_eq(bus_retained_count(b), 5);
	bus_close(b);
	/* A clean reopen repairs nothing. */
	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_str_eq(bus_repair_note(b), "");
	ck_assert_uint_eq(bus_retained_count(b), 5);
	bus_close(b);
}
END_TEST

START_TEST(test_lost_heap)
{
	const char *f = tmpfile_path("bus");
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct f_slot *s;
	size_t len;
	char *m, *base;

	append_str(b, "h1", "one");
	append_str(b, "h2", "two");
	append_str(b, "h3", "three");
	bus_close(b);
	/* Garbage in h2's block header: the heap walk stops there, so h2
	 * and h3 (after it) are lost; h1 survives. */
	m = file_map(f, &len);
	s = file_slot(m, "h2");
	base = m + ((struct f_hdr *)m)->heap_off;
	memset(base + s->heap_off, 0xff, 4);
	munmap(m, len);
	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_msg(strstr(bus_repair_note(b), "lost") != NULL, "note: %s",
	    bus_repair_note(b));
	/* Their records are still in the ring: the values come back. */
	ck_assert_msg(strstr(bus_repair_note(b), "took 2 retained value(s) "
	    "back from the ring") != NULL, "note: %s", bus_repair_note(b));
	check_value(b, "h1", "one", 1);
	check_value(b, "h2", "two", 2);
	check_value(b, "h3", "three", 3);
	ck_assert_uint_eq(bus_retained_count(b), 3);
	append_str(b, "h2", "again");
	check_value(b, "h2", "again", 4);
	bus_close(b);
}
END_TEST

START_TEST(test_writer_takeover)
{
	const char *f = tmpfile_path("bus");
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct f_hdr *h;
	size_t len;
	char *m;

	append_str(b, "w1", "one");
	append_str(b, "w2", "two");
	bus_close(b);
	b = open_ok(f, RING, 16, 64 * KI);
	/* A writer dies inside an append of w2, with readers running. */
	m = file_map(f, &len);
	h = (struct f_hdr *)m;
	file_slot(m, "w2")->lock |= 1;
	h->writer_busy = 1;
	ck_assert(missing(b, "w2"));	/* readers give up, no tear */
	check_value(b, "w1", "one", 1);
	/* The next writer repairs it on its first append: w2's value is
	 * taken back from its record in the ring. */
	ck_assert_uint_eq(append_str(b, "w3", "three"), 3);
	ck_assert_uint_eq(h->writer_busy, 0);
	check_value(b, "w2", "two", 2);
	ck_assert_uint_eq(bus_retained_count(b), 3);
	append_str(b, "w2", "again");
	check_value(b, "w2", "again", 4);
	munmap(m, len);
	bus_close(b);
}
END_TEST

/* --- counters ------------------------------------------------------------ */

START_TEST(test_counters)
{
	struct bus *b = open_anon();

	bus_counter_add(b, 0, CTR_MSGS_OUT, 5);
	bus_counter_add(b, 1, CTR_MSGS_OUT, 7);
	bus_counter_add(b, 3, CTR_MSGS_OUT, 11);
	bus_counter_add(b, 3, CTR_CLIENTS, 3);
	bus_counter_add(b, 3, CTR_CLIENTS, -1);
	ck_assert_uint_eq(bus_counter_sum(b, CTR_MSGS_OUT), 23);
	ck_assert_uint_eq(bus_counter_get(b, 3, CTR_MSGS_OUT), 11);
	ck_assert_uint_eq(bus_counter_sum(b, CTR_CLIENTS), 2);
	bus_counter_add(b, 2, CTR_CLIENTS, -1);	/* a gauge below zero ... */
	ck_assert_uint_eq(bus_counter_sum(b, CTR_CLIENTS), 1);	/* sums fine */
	bus_counter_set(b, 0, CTR_START_TIME, 1234567890);
	ck_assert_uint_eq(bus_counter_get(b, 0, CTR_START_TIME), 1234567890);
	/* Out of range: no-op, 0. */
	bus_counter_add(b, 4, CTR_MSGS_OUT, 100);
	bus_counter_set(b, 99, CTR_MSGS_OUT, 100);
	ck_assert_uint_eq(bus_counter_get(b, 4, CTR_MSGS_OUT), 0);
	ck_assert_uint_eq(bus_counter_get(b, 0, CTR__COUNT), 0);
	ck_assert_uint_eq(bus_counter_sum(b, CTR_MSGS_OUT), 23);
	bus_close(b);
}
END_TEST

START_TEST(test_counter_layout)
{
	const char *f = tmpfile_path("bus");
	struct bus_config c = config(f, RING, 16, 64 * KI);
	struct bus *b;
	struct f_hdr *h;
	size_t len;
	char *m;

	c.counter_slots = BUS_COUNTER_SLOTS_MAX;
	b = bus_open(&c, (char[256]){0}, 256);
	ck_assert_ptr_nonnull(b);
	for (unsigned s = 0; s < BUS_COUNTER_SLOTS_MAX; s++)
		for (int id = 0; id < CTR__COUNT; id++)
			bus_counter_set(b, s, id, 1000000 * (s + 1) + id);
	ck_assert_int_eq(bus_sync(b), 0);
	bus_close(b);

	/* Each process's block starts a cache line, holds every counter,
	 * and shares no line with another block. */
	m = file_map(f, &len);
	h = (struct f_hdr *)m;
	ck_assert_uint_eq(h->counters_off % 64, 0);
	ck_assert_uint_eq(h->counter_stride % 64, 0);
	ck_assert_uint_ge(h->counter_stride, CTR__COUNT * sizeof(uint64_t));
	ck_assert_uint_le(h->counters_off + (uint64_t)BUS_COUNTER_SLOTS_MAX *
	    h->counter_stride, len);
	for (unsigned s = 0; s < BUS_COUNTER_SLOTS_MAX; s++) {
		uint64_t *blk = (uint64_t *)(m + h->counters_off +
		    (size_t)s * h->counter_stride);
		for (int id = 0; id < CTR__COUNT; id++)
			ck_assert_uint_eq(blk[id], 1000000 * (s + 1) + id);
	}
	/* Every region is 64-byte aligned. */
	ck_assert_uint_eq(h->ring_off % 64, 0);
	ck_assert_uint_eq(h->index_off % 64, 0);
	ck_assert_uint_eq(h->slots_off % 64, 0);
	ck_assert_uint_eq(h->heap_off % 64, 0);
	munmap(m, len);
	/* Counters count one run: zero after reopening. */
	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_uint_eq(bus_counter_sum(b, CTR_MSGS_OUT), 0);
	bus_close(b);
}
END_TEST

/* --- a cluster node's writes: seqs from Redis, jumps ----------------------- */

static struct bus_value
val(const char *t, const char *p, uint64_t seq)
{
	struct bus_value v = { seq, t, strlen(t), p, strlen(p) };

	return v;
}

/* A jump laps every reader (one at the head too), takes the values below
 * it that are newer than the table's, and the next record gets its seq. */
START_TEST(test_jump)
{
	struct bus *b = open_anon();
	struct bus_rec recs[8];
	static char buf[RING];
	struct bus_value vals[3];
	uint64_t pos, at_head, tpos, tseq;

	append_str(b, "x", "one");
	append_str(b, "y", "two");
	append_str(b, "z", "three");
	bus_tail(b, &pos, &tseq);
	at_head = pos;
	ck_assert_int_eq(bus_read(b, &at_head, buf, sizeof(buf), recs, 8), 3);
	vals[0] = val("x", "eight", 8);		/* newer: taken */
	vals[1] = val("y", "old", 1);		/* older than y's 2: not */
	vals[2] = val("w", "late", 12);		/* not below the jump */
	ck_assert_int_eq(bus_jump(b, 10, vals, 3), 0);
	ck_assert_uint_eq(bus_head_seq(b), 9);
	ck_assert_uint_eq(bus_retained_seq(b), 9);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8),
	    BUS_LAPPED);
	ck_assert_int_eq(bus_read(b, &at_head, buf, sizeof(buf), recs, 8),
	    BUS_LAPPED);
	bus_tail(b, &tpos, &tseq);
	ck_assert_uint_eq(tseq, 10);
	ck_assert_uint_eq(tpos, bus_head_pos(b));
	ck_assert_int_eq(bus_find_seq(b, 2, &pos), BUS_GONE);
	ck_assert_int_eq(bus_find_seq(b, 9, &pos), BUS_GONE);
	ck_assert_int_eq(bus_find_seq(b, 10, &pos), BUS_AHEAD);
	ck_assert_uint_eq(pos, tpos);
	check_value(b, "x", "eight", 8);
	check_value(b, "y", "two", 2);
	ck_assert(missing(b, "w"));
	/* never back, never in place */
	ck_assert_int_eq(bus_jump(b, 10, NULL, 0), -1);
	ck_assert_int_eq(bus_jump(b, 3, NULL, 0), -1);
	ck_assert_uint_eq(bus_head_seq(b), 9);
	ck_assert_uint_eq(append_str(b, "x", "ten"), 10);
	pos = tpos;
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8), 1);
	ck_assert_uint_eq(recs[0].seq, 10);
	ck_assert(memcmp(recs[0].line, "MSG x 10 ten\n", 13) == 0);
	ck_assert_int_eq(bus_find_seq(b, 10, &pos), BUS_OK);
	bus_close(b);
}
END_TEST

/* Records under given seqs: in order, over a hole (a jump), never at or
 * below the head, and one too big for the ring jumped over. */
START_TEST(test_append_seq)
{
	struct bus *b = open_anon();
	struct bus_rec recs[8];
	static char buf[RING], big[RING / 2];
	uint64_t pos, tseq;

	ck_assert_uint_eq(bus_append_seq(b, 1, "a", 1, "one", 3), 1);
	ck_assert_uint_eq(bus_append_seq(b, 2, "a", 1, "two", 3), 2);
	ck_assert_uint_eq(bus_append_seq(b, 2, "a", 1, "TWO", 3), 0);
	ck_assert_uint_eq(bus_append_seq(b, 1, "b", 1, "x", 1), 0);
	check_value(b, "a", "two", 2);
	ck_assert(missing(b, "b"));
	ck_assert_uint_eq(bus_head_seq(b), 2);
	bus_tail(b, &pos, &tseq);
	ck_assert_uint_eq(bus_append_seq(b, 5, "c", 1, "five", 4), 5);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8),
	    BUS_LAPPED);
	bus_tail(b, &pos, &tseq);
	ck_assert_uint_eq(tseq, 5);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8), 1);
	ck_assert(memcmp(recs[0].line, "MSG c 5 five\n", 13) == 0);
	memset(big, 'q', sizeof(big));
	ck_assert_uint_eq(bus_append_seq(b, 6, "d", 1, big, sizeof(big)), 0);
	ck_assert_uint_eq(bus_head_seq(b), 6);
	ck_assert(missing(b, "d"));
	ck_assert_uint_eq(bus_append_seq(b, 7, "e", 1, "seven", 5), 7);
	ck_assert_int_eq(bus_read(b, &pos, buf, sizeof(buf), recs, 8),
	    BUS_LAPPED);
	bus_close(b);
}
END_TEST

/* A jump is kept in the file: reopened, the bus is at the same head with
 * the values it took, and the seqs go on from there. */
START_TEST(test_jump_reopen)
{
	const char *f = tmpfile_path("bus");
	struct bus *b = open_ok(f, RING, 16, 64 * KI);
	struct bus_value v = val("k", "kept", 490);
	uint64_t pos, tseq;

	for (int i = 0; i < 400; i++)
		append_sized(b, "w", 200);
	ck_assert_int_eq(bus_jump(b, 500, &v, 1), 0);
	ck_assert_int_eq(bus_sync(b), 0);
	bus_close(b);

	b = open_ok(f, RING, 16, 64 * KI);
	ck_assert_str_eq(bus_repair_note(b), "");
	ck_assert_uint_eq(bus_head_seq(b), 499);
	bus_tail(b, &pos, &tseq);
	ck_assert_uint_eq(tseq, 500);
	check_value(b, "k", "kept", 490);
	ck_assert_uint_eq(bus_append_seq(b, 499, "k", 1, "no", 2), 0);
	ck_assert_uint_eq(bus_append_seq(b, 500, "k", 1, "new", 3), 500);
	check_value(b, "k", "new", 500);
	bus_close(b);
}
END_TEST

static Suite *
bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *tc;

	tc = tcase_create("ring");
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_record_size);
	tcase_add_test(tc, test_read_limits);
	tcase_add_test(tc, test_read_too_big);
	tcase_add_test(tc, test_wrap_boundaries);
	tcase_add_test(tc, test_lapped_exact);
	tcase_add_test(tc, test_lapped_padding);
	tcase_add_test(tc, test_lapped_at_end);
	tcase_add_test(tc, test_find_seq);
	tcase_add_test(tc, test_jump);
	tcase_add_test(tc, test_append_seq);
	tcase_add_test(tc, test_shared_after_fork);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("retained");
	tcase_add_test(tc, test_retained_basic);
	tcase_add_test(tc, test_retained_seq);
	tcase_add_test(tc, test_retained_classes);
	tcase_add_test(tc, test_retained_foreach);
	tcase_add_test(tc, test_retained_big_value_foreach);
	tcase_add_test(tc, test_retained_capacity);
	tcase_add_test(tc, test_retained_heap_full);
	tcase_add_test(tc, test_retained_churn);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_in_use);
	tcase_add_test(tc, test_refused_files);
	tcase_add_test(tc, test_torn_record);
	tcase_add_test(tc, test_torn_head);
	tcase_add_test(tc, test_bad_slots);
	tcase_add_test(tc, test_lost_heap);
	tcase_add_test(tc, test_writer_takeover);
	tcase_add_test(tc, test_jump_reopen);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("counters");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, test_counters);
	tcase_add_test(tc, test_counter_layout);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bus_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
