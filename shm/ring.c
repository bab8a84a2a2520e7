/*
 * The ring: records stored as their MSG lines, written by the producer,
 * read by every worker without locks (see bus.c for the memory ordering).
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
int
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
int
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
void
rec_write_pad(struct bus *b, uint64_t pos, uint64_t to_end)
{
	struct rec_hdr r;

	memset(&r, 0, sizeof(r));
	r.size = to_end;
	memcpy(b->ring + (pos & b->ring_mask), &r, sizeof(r));
}

/* Writer: write the record seq at pos, formatted as its MSG line. */
void
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
void
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

