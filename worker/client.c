/*
 * A client of a worker, the connection: its input (line framing with
 * max_line, the lines handed to command.c), its output (replies queued
 * in out; messages written from the bus by fanout.c), its cursor's mode
 * (client_cursor_set), and its end, in exactly one place.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "protocol.h"
#include "topic.h"
#include "worker.h"
#include "wsframe.h"

static void	client_greet(struct client *);
static void	client_eof(struct client *);
static void	out_release(struct client *);
static void	client_handshake(struct client *);

/* A client of socket fd from listener l, on the timer wheel, counted,
 * caught up, in no epoll set yet; NULL if memory runs out. */
struct client *
client_alloc(struct worker *w, int fd, const struct listener *l,
    int addr_slot)
{
	struct client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->w = w;
	c->fd = fd;
	c->id = ++w->next_id;
	c->kind = l->kind;
	c->listener = l - w->h->listeners;
	c->framing = l->kind == LISTEN_HTTP ? FRAME_HTTP : FRAME_LINES;
	/* Ingest on a local listener stays trusted (heraldd.conf(5)). */
	c->need_auth = w->cfg->auth_required &&
	    (l->kind != LISTEN_INGEST || !l->local);
	c->addr_slot = addr_slot;
	c->cursor = CUR_LIVE;
	c->last_in = c->last_out = (uint32_t)now_ms();
	timers_add(c);
	w->nclients++;
	bus_counter_add(w->bus, w->slot, CTR_CLIENTS, 1);
	return c;
}

/* Create a client for a socket accepted from l; greets it (client_greet),
 * or on a TLS listener first begins its handshake (tls.c), which greets it
 * when done. */
struct client *
client_new(struct worker *w, int fd, const struct listener *l, int addr_slot)
{
	struct client *c = client_alloc(w, fd, l, addr_slot);

	if (c == NULL)
		return NULL;
	bus_counter_add(w->bus, w->slot, CTR_CONNECTIONS, 1);
	if (l->tls) {
		if (tls_start(c) == -1)
			client_kill(c);
		else
			client_handshake(c);
		return c;
	}
	worker_want(c, 1, 0);
	client_greet(c);
	return c;
}

/* Go on with a TLS client's handshake; once done, HELLO. */
static void
client_handshake(struct client *c)
{
	if (tls_handshake(c) == 1) {
		authn_certificate(c);
		if (c->state != CS_OPEN)
			return;
		worker_want(c, 1, 0);
		client_greet(c);
	}
}

/* Read what the client sent, as read(2) does (TLS: the plaintext). */
static ssize_t
client_read(struct client *c, char *buf, size_t len)
{
	return c->tls != NULL ? tls_read(c, buf, len) : read(c->fd, buf, len);
}

/*
 * Write iov to the client's socket, as sendmsg(2) does: the bytes taken,
 * or -1 with errno.  sendmsg rather than writev: a socket needs none of
 * the file layer writev goes through, and MSG_NOSIGNAL spares a closed
 * peer's SIGPIPE.  TLS: tls_writev, whose bytes taken may be held for a
 * moment (tls_holds).
 */
ssize_t
client_writev(struct client *c, struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };

	if (c->tls != NULL)
		return tls_writev(c, iov, n);
	return sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * HELLO.  A client that sent its first commands without waiting for it
 * (a reconnect storm: they are here before accept) gets HELLO and their
 * replies in one write, not one write each: every write to a loopback
 * peer costs both sides its TCP work.  One read more for the others.
 */
