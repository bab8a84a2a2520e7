/*
 * The bus: one shared mapping holding the ring of records, the seq index,
 * the retained table with its heap, and the per-process counters.  One
 * writer (the producer) changes it; readers in other processes never lock.
 *
 * File format, version 1 (host byte order, every region 64-byte aligned,
 * offsets and sizes in the header):
 *   struct bus_hdr	geometry (checksummed), then the writer's state
 *   ring		ring_size bytes of records: struct rec_hdr + line
 *   seq index		index_entries x uint64: ring position of a seq,
 *			at seq % index_entries
 *   retained slots	slot_count x struct rslot, open addressing
 *   retained heap	heap_size bytes of blocks: struct blk + value
 *   counters		counter_slots blocks of CTR__COUNT uint64
 *
 * Memory ordering, in short:
 * - Ring: the writer first moves the tail past the bytes it will reuse
 *   and publishes it, then (after a release fence) writes the new bytes,
 *   then publishes head_pos and head_seq (release).  A reader loads the
 *   head (acquire), copies, fences (acquire) and loads the tail: if the
 *   tail passed its start, what it copied may be torn and is thrown away.
 * - Pairs (head_pos, head_seq) and (tail_pos, tail_seq) are each guarded
 *   by a generation counter, so bus_head and bus_tail return a pair that
 *   belongs together.
 * - Retained slots are seqlocks: odd while the writer changes the slot or
 *   its value; readers copy and retry if the lock moved.
 * Data is copied with plain memcpy between the fences, as seqlocks do.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "topic.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "shared atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "shared atomics must be lock-free");

#define SEQ_DIGITS	20		/* room each record keeps for a seq */
#define REC_MIN		64		/* smallest: bus_record_size(1, 0) */
#define NCLASS_MAX	40		/* heap size classes 64 << 0 .. 39 */
#define HEAP_MIN	4096		/* smallest retained heap */
#define RING_SIZE_MAX	((uint64_t)1 << 40)
#define HEAP_MAX	((uint64_t)1 << 40)
#define RETAINED_LIMIT	(1U << 28)	/* largest retained_max */
#define READ_TRIES	1000		/* reader's tries on a busy seqlock */

enum { SLOT_EMPTY, SLOT_USED, SLOT_TOMB };

/* The first 64-byte lines: geometry; then the writer's state. */
struct bus_hdr {
	/* Geometry, written once when the bus is created. */
	uint64_t		magic;
	uint32_t		version;
	uint32_t		hdr_size;
	uint64_t		total_size;
	uint64_t		ring_size;
	uint64_t		ring_off;
	uint64_t		index_entries;
	uint64_t		index_off;
	uint32_t		retained_max;
	uint32_t		slot_count;
	uint64_t		slots_off;
	uint64_t		heap_size;
	uint64_t		heap_off;
	uint64_t		counters_off;
	uint32_t		nclasses;
	uint32_t		counter_slots;
	uint32_t		counter_stride;
	uint32_t		geom_crc;	/* CRC32C of all fields above */

	/* Ring state: stored by the writer, loaded by every reader. */
	alignas(64) _Atomic uint64_t head_pos;
	_Atomic uint64_t	head_seq;
	_Atomic uint64_t	tail_pos;
	_Atomic uint64_t	tail_seq;
	_Atomic uint32_t	head_gen;	/* odd while head pair moves */
	_Atomic uint32_t	tail_gen;	/* odd while tail pair moves */
	_Atomic uint32_t	writer_busy;	/* set during bus_append */

	/* Retained state: the writer's own, but for two read counters. */
	alignas(64) _Atomic uint32_t retained_count;
	_Atomic uint64_t	retained_dropped;
	uint64_t		heap_bump;	/* heap bytes ever carved */
	uint64_t		free_head[NCLASS_MAX]; /* block offset + 1 */
	/* The retained table holds every record up to this seq; readers
	 * take newer ones from the ring (see bus_retained_seq). */
	_Atomic uint64_t	retained_seq;
};

/* A ring record's header; the line follows, then padding to 8 bytes. */
struct rec_hdr {
	uint64_t	seq;		/* 0 = padding up to the ring's end */
	uint32_t	size;		/* ring bytes, header included */
	uint32_t	crc;		/* CRC32C: seq, lengths, offset, line */
	uint32_t	line_len;
	uint16_t	topic_len;
	uint16_t	pad;
	uint32_t	payload_off;	/* offset of the payload in the line */
	uint32_t	reserved;
};
#define REC_HDR		((uint64_t)sizeof(struct rec_hdr))
_Static_assert(sizeof(struct rec_hdr) == 32, "record header is 32 bytes");

/* The part of a retained slot that its seqlock guards. */
struct slot_val {
	uint64_t	seq;
	uint64_t	heap_off;	/* offset of the value's block */
	uint32_t	payload_len;
	uint32_t	crc;		/* CRC32C: seq, lengths, value */
	uint32_t	hash;		/* of the topic */
	uint16_t	topic_len;
	uint16_t	state;		/* SLOT_* */
};

struct rslot {
	_Atomic uint32_t lock;		/* seqlock: odd while changed */
	uint32_t	 pad;
	struct slot_val	 v;
};

/* A heap block: 64 << cls bytes; the value (topic, payload) follows. */
struct blk {
	uint32_t	cls;
	uint32_t	owner;		/* slot index + 1, 0 = free */
	uint64_t	next;		/* free: next free block + 1 */
};
#define BLK_HDR		8		/* value offset inside a block */

struct bus {
	char		*base;
	size_t		 map_size;
	int		 fd;		/* -1 when anonymous */
	int		 writer_ok;	/* this process checked the writer */
	struct bus_hdr	*hdr;
	char		*ring;
	uint64_t	 ring_size;
	uint64_t	 ring_mask;
	_Atomic uint64_t *index;
	uint64_t	 index_mask;
	struct rslot	*slots;
	uint32_t	 slot_mask;
	uint32_t	 retained_max;
	char		*heap;
	uint64_t	 heap_size;
	uint32_t	 nclasses;
	char		*counters;
	uint32_t	 counter_slots;
	uint32_t	 counter_stride;
	char		*scratch;	/* bus_retained_foreach's copies */
	size_t		 scratch_len;
	char		 note[256];	/* bus_repair_note */
};

/* The sizes and offsets a configuration gives. */
struct geom {
	uint64_t	total, ring_size, ring_off, index_entries, index_off;
	uint64_t	slots_off, heap_size, heap_off, counters_off;
	uint32_t	retained_max, slot_count, nclasses;
	uint32_t	counter_slots, counter_stride;
};

static uint32_t	crc_tab[8][256];
static uint32_t	(*crc_fn)(uint32_t, const void *, size_t);

/* --- small helpers ----------------------------------------------------- */

/* CRC32C of buf in software, slicing by 8, continuing crc. */
static uint32_t
crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^
		    crc_tab[5][(w >> 16) & 0xff] ^
		    crc_tab[4][(w >> 24) & 0xff] ^
		    crc_tab[3][(w >> 32) & 0xff] ^
		    crc_tab[2][(w >> 40) & 0xff] ^
		    crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
	}
	while (len-- > 0)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
/* The same with the SSE4.2 crc32 instruction (about ten times faster). */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi(c, *p++);
	return ~(uint32_t)c;
}
#endif

/*
 * Fill the CRC32C (Castagnoli) tables and pick the fastest way to
 * compute it that gives the standard check value.
 */
static void
crc_init(void)
{
	if (crc_fn != NULL)
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78U & -(c & 1));
		crc_tab[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (int i = 0; i < 256; i++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^
			    crc_tab[0][crc_tab[t - 1][i] & 0xff];
	crc_fn = crc32c_sw;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2") &&
	    crc32c_hw(0, "123456789", 9) == 0xe3069283U &&
	    crc32c_hw(0, "123456789", 9) == crc32c_sw(0, "123456789", 9))
		crc_fn = crc32c_hw;
#endif
}

/* CRC32C of buf, continuing crc (start with 0); bus_open set it up. */
static uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc_fn(crc, buf, len);
}

/* FNV-1a of a topic. */
static uint32_t
topic_hash(const char *t, size_t len)
{
	uint32_t h = 2166136261U;

	while (len-- > 0)
		h = (h ^ (unsigned char)*t++) * 16777619U;
	return h;
}

