/*
 * The bus: one shared mapping holding the ring of records, the seq index,
 * the retained table with its heap, and the per-process counters.  One
 * writer (the producer) changes it; readers in other processes never lock.
 *
 * File format, version 2 (BUS_VERSION; host byte order, every region 64-byte aligned,
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
 *
 * The code is in five files behind bus.h: this one (opening, geometry,
 * appending, counters), ring.c, retained.c, recover.c and crc32c.c;
 * bus_private.h is what they share.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus_private.h"
#include "topic.h"

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

int
bus_jump(struct bus *b, uint64_t next_seq, const struct bus_value *vals,
    size_t nvals)
{
	struct bus_hdr *h = b->hdr;
	uint64_t pos;

	if (next_seq <= atomic_load_explicit(&h->head_seq,
	    memory_order_relaxed) + 1)
		return -1;
	if (!b->writer_ok)
		writer_takeover(b);
	atomic_store_explicit(&h->writer_busy, 1, memory_order_relaxed);
	pos = atomic_load_explicit(&h->head_pos, memory_order_relaxed) +
	    JUMP_STEP;
	/* The tail first: a reader that loads the new head has its start
	 * below the new tail, lapped, and never reads the bytes skipped. */
	pair_write(&h->tail_gen, &h->tail_pos, &h->tail_seq, pos, next_seq);
	pair_write(&h->head_gen, &h->head_pos, &h->head_seq, pos,
	    next_seq - 1);
	for (size_t i = 0; i < nvals; i++) {
		const struct bus_value *v = &vals[i];
		if (v->seq < next_seq && topic_valid(v->topic, v->topic_len) &&
		    bus_record_size(v->topic_len, v->payload_len) <=
		    b->ring_size / BUS_RECORD_SHARE)
			retained_set_newer(b, v->topic, v->topic_len,
			    v->payload, v->payload_len, v->seq);
	}
	/* Snapshots wait for this (bus_retained_seq) to reach the head. */
	atomic_store_explicit(&h->retained_seq, next_seq - 1,
	    memory_order_release);
	atomic_store_explicit(&h->writer_busy, 0, memory_order_release);
	return 0;
}

uint64_t
bus_append_seq(struct bus *b, uint64_t seq, const char *topic, size_t tlen,
    const char *payload, size_t plen)
{
	uint64_t head = atomic_load_explicit(&b->hdr->head_seq,
	    memory_order_relaxed);

	if (seq <= head)
		return 0;
	if (seq > head + 1)
		bus_jump(b, seq, NULL, 0);
	if (bus_append(b, topic, tlen, payload, plen) != 0)
		return seq;
	bus_jump(b, seq + 1, NULL, 0);
	return 0;
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


/*
 * Anonymous shared memory for a bus without a file, as a memfd rather
 * than MAP_ANONYMOUS: the same pages, but with a descriptor, which an
 * upgrade passes to the new master (bus_adopt).  Returns the fd or -1.
 */
static int
memfd_open(const struct geom *g, char *err, size_t errlen)
{
	int fd = memfd_create("herald-bus", MFD_CLOEXEC);

	if (fd == -1 || ftruncate(fd, g->total) == -1) {
		snprintf(err, errlen, "bus in memory (%llu bytes): %s",
		    (unsigned long long)g->total, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* A handle for the configuration's layout (in *g), not yet mapped;
 * NULL with err set. */
static struct bus *
bus_new(const struct bus_config *cfg, struct geom *g, char *err,
    size_t errlen)
{
	struct bus *b;

	crc32c_init();
	if (geom_compute(cfg, g, err, errlen) == -1)
		return NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		snprintf(err, errlen, "bus: out of memory");
	return b;
}

struct bus *
bus_open(const struct bus_config *cfg, char *err, size_t errlen)
{
	int anon = cfg->file == NULL || cfg->file[0] == '\0';
	int fd = -1, created = 1;
	struct bus *b;
	struct geom g;
	char *base;

	if ((b = bus_new(cfg, &g, err, errlen)) == NULL)
		return NULL;
	if (anon)
		fd = memfd_open(&g, err, errlen);
	else
		fd = file_open(cfg->file, &g, &created, err, errlen);
	if (fd == -1)
		goto fail;
	if ((base = map_bus(fd, &g, err, errlen)) == NULL)
		goto fail;
	b->fd = fd;
	b->is_file = !anon;
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

struct bus *
bus_adopt(const struct bus_config *cfg, int fd, char *err, size_t errlen)
{
	struct stat st;
	struct bus *b;
	struct geom g;
	char *base;

	if ((b = bus_new(cfg, &g, err, errlen)) == NULL)
		return NULL;
	if (fstat(fd, &st) == -1 || (uint64_t)st.st_size != g.total) {
		snprintf(err, errlen, "the running bus is %lld bytes; the "
		    "configuration makes it %llu (bus.size, "
		    "bus.retained_max or bus.retained_bytes changed?)",
		    (long long)st.st_size, (unsigned long long)g.total);
		free(b);
		return NULL;
	}
	if ((base = map_bus(fd, &g, err, errlen)) == NULL) {
		free(b);
		return NULL;
	}
	const struct bus_hdr *h = (const struct bus_hdr *)base;
	if (h->magic != BUS_MAGIC || h->version != BUS_VERSION ||
	    h->geom_crc != hdr_crc(h) || !hdr_geom_equal(h, &g)) {
		snprintf(err, errlen, "the running bus has another layout "
		    "than this heraldd makes of the configuration");
		munmap(base, g.total);
		free(b);
		return NULL;
	}
	b->fd = fd;
	b->is_file = cfg->file != NULL && cfg->file[0] != '\0';
	handle_init(b, base, &g, cfg->counter_slots == 0 ?
	    BUS_COUNTER_SLOTS_MAX : cfg->counter_slots);
	return b;
}

int
bus_fd(const struct bus *b)
{
	return b->fd;
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
	if (!b->is_file)
		return 0;
	return msync(b->base, b->map_size, MS_SYNC);
}
