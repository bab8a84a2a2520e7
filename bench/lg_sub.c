/*
 * A subscriber child: one epoll loop holding subscribers lo..hi-1 (at most
 * LG_CHILD_CONNS), each on its own connection, each subscribed to one topic.
 * It times every delivery against the send time at the start of its
 * payload and counts into its slot of the shared mapping.  It exits when
 * the parent says so or when the pipe from the parent closes.  With
 * --reconnect a subscriber the server closes connects again and resumes
 * (herald: SUB topic <the last seq seen>), as after a restart.  With TLS
 * (lg_tls.c) the handshake runs in the same loop, between connect() and
 * the subscription; so does the HTTP request that opens a WebSocket or an
 * event stream (lg_ws.c), whose frames are then unwrapped into the byte
 * stream the protocol's decoder reads.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

#define EPOLL_BATCH	1024
#define PARENT_KEY	UINT64_MAX	/* epoll key of the pipe from the parent */

/* A subscriber's connection, one state at a time. */
enum sc_state {
	SC_IDLE,	/* queued for connect() */
	SC_CONNECTING,	/* connect() in progress, waiting for EPOLLOUT */
	SC_HANDSHAKE,	/* TLS handshake in progress */
	SC_OPENING,	/* HTTP request sent (--ws, --sse), waiting for the
			 * response's head */
	SC_SUBSCRIBING,	/* subscription sent, waiting for its confirmation */
	SC_READY,	/* subscribed: deliveries are counted */
	SC_DEAD		/* closed by the server, or given up */
};

struct sconn {
	int		 fd;
	uint32_t	 idx;		/* global subscriber number */
	uint8_t		 state;		/* enum sc_state */
	uint8_t		 slow;		/* stops reading once subscribed */
	uint8_t		 idle;		/* on the topic nobody publishes to */
	uint8_t		 retries;	/* failed connect attempts */
	uint8_t		 resume;	/* resubscribing after PH_DROP */
	uint32_t	 plen;		/* bytes of an unfinished frame in pend */
	char		*pend;
	uint64_t	 last_seq;	/* herald: newest seq seen, for resume */
	SSL		*ssl;		/* TLS: the connection's */
	SSL_SESSION	*sess;		/* TLS: the session a reconnect resumes */
	struct ws_conn	*ws;		/* --ws: the frame reader, once open */
};

struct sub_child {
	const struct lg_opts *o;
	struct lg_ctl	*ctl;
	struct lg_slot	*slot;
	int		 ep;
	struct sconn	*c;
	int		 n;		/* subscribers held by this child */
	uint32_t	*queue;		/* subscribers waiting for connect() */
	int		 qhead, qlen;
	int		 inflight;	/* connecting, in TLS, opening or
					 * subscribing */
	uint64_t	 pause_until;	/* --reconnect: no connect() before */
	SSL_CTX		*tls;		/* TLS: the context, NULL for plaintext */
	char		*rbuf;		/* LG_READ_BUF */
	char		*wbuf;		/* --ws: LG_READ_BUF of frames, read
					 * before they are unwrapped into rbuf */
	uint64_t	 now;		/* time of the latest read */
	uint64_t	 step;		/* ctl->step at the latest read */
	uint64_t	 step_start;	/* ctl->step_start_ns at the latest read */
};

static void
note_error(struct sub_child *sc, const char *s, size_t n)
{
	if (n >= sizeof(sc->slot->last_error))
		n = sizeof(sc->slot->last_error) - 1;
	memcpy(sc->slot->last_error, s, n);
	sc->slot->last_error[n] = '\0';
}

/* Queue subscriber i for connect(). */
static void
enqueue(struct sub_child *sc, int i)
{
	sc->c[i].state = SC_IDLE;
	sc->queue[(sc->qhead + sc->qlen++) % sc->n] = (uint32_t)i;
}

/* Close a connection's socket and drop what it had pending to send. */
static void
conn_shut(struct sub_child *sc, struct sconn *c)
{
	if (c->ssl != NULL) {
		tls_conn_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		if (c->state != SC_CONNECTING)
			sc->slot->connected--;
	}
	ws_conn_free(c->ws);
	c->ws = NULL;
	free(c->pend);
	c->pend = NULL;
	c->plen = 0;
}