static uint64_t
round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Write v in decimal at dst; returns the number of digits. */
static size_t
fmt_u64(char *dst, uint64_t v)
{
	char tmp[SEQ_DIGITS];
	size_t n = 0;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}

/* Back off while a seqlock is held: spin, then yield, then sleep. */
static void
backoff(int tries)
{
	struct timespec ts = { 0, 50 * 1000 };

	if (tries < 10)
		return;
	if (tries < 100)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/* Writer: make a seqlock odd (a dead writer's odd value too); returns it. */
static uint32_t
wlock_begin(_Atomic uint32_t *l)
{
	uint32_t g = (atomic_load_explicit(l, memory_order_relaxed) + 1) | 1;

	atomic_store_explicit(l, g, memory_order_relaxed);
	/* Orders the lock store before the data stores that follow. */
	atomic_thread_fence(memory_order_release);
	return g;
}

/* Writer: make the seqlock even again, publishing the data. */
static void
wlock_end(_Atomic uint32_t *l, uint32_t g)
{
	atomic_store_explicit(l, g + 1, memory_order_release);
}

/*
 * Read a pair guarded by gen.  If the writer died with gen odd, give up
 * after a while and return the values as they are.
 */
static void
pair_read(const _Atomic uint32_t *gen, const _Atomic uint64_t *a,
    const _Atomic uint64_t *b, uint64_t *x, uint64_t *y)
{
	for (int tries = 0; ; tries++) {
		uint32_t g = atomic_load_explicit(gen, memory_order_acquire);
		*x = atomic_load_explicit(a, memory_order_acquire);
		*y = atomic_load_explicit(b, memory_order_acquire);
		atomic_thread_fence(memory_order_acquire);
		if (((g & 1) == 0 &&
		    g == atomic_load_explicit(gen, memory_order_relaxed)) ||
		    tries >= READ_TRIES)
			return;
		backoff(tries);
	}
}

/* Writer: store a pair guarded by gen. */
static void
pair_write(_Atomic uint32_t *gen, _Atomic uint64_t *a, _Atomic uint64_t *b,
    uint64_t x, uint64_t y)
{
	uint32_t g = wlock_begin(gen);

	atomic_store_explicit(a, x, memory_order_release);
	atomic_store_explicit(b, y, memory_order_release);
	wlock_end(gen, g);
}

/* --- geometry and the header -------------------------------------------- */

/* Heap size classes: up to half the heap and no larger than any value that
 * can come through the ring needs. */
static uint32_t
class_count(uint64_t heap_size, uint64_t ring_size)
{
	uint64_t biggest = BLK_HDR + TOPIC_MAX + ring_size / BUS_RECORD_SHARE;
	uint32_t n = 0;

	while (n < NCLASS_MAX && ((uint64_t)64 << n) <= heap_size / 2) {
		n++;
		if (((uint64_t)64 << (n - 1)) >= biggest)
			break;
	}
	return n;
}

/* Check cfg and compute the layout it gives; 0 or -1 with err set. */
static int
geom_compute(const struct bus_config *cfg, struct geom *g, char *err,
    size_t errlen)
{
	uint64_t rs = cfg->ring_size;

	if (rs < BUS_RING_MIN || rs > RING_SIZE_MAX || (rs & (rs - 1)) != 0) {
		snprintf(err, errlen, "bus ring size %llu is not a power of "
		    "two between %d and %llu", (unsigned long long)rs,
		    BUS_RING_MIN,
		    (unsigned long long)RING_SIZE_MAX);
		return -1;
	}
	if (cfg->retained_max < BUS_RETAINED_MIN ||
	    cfg->retained_max > RETAINED_LIMIT) {
		snprintf(err, errlen, "bus retained_max %u is not between %d "
		    "and %u", cfg->retained_max, BUS_RETAINED_MIN,
		    RETAINED_LIMIT);
		return -1;
	}
	if (cfg->retained_bytes < HEAP_MIN || cfg->retained_bytes > HEAP_MAX) {
		snprintf(err, errlen, "bus retained_bytes %llu is not between "
		    "%d and %llu", (unsigned long long)cfg->retained_bytes,
		    HEAP_MIN, (unsigned long long)HEAP_MAX);
		return -1;
	}
	if (cfg->counter_slots > BUS_COUNTER_SLOTS_MAX) {
		snprintf(err, errlen, "bus counter slots %u exceed %d",
		    cfg->counter_slots, BUS_COUNTER_SLOTS_MAX);
		return -1;
	}
	memset(g, 0, sizeof(*g));
	g->ring_size = rs;
	g->ring_off = round_up(sizeof(struct bus_hdr), 64);
	/* A record is at least REC_MIN bytes: an index entry is reused only
	 * after the ring has let go of the record it was for. */
	g->index_entries = rs / REC_MIN;
	g->index_off = g->ring_off + rs;
	g->retained_max = cfg->retained_max;
	g->slot_count = 1;
	while (g->slot_count < 2 * cfg->retained_max)
		g->slot_count <<= 1;
	g->slots_off = round_up(g->index_off + g->index_entries * 8, 64);
	g->heap_off = round_up(g->slots_off +
	    (uint64_t)g->slot_count * sizeof(struct rslot), 64);
	g->heap_size = round_up(cfg->retained_bytes, 64);
	g->nclasses = class_count(g->heap_size, rs);
	g->counters_off = g->heap_off + g->heap_size;
	/* Always room for every slot: a file then does not depend on how
	 * many workers the configuration asks for. */
	g->counter_slots = BUS_COUNTER_SLOTS_MAX;
	/* Room for counters to come: adding one keeps files compatible. */
	g->counter_stride = BUS_COUNTERS_PER_SLOT * sizeof(uint64_t);
	g->total = g->counters_off +
	    (uint64_t)g->counter_slots * g->counter_stride;
	return 0;
}

/* The geometry part of a header, and its checksum. */
static uint32_t
hdr_crc(const struct bus_hdr *h)
{
	return crc32c(0, h, offsetof(struct bus_hdr, geom_crc));
}

/* 1 if the header's geometry is the one g describes. */
static int
hdr_geom_equal(const struct bus_hdr *h, const struct geom *g)
{
	return h->total_size == g->total && h->ring_size == g->ring_size &&
	    h->ring_off == g->ring_off &&
	    h->index_entries == g->index_entries &&
	    h->index_off == g->index_off &&
	    h->retained_max == g->retained_max &&
	    h->slot_count == g->slot_count && h->slots_off == g->slots_off &&
	    h->heap_size == g->heap_size && h->heap_off == g->heap_off &&
	    h->counters_off == g->counters_off && h->nclasses == g->nclasses &&
	    h->counter_slots == g->counter_slots &&
	    h->counter_stride == g->counter_stride;
}

/* Write a new bus's header into zeroed memory; the magic goes last. */
static void
hdr_init(struct bus_hdr *h, const struct geom *g)
{
	h->version = BUS_VERSION;
	h->hdr_size = sizeof(*h);
	h->total_size = g->total;
	h->ring_size = g->ring_size;
	h->ring_off = g->ring_off;
	h->index_entries = g->index_entries;
	h->index_off = g->index_off;
	h->retained_max = g->retained_max;
	h->slot_count = g->slot_count;
	h->slots_off = g->slots_off;
	h->heap_size = g->heap_size;
	h->heap_off = g->heap_off;
	h->counters_off = g->counters_off;
	h->nclasses = g->nclasses;
	h->counter_slots = g->counter_slots;
	h->counter_stride = g->counter_stride;
	atomic_store_explicit(&h->tail_seq, 1, memory_order_relaxed);
	h->magic = BUS_MAGIC;
	h->geom_crc = hdr_crc(h);
}

/*
 * Check an existing file's header against the configuration, without
 * mapping it.  Returns 0, or -1 with a message in err.
 */
static int
hdr_check_file(int fd, const char *path, off_t size, const struct geom *g,
    char *err, size_t errlen)
{
	struct bus_hdr h;
	ssize_t n;

	memset(&h, 0, sizeof(h));
	if ((n = pread(fd, &h, sizeof(h), 0)) == -1) {
		snprintf(err, errlen, "read bus file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (n < (ssize_t)sizeof(h.magic) || h.magic != BUS_MAGIC) {
		snprintf(err, errlen, "bus file %s is not a herald bus file",
		    path);
		return -1;
	}
	if (n < (ssize_t)sizeof(h)) {
		snprintf(err, errlen, "bus file %s is truncated: %lld bytes, "
		    "expected %llu", path, (long long)size,
		    (unsigned long long)g->total);
		return -1;
	}
	if (h.version != BUS_VERSION) {
		snprintf(err, errlen, "bus file %s has version %u, this "
		    "heraldd uses version %d", path, h.version, BUS_VERSION);
		return -1;
	}
	if (h.hdr_size != sizeof(h) || h.geom_crc != hdr_crc(&h)) {
		snprintf(err, errlen, "bus file %s has a damaged header (bad "
		    "checksum): move the file away", path);
		return -1;
	}
	if (!hdr_geom_equal(&h, g)) {
		snprintf(err, errlen, "bus file %s was created with ring_size "
		    "%llu, retained_max %u, retained_bytes %llu; the "
		    "configuration says ring_size %llu, retained_max %u, "
		    "retained_bytes %llu: move the file away or set the same "
		    "sizes", path, (unsigned long long)h.ring_size,
		    h.retained_max, (unsigned long long)h.heap_size,
		    (unsigned long long)g->ring_size, g->retained_max,
		    (unsigned long long)g->heap_size);
		return -1;
	}
	if ((uint64_t)size != g->total) {
		snprintf(err, errlen, "bus file %s is %s: %lld bytes, expected "
		    "%llu", path, (uint64_t)size < g->total ? "truncated" :
		    "too long", (long long)size, (unsigned long long)g->total);
		return -1;
	}
	return 0;
}

/* --- records ------------------------------------------------------------ */

size_t
bus_record_size(size_t topic_len, size_t payload_len)
{
	if (topic_len > UINT16_MAX || payload_len > UINT32_MAX / 2)
		return SIZE_MAX;
	/* "MSG " topic " " seq " " payload "\n", room for a 20-digit seq so
	 * that the size does not depend on the seq. */
	return round_up(REC_HDR + 4 + topic_len + 1 + SEQ_DIGITS + 1 +
	    payload_len + 1, 8);
}

size_t
bus_line_max(const struct bus *b)
{
	return b->ring_size / BUS_RECORD_SHARE - REC_HDR;
}

/* CRC of a record: its identifying header fields, then its line. */
static uint32_t
rec_crc(const struct rec_hdr *r, const char *line)
{
	unsigned char k[18];

	memcpy(k, &r->seq, 8);
	memcpy(k + 8, &r->line_len, 4);
	memcpy(k + 12, &r->topic_len, 2);
	memcpy(k + 14, &r->payload_off, 4);
	return crc32c(crc32c(0, k, sizeof(k)), line, r->line_len);
}

/*
 * 1 if a (non-padding) record header is self-consistent, no bigger than
 * bus_append makes one, and its record fits the to_end bytes left before
 * the ring's end.  Readers call it on bytes that may be garbage, so it
 * bounds everything they then use.
 */
static int
rec_sane(const struct bus *b, const struct rec_hdr *r, uint64_t to_end)
{
	uint64_t min_off = 4 + (uint64_t)r->topic_len + 3;

	if (r->size % 8 != 0 || r->size < REC_MIN || r->size > to_end ||
	    r->size > b->ring_size / BUS_RECORD_SHARE)
		return 0;
	if (r->topic_len == 0 || r->topic_len > TOPIC_MAX)
		return 0;
	if (r->payload_off < min_off ||
	    r->payload_off > min_off - 1 + SEQ_DIGITS ||
	    r->line_len < r->payload_off + 1 ||
	    r->line_len > r->size - REC_HDR)
		return 0;
	return r->size == bus_record_size(r->topic_len,
	    r->line_len - r->payload_off - 1);
}

/* 1 if the line of a sane record header is well formed (for recovery). */
static int
rec_line_ok(const struct rec_hdr *r, const char *line)
{
	char seq[SEQ_DIGITS];
	size_t n = fmt_u64(seq, r->seq), t = r->topic_len;

	return memcmp(line, "MSG ", 4) == 0 && line[4 + t] == ' ' &&
	    4 + t + 1 + n + 1 == r->payload_off &&
	    memcmp(line + 5 + t, seq, n) == 0 &&
	    line[r->payload_off - 1] == ' ' && line[r->line_len - 1] == '\n' &&
	    rec_crc(r, line) == r->crc;
}

/* Writer: write a padding record of to_end bytes at position pos. */
static void
rec_write_pad(struct bus *b, uint64_t pos, uint64_t to_end)
{
	struct rec_hdr r;

	memset(&r, 0, sizeof(r));
	r.size = to_end;
	memcpy(b->ring + (pos & b->ring_mask), &r, sizeof(r));
}

/* Writer: write the record seq at pos, formatted as its MSG line. */
static void
rec_write(struct bus *b, uint64_t pos, uint64_t seq, size_t size,
    const char *topic, size_t tlen, const char *payload, size_t plen)
{
	char *rec = b->ring + (pos & b->ring_mask);
	char *line = rec + REC_HDR, *p = line;
	struct rec_hdr r;

	memcpy(p, "MSG ", 4);
	p += 4;
	memcpy(p, topic, tlen);
	p += tlen;
	*p++ = ' ';
	p += fmt_u64(p, seq);
	*p++ = ' ';
	memset(&r, 0, sizeof(r));
	r.payload_off = p - line;
	memcpy(p, payload, plen);
	p += plen;
	*p++ = '\n';
	r.seq = seq;
	r.size = size;
	r.line_len = p - line;
	r.topic_len = tlen;
	r.crc = rec_crc(&r, line);
	memcpy(rec, &r, sizeof(r));
}

/*
 * Writer: look at the item at *pos (a record, a padding record or the
 * few bytes before the ring's end) and step past it.  Returns its seq,
 * 0 for padding.  A size that cannot be (the mapping was damaged) steps
 * to head instead, returning head_seq: the ring is then empty.
 */
static uint64_t
ring_step(const struct bus *b, uint64_t *pos, uint64_t head)
{
	uint64_t off = *pos & b->ring_mask, to_end = b->ring_size - off;
	struct rec_hdr r;

	if (to_end < REC_HDR) {
		*pos += to_end;
		return 0;
	}
	memcpy(&r, b->ring + off, sizeof(r));
	if (r.size % 8 != 0 || r.size > to_end || (r.seq != 0 ?
	    r.size < REC_MIN : r.size != to_end)) {
		*pos = head;
		return atomic_load_explicit(&b->hdr->head_seq,
		    memory_order_relaxed);
	}
	*pos += r.size;
	return r.seq;
}

/*
 * Writer: move the tail until the ring holds nothing below need, and
 * publish it.  Passing padding also drops the record after it, so that a
 * reader lapped on padding has always lost at least one record.
 */
static void
ring_free_below(struct bus *b, uint64_t need)
{
	struct bus_hdr *h = b->hdr;
	uint64_t t = atomic_load_explicit(&h->tail_pos, memory_order_relaxed);
	uint64_t ts = atomic_load_explicit(&h->tail_seq, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&h->head_pos,
	    memory_order_relaxed);
	uint64_t seq;

	if (t >= need)
		return;
	while (t < need && t < head) {
		if ((seq = ring_step(b, &t, head)) == 0 && t < head)
			seq = ring_step(b, &t, head);
		if (seq != 0)
			ts = seq + 1;
	}
	pair_write(&h->tail_gen, &h->tail_pos, &h->tail_seq, t, ts);
}

/* --- reading the ring --------------------------------------------------- */

void
bus_head(const struct bus *b, uint64_t *pos, uint64_t *seq)
{
	pair_read(&b->hdr->head_gen, &b->hdr->head_pos, &b->hdr->head_seq,
	    pos, seq);
}

uint64_t
bus_head_seq(const struct bus *b)
{
	return atomic_load_explicit(&b->hdr->head_seq, memory_order_acquire);
}

uint64_t
bus_head_pos(const struct bus *b)
{
	return atomic_load_explicit(&b->hdr->head_pos, memory_order_acquire);
}

void
bus_tail(const struct bus *b, uint64_t *pos, uint64_t *seq)
{
	pair_read(&b->hdr->tail_gen, &b->hdr->tail_pos, &b->hdr->tail_seq,
	    pos, seq);
}

/* Describe a record copied to line in rec. */
static void
rec_describe(struct bus_rec *rec, const struct rec_hdr *r, uint64_t pos,
    const char *line)
{
	rec->seq = r->seq;
	rec->pos = pos;
	rec->line = line;
	rec->line_len = r->line_len;
	rec->topic = line + 4;
	rec->topic_len = r->topic_len;
	rec->payload = line + r->payload_off;
	rec->payload_len = r->line_len - r->payload_off - 1;
}

/* Why ring_copy stopped before head or maxrecs. */
enum { COPY_STOP_NONE, COPY_STOP_BAD, COPY_STOP_BIG };

/*
 * Describe in rec a record whose line is not copied (it does not fit the
 * buffer): its topic alone goes to buf, if it fits.
 */
static void
rec_describe_big(const struct bus *b, struct bus_rec *rec,
    const struct rec_hdr *r, uint64_t pos, char *buf, size_t buflen)
{
	rec->seq = r->seq;
	rec->pos = pos;
	rec->line = rec->payload = rec->topic = NULL;
	rec->line_len = r->line_len;
	rec->topic_len = r->topic_len;
	rec->payload_len = r->line_len - r->payload_off - 1;
	if (r->topic_len <= buflen) {
		memcpy(buf, b->ring + (pos & b->ring_mask) + REC_HDR + 4,
		    r->topic_len);
		rec->topic = buf;
	}
}

/*
 * Copy records from *pos (not past head) into buf; returns how many, and
 * sets *pos past them.  *stop says why it stopped early: garbage (only
 * the tail check can say whether it was the writer overwriting us), or a
 * record longer than what is left of buf (the first: then it is
 * described in recs[0]).
 */
static int
ring_copy(const struct bus *b, uint64_t *pos, uint64_t head, char *buf,
    size_t buflen, struct bus_rec *recs, int maxrecs, int *stop)
{
	uint64_t p = *pos, prev = 0;
	size_t used = 0;
	int n = 0;

	while (p < head && n < maxrecs) {
		uint64_t off = p & b->ring_mask, to_end = b->ring_size - off;
		struct rec_hdr r;

		if (to_end < REC_HDR) {
			p += to_end;
			continue;
		}
		/* Copied once: fields are checked and used from the copy. */
		memcpy(&r, b->ring + off, sizeof(r));
		if (r.seq == 0 && r.size == to_end) {
			p += to_end;
			continue;
		}
		if (r.seq == 0 || !rec_sane(b, &r, to_end) ||
		    r.size > head - p || (prev != 0 && r.seq != prev + 1)) {
			*stop = COPY_STOP_BAD;
			break;
		}
		if (r.line_len > buflen - used) {
			*stop = COPY_STOP_BIG;
			if (n == 0)
				rec_describe_big(b, &recs[0], &r, p, buf,
				    buflen);
			break;
		}
		memcpy(buf + used, b->ring + off + REC_HDR, r.line_len);
		rec_describe(&recs[n++], &r, p, buf + used);
		used += r.line_len;
		prev = r.seq;
		p += r.size;
	}
	*pos = p;
	return n;
}

int
bus_read(struct bus *b, uint64_t *pos, char *buf, size_t buflen,
    struct bus_rec *recs, int maxrecs)
{
	struct bus_hdr *h = b->hdr;
	uint64_t start = *pos, p = start, head, tail;
	int n, stop = COPY_STOP_NONE;

	head = atomic_load_explicit(&h->head_pos, memory_order_acquire);
	tail = atomic_load_explicit(&h->tail_pos, memory_order_acquire);
	if (start < tail || start > head)
		return BUS_LAPPED;
	n = ring_copy(b, &p, head, buf, buflen, recs, maxrecs, &stop);
	/* Whatever the writer overwrote, it freed first: if the tail is
	 * still at or below our start, every byte we copied was intact. */
	atomic_thread_fence(memory_order_acquire);
	tail = atomic_load_explicit(&h->tail_pos, memory_order_relaxed);
	if (tail > start)
		return BUS_LAPPED;
	if (n == 0 && stop == COPY_STOP_BAD) {
		/* Garbage below the tail means a damaged mapping;
		 * resynchronising from the tail is the only way forward. */
		return BUS_LAPPED;
	}
	/* Never 0 as if at the head: the caller must make room or skip. */
	if (n == 0 && stop == COPY_STOP_BIG)
		return BUS_TOO_BIG;
	*pos = p;
	return n;
}

int
bus_find_seq(struct bus *b, uint64_t seq, uint64_t *pos)
{
	struct bus_hdr *h = b->hdr;
	uint64_t hpos, hseq, p, off;
	struct rec_hdr r;

	bus_head(b, &hpos, &hseq);
	if (seq > hseq) {
		if (seq == hseq + 1)
			*pos = hpos;
		return BUS_AHEAD;
	}
	if (seq < atomic_load_explicit(&h->tail_seq, memory_order_acquire))
		return BUS_GONE;
	p = atomic_load_explicit(&b->index[seq & b->index_mask],
	    memory_order_relaxed);
	off = p & b->ring_mask;
	memset(&r, 0, sizeof(r));
	if (b->ring_size - off >= REC_HDR)
		memcpy(&r, b->ring + off, sizeof(r));
	/* The entry is reused only after the tail passed seq: if it has not,
	 * the entry and the header we read were the right ones. */
	atomic_thread_fence(memory_order_acquire);
	if (seq < atomic_load_explicit(&h->tail_seq, memory_order_relaxed) ||
	    r.seq != seq)
		return BUS_GONE;
	*pos = p;
	return BUS_OK;
}

/* --- the retained heap (writer only) ------------------------------------ */

static struct blk *
blk_at(const struct bus *b, uint64_t off)
{
	return (struct blk *)(b->heap + off);
}

/* Smallest class whose blocks hold need bytes, or -1. */
static int
class_for(const struct bus *b, uint64_t need)
{
	for (uint32_t c = 0; c < b->nclasses; c++)
		if (((uint64_t)64 << c) >= need)
			return c;
	return -1;
}

/* Put the free block at off on its class's free list. */
static void
heap_push(struct bus *b, uint64_t off, uint32_t cls)
{
	struct blk *k = blk_at(b, off);

	k->cls = cls;
	k->owner = 0;
	k->next = b->hdr->free_head[cls];
	b->hdr->free_head[cls] = off + 1;
}

/* A block of class cls from a free list, the bump, or by splitting a
 * larger free block; its offset, or -1 if the heap has none. */
static int64_t
heap_alloc(struct bus *b, uint32_t cls)
{
	struct bus_hdr *h = b->hdr;
	uint64_t off, size = (uint64_t)64 << cls;
	uint32_t c;

	if (h->free_head[cls] != 0) {
		off = h->free_head[cls] - 1;
		h->free_head[cls] = blk_at(b, off)->next;
		return off;
	}
	if (h->heap_bump + size <= b->heap_size) {
		off = h->heap_bump;
		blk_at(b, off)->cls = cls;
		blk_at(b, off)->owner = 0;
		h->heap_bump += size;
		return off;
	}
	for (c = cls + 1; c < b->nclasses && h->free_head[c] == 0; c++)
		;
	if (c >= b->nclasses)
		return -1;
	off = h->free_head[c] - 1;
	h->free_head[c] = blk_at(b, off)->next;
	while (c > cls) {
		c--;
		heap_push(b, off + ((uint64_t)64 << c), c);
	}
	blk_at(b, off)->cls = cls;
	return off;
}

/* Return a block to its free list. */
static void
heap_free(struct bus *b, uint64_t off)
{
	heap_push(b, off, blk_at(b, off)->cls);
}

/* --- the retained table -------------------------------------------------- */

/* CRC of a retained value: seq, lengths, then the topic and payload. */
static uint32_t
val_crc(const struct slot_val *v, const char *value)
{
	unsigned char k[14];

	memcpy(k, &v->seq, 8);
	memcpy(k + 8, &v->topic_len, 2);
	memcpy(k + 10, &v->payload_len, 4);
	return crc32c(crc32c(0, k, sizeof(k)), value,
	    (size_t)v->topic_len + v->payload_len);
}

/* 1 if a used slot's value lies inside the heap (v may be garbage). */
static int
val_sane(const struct bus *b, const struct slot_val *v)
{
	uint64_t vlen = (uint64_t)v->topic_len + v->payload_len;

	return v->topic_len >= 1 && v->topic_len <= TOPIC_MAX &&
	    v->heap_off % 64 == 0 && v->heap_off < b->heap_size &&
	    BLK_HDR + vlen <= b->heap_size - v->heap_off;
}

enum { COPY_OTHER, COPY_USED, COPY_BUSY, COPY_BIG };

/* Copy a used slot's value (or just its topic, if the whole value does
 * not fit) into buf; COPY_USED, COPY_BIG, or COPY_BUSY if v is torn. */
static int
value_copy(const struct bus *b, const struct slot_val *v, char *buf,
    size_t buflen)
{
	size_t vlen = (size_t)v->topic_len + v->payload_len;
	const char *value = b->heap + v->heap_off + BLK_HDR;

	if (!val_sane(b, v))
		return COPY_BUSY;
	if (vlen <= buflen) {
		memcpy(buf, value, vlen);
		return COPY_USED;
	}
	if (v->topic_len <= buflen)
		memcpy(buf, value, v->topic_len);
	return COPY_BIG;
}

/*
 * Reader: copy slot i consistently: its fields into *v and, when used,
 * its value into buf.  COPY_USED, COPY_OTHER (empty or tombstone, see
 * v->state), COPY_BIG (value larger than buflen: only the topic copied,
 * if it fits) or COPY_BUSY (the lock stayed odd or kept moving for
 * READ_TRIES tries: a writer died or is very slow; the caller skips it).
 */
static int
slot_copy(const struct bus *b, uint32_t i, struct slot_val *v, char *buf,
    size_t buflen)
{
	struct rslot *s = &b->slots[i];

	for (int tries = 0; tries < READ_TRIES; backoff(tries++)) {
		uint32_t l = atomic_load_explicit(&s->lock,
		    memory_order_acquire);
		int rc = COPY_OTHER;

		if (l & 1)
			continue;
		memcpy(v, &s->v, sizeof(*v));
		if (v->state == SLOT_USED)
			rc = value_copy(b, v, buf, buflen);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->lock, memory_order_relaxed) != l)
			continue;
		/* A stable but insane slot is damage: not a value. */
		if (rc == COPY_BUSY)
			v->state = SLOT_TOMB;
		return rc == COPY_BUSY ? COPY_OTHER : rc;
	}
	v->state = SLOT_TOMB;
	return COPY_BUSY;
}