static void
client_greet(struct client *c)
{
	struct worker *w = c->w;
	ssize_t n = client_read(c, w->rbuf, READ_CHUNK);

	if (n == -1 && errno != EAGAIN && errno != EINTR) {
		client_lost(c, "read");
		return;
	}
	if (c->framing == FRAME_HTTP) {		/* a request first */
		if (n == 0)
			client_kill(c);
		else if (n > 0)
			client_input(c, w->rbuf, n);
		if (c->state != CS_DEAD)
			client_flush(c);
		return;
	}
	int auth = authn_required(c);	/* not if its certificate said */

	if (n <= 0 && !auth) {	/* the common case: one write */
		client_send_seq(c, "HELLO herald/1", w->head_seq);
	} else {
		client_replyf(c, "HELLO herald/1 %llu%s\n",
		    (unsigned long long)w->head_seq, auth ? " auth" : "");
		if (n <= 0)
			client_flush(c);
	}
	if (n == 0 && c->state != CS_DEAD)	/* its end: HELLO all the same */
		client_eof(c);
	if (n <= 0)
		return;
	client_input(c, w->rbuf, n);
	if (c->state != CS_DEAD)
		client_flush(c);
}

/*
 * Acknowledge what a publisher sent at once.  PUB has no reply to carry
 * the ACK, and a publisher that left Nagle's algorithm on holds each
 * small write back until the one before is acknowledged: once the kernel
 * delays its ACKs (up to 40 ms), so does every message due meanwhile.
 * Not a TCP socket (unix ingest): asked once, then never.
 */
static void
client_ack_now(struct client *c)
{
	static const int one = 1;

	if (c->publisher && !c->no_quickack && c->state != CS_DEAD &&
	    setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one,
	    sizeof(one)) == -1)
		c->no_quickack = 1;
}

/* The client's buffers, created on first use; NULL if memory runs out. */
struct client_io *
client_io(struct client *c)
{
	if (c->io == NULL)
		c->io = calloc(1, sizeof(*c->io));
	return c->io;
}

/* Give the buffers back once nothing is pending: idle clients hold none. */
static void
io_release(struct client *c)
{
	struct client_io *io = c->io;

	if (io == NULL || io->out_len > io->out_off || io->in_len > 0 ||
	    io->snap != NULL || io->ws != NULL)
		return;
	free(io->out);
	free(io->in);
	free(io);
	c->io = NULL;
}

/* Make room for n more bytes of output; returns -1 if memory runs out. */
static int
out_reserve(struct client *c, size_t n)
{
	struct client_io *io = client_io(c);

	if (io == NULL)
		return -1;
	if (io->out_off > 0 && io->out_off == io->out_len)
		io->out_off = io->out_len = io->sse_from = 0;
	/* What is queued is bounded (REPLY_HIGH_WATER stops the commands,
	 * a snapshot queues a step at a time): far below 4 GB, which the
	 * 32-bit lengths must never pass. */
	if (n > UINT32_MAX / 2 - io->out_len)
		return -1;
	if (io->out_len + n <= io->out_cap)
		return 0;
	if (io->out_off > 0) {		/* slide the unsent part down */
		memmove(io->out, io->out + io->out_off,
		    io->out_len - io->out_off);
		io->out_len -= io->out_off;
		io->sse_from = io->sse_from > io->out_off ?
		    io->sse_from - io->out_off : 0;
		io->out_off = 0;
		if (io->out_len + n <= io->out_cap)
			return 0;
	}
	size_t cap = io->out_cap ? io->out_cap : 256;
	while (cap < io->out_len + n)
		cap *= 2;
	char *p = realloc(io->out, cap);
	if (p == NULL)
		return -1;
	io->out = p;
	io->out_cap = cap;
	return 0;
}

/* The moves enum cursor allows (worker.h draws them): from -> to. */
static const unsigned char cursor_moves[5][5] = {
	[CUR_LIVE] =	{ [CUR_LIVE] = 1, [CUR_BEHIND] = 1 },
	[CUR_BEHIND] =	{ [CUR_BEHIND] = 1, [CUR_LIVE] = 1, [CUR_REPLAY] = 1 },
	[CUR_REPLAY] =	{ [CUR_REPLAY] = 1, [CUR_SWEEP] = 1, [CUR_ALONE] = 1 },
	[CUR_SWEEP] =	{ [CUR_SWEEP] = 1, [CUR_LIVE] = 1, [CUR_ALONE] = 1 },
	[CUR_ALONE] =	{ [CUR_ALONE] = 1, [CUR_LIVE] = 1, [CUR_BEHIND] = 1 },
};