/*
 * Close subscriber i's connection.  A connection that had not yet been
 * confirmed is retried (up to LG_MAX_RETRIES, or LG_RECONNECT_RETRIES
 * LG_RECONNECT_PAUSE_MS apart when it is a --reconnect: the server may be
 * starting again); a ready one is dead when the server closed it, unless
 * --reconnect, which queues it to resume.
 */
static void
conn_close(struct sub_child *sc, int i, int by_server)
{
	struct sconn *c = &sc->c[i];
	int reconnect = sc->o->reconnect && c->resume;

	conn_shut(sc, c);
	if (c->state == SC_CONNECTING || c->state == SC_HANDSHAKE ||
	    c->state == SC_OPENING || c->state == SC_SUBSCRIBING) {
		sc->inflight--;
		if (reconnect)
			sc->pause_until = now_ns() +
			    LG_RECONNECT_PAUSE_MS * 1000000ull;
		if (++c->retries < (reconnect ? LG_RECONNECT_RETRIES :
		    LG_MAX_RETRIES) && sc->ctl->phase != PH_EXIT)
			enqueue(sc, i);
		else {
			c->state = SC_DEAD;
			sc->slot->failed++;
		}
		return;
	}
	if (c->state == SC_READY && by_server) {
		sc->slot->closed++;
		if (sc->o->reconnect && sc->ctl->phase != PH_EXIT) {
			c->resume = 1;
			c->retries = 0;
			enqueue(sc, i);
			return;
		}
	}
	c->state = SC_DEAD;
}

/* Start a non-blocking connect() for subscriber i from its source address. */
static void
conn_start(struct sub_child *sc, int i)
{
	struct sconn *c = &sc->c[i];
	struct sockaddr_in src, dst;
	struct epoll_event ev;
	int fd, on = 1;

	if (sc->slot->first_conn_ns == 0)
		sc->slot->first_conn_ns = now_ns();
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000001u + c->idx % (uint32_t)sc->o->naddrs);
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	/* --storm-move: a resume goes to the next server (a failover) */
	dst.sin_port = htons((uint16_t)(sc->o->nports > 1 ?
	    sc->o->ports[(c->idx + (c->resume && sc->o->storm_move)) %
	    sc->o->nports] : sc->o->port));
	inet_pton(AF_INET, sc->o->host, &dst.sin_addr);
	c->state = SC_CONNECTING;
	sc->inflight++;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		note_error(sc, "socket failed", 13);
		goto fail;
	}
	c->fd = fd;
	/* let connect() pick the port, so that ports are per destination */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) == -1 ||
	    (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == -1 &&
	    errno != EINPROGRESS)) {
		snprintf(sc->slot->last_error, sizeof(sc->slot->last_error),
		    "connect: %s", strerror(errno));
		goto fail;
	}
	ev.events = EPOLLOUT;
	ev.data.u64 = (uint64_t)i;
	if (epoll_ctl(sc->ep, EPOLL_CTL_ADD, fd, &ev) == -1)
		goto fail;
	return;
fail:
	conn_close(sc, i, 0);
}

/* Wait for events (epoll) on subscriber i's connection. */
static void
conn_wait(struct sub_child *sc, int i, uint32_t events)
{
	struct epoll_event ev;

	ev.events = events;
	ev.data.u64 = (uint64_t)i;
	epoll_ctl(sc->ep, EPOLL_CTL_MOD, sc->c[i].fd, &ev);
}

/* Write all of buf to c's connection (plaintext or TLS): 0 or -1. */
static int
conn_write(struct sconn *c, const char *buf, size_t n)
{
	if (c->ssl != NULL)
		return tls_send(c->ssl, buf, n);
	return write(c->fd, buf, n) == (ssize_t)n ? 0 : -1;
}

/* Send buf, the protocol's bytes (over WebSocket: in one text frame,
 * opcode 1): 0 or -1. */
static int
conn_send(struct sconn *c, const char *buf, size_t n)
{
	char f[LG_MAX_TOKEN + 1024 + LG_WS_HEADER_MAX];

	if (c->ws == NULL)
		return conn_write(c, buf, n);
	if (n > sizeof(f) - LG_WS_HEADER_MAX)
		return -1;
	return conn_write(c, f, ws_frame(f, 1, buf, n));
}