/* Fill a bus_value from a slot copy and its value in buf. */
static void
value_describe(struct bus_value *out, const struct slot_val *v,
    const char *buf)
{
	out->seq = v->seq;
	out->topic = buf;
	out->topic_len = v->topic_len;
	out->payload = buf + v->topic_len;
	out->payload_len = v->payload_len;
}

/*
 * Reader: find topic.  Returns 1 with *v and its value in buf, 0 if not
 * found, -1 if found but its value does not fit buflen (*v tells its size).
 */
static int
retained_lookup(struct bus *b, const char *topic, size_t tlen,
    struct slot_val *v, char *buf, size_t buflen)
{
	uint32_t hash = topic_hash(topic, tlen), i = hash & b->slot_mask;

	if (buflen < tlen)
		return 0;
	for (uint32_t n = 0; n <= b->slot_mask; n++) {
		int rc = slot_copy(b, i, v, buf, buflen);
		if (rc == COPY_OTHER && v->state == SLOT_EMPTY)
			return 0;
		if ((rc == COPY_USED || rc == COPY_BIG) && v->hash == hash &&
		    v->topic_len == tlen && memcmp(buf, topic, tlen) == 0)
			return rc == COPY_USED ? 1 : -1;
		i = (i + 1) & b->slot_mask;
	}
	return 0;
}