static const char *const cursor_names[] = {
	"LIVE", "BEHIND", "REPLAY", "SWEEP", "ALONE"
};

/*
 * Move the client's cursor to another mode (enum cursor).  The one place
 * that does: a move the drawing does not allow is a bug in the worker,
 * and would lose or repeat records, so it is fatal.  Going LIVE forgets
 * a resume's replay_end.
 */
void
client_cursor_set(struct client *c, enum cursor to)
{
	if (!cursor_moves[c->cursor][to])
		fatalx("client %u: cursor %s -> %s is not a move it may make",
		    c->id, cursor_names[c->cursor], cursor_names[to]);
	c->cursor = to;
	if (to == CUR_LIVE)
		c->replay_end = 0;
}

/*
 * Take the client off the fast path: its cursor becomes explicit at the
 * worker's position, and it walks the bus itself once its output is out.
 * Replies and commands need this, so that no record passes it by.
 */
void
client_detach(struct client *c)
{
	if (c->cursor != CUR_LIVE)
		return;
	c->pos = c->w->pos;
	c->next_seq = c->w->head_seq + 1;
	client_cursor_set(c, CUR_BEHIND);
}

/* Room for len more bytes after everything queued for the client; NULL
 * if it is dead, or was killed for want of memory. */
static char *
out_room(struct client *c, size_t len)
{
	if (c->state == CS_DEAD)
		return NULL;
	client_detach(c);
	if (out_reserve(c, len) == -1) {
		log_warnx("client %u: out of memory for output", c->id);
		client_kill(c);
		return NULL;
	}
	return c->io->out + c->io->out_len;
}

/* Append bytes to the client's output; -1 if it is dead or was killed. */
static int
out_append(struct client *c, const char *data, size_t len)
{
	char *p = out_room(c, len);

	if (p == NULL)
		return -1;
	memcpy(p, data, len);
	c->io->out_len += len;
	return 0;
}

/* Queue bytes for the client, after everything queued before: lines,
 * which an SSE or WS client gets in its framing. */
void
client_reply(struct client *c, const char *data, size_t len)
{
	if (out_append(c, data, len) == 0 && client_reframes(c) &&
	    memchr(data, '\n', len) != NULL)
		framing_convert(c);
}

/* Queue bytes already in the client's framing (an HTTP response, an
 * event, the rest of a record a write cut), as they are. */
void
client_reply_framed(struct client *c, const char *data, size_t len)
{
	if (out_append(c, data, len) == 0)
		c->io->sse_from = c->io->out_len;
}

/*
 * Send "word seq" now (HELLO, HB).  A caught-up client with nothing
 * queued owes no earlier bytes, so the line is written at once and needs
 * no buffer: a hundred thousand heartbeats allocate nothing.
 */
void
client_send_seq(struct client *c, const char *word, uint64_t seq)
{
	char line[64 + 48];
	int n = snprintf(line, sizeof(line), "%s %llu\n", word,
	    (unsigned long long)seq);

	/* Not inside a snapshot's lines (HB): a client being sent one is
	 * not idle anyway; nor before a TLS client's HELLO, nor an HTTP
	 * client before its answer. */
	if (client_snapshot(c) || tls_handshaking(c) ||
	    c->framing == FRAME_HTTP)
		return;
	if (client_reframes(c)) {
		char framed[sizeof(line)];
		n = framing_render(c->framing, framed, line, n);
		memcpy(line, framed, n);
	}
	if (c->state == CS_OPEN && client_live(c) && c->io == NULL) {
		struct iovec iov = { line, n };
		ssize_t k = client_writev(c, &iov, 1);
		if (k > 0) {
			c->last_out = (uint32_t)now_ms();
			bus_counter_add(c->w->bus, c->w->slot, CTR_BYTES_OUT,
			    k);
		}
		if (k == n)
			return;
		if (k == -1 && errno != EAGAIN && errno != EINTR) {
			client_lost(c, "write");
			return;
		}
		if (k < 0)
			k = 0;
		client_reply_framed(c, line + k, n - k);
	} else {
		client_reply_framed(c, line, n);
	}
	client_flush(c);
}