/*
 * Read into buf, at most len bytes: the number read, 0 when the connection
 * ended, -1 when there is nothing now; *again when more may be waiting.
 */
static ssize_t
conn_recv(struct sconn *c, char *buf, size_t len, int *again)
{
	ssize_t r;

	if (c->ssl != NULL)
		return tls_recv(c->ssl, buf, len, again);
	r = read(c->fd, buf, len);
	if (r == -1 && errno == EAGAIN)
		return -1;
	*again = r == (ssize_t)len;
	return r > 0 ? r : 0;
}

static int conn_read(struct sub_child *, int);

/* Subscriber c's topic: the slow ones share topic 0 with the first
 * normal ones; the idle ones have one nobody publishes to (-1). */
static int
conn_topic(const struct sub_child *sc, const struct sconn *c)
{
	return c->idle ? -1 : c->idx < (uint32_t)sc->o->subs ?
	    (int)(c->idx % (uint32_t)sc->o->topics) : 0;
}

/*
 * Subscriber i's connection is up (its TLS handshake done, or its
 * WebSocket open): send the protocol's handshake and the SUB, then wait
 * for what comes.
 */
static void
conn_subscribe(struct sub_child *sc, int i)
{
	struct sconn *c = &sc->c[i];
	char out[LG_MAX_TOKEN + 1024], topic[64];
	size_t n;

	c->state = SC_SUBSCRIBING;
	wire_topic(sc->o->proto, topic, sizeof(topic), conn_topic(sc, c));
	n = wire_connect(sc->o->proto, out, sizeof(out), c->idx);
	if (sc->o->auth_token != NULL)	/* before its SUB, in the same write */
		n += snprintf(out + n, sizeof(out) - n, "AUTH %s\n",
		    sc->o->auth_token);
	n += wire_subscribe(sc->o->proto, out + n, sizeof(out) - n, topic,
	    c->idx, c->resume && sc->o->proto == PROTO_HERALD, c->last_seq);
	if (conn_send(c, out, n) == -1) {
		note_error(sc, "short write of the subscription", 31);
		conn_close(sc, i, 0);
		return;
	}
	/* Edge-triggered: a level-triggered socket would be polled once more
	 * after each read only to find it empty (a tenth of our CPU).
	 * EPOLLRDHUP tells an end that came with the last data (BYE, then
	 * the close), which a short read would leave unread. */
	conn_wait(sc, i, EPOLLIN | EPOLLET | EPOLLRDHUP);
	/* the handshake's last read may have left records in OpenSSL's
	 * buffer, which no edge of the socket would announce */
	if (c->ssl != NULL)
		while (c->fd >= 0 && conn_read(sc, i) == 1)
			;
}

/* One step of subscriber i's TLS handshake; subscribe once it is done. */
static void
conn_handshake(struct sub_child *sc, int i)
{
	struct sconn *c = &sc->c[i];
	uint32_t want = 0;

	switch (tls_handshake(c->ssl, &want)) {
	case 1:
		if (SSL_session_reused(c->ssl))
			sc->slot->tls_resumed++;
		conn_subscribe(sc, i);
		break;
	case 0:
		conn_wait(sc, i, want);
		break;
	default:
		tls_error(sc->slot->last_error, sizeof(sc->slot->last_error),
		    "TLS handshake");
		conn_close(sc, i, 0);
	}
}

/*
 * Subscriber i's connection is up: send the HTTP request that opens its
 * stream (for SSE, the subscription is in it), then wait for the head of
 * the response (conn_opened).
 */
static void
conn_open(struct sub_child *sc, int i)
{
	struct sconn *c = &sc->c[i];
	char out[1024], topic[64];
	size_t n;

	wire_topic(sc->o->proto, topic, sizeof(topic), conn_topic(sc, c));
	n = http_request(sc->o, out, sizeof(out), c->idx, topic);
	c->state = SC_OPENING;
	if (n == 0 || conn_write(c, out, n) == -1) {
		note_error(sc, "short write of the HTTP request", 31);
		conn_close(sc, i, 0);
		return;
	}
	conn_wait(sc, i, EPOLLIN | EPOLLET);
}