int
bus_retained_get(struct bus *b, const char *topic, size_t topic_len,
    struct bus_value *v, char *buf, size_t buflen)
{
	struct slot_val sv;

	if (retained_lookup(b, topic, topic_len, &sv, buf, buflen) != 1)
		return 0;
	value_describe(v, &sv, buf);
	return 1;
}

/* Grow the foreach scratch buffer to len bytes; -1 if out of memory. */
static int
scratch_grow(struct bus *b, size_t len)
{
	char *p;

	if (len <= b->scratch_len)
		return 0;
	if ((p = realloc(b->scratch, len)) == NULL)
		return -1;
	b->scratch = p;
	b->scratch_len = len;
	return 0;
}

/* Copy slot i into the scratch buffer, growing it as needed. */
static int
slot_copy_scratch(struct bus *b, uint32_t i, struct slot_val *v)
{
	int rc;

	while ((rc = slot_copy(b, i, v, b->scratch, b->scratch_len)) ==
	    COPY_BIG) {
		/* v is a consistent copy here: its lengths are real. */
		if (scratch_grow(b, (size_t)v->topic_len + v->payload_len) ==
		    -1)
			return COPY_OTHER;
	}
	return rc;
}

int
bus_retained_foreach(struct bus *b, const char *pattern, size_t plen,
    bus_value_cb cb, void *arg)
{
	struct bus_value out;
	struct slot_val v;
	int rc;

	if (scratch_grow(b, 4096) == -1)
		return 0;
	if (pattern_is_exact(pattern, plen)) {
		/* No walk for a plain topic: look it up, bigger if need be. */
		while ((rc = retained_lookup(b, pattern, plen, &v, b->scratch,
		    b->scratch_len)) == -1)
			if (scratch_grow(b, (size_t)v.topic_len +
			    v.payload_len) == -1)
				return 0;
		if (rc == 0)
			return 0;
		value_describe(&out, &v, b->scratch);
		return cb(arg, &out);
	}
	for (uint32_t i = 0; i <= b->slot_mask; i++) {
		if (slot_copy_scratch(b, i, &v) != COPY_USED ||
		    !topic_match(pattern, plen, b->scratch, v.topic_len))
			continue;
		value_describe(&out, &v, b->scratch);
		if ((rc = cb(arg, &out)) != 0)
			return rc;
	}
	return 0;
}

