/*
 * WebSocket frames (wsframe.h).  wslay's frame layer parses and builds
 * the frames; its reader pulls bytes through a callback, which here
 * hands it the buffer being read.  What wslay leaves to its user is
 * checked here: a client's frames are masked (RFC 6455 section 5.1), no
 * reserved bit is set, fragments come in order, only text carries data,
 * and frames, messages and lines keep within the limit.
 */
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "wsframe.h"

struct ws_reader {
	wslay_frame_context_ptr	 ctx;
	const char		*feed;		/* what wslay may read now */
	size_t			 feed_len;
	size_t			 max;
	int64_t			 held;		/* bytes wslay was fed and has
						 * not yet returned */
	uint64_t		 got;		/* payload of this frame read */
	uint64_t		 msg_len;	/* of the text message read */
	size_t			 line_len;	/* bytes since the last LF */
	uint8_t			 in_frame;	/* its header was read */
	uint8_t			 in_msg;	/* a text message goes on */
	uint8_t			 op;		/* this frame's opcode */
	uint8_t			 ctl_len;
	uint8_t			 pong_len;
	uint8_t			 pong_due;
	char			 ctl[WS_CONTROL_MAX];	/* a control
							 * frame's payload */
	char			 pong[WS_CONTROL_MAX];
};

static ssize_t
feed(uint8_t *buf, size_t len, int flags, void *arg)
{
	struct ws_reader *r = arg;
	size_t n = len < r->feed_len ? len : r->feed_len;

	(void)flags;
	memcpy(buf, r->feed, n);
	r->feed += n;
	r->feed_len -= n;
	return n;		/* 0: wslay wants more (WSLAY_ERR_WANT_READ) */
}

struct ws_reader *
ws_reader_new(size_t max)
{
	static const struct wslay_frame_callbacks cb = { .recv_callback =
	    feed };
	struct ws_reader *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	if (wslay_frame_context_init(&r->ctx, &cb, r) != 0) {
		free(r);
		return NULL;
	}
	r->max = max;
	return r;
}

void
ws_reader_free(struct ws_reader *r)
{
	if (r == NULL)
		return;
	wslay_frame_context_free(r->ctx);
	free(r);
}

int
ws_reader_idle(const struct ws_reader *r)
{
	return r->held == 0 && !r->in_frame && !r->in_msg &&
	    r->line_len == 0 && !r->pong_due;
}

/* A frame header's bytes (wslay takes only the shortest length form). */
static int
header_len(const struct wslay_frame_iocb *f)
{
	return 2 + (f->payload_length >= 65536 ? 8 :
	    f->payload_length >= 126 ? 2 : 0) + (f->mask ? 4 : 0);
}

const char *
ws_reader_pong(struct ws_reader *r, size_t *len)
{
	if (!r->pong_due)
		return NULL;
	r->pong_due = 0;
	*len = r->pong_len;
	return r->pong;
}

/* The header of a frame: may it be read?  0, or the close code. */
static int
frame_start(struct ws_reader *r, const struct wslay_frame_iocb *f)
{
	if (!f->mask || f->rsv != 0)
		return WS_CLOSE_PROTOCOL;
	r->op = f->opcode;
	r->ctl_len = 0;
	switch (f->opcode) {
	case WSLAY_CONTINUATION_FRAME:
		if (!r->in_msg)
			return WS_CLOSE_PROTOCOL;
		break;
	case WSLAY_TEXT_FRAME:
		if (r->in_msg)
			return WS_CLOSE_PROTOCOL;
		r->in_msg = 1;
		r->msg_len = 0;
		break;
	case WSLAY_BINARY_FRAME:
		return WS_CLOSE_UNSUPPORTED;
	case WSLAY_CONNECTION_CLOSE:
	case WSLAY_PING:
	case WSLAY_PONG:
		return 0;	/* (wslay: fin, at most 125 bytes) */
	default:
		return WS_CLOSE_PROTOCOL;
	}
	if (f->payload_length > r->max ||
	    r->msg_len + f->payload_length > r->max)
		return WS_CLOSE_TOO_BIG;
	r->msg_len += f->payload_length;
	return 0;
}

