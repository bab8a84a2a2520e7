/*
 * An upgrade's hand-over of clients (heraldd(8), "Upgrades").
 *
 * The old worker, told by its master (CTL_HANDOVER, with a socket to the
 * worker of the same number in the new binary), stops accepting and
 * running commands, and sends each client that is between two commands
 * to its successor: the socket (SCM_RIGHTS) and the state, up to
 * HANDOVER_BATCH clients a message.  The successor adopts each where it
 * was: the same subscriptions, the same place in the bus (the bus is the
 * same memory), the bytes it was owed and the bytes of a line it had sent
 * in part, its identity.  Since a client is never sent a seq twice
 * (sent_seq), the new worker may start it a little behind where the old
 * one was: it sees no GAP and no duplicate.
 *
 * What cannot move is told BYE restart and resumes by itself: a TLS
 * connection (OpenSSL cannot hand a connection's state over), a
 * server-sent events or WebSocket stream, and a client still busy after
 * HANDOVER_QUIESCE_MS (a snapshot being sent, a SYNC or an AUTH being
 * answered, more output queued than a message holds).
 *
 * The layout is versioned as a whole (common/upgrade.h); the masters
 * have already agreed on the version, so a message of another one here
 * is a fault, not a negotiation: logged, and its clients closed.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdpass.h"
#include "handover.h"
#include "topic.h"
#include "upgrade.h"
#include "worker.h"

/* A client record's flags. */
#define HOF_DISCARDING	0x02
#define HOF_PUBLISHER	0x04
#define HOF_UNSYNCED	0x08
#define HOF_EOF		0x10
#define HOF_NO_QUICKACK	0x20

/* --- the byte layout -------------------------------------------------- */