uint32_t
bus_retained_count(const struct bus *b)
{
	return atomic_load_explicit(&b->hdr->retained_count,
	    memory_order_relaxed);
}

uint64_t
bus_retained_dropped(const struct bus *b)
{
	return atomic_load_explicit(&b->hdr->retained_dropped,
	    memory_order_relaxed);
}

/* Writer: the topic of used slot s (in the heap). */
static const char *
slot_topic(const struct bus *b, const struct rslot *s)
{
	return b->heap + s->v.heap_off + BLK_HDR;
}

/*
 * Writer: the slot holding topic, or -1; then *freep is where to insert
 * it (the first tombstone, else the empty slot ending the probe).
 */
static int64_t
slot_find(const struct bus *b, const char *topic, size_t tlen, uint32_t hash,
    int64_t *freep)
{
	uint32_t i = hash & b->slot_mask;

	*freep = -1;
	for (uint32_t n = 0; n <= b->slot_mask; n++) {
		const struct rslot *s = &b->slots[i];
		if (s->v.state == SLOT_EMPTY) {
			if (*freep < 0)
				*freep = i;
			return -1;
		}
		if (s->v.state == SLOT_TOMB && *freep < 0)
			*freep = i;
		if (s->v.state == SLOT_USED && s->v.hash == hash &&
		    s->v.topic_len == tlen &&
		    memcmp(slot_topic(b, s), topic, tlen) == 0)
			return i;
		i = (i + 1) & b->slot_mask;
	}
	return -1;
}

/* Writer: set a slot's state under its seqlock. */
static void
slot_set_state(struct bus *b, uint32_t i, uint16_t state)
{
	struct rslot *s = &b->slots[i];
	uint32_t g = wlock_begin(&s->lock);

	s->v.state = state;
	wlock_end(&s->lock, g);
}

/* Writer: a tombstone followed by an empty slot is on no probe path;
 * empty it, and the tombstones before it likewise. */