/* Bytes of lines p[0..n): is the unfinished line within the limit? */
static int
lines(struct ws_reader *r, const char *p, size_t n)
{
	const char *end = p + n, *lf;

	while ((lf = memchr(p, '\n', end - p)) != NULL) {
		if (r->line_len + (lf - p) > r->max + 1)	/* (its CR) */
			return WS_CLOSE_TOO_BIG;
		r->line_len = 0;
		p = lf + 1;
	}
	r->line_len += end - p;
	return r->line_len > r->max + 1 ? WS_CLOSE_TOO_BIG : 0;
}

/* A close frame's payload: its code (none: a normal close), checked. */
static int
close_code(const struct ws_reader *r)
{
	if (r->ctl_len == 0)
		return WS_CLOSE_NORMAL;
	if (r->ctl_len == 1)
		return WS_CLOSE_PROTOCOL;
	int code = (unsigned char)r->ctl[0] << 8 | (unsigned char)r->ctl[1];
	/* (RFC 6455 section 7.4: the codes an endpoint may send) */
	if ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	    (code >= 3000 && code <= 4999))
		return WS_CLOSE_NORMAL;
	return WS_CLOSE_PROTOCOL;
}

/* A whole control frame (its payload in ctl).  0, or the close code. */
static int
control(struct ws_reader *r)
{
	switch (r->op) {
	case WSLAY_PING:
		memcpy(r->pong, r->ctl, r->ctl_len);
		r->pong_len = r->ctl_len;
		r->pong_due = 1;
		return 0;
	case WSLAY_CONNECTION_CLOSE:
		return close_code(r);
	}
	return 0;		/* a pong: nothing to do */
}

int
ws_read(struct ws_reader *r, char *buf, size_t len, size_t *out)
{
	struct wslay_frame_iocb f;
	size_t o = 0;
	ssize_t n;
	int code = 0;

	r->feed = buf;
	r->feed_len = len;
	while (code == 0 && (n = wslay_frame_recv(r->ctx, &f)) >= 0) {
		if (!r->in_frame) {
			if ((code = frame_start(r, &f)) != 0)
				break;
			r->in_frame = 1;
			r->got = 0;
			r->held -= header_len(&f);
		}
		r->got += n;
		r->held -= n;
		if (r->op >= WSLAY_CONNECTION_CLOSE) {
			memcpy(r->ctl + r->ctl_len, f.data, n);
			r->ctl_len += n;
		} else {
			/* (o never passes what wslay has taken of buf; a
			 * line too long is not passed on) */
			memcpy(buf + o, f.data, n);
			if ((code = lines(r, buf + o, n)) == 0)
				o += n;
		}
		if (r->got == f.payload_length) {
			r->in_frame = 0;
			if (r->op >= WSLAY_CONNECTION_CLOSE)
				code = code != 0 ? code : control(r);
			else if (f.fin)
				r->in_msg = 0;
		}
	}
	r->held += len - r->feed_len;
	if (code == 0 && n != WSLAY_ERR_WANT_READ)
		code = WS_CLOSE_PROTOCOL;	/* (wslay: a bad length) */
	*out = o;
	return code;
}

/* wslay's writer hands the frame's bytes here: into the destination. */
struct sink {
	char	*dst;
	size_t	 len;
};

static ssize_t
sink(const uint8_t *data, size_t len, int flags, void *arg)
{
	struct sink *s = arg;

	(void)flags;
	memcpy(s->dst + s->len, data, len);
	s->len += len;
	return len;
}

/* wslay's writer for the server's frames: one for the process (wslay's
 * context is a few kilobytes, and holds nothing between whole frames). */
static wslay_frame_context_ptr writer;
static struct sink writer_sink;

int
ws_frame_init(void)
{
	static const struct wslay_frame_callbacks cb = { .send_callback =
	    sink };

	if (writer == NULL &&
	    wslay_frame_context_init(&writer, &cb, &writer_sink) != 0)
		return -1;
	return 0;
}

size_t
ws_frame(char *dst, int op, const char *payload, size_t len)
{
	struct wslay_frame_iocb f = { .fin = 1, .opcode = op,
	    .payload_length = len, .data = (const uint8_t *)payload,
	    .data_length = len };

	writer_sink.dst = dst;
	writer_sink.len = 0;
	(void)wslay_frame_send(writer, &f);	/* (the sink takes all) */
	return writer_sink.len;
}

size_t
ws_close_frame(char *dst, int code)
{
	char payload[2] = { (char)(code >> 8), (char)(code & 0xff) };

	return ws_frame(dst, WS_OP_CLOSE, payload, 2);
}