void
ho_put(struct ho_out *o, const void *p, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

void
ho_u8(struct ho_out *o, uint8_t v)
{
	ho_put(o, &v, 1);
}

void
ho_u16(struct ho_out *o, uint16_t v)
{
	ho_put(o, &v, sizeof(v));
}

void
ho_u32(struct ho_out *o, uint32_t v)
{
	ho_put(o, &v, sizeof(v));
}

void
ho_u64(struct ho_out *o, uint64_t v)
{
	ho_put(o, &v, sizeof(v));
}

void
ho_str(struct ho_out *o, const char *s, size_t n)
{
	if (n > UINT16_MAX) {
		o->full = 1;
		return;
	}
	ho_u16(o, (uint16_t)n);
	ho_put(o, s, n);
}

const char *
ho_get(struct ho_in *in, size_t n)
{
	if (in->bad || n > in->len - in->off) {
		in->bad = 1;
		return NULL;
	}
	const char *p = in->p + in->off;
	in->off += n;
	return p;
}

/* The integers were written by this program on this machine: native. */
#define HO_GET(type, name)						\
type									\
name(struct ho_in *in)							\
{									\
	type v = 0;							\
	const char *p = ho_get(in, sizeof(v));				\
	if (p != NULL)							\
		memcpy(&v, p, sizeof(v));				\
	return v;							\
}
HO_GET(uint8_t, ho_get_u8)
HO_GET(uint16_t, ho_get_u16)
HO_GET(uint32_t, ho_get_u32)
HO_GET(uint64_t, ho_get_u64)

const char *
ho_get_str(struct ho_in *in, size_t *len)
{
	*len = ho_get_u16(in);
	return ho_get(in, *len);
}

/* --- the old worker: hand over ---------------------------------------- */

/* What the old worker keeps while it hands over. */
static struct {
	int		 fd;		/* to the successor; -1: gone */
	struct ho_out	 out;		/* the message being filled */
	struct client	*batch[HANDOVER_BATCH];
	int		 n;
	uint32_t	 sent, restarted;
} old = { .fd = -1 };

/* Connections whose state cannot move: they resume. */
static int
must_restart(const struct client *c)
{
	return c->tls != NULL || c->framing == FRAME_SSE ||
	    c->framing == FRAME_WS;
}

/* 1 if the client is between two commands, and can move now. */
static int
movable(const struct client *c)
{
	return c->state == CS_OPEN && c->framing == FRAME_LINES &&
	    !client_snapshot(c) && !c->waiting_sync && !c->auth_wait &&
	    !c->auth_recheck && c->cursor != CUR_REPLAY &&
	    c->cursor != CUR_SWEEP;
}

static void
restart(struct client *c)
{
	bus_counter_add(c->w->bus, c->w->slot, CTR_HANDOVER_RESTARTS, 1);
	old.restarted++;
	client_bye(c, "restart");	/* (an HTTP request: closed) */
	client_flush(c);
}

static void
save_client(struct worker *w, const struct client *c, struct ho_out *o)
{
	uint8_t flags = (c->discarding ? HOF_DISCARDING : 0) |
	    (c->publisher ? HOF_PUBLISHER : 0) |
	    (c->pub_unsynced ? HOF_UNSYNCED : 0) | (c->eof ? HOF_EOF : 0) |
	    (c->no_quickack ? HOF_NO_QUICKACK : 0);

	/* (the new master has the same listeners, in the same order) */
	ho_u8(o, c->listener);
	ho_u8(o, flags);
	ho_u32(o, c->errors);
	ho_u32(o, c->last_in);
	ho_u32(o, c->last_out);
	ho_u64(o, client_live(c) ? w->pos : c->pos);
	ho_u64(o, client_live(c) ? w->head_seq + 1 : c->next_seq);
	ho_u64(o, c->replay_end);
	ho_u64(o, c->sent_seq);
	ho_u16(o, c->nsubs);
	for (const struct sub *s = c->subs; s != NULL; s = s->cnext) {
		ho_str(o, s->pattern, s->len);
		ho_u64(o, s->start_seq);
	}
	uint32_t out = client_pending(c), in = c->io ? c->io->in_len : 0;
	ho_u32(o, out);
	if (out > 0)
		ho_put(o, c->io->out + c->io->out_off, out);
	ho_u32(o, in);
	if (in > 0)
		ho_put(o, c->io->in, in);
	authn_save(c, o);
}

/* A new message: its header, the count filled in when it is sent. */
static void
batch_begin(void)
{
	old.out.len = 0;
	old.out.full = 0;
	old.n = 0;
	ho_u32(&old.out, HANDOVER_MAGIC);
	ho_u32(&old.out, handover_version);
	ho_u16(&old.out, 0);
}

/* Send the message; its clients are the successor's, or (it is gone)
 * told BYE restart. */
static void
batch_send(struct worker *w)
{
	int fds[HANDOVER_BATCH];
	uint16_t n = (uint16_t)old.n;

	if (old.n == 0)
		return;
	memcpy(old.out.buf + 8, &n, sizeof(n));
	for (int i = 0; i < old.n; i++)
		fds[i] = old.batch[i]->fd;
	struct iovec iov = { old.out.buf, old.out.len };
	ssize_t r = old.fd == -1 ? -1 : fdpass_send(old.fd, &iov, 1, fds,
	    old.n, 0);
	if (r != (ssize_t)old.out.len) {
		if (old.fd != -1) {
			log_warn("hand-over: the new worker takes no more "
			    "clients; the %d left are told BYE restart",
			    w->nclients);
			close(old.fd);
			old.fd = -1;
		}
		for (int i = 0; i < old.n; i++)
			restart(old.batch[i]);
		batch_begin();
		return;
	}
	for (int i = 0; i < old.n; i++) {
		struct client *c = old.batch[i];
		/* Out of this worker's epoll set first: the socket lives on
		 * in the successor, so closing it here would not. */
		worker_want(c, 0, 0);
		bus_counter_add(w->bus, w->slot, CTR_HANDED_OVER, 1);
		client_kill(c);
	}
	old.sent += old.n;
	batch_begin();
}

/* Put c in the message (sent first if full).  -1: its state alone is
 * larger than a message: it waits (its output drains). */
static int
batch_add(struct worker *w, struct client *c)
{
	for (int tries = 0; tries < 2; tries++) {
		if (old.n == HANDOVER_BATCH)
			batch_send(w);
		size_t mark = old.out.len;
		save_client(w, c, &old.out);
		if (!old.out.full) {
			old.batch[old.n++] = c;
			return 0;
		}
		old.out.len = mark;
		old.out.full = 0;
		if (old.n == 0)
			return -1;
		batch_send(w);
	}
	return -1;
}

void
handover_start(struct worker *w, int sock)
{
	struct timeval tv = { HANDOVER_SEND_MS / 1000,
	    (HANDOVER_SEND_MS % 1000) * 1000 };

	old.out.cap = HANDOVER_MSG_MAX;
	if ((old.out.buf = malloc(old.out.cap)) == NULL) {
		log_warnx("hand-over: out of memory: every client is told "
		    "BYE restart");
		old.out.cap = 0;
		close(sock);
		sock = -1;
	}
	/* Blocking, with a timeout: the successor reads as fast as it
	 * adopts, and there is nothing else left for this worker to do. */
	if (sock != -1 && setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv,
	    sizeof(tv)) == -1)
		log_warn("hand-over socket");
	old.fd = sock;
	batch_begin();
	log_info("upgrade: handing %d clients over to the new worker",
	    w->nclients);
}