static void
slot_tomb_clean(struct bus *b, uint32_t i)
{
	for (uint32_t n = 0; n <= b->slot_mask; n++) {
		if (b->slots[i].v.state != SLOT_TOMB ||
		    b->slots[(i + 1) & b->slot_mask].v.state != SLOT_EMPTY)
			return;
		slot_set_state(b, i, SLOT_EMPTY);
		i = (i - 1) & b->slot_mask;
	}
}

/* Writer: remove the used slot i and free its block. */
static void
slot_remove(struct bus *b, uint32_t i)
{
	uint64_t off = b->slots[i].v.heap_off;

	slot_set_state(b, i, SLOT_TOMB);
	heap_free(b, off);
	atomic_fetch_sub_explicit(&b->hdr->retained_count, 1,
	    memory_order_relaxed);
	slot_tomb_clean(b, i);
}

/* Writer: store topic's value (seq) in block off and point slot i at it. */
static void
slot_write(struct bus *b, uint32_t i, uint64_t off, uint64_t seq,
    const char *topic, size_t tlen, const char *payload, size_t plen,
    uint32_t hash)
{
	struct rslot *s = &b->slots[i];
	char *value = b->heap + off + BLK_HDR;
	uint32_t g = wlock_begin(&s->lock);

	memcpy(value, topic, tlen);
	memcpy(value + tlen, payload, plen);
	blk_at(b, off)->owner = i + 1;
	s->v.seq = seq;
	s->v.heap_off = off;
	s->v.payload_len = plen;
	s->v.hash = hash;
	s->v.topic_len = tlen;
	s->v.state = SLOT_USED;
	s->v.crc = val_crc(&s->v, value);
	wlock_end(&s->lock, g);
}

/* Writer: count a value that could not be retained. */
static void
retained_drop(struct bus *b)
{
	atomic_fetch_add_explicit(&b->hdr->retained_dropped, 1,
	    memory_order_relaxed);
}

/* Writer: make (topic, payload, seq) the topic's retained value, if the
 * table and the heap have room for it. */
static void
retained_set(struct bus *b, const char *topic, size_t tlen,
    const char *payload, size_t plen, uint64_t seq)
{
	uint32_t hash = topic_hash(topic, tlen);
	int cls = class_for(b, BLK_HDR + tlen + plen);
	int64_t i, fr, off = -1;

	i = slot_find(b, topic, tlen, hash, &fr);
	if (i >= 0) {
		uint64_t old = b->slots[i].v.heap_off;
		int oldcls = blk_at(b, old)->cls;
		if (cls == oldcls)
			off = old;	/* rewrite in place */
		else if (cls >= 0 && (off = heap_alloc(b, cls)) < 0 &&
		    cls < oldcls)
			off = old;	/* smaller: the old block still fits */
		if (off < 0) {
			/* Never leave a stale value behind. */
			slot_remove(b, i);
			retained_drop(b);
			return;
		}
		slot_write(b, i, off, seq, topic, tlen, payload, plen, hash);
		if ((uint64_t)off != old)
			heap_free(b, old);
		return;
	}
	if (cls < 0 || fr < 0 || bus_retained_count(b) >= b->retained_max ||
	    (off = heap_alloc(b, cls)) < 0) {
		retained_drop(b);
		return;
	}
	slot_write(b, fr, off, seq, topic, tlen, payload, plen, hash);
	atomic_fetch_add_explicit(&b->hdr->retained_count, 1,
	    memory_order_relaxed);
}

/* --- recovery ------------------------------------------------------------ */

/* Append a repair remark to the note. */
static void
note_add(struct bus *b, const char *fmt, unsigned long long x,
    unsigned long long y, unsigned long long z)
{
	size_t len = strlen(b->note);

	if (len > 0 && len + 2 < sizeof(b->note)) {
		memcpy(b->note + len, ", ", 3);
		len += 2;
	}
	snprintf(b->note + len, sizeof(b->note) - len, fmt, x, y, z);
}

/*
 * Check the item at p (below limit): 1 a good record (*r), 0 padding or
 * the bytes before the ring's end (r->size is its length), -1 bad.
 */
static int
rec_check(const struct bus *b, uint64_t p, uint64_t limit, struct rec_hdr *r)
{
	uint64_t off = p & b->ring_mask, to_end = b->ring_size - off;

	memset(r, 0, sizeof(*r));
	if (to_end < REC_HDR) {
		r->size = to_end;
		return p + to_end <= limit ? 0 : -1;
	}
	memcpy(r, b->ring + off, sizeof(*r));
	if (r->seq == 0)
		return r->size == to_end && r->line_len == 0 &&
		    p + to_end <= limit ? 0 : -1;
	if (!rec_sane(b, r, to_end) || p + r->size > limit ||
	    !rec_line_ok(r, b->ring + off + REC_HDR))
		return -1;
	return 1;
}

/*
 * Walk the ring from tail to head checking every record and seq
 * continuity, indexing the good ones.  Returns the position where the
 * good part ends; *first and *last are its first and last seq (0: none).
 */
static uint64_t
ring_walk(struct bus *b, uint64_t tail, uint64_t head, uint64_t *first,
    uint64_t *last)
{
	uint64_t p = tail;
	struct rec_hdr r;
	int rc;

	*first = *last = 0;
	while (p < head && (rc = rec_check(b, p, head, &r)) >= 0) {
		if (rc == 1) {
			if (*last != 0 && r.seq != *last + 1)
				break;
			if (*first == 0)
				*first = r.seq;
			*last = r.seq;
			atomic_store_explicit(&b->index[r.seq & b->index_mask],
			    p, memory_order_relaxed);
		}
		p += r.size;
	}
	return p;
}

/*
 * Check the ring [tail, head) and repair it.  At open (live = 0) a bad
 * record and all after it are dropped; with live readers (live = 1) the
 * head cannot move back, so the ring is emptied forward instead.  If
 * records are dropped the ring restarts empty so that seqs stay
 * contiguous inside it, and head_seq never goes back.
 */
static void
ring_recover(struct bus *b, int live)
{
	struct bus_hdr *h = b->hdr;
	uint64_t tail = atomic_load_explicit(&h->tail_pos,
	    memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&h->head_pos,
	    memory_order_relaxed);
	uint64_t hs = atomic_load_explicit(&h->head_seq,
	    memory_order_relaxed);
	uint64_t end, first, last, seq;

	if (tail > head || head - tail > b->ring_size || tail % 8 != 0 ||
	    head % 8 != 0) {
		head = tail = head & ~(uint64_t)7;
		end = head;
		first = last = 0;
		hs++;	/* whatever was there may have been seen */
		note_add(b, "ring positions damaged: ring emptied, next seq "
		    "%llu", hs + 1, 0, 0);
	} else
		end = ring_walk(b, tail, head, &first, &last);
	seq = hs > last ? hs : last;
	if (end < head) {
		/* head_pos is stored before head_seq: a dropped record may
		 * have been seen with seq hs + 1; never hand that out again. */
		if (seq < hs + 1)
			seq = hs + 1;
		note_add(b, "torn record after seq %llu: dropped it and the "
		    "rest of the ring, next seq %llu", last, seq + 1, 0);
	} else if (last != 0 && last != seq)
		note_add(b, "ring ends at seq %llu below head seq %llu: ring "
		    "emptied", last, seq, 0);
	if (end < head || (last != 0 && last != seq)) {
		if (!live)
			head = end;
		tail = head;
		first = 0;
	}
	pair_write(&h->head_gen, &h->head_pos, &h->head_seq, head, seq);
	pair_write(&h->tail_gen, &h->tail_pos, &h->tail_seq, tail,
	    first != 0 ? first : seq + 1);
}

/* 1 if used slot i is intact: bounds, block, owner, hash and CRC. */
static int
slot_valid(const struct bus *b, uint32_t i)
{
	const struct rslot *s = &b->slots[i];
	const struct slot_val *v = &s->v;
	const struct blk *k;

	if ((atomic_load_explicit(&s->lock, memory_order_relaxed) & 1) ||
	    !val_sane(b, v))
		return 0;
	k = blk_at(b, v->heap_off);
	return k->cls < b->nclasses && k->owner == i + 1 &&
	    ((uint64_t)64 << k->cls) <= b->heap_size - v->heap_off &&
	    BLK_HDR + (uint64_t)v->topic_len + v->payload_len <=
	    ((uint64_t)64 << k->cls) &&
	    v->hash == topic_hash(slot_topic(b, s), v->topic_len) &&
	    v->crc == val_crc(v, slot_topic(b, s));
}