/* Queue a formatted line, whole however long it is. */
void
client_replyf(struct client *c, const char *fmt, ...)
{
	char buf[REPLY_LINE_FAST], *p;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0) {		/* no format of ours can fail: a bug */
		log_warnx("client %u: a reply could not be formatted (%s): "
		    "closed", c->id, fmt);
		client_kill(c);
		return;
	}
	if ((size_t)n < sizeof(buf)) {
		client_reply(c, buf, n);
		return;
	}
	/* Longer: formatted again, straight into the output (with room
	 * for vsnprintf's NUL, which the next reply overwrites). */
	if ((p = out_room(c, (size_t)n + 1)) == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	c->io->out_len += n;
	if (client_reframes(c))
		framing_convert(c);
}

/* Queue -ERR err detail (herald-protocol(7), ERROR REPLIES). */
void
client_reply_err(struct client *c, enum proto_err err, const char *detail,
    size_t dlen)
{
	char buf[1024];
	size_t n = proto_format_err(buf, sizeof(buf), err, detail, dlen);

	client_reply(c, buf, n);
}

/* Close at once (EOF, error): mark dead, the reaper frees it later. */
void
client_kill(struct client *c)
{
	struct worker *w = c->w;

	if (c->state == CS_DEAD)
		return;
	c->state = CS_DEAD;
	close(c->fd);		/* which also takes it out of w->epfd */
	c->fd = -1;
	bus_counter_add(w->bus, w->slot, CTR_CLIENTS, -1);
	if (c->addr_slot >= 0)
		addr_release(w->h->addrs, w->id, c->addr_slot);
	c->dead_next = w->dead;
	w->dead = c;
	worker_reap_later(w);
}

/*
 * The socket failed (reset, timed out by TCP_USER_TIMEOUT or keepalive:
 * the peer is gone): count it, say so, close.  what names the call.
 */
void
client_lost(struct client *c, const char *what)
{
	worker_limit(c->w, CTR_CONN_ERRORS, 0, "client %u: %s: %s: closed",
	    c->id, what, strerror(errno));
	client_kill(c);
}

/* Say BYE with a reason, flush what is queued, then close.  A TLS client
 * still in its handshake cannot be told: it is closed. */
void
client_bye(struct client *c, const char *reason)
{
	if (c->state != CS_OPEN)
		return;
	if (tls_handshaking(c) || c->framing == FRAME_HTTP) {
		client_kill(c);
		return;
	}
	client_replyf(c, "BYE %s\n", reason);
	if (c->framing == FRAME_WS)
		ws_close(c, WS_CLOSE_NORMAL);
	else
		client_end(c);
}

/* Close once what is queued is written (a BYE, an HTTP response). */
void
client_end(struct client *c)
{
	c->state = CS_CLOSING;
	c->last_in = (uint32_t)now_ms();	/* closing: BYE_GRACE_MS from now */
	timers_soon(c);
	worker_want(c, 0, 1);
}

/* Free a dead client: its subscriptions, buffers, the struct. */
void
client_free(struct client *c)
{
	struct worker *w = c->w;
	struct sub *s, *next;

	for (s = c->subs; s != NULL; s = next) {
		next = s->cnext;
		index_remove(&w->idx, s);
	}
	forward_forget(w, c);
	authn_forget(c);
	if (c->cursor == CUR_REPLAY || c->cursor == CUR_SWEEP)
		replay_forget(c);
	timers_remove(c);
	tls_free(c);
	w->nclients--;
	if (c->io != NULL) {
		if (c->io->snap != NULL)
			snapshot_end(c);
		ws_forget(c);
		free(c->io->out);
		free(c->io->in);
		free(c->io);
	}
	free(c);
}