/* connect() finished for subscriber i: on to TLS or the subscription. */
static void
conn_connected(struct sub_child *sc, int i)
{
	struct sconn *c = &sc->c[i];
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err) {
		snprintf(sc->slot->last_error, sizeof(sc->slot->last_error),
		    "connect: %s", strerror(err ? err : errno));
		conn_close(sc, i, 0);
		return;
	}
	sc->slot->connected++;
	if (sc->o->xport != XP_TCP) {
		conn_open(sc, i);
		return;
	}
	if (sc->tls == NULL) {
		conn_subscribe(sc, i);
		return;
	}
	c->state = SC_HANDSHAKE;
	if ((c->ssl = tls_conn_new(sc->tls, c->fd, &c->sess)) == NULL) {
		tls_error(sc->slot->last_error, sizeof(sc->slot->last_error),
		    "SSL_new");
		conn_close(sc, i, 0);
		return;
	}
	conn_handshake(sc, i);
}

/* Count one delivery whose payload is p. */
static void
on_delivery(struct sub_child *sc, const char *p, size_t plen)
{
	struct lg_slot *s = sc->slot;
	uint64_t ts, lat;

	if (wire_payload_ts(p, plen, &ts) == -1) {
		s->stale++;		/* not ours (a peer's own traffic) */
		return;
	}
	if (ts < sc->step_start) {
		s->stale++;
		return;
	}
	lat = sc->now > ts ? sc->now - ts : 0;
	s->recv++;
	hist_add(&s->hist, lat);
	if (s->max_step != sc->step) {
		s->max_step = sc->step;
		s->max_ns = 0;
	}
	if (lat > s->max_ns)
		s->max_ns = lat;
}

/* Act on one decoded frame of subscriber i; -1 closes the connection. */
static int
on_frame(struct sub_child *sc, int i, const struct wire_ev *ev)
{
	struct sconn *c = &sc->c[i];
	char pong[8];
	size_t n;

	switch (ev->type) {
	case EV_MSG:
		on_delivery(sc, ev->payload, ev->plen);
		if (ev->seq > c->last_seq)
			c->last_seq = ev->seq;
		break;
	case EV_SUBACK:
		if (ev->seq > c->last_seq)
			c->last_seq = ev->seq;
		if (c->state != SC_SUBSCRIBING)
			break;
		c->state = SC_READY;
		sc->inflight--;
		sc->slot->ready++;
		if (c->resume)
			sc->slot->resynced++;
		sc->slot->last_ready_ns = sc->now;
		if (c->slow)		/* it never reads again */
			epoll_ctl(sc->ep, EPOLL_CTL_DEL, c->fd, NULL);
		return c->slow ? 1 : 0;
	case EV_VAL:
		sc->slot->vals++;
		break;
	case EV_GAP:
		sc->slot->gaps++;
		sc->slot->gap_seqs += ev->seq2 - ev->seq + 1;
		if (ev->seq2 > c->last_seq)
			c->last_seq = ev->seq2;
		break;
	case EV_PING:
		n = wire_pong(sc->o->proto, pong, sizeof(pong));
		if (conn_send(c, pong, n) == -1)
			return -1;
		break;
	case EV_ERR:
		sc->slot->errors++;
		note_error(sc, ev->text, ev->tlen);
		break;
	case EV_BYE:
		note_error(sc, ev->text, ev->tlen);
		break;
	case EV_NONE:
		break;
	}
	return 0;
}

/* Keep the unfinished frame buf[0..len) of subscriber c for the next read. */
static void
keep_partial(struct sconn *c, const char *buf, size_t len)
{
	if (len == 0) {
		free(c->pend);
		c->pend = NULL;
		c->plen = 0;
		return;
	}
	if (c->pend == NULL || c->plen < len) {
		char *p = realloc(c->pend, len);

		if (p == NULL)
			abort();
		c->pend = p;
	}
	memmove(c->pend, buf, len);
	c->plen = (uint32_t)len;
}

/*
 * Act on every whole frame of the protocol in sc->rbuf[0..have) of
 * subscriber i, and keep what is left for the next read.  Returns 0, or
 * -1 when the connection was closed or is read no more.
 */
