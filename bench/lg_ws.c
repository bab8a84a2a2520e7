/*
 * The subscribers over HTTP (--ws PATH, --sse PATH): the request that
 * opens the stream, the check of the response's head, and for WebSocket
 * (RFC 6455) the frames, read and written by wslay's frame layer.  The
 * payload of the server's data frames is the protocol's byte stream
 * (herald: lines, herald-protocol(7) "OTHER FRAMINGS"; NATS: its text
 * protocol, an op split over frames or several in one), which lg_sub.c
 * decodes as it decodes a plain connection's.  No I/O here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "loadgen.h"

/* RFC 6455 section 1.3: what the key is hashed with. */
#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN	24	/* base64 of 16 bytes */
#define WS_ACCEPT_LEN	28	/* base64 of a SHA-1 */
#define WS_CONTROL_MAX	125	/* a control frame's payload (section 5.5) */

/* One connection's reader: wslay's frame context, and the frame it is in. */
struct ws_conn {
	wslay_frame_context_ptr ctx;
	const char	*feed;		/* what wslay may read now */
	size_t		 feed_len;
	uint64_t	 got;		/* payload of this frame read */
	uint8_t		 in_frame;	/* its header was read */
	uint8_t		 op;		/* its opcode */
	uint8_t		 ctl_len;
	uint8_t		 pong_due;	/* a ping to answer: ctl[0..ctl_len) */
	char		 ctl[WS_CONTROL_MAX];
};

/* wslay's reader pulls bytes through this: the buffer being read. */
static ssize_t
ws_feed(uint8_t *buf, size_t len, int flags, void *arg)
{
	struct ws_conn *w = arg;
	size_t n = len < w->feed_len ? len : w->feed_len;

	(void)flags;
	memcpy(buf, w->feed, n);
	w->feed += n;
	w->feed_len -= n;
	return (ssize_t)n;	/* 0: wslay wants more (WSLAY_ERR_WANT_READ) */
}

/* A reader for one connection's frames; NULL if memory runs out. */
struct ws_conn *
ws_conn_new(void)
{
	static const struct wslay_frame_callbacks cb = {
		.recv_callback = ws_feed };
	struct ws_conn *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	if (wslay_frame_context_init(&w->ctx, &cb, w) != 0) {
		free(w);
		return NULL;
	}
	return w;
}

/* Free a reader (NULL: nothing). */
void
ws_conn_free(struct ws_conn *w)
{
	if (w == NULL)
		return;
	wslay_frame_context_free(w->ctx);
	free(w);
}

/*
 * Read raw[0..len) (bytes from the socket) and append the payload of its
 * data frames (text, binary and their continuations) to out, which has
 * room for len bytes.  Returns the bytes appended, or -1 when the server
 * closed (a close frame) or broke the framing.  A ping leaves its
 * payload for ws_pong.
 */
long
ws_unframe(struct ws_conn *w, const char *raw, size_t len, char *out)
{
	struct wslay_frame_iocb f;
	size_t o = 0;
	ssize_t n;

	w->feed = raw;
	w->feed_len = len;
	while ((n = wslay_frame_recv(w->ctx, &f)) >= 0) {
		if (!w->in_frame) {
			/* a server's frames are never masked (section 5.1) */
			if (f.mask || f.rsv != 0)
				return -1;
			w->in_frame = 1;
			w->got = 0;
			w->op = f.opcode;
			w->ctl_len = 0;
		}
		w->got += (uint64_t)n;
		if (w->op >= WSLAY_CONNECTION_CLOSE) {
			if (w->ctl_len + (size_t)n > WS_CONTROL_MAX)
				return -1;
			memcpy(w->ctl + w->ctl_len, f.data, (size_t)n);
			w->ctl_len += (uint8_t)n;
		} else {
			memcpy(out + o, f.data, (size_t)n);
			o += (size_t)n;
		}
		if (w->got == f.payload_length) {
			w->in_frame = 0;
			if (w->op == WSLAY_CONNECTION_CLOSE)
				return -1;
			if (w->op == WSLAY_PING)
				w->pong_due = 1;
		}
	}
	return n == WSLAY_ERR_WANT_READ ? (long)o : -1;
}

/* wslay's writer: one for the process, into the caller's buffer. */
struct ws_sink {
	char	*dst;
	size_t	 len;
};
static wslay_frame_context_ptr ws_writer;
static struct ws_sink ws_out;

static ssize_t
ws_sink_cb(const uint8_t *data, size_t len, int flags, void *arg)
{
	struct ws_sink *s = arg;

	(void)flags;
	memcpy(s->dst + s->len, data, len);
	s->len += len;
	return (ssize_t)len;
}

/* The masking key of each frame: the RFC asks for an unpredictable one
 * against proxies' caches, which a benchmark on loopback does not have. */
static int
ws_genmask(uint8_t *buf, size_t len, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)random();
	return 0;
}

/*
 * A client's (masked) frame of opcode op carrying payload[0..len), into
 * dst, which has room for len + LG_WS_HEADER_MAX bytes.  Returns the
 * frame's bytes, 0 if wslay cannot be set up.
 */
