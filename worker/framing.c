/*
 * Lines in a client's framing (herald-protocol(7), "Other framings"):
 * an SSE client gets each line as an event (sse.c), a WebSocket client
 * its lines in text frames (ws.c).
 *
 * Replies are queued as lines, as for any client, and framed as soon as
 * a line is whole (framing_convert).  Records from the bus are rendered
 * once per batch per framing, and the rendering is shared by all the
 * clients of that framing that get the record (framing_rec), as the fast
 * path shares the bus's own MSG line among line clients.
 */
#include <stdlib.h>
#include <string.h>

#include "wsframe.h"
#include "worker.h"

_Static_assert(WS_HEADER_MAX <= FRAME_OVERHEAD, "a frame's header");

/* The renderings of one record array's records in one framing
 * (w->frames). */
struct rec_frames {
	uint64_t	 seq[FANOUT_BATCH_RECS];	/* 0: none */
	uint32_t	 off[FANOUT_BATCH_RECS];
	uint32_t	 len[FANOUT_BATCH_RECS];
	char		*buf;
	size_t		 used, cap;
};

/*
 * Render whole lines (each ending in LF) in the framing into dst, which
 * has room for len + FRAME_OVERHEAD bytes a line: one event a line, or
 * one text frame for them all.  Returns the bytes.
 */
size_t
framing_render(int framing, char *dst, const char *lines, size_t len)
{
	size_t n = 0;

	if (framing == FRAME_WS)
		return ws_frame(dst, WS_OP_TEXT, lines, len);
	for (const char *p = lines; p < lines + len; ) {
		const char *end = memchr(p, '\n', lines + len - p);
		n += sse_line(dst + n, p, end - p, 0);
		p = end + 1;
	}
	return n;
}

/*
 * Frame the whole lines queued for the client since the last call; a
 * part of a line waits for its end (a VAL is queued in pieces).
 */
void
framing_convert(struct client *c)
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
	char *copy = malloc(rawlen + whole + lines * FRAME_OVERHEAD);
	if (copy == NULL) {
		log_warnx("client %u: out of memory for framing its lines",
		    c->id);
		client_kill(c);
		return;
	}
	char *framed = copy + rawlen;
	memcpy(copy, raw, rawlen);
	size_t flen = framing_render(c->framing, framed, copy, whole);
	io->out_len = from;
	client_reply_framed(c, framed, flen);
	if (c->state != CS_DEAD && rawlen > whole) {
		client_reply_framed(c, copy + whole, rawlen - whole);
		c->io->sse_from -= rawlen - whole;	/* still a line */
	}
	free(copy);
}

/*
 * Before records of the array recs are rendered in a framing for a
 * client: the array's renderings, with room for all its records' (the
 * records of one read fill at most its buffer).  Renderings of earlier
 * batches are forgotten when half the room is used.  -1 when memory runs
 * out.
 */
int
framing_begin(struct worker *w, int framing, const struct bus_rec *recs)
{
	int k = recs == w->recs ? 0 : 1;
	size_t bytes = k == 0 ? w->scratch_len : w->slow_len;
	size_t need = 2 * (bytes + FANOUT_BATCH_RECS * FRAME_OVERHEAD);
	struct rec_frames **fp = &w->frames[framing == FRAME_WS][k], *f = *fp;

	if (f == NULL && (f = *fp = calloc(1, sizeof(*f))) == NULL)
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

/* Record i of recs in the framing, rendered once (framing_begin
 * first). */
void
framing_rec(struct worker *w, int framing, const struct bus_rec *recs,
    int i, struct iovec *iov)
{
	struct rec_frames *f = w->frames[framing == FRAME_WS]
	    [recs == w->recs ? 0 : 1];
	const struct bus_rec *r = &recs[i];

	if (f->seq[i] != r->seq) {
		f->off[i] = f->used;
		f->len[i] = framing_render(framing, f->buf + f->used, r->line,
		    r->line_len);
		f->used += f->len[i];
		f->seq[i] = r->seq;
	}
	iov->iov_base = f->buf + f->off[i];
	iov->iov_len = f->len[i];
}