/*
 * Write queued output.  Returns 1 when all of it is written, 0 when the
 * socket is full (EV_WRITE is then wanted), -1 when the client was killed.
 */
static int
write_out(struct client *c)
{
	struct client_io *io = c->io;
	int held = tls_flush(c);	/* bytes taken before come first */

	if (held == 0)
		return 0;
	if (held == -1) {
		client_lost(c, "write");
		return -1;
	}
	while (io != NULL && io->out_off < io->out_len) {
		struct iovec iov = { io->out + io->out_off,
		    io->out_len - io->out_off };
		ssize_t n = client_writev(c, &iov, 1);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR) {
				worker_want(c, c->reading, 1);
				return 0;
			}
			client_lost(c, "write");
			return -1;
		}
		client_written(c, n);
		io = c->io;
	}
	out_release(c);
	return 1;
}

/* Replies are rare: once all is out, an idle client holds no buffer at
 * all. */
static void
out_release(struct client *c)
{
	struct client_io *io = c->io;

	if (io == NULL || io->out_off < io->out_len)
		return;
	io->out_off = io->out_len = io->out_cap = io->sse_from = 0;
	free(io->out);
	io->out = NULL;
	io_release(c);
}

/* n bytes of the queued output went out (here, or in a write of the
 * fan-out that carried them first). */
void
client_written(struct client *c, size_t n)
{
	c->io->out_off += n;
	c->last_out = (uint32_t)now_ms();
	bus_counter_add(c->w->bus, c->w->slot, CTR_BYTES_OUT, n);
	out_release(c);
}

/*
 * Close gently (a BYE is written, a TLS handshake failed).  Input the
 * client sent meanwhile is read and dropped first, and our side shut
 * down: closing a socket with unread input sends a reset, which may
 * destroy the BYE before the client reads it (a client still sending
 * when it gets BYE too-many-errors).  TLS: close_notify first.
 */
void
client_close_drained(struct client *c)
{
	tls_close_notify(c);
	for (int i = 0; i < BYE_DRAIN_READS; i++)
		if (read(c->fd, c->w->rbuf, READ_CHUNK) <= 0)
			break;
	shutdown(c->fd, SHUT_WR);
	client_kill(c);
}

/*
 * The client ended its input (a shutdown of its side, as nc -q does):
 * read no more (EPOLLIN would fire for ever), but run every complete line
 * it sent, write what they answer (a SYNC's too, once it comes) and what
 * the bus owes it up to now, then close (client_eof_check).  An
 * unfinished last line is ignored: a line ends with LF.  One that takes
 * nothing of it for EOF_GRACE_MS is closed all the same (timers.c).
 */
static void
client_eof(struct client *c)
{
	c->eof = 1;
	c->last_in = (uint32_t)now_ms();	/* EOF_GRACE_MS from now */
	worker_want(c, 0, c->writing);
	timers_soon(c);
	client_flush(c);
}

/* A client whose input ended: close it once it is owed nothing more. */
static void
client_eof_check(struct client *c)
{
	const struct client_io *io = c->io;

	if (c->state == CS_OPEN && !c->waiting_sync && !c->pub_paused &&
	    client_pending(c) == 0 && !tls_holds(c) &&
	    (client_live(c) || c->pos >= c->w->pos) &&
	    (io == NULL || io->in_len == 0 ||
	    memchr(io->in, '\n', io->in_len) == NULL))
		client_kill(c);
}

/* 1 if the client may run commands now (see client_input).  None runs
 * once the worker is stopping: what it has not taken stays untaken. */
