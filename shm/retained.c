/*
 * The retained table: the newest value of every topic, in seqlocked slots
 * (open addressing) whose values live in a heap of size classes.  The
 * producer alone writes it; workers read it for snapshots and GET.
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

/* --- the retained heap (writer only) ------------------------------------ */

struct blk *
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
void
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
uint32_t
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
int
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
const char *
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
void
slot_set_state(struct bus *b, uint32_t i, uint16_t state)
{
	struct rslot *s = &b->slots[i];
	uint32_t g = wlock_begin(&s->lock);

	s->v.state = state;
	wlock_end(&s->lock, g);
}

/* Writer: a tombstone followed by an empty slot is on no probe path;
 * empty it, and the tombstones before it likewise. */
void
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
void
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

/* Seq up to which the retained table has taken every record. */
uint64_t
bus_retained_seq(const struct bus *b)
{
	return atomic_load_explicit(&b->hdr->retained_seq, memory_order_acquire);
}

/* Writer (recovery): set a topic's value unless the table has it as of
 * seq or later.  Returns 1 if it was set. */
int
retained_set_newer(struct bus *b, const char *topic, size_t tlen,
    const char *payload, size_t plen, uint64_t seq)
{
	int64_t fr;
	int64_t i = slot_find(b, topic, tlen, topic_hash(topic, tlen), &fr);

	if (i >= 0 && b->slots[i].v.seq >= seq)
		return 0;
	retained_set(b, topic, tlen, payload, plen, seq);
	return 1;
}