/*
 * 1 if used slot i is where a lookup of its topic finds it: no empty slot
 * on the way, no other slot with the same topic first (a duplicate left
 * by a torn write: the older one is removed).
 */
static int
slot_reachable(struct bus *b, uint32_t i, unsigned *bad)
{
	struct rslot *s = &b->slots[i];
	uint32_t j = s->v.hash & b->slot_mask;

	for (; j != i; j = (j + 1) & b->slot_mask) {
		struct rslot *o = &b->slots[j];
		if (o->v.state == SLOT_EMPTY)
			return 0;
		if (o->v.state != SLOT_USED || o->v.hash != s->v.hash ||
		    o->v.topic_len != s->v.topic_len ||
		    memcmp(slot_topic(b, o), slot_topic(b, s),
		    s->v.topic_len) != 0)
			continue;
		if (o->v.seq > s->v.seq)
			return 0;
		slot_set_state(b, j, SLOT_TOMB);
		(*bad)++;
	}
	return 1;
}

/*
 * Walk the heap's blocks, rebuilding the free lists and the bump: a block
 * is in use iff a used slot points at it and it names that slot.  Marks
 * those slots in seen.  Garbage ends the heap there.
 */
static void
heap_rebuild(struct bus *b, unsigned char *seen)
{
	struct bus_hdr *h = b->hdr;
	uint64_t off = 0, bump = h->heap_bump;

	if (bump > b->heap_size || bump % 64 != 0)
		bump = b->heap_size;	/* walk until garbage stops us */
	memset(h->free_head, 0, sizeof(h->free_head));
	while (off < bump) {
		struct blk *k = blk_at(b, off);
		uint64_t size;
		if (k->cls >= b->nclasses ||
		    (size = (uint64_t)64 << k->cls) > bump - off)
			break;
		if (k->owner >= 1 && k->owner - 1 <= b->slot_mask &&
		    b->slots[k->owner - 1].v.state == SLOT_USED &&
		    b->slots[k->owner - 1].v.heap_off == off)
			seen[k->owner - 1] = 1;
		else
			heap_push(b, off, k->cls);
		off += size;
	}
	if (off < h->heap_bump && h->heap_bump <= b->heap_size)
		note_add(b, "lost %llu retained heap bytes", h->heap_bump - off,
		    0, 0);
	h->heap_bump = off;
}

/*
 * Check every retained slot and the heap.  A slot left odd by a dead
 * writer, damaged, unreachable or whose block is lost becomes a
 * tombstone.  Returns 0, or -1 if out of memory.
 */
static int
retained_recover(struct bus *b)
{
	uint32_t nslots = b->slot_mask + 1, count = 0;
	unsigned char *seen;
	unsigned bad = 0;

	if ((seen = calloc(nslots, 1)) == NULL)
		return -1;
	for (uint32_t i = 0; i < nslots; i++) {
		struct rslot *s = &b->slots[i];
		int odd = atomic_load_explicit(&s->lock,
		    memory_order_relaxed) & 1;
		/* An odd empty slot is a new topic that never showed. */
		if ((s->v.state == SLOT_USED && !slot_valid(b, i)) ||
		    s->v.state > SLOT_TOMB ||
		    (odd && s->v.state != SLOT_USED)) {
			bad += s->v.state != SLOT_TOMB &&
			    s->v.state != SLOT_EMPTY;
			slot_set_state(b, i, SLOT_TOMB);
		}
	}
	for (uint32_t i = 0; i < nslots; i++)
		if (b->slots[i].v.state == SLOT_USED &&
		    !slot_reachable(b, i, &bad)) {
			slot_set_state(b, i, SLOT_TOMB);
			bad++;
		}
	heap_rebuild(b, seen);
	for (uint32_t i = 0; i < nslots; i++) {
		if (b->slots[i].v.state == SLOT_USED && !seen[i]) {
			slot_set_state(b, i, SLOT_TOMB);
			bad++;
		}
		count += b->slots[i].v.state == SLOT_USED;
	}
	for (uint32_t i = 0; i < nslots; i++)
		if (b->slots[i].v.state == SLOT_EMPTY)
			slot_tomb_clean(b, (i - 1) & b->slot_mask);
	free(seen);
	atomic_store_explicit(&b->hdr->retained_count, count,
	    memory_order_relaxed);
	if (bad > 0)
		note_add(b, "removed %llu bad retained slot(s)", bad, 0, 0);
	return 0;
}

/*
 * Writer, first append in this process: if the previous writer died in
 * the middle of an append, repair what it left, with readers running.
 */
static void
writer_takeover(struct bus *b)
{
	struct bus_hdr *h = b->hdr;

	if (atomic_load_explicit(&h->writer_busy, memory_order_relaxed) ||
	    (atomic_load_explicit(&h->head_gen, memory_order_relaxed) & 1) ||
	    (atomic_load_explicit(&h->tail_gen, memory_order_relaxed) & 1)) {
		b->note[0] = '\0';
		ring_recover(b, 1);
		retained_recover(b);
		atomic_store_explicit(&h->writer_busy, 0, memory_order_relaxed);
	}
	/* A writer that died between the head and the table lost at most
	 * that one update; from here on the table is complete again. */
	atomic_store_explicit(&h->retained_seq,
	    atomic_load_explicit(&h->head_seq, memory_order_relaxed),
	    memory_order_release);
	b->writer_ok = 1;
}

/* --- appending ----------------------------------------------------------- */

uint64_t
bus_append(struct bus *b, const char *topic, size_t tlen,
    const char *payload, size_t plen)
{
	struct bus_hdr *h = b->hdr;
	size_t size = bus_record_size(tlen, plen);
	uint64_t head, pos, to_end, seq;

	if (tlen == 0 || tlen > TOPIC_MAX ||
	    size > b->ring_size / BUS_RECORD_SHARE)
		return 0;
	if (!b->writer_ok)
		writer_takeover(b);
	atomic_store_explicit(&h->writer_busy, 1, memory_order_relaxed);
	head = atomic_load_explicit(&h->head_pos, memory_order_relaxed);
	seq = atomic_load_explicit(&h->head_seq, memory_order_relaxed) + 1;
	to_end = b->ring_size - (head & b->ring_mask);
	/* A record never straddles the ring's end. */
	pos = to_end < size ? head + to_end : head;
	if (pos + size > b->ring_size)
		ring_free_below(b, pos + size - b->ring_size);
	/* The tail is published before any freed byte is overwritten. */
	atomic_thread_fence(memory_order_release);
	if (pos != head && to_end >= REC_HDR)
		rec_write_pad(b, head, to_end);
	rec_write(b, pos, seq, size, topic, tlen, payload, plen);
	atomic_store_explicit(&b->index[seq & b->index_mask], pos,
	    memory_order_relaxed);
	pair_write(&h->head_gen, &h->head_pos, &h->head_seq, pos + size, seq);
	/* After the head: a seq seen in the table is never above the head
	 * a reader loads afterwards. */
	retained_set(b, topic, tlen, payload, plen, seq);
	atomic_store_explicit(&h->retained_seq, seq, memory_order_release);
	atomic_store_explicit(&h->writer_busy, 0, memory_order_release);
	return seq;
}

/* Seq up to which the retained table has taken every record. */
uint64_t
bus_retained_seq(const struct bus *b)
{
	return atomic_load_explicit(&b->hdr->retained_seq, memory_order_acquire);
}

/* --- counters ------------------------------------------------------------ */

/* The counter id of slot, or NULL if either is out of range. */
static _Atomic uint64_t *
counter_at(const struct bus *b, unsigned slot, enum bus_counter id)
{
	if (slot >= b->counter_slots || (unsigned)id >= CTR__COUNT)
		return NULL;
	return (_Atomic uint64_t *)(b->counters +
	    (size_t)slot * b->counter_stride) + id;
}

