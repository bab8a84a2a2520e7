/*
 * Server-sent events (herald-protocol(7), "Other framings"): every
 * server line is one event, "event:" its verb in lowercase, "data:" the
 * rest of the line, and "id:" where the stream stands (a MSG's seq, a
 * GAP's last, the head on the +OK of a SUB answered with a snapshot).
 *
 * Replies are queued as lines, as for any client, and made events as
 * soon as a line is whole (sse_convert).  Records from the bus are
 * rendered once per batch for all SSE clients that get them (sse_frame),
 * as the fast path shares the bus's own MSG line among line clients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* What an event adds to its line at most: "event: " and the verb's LF,
 * "data: " for "VERB ", "id: " with 20 digits and its LF, the blank
 * line. */
#define SSE_OVERHEAD		48

/* The renderings of one record array's records (w->sse). */
struct sse_frames {
	uint64_t	 seq[FANOUT_BATCH_RECS];	/* 0: none */
	uint32_t	 off[FANOUT_BATCH_RECS];
	uint32_t	 len[FANOUT_BATCH_RECS];
	char		*buf;
	size_t		 used, cap;
};

/* The n-th word of s (0: the first), or NULL. */
static const char *
word(const char *s, size_t len, int n, size_t *wlen)
{
	const char *end = s + len;

	for (;;) {
		const char *sp = memchr(s, ' ', end - s);
		if (n-- == 0) {
			*wlen = (sp != NULL ? sp : end) - s;
			return s;
		}
		if (sp == NULL)
			return NULL;
		s = sp + 1;
	}
}

/*
 * Render the line (without its LF) as an event into dst, which has room
 * for len + SSE_OVERHEAD bytes.  A MSG's seq or a GAP's last is its
 * "id:"; with_id gives one to another line too, from its data's third
 * word (the head of "+OK SUB pattern h").  Returns the bytes.
 */
int
sse_line(char *dst, const char *line, size_t len, int with_id)
{
	size_t vlen, dlen = 0, ilen = 0;
	const char *v = word(line, len, 0, &vlen), *data = "", *id = NULL;
	int n = 0;

	if (vlen < len) {
		data = line + vlen + 1;
		dlen = len - vlen - 1;
	}
	if (vlen > 0 && (*v == '+' || *v == '-')) {	/* +OK, -ERR */
		v++;
		vlen--;
	}
	if (vlen == 3 && (memcmp(v, "MSG", 3) == 0 ||
	    memcmp(v, "GAP", 3) == 0))
		id = word(data, dlen, 1, &ilen);
	else if (with_id)
		id = word(data, dlen, 2, &ilen);
	memcpy(dst, "event: ", 7);
	n = 7;
	for (size_t i = 0; i < vlen; i++)
		dst[n++] = v[i] >= 'A' && v[i] <= 'Z' ? v[i] | 0x20 : v[i];
	memcpy(dst + n, "\ndata: ", 7);
	n += 7;
	memcpy(dst + n, data, dlen);
	n += dlen;
	dst[n++] = '\n';
	if (id != NULL && ilen <= 20) {
		memcpy(dst + n, "id: ", 4);
		memcpy(dst + n + 4, id, ilen);
		n += 4 + ilen;
		dst[n++] = '\n';
	}
	dst[n++] = '\n';
	return n;
}

/*
 * Make the whole lines queued for an SSE client since the last call
 * events; a part of a line waits for its end (a VAL is queued in
 * pieces).
 */
void
sse_convert(struct client *c)
{
	struct client_io *io = c->io;
	size_t from = io->sse_from, rawlen = io->out_len - from;
	const char *raw = io->out + from;
	const char *lf = memrchr(raw, '\n', rawlen);

	if (lf == NULL)
		return;
	size_t whole = lf + 1 - raw, lines = 0;
	for (const char *p = raw; p < raw + whole; p++)
		lines += *p == '\n';
	char *copy = malloc(rawlen + whole + lines * SSE_OVERHEAD);
	if (copy == NULL) {
		log_warnx("client %u: out of memory for events", c->id);
		client_kill(c);
		return;
	}
	char *ev = copy + rawlen;
	size_t evlen = 0;
	memcpy(copy, raw, rawlen);
	for (const char *p = copy; p < copy + whole; ) {
		const char *end = memchr(p, '\n', copy + whole - p);
		evlen += sse_line(ev + evlen, p, end - p, 0);
		p = end + 1;
	}
	io->out_len = from;
	client_reply_framed(c, ev, evlen);
	if (c->state != CS_DEAD && rawlen > whole) {
		client_reply_framed(c, copy + whole, rawlen - whole);
		c->io->sse_from -= rawlen - whole;	/* still a line */
	}
	free(copy);
}

/* The +OK of a SUB answered with a snapshot, with the head as its id. */
void
sse_ok(struct client *c, const char *pattern, size_t plen, uint64_t h)
{
	char line[TOPIC_MAX + 64], ev[TOPIC_MAX + 64 + SSE_OVERHEAD];
	int n = snprintf(line, sizeof(line), "+OK SUB %.*s %llu", (int)plen,
	    pattern, (unsigned long long)h);

	client_reply_framed(c, ev, sse_line(ev, line, n, 1));
}

/*
 * Before records of the array recs are rendered for a client: the
 * array's renderings, with room for all its records' (the records of
 * one read fill at most its buffer).  Renderings of earlier batches are
 * forgotten when half the room is used.  -1 when memory runs out.
 */
int
sse_frames_begin(struct worker *w, const struct bus_rec *recs)
{
	int k = recs == w->recs ? 0 : 1;
	size_t bytes = k == 0 ? w->scratch_len : w->slow_len;
	size_t need = 2 * (bytes + FANOUT_BATCH_RECS * SSE_OVERHEAD);
	struct sse_frames *f = w->sse[k];

	if (f == NULL && (f = w->sse[k] = calloc(1, sizeof(*f))) == NULL)
		return -1;
	if (f->cap < need) {
		char *b = realloc(f->buf, need);
		if (b == NULL)
			return -1;
		f->buf = b;
		f->cap = need;
	}
	if (f->used > f->cap / 2) {
		memset(f->seq, 0, sizeof(f->seq));
		f->used = 0;
	}
	return 0;
}

/* Record i of recs as an event, rendered once (sse_frames_begin first). */
void
sse_frame(struct worker *w, const struct bus_rec *recs, int i,
    struct iovec *iov)
{
	struct sse_frames *f = w->sse[recs == w->recs ? 0 : 1];
	const struct bus_rec *r = &recs[i];

	if (f->seq[i] != r->seq) {
		f->off[i] = f->used;
		f->len[i] = sse_line(f->buf + f->used, r->line,
		    r->line_len - 1, 0);
		f->used += f->len[i];
		f->seq[i] = r->seq;
	}
	iov->iov_base = f->buf + f->off[i];
	iov->iov_len = f->len[i];
}