/*
 * Move every client that can move; once HANDOVER_QUIESCE_MS has passed,
 * tell the rest BYE restart.  Returns 1 when none is left to move.
 */
int
handover_step(struct worker *w)
{
	int late = now_ms() - w->stop_ms >= HANDOVER_QUIESCE_MS;
	int waiting = 0;
	struct client *c;

	CLIENTS_FOREACH(w, c) {
		if (c->state != CS_OPEN)
			continue;
		if (must_restart(c) || old.fd == -1)
			restart(c);
		else if (movable(c) && batch_add(w, c) == 0)
			;
		else if (late)
			restart(c);
		else
			waiting++;
	}
	batch_send(w);
	if (waiting > 0)
		return 0;
	if (old.fd != -1) {
		close(old.fd);	/* the successor's end of the hand-over */
		old.fd = -1;
	}
	free(old.out.buf);
	old.out.buf = NULL;
	log_info("upgrade: %u clients handed over, %u told BYE restart",
	    old.sent, old.restarted);
	return 1;
}

/* --- the new worker: adopt --------------------------------------------- */

static struct {
	char		*buf;
	uint32_t	 adopted;
} adopt;

/* Adopt one client from its record; -1 if the record is bad (fd is
 * then the caller's to close). */
static int
adopt_one(struct worker *w, struct ho_in *in, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	unsigned li = ho_get_u8(in);
	uint8_t flags = ho_get_u8(in);

	if (in->bad || li >= (unsigned)w->h->nlisteners)
		return -1;
	const struct listener *l = &w->h->listeners[li];
	uint64_t key = getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 ?
	    worker_addr_key(&ss) : 0;
	/* (counted, never refused: it was admitted already) */
	int slot = addr_admit(w->h->addrs, w->id, w->cfg->workers, key,
	    INT_MAX);
	struct client *c = client_alloc(w, fd, l, slot >= 0 ? slot : -1);
	if (c == NULL) {
		if (slot >= 0)
			addr_release(w->h->addrs, w->id, slot);
		return -1;
	}
	c->listener = li;
	c->publisher = (flags & HOF_PUBLISHER) != 0;
	c->discarding = (flags & HOF_DISCARDING) != 0;
	c->pub_unsynced = (flags & HOF_UNSYNCED) != 0;
	c->eof = (flags & HOF_EOF) != 0;
	c->no_quickack = (flags & HOF_NO_QUICKACK) != 0;
	c->pub_gen = w->fwd_gen;
	c->errors = ho_get_u32(in);
	c->last_in = ho_get_u32(in);
	c->last_out = ho_get_u32(in);
	uint64_t pos = ho_get_u64(in);
	uint64_t next_seq = ho_get_u64(in);
	c->replay_end = ho_get_u64(in);
	c->sent_seq = ho_get_u64(in);
	unsigned nsubs = ho_get_u16(in);
	for (unsigned i = 0; i < nsubs && !in->bad; i++) {
		size_t len;
		const char *p = ho_get_str(in, &len);
		uint64_t start = ho_get_u64(in);
		if (p != NULL && (!pattern_valid(p, len) ||
		    command_add_sub(c, p, len, start) == -1))
			in->bad = 1;
	}
	size_t out = ho_get_u32(in);
	const char *o = ho_get(in, out);
	if (o != NULL && out > 0 && client_take_output(c, o, out) == -1)
		in->bad = 1;
	size_t inl = ho_get_u32(in);
	const char *i = ho_get(in, inl);
	if (i != NULL && inl > 0 && client_keep_input(c, i, inl) == -1)
		in->bad = 1;
	if (!in->bad && authn_restore(c, in) == -1)
		in->bad = 1;
	if (in->bad) {
		/* (the descriptor stays the caller's) */
		c->fd = -1;
		client_kill(c);
		return -1;
	}
	/* Where it was, or where this worker is if that is further back:
	 * what it was sent already is skipped (sent_seq). */
	if (pos < w->pos) {
		client_detach(c);
		c->pos = pos;
		c->next_seq = next_seq;
	}
	timers_remove(c);	/* its deadlines as they were (timers.c) */
	timers_add(c);
	bus_counter_add(w->bus, w->slot, CTR_ADOPTED, 1);
	adopt.adopted++;
	client_flush(c);	/* what it is owed, then its kept input */
	return 0;
}