size_t
ws_frame(char *dst, int op, const char *payload, size_t len)
{
	static const struct wslay_frame_callbacks cb = {
		.send_callback = ws_sink_cb, .genmask_callback = ws_genmask };
	struct wslay_frame_iocb f = { .fin = 1, .opcode = (uint8_t)op,
	    .mask = 1, .payload_length = len,
	    .data = (const uint8_t *)payload, .data_length = len };

	if (ws_writer == NULL &&
	    wslay_frame_context_init(&ws_writer, &cb, &ws_out) != 0)
		return 0;
	ws_out.dst = dst;
	ws_out.len = 0;
	(void)wslay_frame_send(ws_writer, &f);	/* (the sink takes all) */
	return ws_out.len;
}

/* The payload of a ping not yet answered (*len bytes), or NULL; taking it
 * answers it. */
const char *
ws_pong(struct ws_conn *w, size_t *len)
{
	if (!w->pong_due)
		return NULL;
	w->pong_due = 0;
	*len = w->ctl_len;
	return w->ctl;
}

/* Subscriber idx's Sec-WebSocket-Key (WS_KEY_LEN + 1 bytes): made from
 * its number, so that the check of the answer needs nothing kept. */
static void
ws_key(uint32_t idx, char *key)
{
	unsigned char raw[17];

	snprintf((char *)raw, sizeof(raw), "loadgen%09u", idx);
	EVP_EncodeBlock((unsigned char *)key, raw, 16);
}

/* The Sec-WebSocket-Accept that answers subscriber idx's key. */
static void
ws_accept(uint32_t idx, char *accept)
{
	char in[WS_KEY_LEN + sizeof(WS_GUID)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	ws_key(idx, in);
	memcpy(in + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
	EVP_Digest(in, WS_KEY_LEN + sizeof(WS_GUID) - 1, md, &mdlen,
	    EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)accept, md, mdlen);
}

/*
 * The request that opens subscriber idx's stream: the WebSocket upgrade
 * (herald asks for its subprotocol), or GET /events?sub=topic (the SUB
 * is in the request).  Returns the bytes written, 0 if cap is too small.
 */
size_t
http_request(const struct lg_opts *o, char *out, size_t cap, uint32_t idx,
    const char *topic)
{
	char key[WS_KEY_LEN + 1], q[200];
	size_t j = 0;
	int n;

	if (o->xport == XP_SSE) {
		for (; *topic && j + 4 < sizeof(q); topic++)
			if (*topic == '/' || *topic == '+' || *topic == '#')
				j += (size_t)snprintf(q + j, sizeof(q) - j,
				    "%%%02X", (unsigned char)*topic);
			else
				q[j++] = *topic;
		q[j] = '\0';
		n = snprintf(out, cap, "GET %s?sub=%s HTTP/1.1\r\nHost: %s\r\n"
		    "Accept: text/event-stream\r\n\r\n", o->path, q, o->host);
	} else {
		ws_key(idx, key);
		n = snprintf(out, cap, "GET %s HTTP/1.1\r\nHost: %s\r\n"
		    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
		    "%s\r\n", o->path, o->host, key, o->proto == PROTO_HERALD ?
		    "Sec-WebSocket-Protocol: herald.v1\r\n" : "");
	}
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The value of header name in head[0..len), or NULL (*vlen: its bytes). */
static const char *
header(const char *head, size_t len, const char *name, size_t *vlen)
{
	const char *p = head, *end = head + len, *nl, *v;
	size_t nlen = strlen(name);

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p = nl + 1;
		if ((size_t)(end - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			v = p + nlen + 1;
			while (v < end && *v == ' ')
				v++;
			nl = memchr(v, '\r', (size_t)(end - v));
			*vlen = nl != NULL ? (size_t)(nl - v) : 0;
			return v;
		}
	}
	return NULL;
}

/*
 * The response to subscriber idx's request, in buf[0..len): the bytes of
 * its head when it is whole and right (WebSocket: 101 and the accept
 * that answers the key; SSE: 200), 0 while it is not whole, -1 (and why
 * in err) when it is wrong.
 */
long
http_response(const struct lg_opts *o, uint32_t idx, const char *buf,
    size_t len, char *err, size_t errlen)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4), *v, *sp;
	char accept[WS_ACCEPT_LEN + 1];
	size_t hlen, vlen = 0;

	if (end == NULL) {
		if (len <= LG_MAX_FRAME)
			return 0;
		snprintf(err, errlen, "%s: no end of the response's head",
		    o->path);
		return -1;
	}
	hlen = (size_t)(end + 4 - buf);
	sp = memchr(buf, ' ', hlen);
	if (sp == NULL || memcmp(sp + 1, o->xport == XP_WS ? "101 " : "200 ",
	    4) != 0) {
		v = memchr(buf, '\r', hlen);
		snprintf(err, errlen, "%s: %.*s", o->path,
		    (int)(v != NULL ? v - buf : 40), buf);
		return -1;
	}
	if (o->xport == XP_WS) {
		ws_accept(idx, accept);
		v = header(buf, hlen, "Sec-WebSocket-Accept", &vlen);
		if (v == NULL || vlen != WS_ACCEPT_LEN ||
		    memcmp(v, accept, WS_ACCEPT_LEN) != 0) {
			snprintf(err, errlen, "%s: Sec-WebSocket-Accept does "
			    "not answer the key", o->path);
			return -1;
		}
	}
	return (long)hlen;
}