static int
may_execute(const struct client *c)
{
	if (c->state != CS_OPEN || c->waiting_sync || c->auth_wait ||
	    c->w->stopping || client_snapshot(c))
		return 0;
	if (client_pending(c) > REPLY_HIGH_WATER)
		return 0;
	/* Behind in the bus (not in a replay): catch up first, so that a
	 * snapshot or GAP never jumps over messages still owed. */
	if (!client_live(c) && c->pos < c->w->pos && c->pos >= c->replay_end)
		return 0;
	return 1;
}

/*
 * Write everything the client is owed: queued replies, a snapshot being
 * sent (step by step, at most CLIENT_WRITE_MAX bytes of it per call, so
 * that one cannot hog the loop), then records from the bus from its
 * cursor up to the worker's position.  Then run the commands that waited
 * for that, once per call: more when the loop has turned.
 */
void
client_flush(struct client *c)
{
	size_t streamed = 0;
	int resumed = 0;

	if (tls_handshaking(c))		/* nothing is owed before HELLO */
		return;
	for (int rounds = 0; rounds < CLIENT_FLUSH_ROUNDS && c->state != CS_DEAD;
	    rounds++) {
		/* A resume: the next sweep writes it (with others), its
		 * replies and its records in one write. */
		if (c->state == CS_OPEN && (c->cursor == CUR_BEHIND ||
		    c->cursor == CUR_REPLAY) && c->pos < c->replay_end &&
		    replay_later(c) == 0)
			return;
		int r = write_out(c);
		if (r <= 0)
			return;
		if (c->state == CS_CLOSING) {
			client_close_drained(c);
			return;
		}
		if (client_snapshot(c)) {
			if (streamed >= CLIENT_WRITE_MAX ||
			    (r = snapshot_step(c, &streamed)) == 0)
				break;
			if (r < 0)
				return;
			continue;
		}
		if (!client_live(c)) {
			r = fanout_walk(c);
			if (r <= 0)	/* socket full, or killed */
				return;
			if (client_pending(c) > 0 || client_snapshot(c))
				continue;	/* a conflation, a cut record */
		}
		worker_want(c, c->reading, 0);
		if (c->io != NULL && c->io->in_len > 0 && !c->input_wait &&
		    may_execute(c)) {
			if (resumed) {
				c->input_wait = 1;
			} else {
				resumed = 1;
				client_resume_input(c);
				if (client_pending(c) > 0 || !client_live(c) ||
				    client_snapshot(c))
					continue;
			}
		}
		if (c->input_wait) {
			worker_want(c, 0, 1);
			return;
		}
		if (c->eof)
			client_eof_check(c);
		else if (c->state == CS_OPEN && !c->reading && !c->pub_paused &&
		    may_execute(c))
			worker_want(c, 1, 0);
		return;
	}
	/* Still more to do: come back when the loop turns. */
	if (c->state != CS_DEAD)
		worker_want(c, c->reading, 1);
}

/* An adopted client's output not yet written (handover.c): queued as
 * it was, framed already.  -1 when out of memory. */
int
client_take_output(struct client *c, const char *data, size_t len)
{
	client_detach(c);
	if (out_reserve(c, len) == -1)
		return -1;
	memcpy(c->io->out + c->io->out_len, data, len);
	c->io->out_len += len;
	return 0;
}

/* An adopted client's input not yet run (handover.c).  -1 when out of
 * memory. */
int
client_keep_input(struct client *c, const char *data, size_t len)
{
	struct client_io *io = client_io(c);

	if (io == NULL || (io->in = malloc(len)) == NULL)
		return -1;
	memcpy(io->in, data, len);
	io->in_len = len;
	return 0;
}

/* Keep an unfinished line (or lines not yet run) for later. */
static void
save_input(struct client *c, const char *p, size_t len)
{
	struct client_io *io = client_io(c);
	char *buf = malloc(len);

	if (io == NULL || buf == NULL) {
		free(buf);
		client_kill(c);
		return;
	}
	memcpy(buf, p, len);
	free(io->in);
	io->in = buf;
	io->in_len = len;
}