static int
conn_decode(struct sub_child *sc, int i, size_t have)
{
	struct sconn *c = &sc->c[i];
	struct wire_ev ev;
	size_t off = 0;
	long k;

	while (off < have) {
		memset(&ev, 0, sizeof(ev));
		k = sc->o->xport == XP_SSE ?
		    wire_parse_sse(sc->rbuf + off, have - off, &ev) :
		    wire_parse(sc->o->proto, sc->rbuf + off, have - off, &ev);
		if (k == 0)
			break;
		if (k < 0) {
			sc->slot->errors++;
			note_error(sc, "protocol error", 14);
			conn_close(sc, i, 1);
			return -1;
		}
		off += (size_t)k;
		switch (on_frame(sc, i, &ev)) {
		case -1:
			conn_close(sc, i, 1);
			return -1;
		case 1:			/* a slow subscriber: drop the rest */
			keep_partial(c, NULL, 0);
			return -1;
		}
	}
	keep_partial(c, sc->rbuf + off, have - off);
	return 0;
}

/*
 * Unwrap the WebSocket frames raw[0..len) of subscriber i into
 * sc->rbuf[have..) and answer a ping.  Returns the bytes of the
 * protocol's stream now in sc->rbuf, or -1 when the server closed or
 * broke the framing (the connection is closed).
 */
static long
conn_unframe(struct sub_child *sc, int i, const char *raw, size_t len,
    size_t have)
{
	struct sconn *c = &sc->c[i];
	char f[LG_WS_HEADER_MAX + 125];
	const char *pong;
	size_t plen;
	long n = ws_unframe(c->ws, raw, len, sc->rbuf + have);

	if (n < 0) {
		note_error(sc, "WebSocket: a close frame or a bad frame", 39);
		conn_close(sc, i, 1);
		return -1;
	}
	if ((pong = ws_pong(c->ws, &plen)) != NULL)
		conn_write(c, f, ws_frame(f, 0xa, pong, plen));
	return (long)have + n;
}

/*
 * The response's head to subscriber i's HTTP request, maybe followed by
 * the stream, in sc->rbuf[0..have).  Once the head is whole and right,
 * a WebSocket subscribes, an event stream (subscribed by the request)
 * waits for its confirmation; what came after the head is read as the
 * stream.
 */
static void
conn_opened(struct sub_child *sc, int i, size_t have)
{
	struct sconn *c = &sc->c[i];
	long h, n;

	h = http_response(sc->o, c->idx, sc->rbuf, have,
	    sc->slot->last_error, sizeof(sc->slot->last_error));
	if (h <= 0) {
		if (h == 0)
			keep_partial(c, sc->rbuf, have);
		else
			conn_close(sc, i, 0);
		return;
	}
	keep_partial(c, NULL, 0);
	have -= (size_t)h;
	if (sc->o->xport == XP_SSE) {
		c->state = SC_SUBSCRIBING;
		memmove(sc->rbuf, sc->rbuf + h, have);
		conn_decode(sc, i, have);
		return;
	}
	if ((c->ws = ws_conn_new()) == NULL) {
		note_error(sc, "out of memory", 13);
		conn_close(sc, i, 0);
		return;
	}
	memcpy(sc->wbuf, sc->rbuf + h, have);
	conn_subscribe(sc, i);
	if (c->fd >= 0 && (n = conn_unframe(sc, i, sc->wbuf, have, 0)) >= 0)
		conn_decode(sc, i, (size_t)n);
}

/*
 * Read what subscriber i's connection has and act on every whole frame.
 * Returns 1 if more may be waiting (the read filled the buffer, or TLS
 * stopped early: the connection is edge-triggered, so read again), else 0.
 */
static int
conn_read(struct sub_child *sc, int i)
{
	struct sconn *c = &sc->c[i];
	size_t have = c->plen;
	ssize_t r;
	long n;
	int again = 0;

	if (have > 0)
		memcpy(sc->rbuf, c->pend, have);
	/* frames are read apart: their payload, never longer, joins what
	 * was pending */
	r = conn_recv(c, c->ws != NULL ? sc->wbuf : sc->rbuf + have,
	    LG_READ_BUF - have, &again);
	if (r <= 0) {
		if (r == 0)
			conn_close(sc, i, 1);
		return 0;
	}
	sc->now = now_ns();
	sc->step = sc->ctl->step;
	sc->step_start = sc->ctl->step_start_ns;
	if (c->state == SC_OPENING) {
		conn_opened(sc, i, have + (size_t)r);
		return c->fd >= 0 && again;
	}
	if (c->ws == NULL)
		n = (long)have + r;
	else if ((n = conn_unframe(sc, i, sc->wbuf, (size_t)r, have)) < 0)
		return 0;
	return conn_decode(sc, i, (size_t)n) == 0 ? again : 0;
}