void
bus_counter_add(struct bus *b, unsigned slot, enum bus_counter id,
    int64_t delta)
{
	_Atomic uint64_t *c = counter_at(b, slot, id);

	/* Relaxed and atomic: a signal handler may correct a gauge. */
	if (c != NULL)
		atomic_fetch_add_explicit(c, (uint64_t)delta,
		    memory_order_relaxed);
}

void
bus_counter_set(struct bus *b, unsigned slot, enum bus_counter id,
    uint64_t value)
{
	_Atomic uint64_t *c = counter_at(b, slot, id);

	if (c != NULL)
		atomic_store_explicit(c, value, memory_order_relaxed);
}

uint64_t
bus_counter_get(const struct bus *b, unsigned slot, enum bus_counter id)
{
	_Atomic uint64_t *c = counter_at(b, slot, id);

	return c != NULL ? atomic_load_explicit(c, memory_order_relaxed) : 0;
}

uint64_t
bus_counter_sum(const struct bus *b, enum bus_counter id)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < b->counter_slots; i++)
		sum += bus_counter_get(b, i, id);
	return sum;
}

/* --- opening and closing ------------------------------------------------- */

uint64_t
bus_ring_size(const struct bus *b)
{
	return b->ring_size;
}

uint32_t
bus_retained_max(const struct bus *b)
{
	return b->retained_max;
}

const char *
bus_repair_note(const struct bus *b)
{
	return b->note;
}

/* Point the handle at the regions of the mapping at base. */
static void
handle_init(struct bus *b, char *base, const struct geom *g, unsigned slots)
{
	b->base = base;
	b->map_size = g->total;
	b->hdr = (struct bus_hdr *)base;
	b->ring = base + g->ring_off;
	b->ring_size = g->ring_size;
	b->ring_mask = g->ring_size - 1;
	b->index = (_Atomic uint64_t *)(base + g->index_off);
	b->index_mask = g->index_entries - 1;
	b->slots = (struct rslot *)(base + g->slots_off);
	b->slot_mask = g->slot_count - 1;
	b->retained_max = g->retained_max;
	b->heap = base + g->heap_off;
	b->heap_size = g->heap_size;
	b->nclasses = g->nclasses;
	b->counters = base + g->counters_off;
	b->counter_slots = slots;
	b->counter_stride = g->counter_stride;
}

/*
 * Open (or create) the bus file, lock it and check an existing one's
 * header.  Returns the fd with *created set, or -1 with err set.
 */
static int
file_open(const char *path, const struct geom *g, int *created, char *err,
    size_t errlen)
{
	struct stat st;
	int fd, rc;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) == -1) {
		snprintf(err, errlen, "open bus file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "bus file %s is in use by "
			    "another heraldd", path);
		else
			snprintf(err, errlen, "lock bus file %s: %s", path,
			    strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "bus file %s is not a regular file",
		    path);
		goto fail;
	}
	*created = st.st_size == 0;
	if (!*created) {
		if (hdr_check_file(fd, path, st.st_size, g, err, errlen) == -1)
			goto fail;
		/* A file copied sparse has holes: on a full disk, writing
		 * into one would SIGBUS.  Reserve them, or refuse. */
		rc = posix_fallocate(fd, 0, g->total);
		if (rc == 0 || rc == EOPNOTSUPP || rc == EINVAL)
			return fd;
		snprintf(err, errlen, "reserve the blocks of bus file %s "
		    "(%llu bytes): %s", path, (unsigned long long)g->total,
		    strerror(rc));
		goto fail;
	}
	if (ftruncate(fd, g->total) == -1) {
		rc = errno;
		goto nospace;
	}
	/* Reserve the blocks now: a full disk must not SIGBUS us later. */
	rc = posix_fallocate(fd, 0, g->total);
	if (rc == 0 || rc == EOPNOTSUPP || rc == EINVAL)
		return fd;
nospace:
	snprintf(err, errlen, "size bus file %s to %llu bytes: %s", path,
	    (unsigned long long)g->total, strerror(rc));
	/* Leave an empty file, not a half-made bus: it is created anew. */
	if (ftruncate(fd, 0) == -1)
		rc = errno;
	close(fd);
	return -1;
fail:
	close(fd);
	return -1;
}

/* Map fd (or anonymous memory if fd is -1); NULL with err set. */
static char *
map_bus(int fd, const struct geom *g, char *err, size_t errlen)
{
	void *p;

	p = mmap(NULL, g->total, PROT_READ | PROT_WRITE,
	    fd == -1 ? MAP_SHARED | MAP_ANONYMOUS : MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "map bus (%llu bytes): %s",
		    (unsigned long long)g->total, strerror(errno));
		return NULL;
	}
	return p;
}

/* Repair an existing bus file after mapping it; -1 with err set. */
/*
 * Seq never goes backwards: if the retained table holds a seq above the
 * head (the header was damaged), the head moves up to it, with an empty
 * ring, so that no seq a client may have seen is handed out again.
 */
static void
seq_floor_from_retained(struct bus *b)
{
	struct bus_hdr *h = b->hdr;
	uint64_t hs = atomic_load_explicit(&h->head_seq, memory_order_relaxed);
	uint64_t hp = atomic_load_explicit(&h->head_pos, memory_order_relaxed);
	uint64_t top = 0;

	for (uint32_t i = 0; i <= b->slot_mask; i++)
		if (b->slots[i].v.state == SLOT_USED && b->slots[i].v.seq > top)
			top = b->slots[i].v.seq;
	if (top > hs) {
		note_add(b, "retained seq %llu above head seq %llu: ring "
		    "emptied, next seq %llu", top, hs, top + 1);
		pair_write(&h->head_gen, &h->head_pos, &h->head_seq, hp, top);
		pair_write(&h->tail_gen, &h->tail_pos, &h->tail_seq, hp,
		    top + 1);
		hs = top;
	}
	atomic_store_explicit(&h->retained_seq, hs, memory_order_relaxed);
}

static int
bus_recover(struct bus *b, char *err, size_t errlen)
{
	struct bus_hdr *h = b->hdr;

	atomic_store_explicit(&h->head_gen, 0, memory_order_relaxed);
	atomic_store_explicit(&h->tail_gen, 0, memory_order_relaxed);
	atomic_store_explicit(&h->writer_busy, 0, memory_order_relaxed);
	/* Index entries are rebuilt from the surviving records. */
	memset((void *)b->index, 0, (b->index_mask + 1) * sizeof(uint64_t));
	ring_recover(b, 0);
	if (retained_recover(b) == -1) {
		snprintf(err, errlen, "bus: out of memory checking the "
		    "retained table");
		return -1;
	}
	seq_floor_from_retained(b);
	return 0;
}

struct bus *
bus_open(const struct bus_config *cfg, char *err, size_t errlen)
{
	int anon = cfg->file == NULL || cfg->file[0] == '\0';
	int fd = -1, created = 1;
	struct bus *b;
	struct geom g;
	char *base;

	crc_init();
	if (geom_compute(cfg, &g, err, errlen) == -1)
		return NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "bus: out of memory");
		return NULL;
	}
	if (!anon && (fd = file_open(cfg->file, &g, &created, err,
	    errlen)) == -1)
		goto fail;
	if ((base = map_bus(fd, &g, err, errlen)) == NULL)
		goto fail;
	b->fd = fd;
	handle_init(b, base, &g, cfg->counter_slots == 0 ?
	    BUS_COUNTER_SLOTS_MAX : cfg->counter_slots);
	if (created)
		hdr_init(b->hdr, &g);
	else if (bus_recover(b, err, errlen) == -1) {
		munmap(base, g.total);
		goto fail;
	}
	/* Counters count this run only. */
	memset(b->counters, 0, (size_t)g.counter_slots * g.counter_stride);
	atomic_store_explicit(&b->hdr->retained_dropped, 0,
	    memory_order_relaxed);
	return b;
fail:
	if (fd != -1)
		close(fd);
	free(b);
	return NULL;
}

void
bus_close(struct bus *b)
{
	if (b == NULL)
		return;
	munmap(b->base, b->map_size);
	if (b->fd != -1)
		close(b->fd);
	free(b->scratch);
	free(b);
}

int
bus_sync(struct bus *b)
{
	if (b->fd == -1)
		return 0;
	return msync(b->base, b->map_size, MS_SYNC);
}