static size_t
max_line(const struct client *c)
{
	return c->kind == LISTEN_INGEST ? c->w->cfg->ingest_max_line :
	    c->w->cfg->clients_max_line;
}

/* A line that counts as bad: after max_errors in a row, BYE. */
void
client_bad_line(struct client *c)
{
	struct worker *w = c->w;

	worker_limit(w, CTR_BAD_LINES, 0, "client %u: bad line answered "
	    "with -ERR (%u in a row)", c->id, c->errors + 1);
	if (++c->errors >= (uint32_t)w->cfg->clients_max_errors) {
		worker_limit(w, CTR_ERRORS_CLOSED, 0, "client %u: %u bad lines "
		    "in a row (clients.max_errors): closing", c->id, c->errors);
		client_bye(c, "too-many-errors");
	}
}

static void
line_too_long(struct client *c)
{
	worker_limit(c->w, CTR_LINES_TOO_LONG, 0, "client %u: line longer "
	    "than its limit (%zu bytes)", c->id, max_line(c));
	client_reply_err(c, PERR_LINE_TOO_LONG, NULL, 0);
	client_bad_line(c);
}

/* 1 if a line is a PUB (after leading blanks, in any case). */
static int
is_pub(const char *p, size_t n)
{
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	return n >= 4 && strncasecmp(p, "pub", 3) == 0 &&
	    (p[3] == ' ' || p[3] == '\t');
}

/* Keep the input from p on, and come back to it when the loop has
 * turned (client_flush), without waiting for more from the socket. */
static void
hold_input(struct client *c, const char *p, size_t len)
{
	save_input(c, p, len);
	c->input_wait = 1;
	worker_want(c, 0, 1);
}

/*
 * Take bytes read from the client: run complete lines while the client
 * may run commands, CLIENT_COMMANDS_PER_TURN of them at most; keep the
 * rest (never more than max_line + 1 bytes of an unfinished line), and
 * drop too-long lines up to their LF.
 */
void
client_input(struct client *c, const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	int ran = 0;

	c->last_in = (uint32_t)now_ms();
	if (c->framing == FRAME_HTTP || c->framing == FRAME_SSE) {
		if (c->state == CS_OPEN && http_input(c, data, len) == 0)
			save_input(c, data, len);
		return;
	}
	while (p < end && c->state == CS_OPEN) {
		const char *lf = memchr(p, '\n', end - p);
		if (c->discarding) {
			if (lf == NULL)
				return;
			c->discarding = 0;
			p = lf + 1;
			continue;
		}
		if (!may_execute(c)) {
			save_input(c, p, end - p);
			worker_want(c, 0, c->writing);
			return;
		}
		if (lf == NULL) {
			if ((size_t)(end - p) > max_line(c) + 1) {
				line_too_long(c);
				c->discarding = 1;
				return;
			}
			save_input(c, p, end - p);
			return;
		}
		if (ran >= CLIENT_COMMANDS_PER_TURN) {
			hold_input(c, p, end - p);
			return;
		}
		size_t n = lf - p;
		if (is_pub(p, n) && forward_full(c->w)) {
			/* Hold it (and what follows) until the queue to the
			 * producer drains: the client's TCP window closes. */
			c->pub_paused = 1;
			save_input(c, p, end - p);
			worker_want(c, 0, c->writing);
			return;
		}
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > max_line(c)) {
			line_too_long(c);
			ran++;
		} else {
			int k = command_execute(c, p, n);
			if (k == -1) {	/* the command waits: see cmd_sub */
				hold_input(c, p, end - p);
				return;
			}
			ran += k;
		}
		p = lf + 1;
	}
}