/* PH_DROP: close every connection at once, then resubscribe them all. */
static void
drop_all(struct sub_child *sc)
{
	int i;

	for (i = 0; i < sc->n; i++) {
		struct sconn *c = &sc->c[i];

		conn_shut(sc, c);
		c->retries = 0;
		c->resume = 1;
	}
	sc->inflight = 0;
	sc->qhead = sc->qlen = 0;
	for (i = 0; i < sc->n; i++)
		enqueue(sc, i);
}

/* The child's life: connect, then serve events until PH_EXIT. */
void
sub_child_main(const struct lg_opts *o, struct lg_ctl *ctl, int child,
    int lo, int hi, int parent_fd)
{
	struct epoll_event evs[EPOLL_BATCH], pev;
	struct sub_child sc;
	int i, k, dropped = 0;

	memset(&sc, 0, sizeof(sc));
	sc.o = o;
	sc.ctl = ctl;
	sc.slot = &ctl->slot[child];
	sc.n = hi - lo;
	sc.c = calloc((size_t)sc.n + 1, sizeof(*sc.c));
	sc.queue = calloc((size_t)sc.n + 1, sizeof(*sc.queue));
	sc.rbuf = malloc(LG_READ_BUF);
	sc.wbuf = o->xport == XP_WS ? malloc(LG_READ_BUF) : NULL;
	if ((sc.ep = epoll_create1(EPOLL_CLOEXEC)) == -1 || sc.c == NULL ||
	    sc.queue == NULL || sc.rbuf == NULL ||
	    (o->xport == XP_WS && sc.wbuf == NULL))
		_exit(2);
	if (o->tls && (sc.tls = tls_client_ctx(o, sc.slot->last_error,
	    sizeof(sc.slot->last_error))) == NULL) {
		sc.slot->failed = (uint64_t)sc.n;	/* the parent goes on */
		_exit(2);
	}
	pev.events = EPOLLIN;
	pev.data.u64 = PARENT_KEY;
	epoll_ctl(sc.ep, EPOLL_CTL_ADD, parent_fd, &pev);
	for (i = 0; i < sc.n; i++) {
		sc.c[i].fd = -1;
		sc.c[i].idx = (uint32_t)(lo + i);
		sc.c[i].slow = lo + i >= o->subs && lo + i < o->subs + o->slow;
		sc.c[i].idle = lo + i >= o->subs + o->slow;
		enqueue(&sc, i);
	}
	sc.slot->alive = 1;
	while (ctl->phase != PH_EXIT) {
		if (ctl->phase == PH_DROP && !dropped) {
			dropped = 1;
			drop_all(&sc);
		}
		while (sc.qlen > 0 && sc.inflight < o->inflight &&
		    (sc.pause_until == 0 || now_ns() >= sc.pause_until)) {
			i = (int)sc.queue[sc.qhead];
			sc.qhead = (sc.qhead + 1) % sc.n;
			sc.qlen--;
			conn_start(&sc, i);
		}
		k = epoll_wait(sc.ep, evs, EPOLL_BATCH, 20);
		for (i = 0; i < k; i++) {
			uint64_t key = evs[i].data.u64;

			if (key == PARENT_KEY)
				_exit(0);	/* the parent is gone */
			if (sc.c[key].state == SC_CONNECTING)
				conn_connected(&sc, (int)key);
			else if (sc.c[key].state == SC_HANDSHAKE)
				conn_handshake(&sc, (int)key);
			else {
				while (sc.c[key].fd >= 0 &&
				    conn_read(&sc, (int)key) == 1)
					;
				if (sc.c[key].fd >= 0 && (evs[i].events &
				    (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
					(void)conn_read(&sc, (int)key);
			}
		}
	}
	_exit(0);
}