/* Adopt the clients of one message; the descriptors of those that
 * cannot be are closed. */
static void
adopt_message(struct worker *w, const char *buf, size_t len, int *fds,
    int nfds)
{
	struct ho_in in = { buf, len, 0, 0 };
	uint32_t magic = ho_get_u32(&in), version = ho_get_u32(&in);
	unsigned n = ho_get_u16(&in);
	int i = 0;

	if (in.bad || magic != HANDOVER_MAGIC || version != handover_version ||
	    n != (unsigned)nfds) {
		log_warnx("hand-over: a message of %zu bytes with %d clients "
		    "is not of this version's layout (%u): its clients are "
		    "closed", len, nfds, handover_version);
	} else {
		for (; i < nfds; i++)
			if (adopt_one(w, &in, fds[i]) == -1) {
				log_warnx("hand-over: a bad client record: it "
				    "and the %d after it are closed",
				    nfds - i - 1);
				break;
			}
		if (i == nfds)
			return;
	}
	for (; i < nfds; i++)
		close(fds[i]);
}

static void
adopt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct event *self = w->ho_ev;

	for (;;) {
		int fds[HANDOVER_BATCH], nfds;
		ssize_t n = fdpass_recv(fd, adopt.buf, HANDOVER_MSG_MAX, fds,
		    &nfds, HANDOVER_BATCH, MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n > 0) {
			/* (up to date with the bus first: see adopt_one) */
			fanout_run(w);
			adopt_message(w, adopt.buf, n, fds, nfds);
			continue;
		}
		if (n == -1)
			log_warn("hand-over: receive");
		else
			log_info("upgrade: adopted %u clients", adopt.adopted);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		event_free(self);
		w->ho_ev = NULL;
		close(fd);
		free(adopt.buf);
		adopt.buf = NULL;
		return;
	}
}

void
handover_adopt(struct worker *w, int sock)
{
	if ((adopt.buf = malloc(HANDOVER_MSG_MAX)) == NULL)
		fatalx("out of memory");
	w->ho_ev = ev_new_or_die(w->base, sock, EV_READ | EV_PERSIST, adopt_cb,
	    w);
	ev_add_or_die(w->ho_ev, NULL);
}