/*
 * Between the writes of a fan-out round (worker_serve_publishers): read
 * and run the whole PUB lines at the head of the client's input, and
 * leave anything else in the socket for the loop.  Only a caught-up
 * client with nothing kept qualifies.  A PUB changes nothing of the batch
 * being written; a subscriber stays on its fast path (its walk from the
 * worker's position finds nothing to do), and an -ERR its PUB gets goes
 * out before its records of the round, as any reply may.  One a bad PUB
 * closes is passed by in the round (deliver).  Returns 1 if it took all
 * there was, 0 if the loop must serve it.
 */
int
client_take_pubs(struct client *c)
{
	struct worker *w = c->w;
	char *buf = w->pub_rbuf;

	/* (TLS: no peeking at plaintext; the loop reads it) */
	if (c->tls != NULL || c->framing != FRAME_LINES ||
	    c->state != CS_OPEN || !c->reading ||
	    !client_live(c) || c->pub_paused ||
	    c->discarding || c->io != NULL || !may_execute(c) ||
	    forward_full(w))
		return 0;
	ssize_t n = recv(c->fd, buf, READ_CHUNK, MSG_PEEK | MSG_DONTWAIT);
	if (n <= 0)	/* nothing yet (1), or an end the loop will see */
		return n == -1 && (errno == EAGAIN || errno == EINTR);
	size_t take = 0;
	while (take < (size_t)n) {
		const char *p = buf + take;
		const char *lf = memchr(p, '\n', n - take);
		if (lf == NULL || (size_t)(lf - p) > max_line(c) ||
		    !is_pub(p, lf - p))
			break;
		take += lf - p + 1;
	}
	if (take == 0)
		return 0;
	/* The bytes peeked are there: this read returns them all. */
	ssize_t k = read(c->fd, buf, take);
	if (k <= 0)
		return 0;
	client_input(c, buf, k);
	client_ack_now(c);
	if (c->state != CS_DEAD)
		client_flush(c);
	return take == (size_t)n;
}

/* Run input that was kept while the client could not run commands. */
void
client_resume_input(struct client *c)
{
	char *buf = c->io->in;
	size_t len = c->io->in_len;

	c->io->in = NULL;
	c->io->in_len = 0;
	io_release(c);
	client_input(c, buf, len);
	free(buf);
}

/* Socket events: read commands, or write what is owed. */
void
client_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	struct worker *w = c->w;

	if (tls_handshaking(c)) {
		client_handshake(c);
		return;
	}
	if (what & EV_WRITE) {
		c->input_wait = 0;	/* the loop has turned */
		client_flush(c);
		if (c->state == CS_DEAD)
			return;
	}
	if (!((what & EV_READ) || tls_input_ready(c)) || !c->reading)
		return;
	ssize_t n = client_read(c, w->rbuf, READ_CHUNK);
	if (n == 0) {
		client_eof(c);
		return;
	}
	if (n == -1 && errno != EAGAIN && errno != EINTR) {
		client_lost(c, "read");
		return;
	}
	if (n < 0)
		return;
	int close = 0;
	if (c->framing == FRAME_WS)	/* its frames' lines, in place */
		n = ws_input(c, w->rbuf, n, &close);
	if (n > 0 && c->io != NULL && c->io->in_len > 0) {
		/* Join the kept part and the new bytes, then run them. */
		struct client_io *io = c->io;
		char *buf = malloc(io->in_len + n);
		if (buf == NULL) {
			client_kill(c);
			return;
		}
		memcpy(buf, io->in, io->in_len);
		memcpy(buf + io->in_len, w->rbuf, n);
		size_t len = io->in_len + n;
		free(io->in);
		io->in = NULL;
		io->in_len = 0;
		io_release(c);
		client_input(c, buf, len);
		free(buf);
	} else if (n > 0) {
		client_input(c, w->rbuf, n);
	}
	if (close != 0)		/* after the lines that came before it */
		ws_close(c, close);
	client_ack_now(c);
	if (c->state != CS_DEAD)
		client_flush(c);
}
