/*
 * The bus's private header: the layout of the mapping and the helpers
 * its files share (bus.c: opening, geometry, appending, counters;
 * ring.c: records and reading them; retained.c: the retained table and
 * its heap; recover.c: checking and repairing a kept file; crc32c.c).
 * Nothing outside shm/ includes it: readers and the writer use bus.h.
 */
#ifndef HERALD_BUS_PRIVATE_H
#define HERALD_BUS_PRIVATE_H

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "bus.h"

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
#define JUMP_STEP	8		/* bus_jump empties the ring this far
					 * past the head (a record's alignment),
					 * so a reader at the head is lapped */

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
	int		 fd;		/* the file, or the memfd */
	int		 is_file;	/* fd is bus.file (else memory) */
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


/* --- small helpers ----------------------------------------------------- */

/* CRC32C (Castagnoli) of buf, continuing crc (start with 0): crc32c.c. */
void		crc32c_init(void);
uint32_t	crc32c(uint32_t crc, const void *buf, size_t len);

/* FNV-1a of a topic. */
static inline uint32_t
topic_hash(const char *t, size_t len)
{
	uint32_t h = 2166136261U;

	while (len-- > 0)
		h = (h ^ (unsigned char)*t++) * 16777619U;
	return h;
}

static inline uint64_t
round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Write v in decimal at dst; returns the number of digits. */
static inline size_t
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
static inline void
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
static inline uint32_t
wlock_begin(_Atomic uint32_t *l)
{
	uint32_t g = (atomic_load_explicit(l, memory_order_relaxed) + 1) | 1;

	atomic_store_explicit(l, g, memory_order_relaxed);
	/* Orders the lock store before the data stores that follow. */
	atomic_thread_fence(memory_order_release);
	return g;
}

/* Writer: make the seqlock even again, publishing the data. */
static inline void
wlock_end(_Atomic uint32_t *l, uint32_t g)
{
	atomic_store_explicit(l, g + 1, memory_order_release);
}

/*
 * Read a pair guarded by gen.  If the writer died with gen odd, give up
 * after a while and return the values as they are.
 */
static inline void
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
static inline void
pair_write(_Atomic uint32_t *gen, _Atomic uint64_t *a, _Atomic uint64_t *b,
    uint64_t x, uint64_t y)
{
	uint32_t g = wlock_begin(gen);

	atomic_store_explicit(a, x, memory_order_release);
	atomic_store_explicit(b, y, memory_order_release);
	wlock_end(gen, g);
}

/* --- shared between the bus's files ----------------------------------- */

/* ring.c: a record's header is plausible for the bytes left to the ring's
 * end; its line matches its checksum; writing a record and the padding
 * that ends the ring; moving the tail past what the next record needs. */
int	 rec_sane(const struct bus *, const struct rec_hdr *, uint64_t to_end);
int	 rec_line_ok(const struct rec_hdr *, const char *line);
void	 rec_write_pad(struct bus *, uint64_t pos, uint64_t to_end);
void	 rec_write(struct bus *, uint64_t pos, uint64_t seq, size_t size,
	    const char *topic, size_t tlen, const char *payload, size_t plen);
void	 ring_free_below(struct bus *, uint64_t need);

/* retained.c: heap blocks, slot values and their checks, for recovery;
 * retained_set takes a new value of a topic (writer, after the head). */
struct blk *blk_at(const struct bus *, uint64_t off);
void	 heap_push(struct bus *, uint64_t off, uint32_t cls);
uint32_t val_crc(const struct slot_val *, const char *value);
int	 val_sane(const struct bus *, const struct slot_val *);
const char *slot_topic(const struct bus *, const struct rslot *);
void	 slot_set_state(struct bus *, uint32_t i, uint16_t state);
void	 slot_tomb_clean(struct bus *, uint32_t i);
void	 retained_set(struct bus *, const char *topic, size_t tlen,
	    const char *payload, size_t plen, uint64_t seq);
int	 retained_set_newer(struct bus *, const char *topic, size_t tlen,
	    const char *payload, size_t plen, uint64_t seq);

/* recover.c: check and repair a kept file after mapping it (-1 with err
 * set); take over from a writer that died in an append. */
int	 bus_recover(struct bus *, char *err, size_t errlen);
void	 writer_takeover(struct bus *);

#endif /* HERALD_BUS_PRIVATE_H */
