/*
 * Recovery: checking an existing bus file when it is opened, and taking
 * over from a writer that died in the middle of an append.  Whatever is
 * repaired is said in bus_repair_note.
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
 * tombstone (retained_from_ring may take its value back).  Returns 1 if
 * any slot was removed, 0 if none, -1 if out of memory.
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
	return (int)(bad > 0);
}

/*
 * The values the table lost (a slot torn by a writer that died inside
 * it, a block lost with the heap, the update a dead writer never made)
 * may still be in the ring: take back, oldest first, every record whose
 * topic the table holds older or not at all.
 */
static void
retained_from_ring(struct bus *b)
{
	struct bus_hdr *h = b->hdr;
	uint64_t p = atomic_load_explicit(&h->tail_pos, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&h->head_pos,
	    memory_order_relaxed);
	unsigned long long n = 0;
	struct rec_hdr r;
	int rc;

	while (p < head && (rc = rec_check(b, p, head, &r)) >= 0) {
		if (rc == 1) {
			const char *line = b->ring + (p & b->ring_mask) +
			    REC_HDR;
			n += retained_set_newer(b, line + 4, r.topic_len,
			    line + r.payload_off, r.line_len - r.payload_off - 1,
			    r.seq);
		}
		p += r.size;
	}
	if (n > 0)
		note_add(b, "took %llu retained value(s) back from the ring", n,
		    0, 0);
}

/*
 * Writer, first append in this process: if the previous writer died in
 * the middle of an append, repair what it left, with readers running.
 */
void
writer_takeover(struct bus *b)
{
	struct bus_hdr *h = b->hdr;

	if (atomic_load_explicit(&h->writer_busy, memory_order_relaxed) ||
	    (atomic_load_explicit(&h->head_gen, memory_order_relaxed) & 1) ||
	    (atomic_load_explicit(&h->tail_gen, memory_order_relaxed) & 1)) {
		b->note[0] = '\0';
		ring_recover(b, 1);
		retained_recover(b);
		/* (it may have died between the head and the table, or
		 * inside a slot) */
		retained_from_ring(b);
		atomic_store_explicit(&h->writer_busy, 0, memory_order_relaxed);
	}
	/* From here on the table is complete again. */
	atomic_store_explicit(&h->retained_seq,
	    atomic_load_explicit(&h->head_seq, memory_order_relaxed),
	    memory_order_release);
	b->writer_ok = 1;
}

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

/* Repair an existing bus file after mapping it; -1 with err set. */
int
bus_recover(struct bus *b, char *err, size_t errlen)
{
	struct bus_hdr *h = b->hdr;

	atomic_store_explicit(&h->head_gen, 0, memory_order_relaxed);
	atomic_store_explicit(&h->tail_gen, 0, memory_order_relaxed);
	atomic_store_explicit(&h->writer_busy, 0, memory_order_relaxed);
	/* Index entries are rebuilt from the surviving records. */
	memset((void *)b->index, 0, (b->index_mask + 1) * sizeof(uint64_t));
	ring_recover(b, 0);
	int bad = retained_recover(b);
	if (bad == -1) {
		snprintf(err, errlen, "bus: out of memory checking the "
		    "retained table");
		return -1;
	}
	/* A table behind the ring: a writer died between the two. */
	if (bad > 0 || atomic_load_explicit(&h->retained_seq,
	    memory_order_relaxed) < atomic_load_explicit(&h->head_seq,
	    memory_order_relaxed))
		retained_from_ring(b);
	seq_floor_from_retained(b);
	return 0;
}
