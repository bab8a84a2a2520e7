/*
 * A cluster node's link to Redis, the sequencer of every node's bus.
 *
 * Two connections, both on the producer's loop through hiredis's async
 * API: "w" runs the PUBs through a Lua script (cluster_lua.c), those of
 * a loop turn in as few calls as they fit, pipelined (the calls go out in
 * one write, several may wait, answers come in order), and
 * "r" reads the stream in order (XREAD BLOCK) and writes each record into
 * the bus under its seq.  The producer stays the bus's only writer; a
 * PUB reaches this node's bus only through the stream, as on every node.
 *
 * Every PUB is held until Redis has taken it, numbered per node (no), so
 * that after a broken link the ones not acknowledged are sent again, in
 * order, and the script drops those Redis already took.  A SYNC is
 * answered once Redis took every PUB queued before it and the bus holds
 * them.  hiredis 0.14 has no async timeout: each connection's calls are
 * timed here, with the producer's own timers.  Redis away: PUBs are held
 * up to cluster.hold bytes (then workers answer -ERR busy), the link is
 * tried again with back-off, and on its return every node rejoins:
 * raises Redis's seq to its head (never a seq twice), catches up, goes on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "bus.h"
#include "cluster.h"
#include "heraldd.h"
#include "log.h"
#include "net.h"
#include "proc.h"
#include "topic.h"

/* A PUB not yet acknowledged by Redis. */
struct held {
	struct held	*next;
	uint64_t	 no;		/* this node's PUB number */
	uint32_t	 tlen, plen;
	char		 data[];	/* topic, then payload */
};

/* A worker's SYNC, answered in order. */
struct waiter {
	struct bufferevent *bev;	/* NULL: the worker went */
	uint64_t	 after_no;	/* the last PUB queued before it */
	uint64_t	 seq;		/* the bus must hold this (0: unknown) */
	char		 id[24];
};

/* One connection to Redis and the timer of its calls. */
struct rconn {
	redisAsyncContext *ac;
	struct event	*timer;
	int		 pending;	/* calls sent, not answered */
	int		 extra_ms;	/* a call may wait this long on top */
	const char	*name;
};

enum link_state {
	LINK_DOWN,		/* waiting to reconnect */
	LINK_JOINING,		/* connected, rejoining the cluster */
	LINK_UP			/* PUBs go in, the stream is read */
};

static struct herald	*H;
static struct event_base *base;
static struct net_addr	 raddr;
static enum link_state	 state;
static struct rconn	 W = { .name = "write" }, R = { .name = "read",
			    .extra_ms = CLUSTER_BLOCK_MS };
static struct event	*retry_ev, *settle_ev, *poll_ev, *pump_ev;
static int		 backoff_ms = CLUSTER_BACKOFF_MIN_MS;
static int		 ever_up, down_logged;
static unsigned		 attempts;
static char		 pub_sha[41];
static char		 epoch[32];	/* this node's, as Redis gave it */
static char		 node[24];	/* this producer's id in <key>:pubs */
static uint64_t		 trim;
static char		 k_seq[300], k_stream[300], k_values[300], k_epoch[300],
			 k_settle[300], k_pubs[300];

/* The held PUBs: head .. tail, those from next_send on not yet sent. */
static struct held	*held_head, *held_tail, *next_send;
static size_t		 held_bytes, held_count;
static int		 inflight;
static uint64_t		 last_no, acked_no, acked_seq;

static struct waiter	*waiters;
static size_t		 nwait, wait_head, wait_cap;

static uint64_t		 jump_ok;	/* a first record at or below this
					 * seq may skip ahead of the head */
static uint64_t		 top_seq;	/* Redis's seq, as last seen */
static uint64_t		 last_ms;	/* time of the newest record read */

static int		 full;		/* cluster.hold reached */
static struct log_limiter lim_pub, lim_rec;

static void	link_down(const char *why);
static void	link_connect(void);
static void	read_next(void);
static void	pump(void);

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
gauge(enum bus_counter id, uint64_t v)
{
	bus_counter_set(H->bus, SLOT_PRODUCER, id, v);
}

/* The figures STATS shows (cluster_*), as they are now. */
static void
gauges(void)
{
	uint64_t head = bus_head_seq(H->bus);
	uint64_t lag = top_seq > head ? top_seq - head : 0;
	uint64_t now = now_ms();

	gauge(CTR_CLUSTER_DOWN, state != LINK_UP);
	gauge(CTR_CLUSTER_LAG, lag);
	gauge(CTR_CLUSTER_LAG_MS, lag > 0 && last_ms != 0 && now > last_ms ?
	    now - last_ms : 0);
	gauge(CTR_CLUSTER_ROLE, state != LINK_UP ? CLUSTER_ROLE_CUT_OFF :
	    lag > CLUSTER_READ_BATCH ? CLUSTER_ROLE_CATCHING_UP :
	    CLUSTER_ROLE_IN_STEP);
}

/* Workers answer PUBs -ERR busy while the held PUBs fill cluster.hold. */
static void
full_check(void)
{
	int f = held_bytes >= (uint64_t)H->cfg.cluster_hold;

	if (f != full) {
		full = f;
		gauge(CTR_CLUSTER_FULL, f);
		if (f)
			log_warnx("cluster: %zu PUBs (%zu bytes) held, "
			    "cluster.hold is full: PUBs are answered -ERR busy",
			    held_count, held_bytes);
	}
}

/* --- timing the calls ---------------------------------------------------- */

static void
conn_arm(struct rconn *c)
{
	int ms = H->cfg.cluster_timeout + c->extra_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	ev_add_or_warn(c->timer, &tv, "cluster call timer");
}

/* A call went out on c: time it if it is the only one waiting. */
static void
conn_sent(struct rconn *c)
{
	if (c->pending++ == 0)
		conn_arm(c);
}

/* An answer came on c: the next call waiting has a full timeout. */
static void
conn_answered(struct rconn *c)
{
	if (c->pending > 0 && --c->pending > 0)
		conn_arm(c);
	else
		evtimer_del(c->timer);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;
	char why[96];

	snprintf(why, sizeof(why), "no answer within %d ms on the %s "
	    "connection", H->cfg.cluster_timeout + c->extra_ms, c->name);
	link_down(why);
}

/* The connection an answer came on, or NULL if it is no longer ours (it
 * is being freed: its callbacks run with no reply). */
static struct rconn *
conn_of(const redisAsyncContext *ac)
{
	return ac == NULL ? NULL : ac == W.ac ? &W : ac == R.ac ? &R : NULL;
}

/* The reply to a call of ours, its connection's timer moved on; NULL if
 * there is none (the connection is being freed) or it is not ours. */
static redisReply *
answer(redisAsyncContext *ac, void *reply)
{
	struct rconn *c = conn_of(ac);

	if (c == NULL || reply == NULL)
		return NULL;
	conn_answered(c);
	return reply;
}

/* Send a command on c (argv, binary-safe); -1 if hiredis refused it. */
static int
conn_send(struct rconn *c, redisCallbackFn *fn, int argc, const char **argv,
    const size_t *lens)
{
	if (redisAsyncCommandArgv(c->ac, fn, NULL, argc, argv, lens) !=
	    REDIS_OK)
		return -1;
	conn_sent(c);
	return 0;
}

/* Drop one connection (its callbacks then run with no reply, ignored). */
static void
conn_drop(struct rconn *c)
{
	redisAsyncContext *ac = c->ac;

	c->ac = NULL;
	c->pending = 0;
	evtimer_del(c->timer);
	if (ac != NULL)
		redisAsyncFree(ac);
}

/* 1 (and the link dropped) if reply is an error or not of type. */
static int
bad_reply(const redisReply *r, int type, const char *what)
{
	char why[256];

	if (r->type == type)
		return 0;
	if (r->type == REDIS_REPLY_ERROR)
		snprintf(why, sizeof(why), "%s: %.*s", what, (int)r->len < 160 ?
		    (int)r->len : 160, r->str);
	else
		snprintf(why, sizeof(why), "%s: unexpected reply type %d",
		    what, r->type);
	link_down(why);
	return 1;
}

/* --- SYNCs --------------------------------------------------------------- */

/* Answer the SYNCs whose PUBs Redis took and the bus holds, in order. */
static void
waiters_run(void)
{
	uint64_t head = bus_head_seq(H->bus);

	while (nwait > 0) {
		struct waiter *s = &waiters[wait_head];
		if (s->after_no > acked_no)
			return;
		if (s->seq == 0)
			s->seq = acked_seq;
		if (s->seq > head)
			return;
		if (s->bev != NULL)
			evbuffer_add_printf(bufferevent_get_output(s->bev),
			    "S %s %llu\n", s->id, (unsigned long long)head);
		wait_head = (wait_head + 1) % wait_cap;
		nwait--;
	}
}

void
cluster_sync(struct bufferevent *bev, const char *id, size_t idlen)
{
	if (nwait == wait_cap) {
		size_t cap = wait_cap ? wait_cap * 2 : 64;
		struct waiter *n = malloc(cap * sizeof(*n));
		if (n == NULL) {
			log_warnx("cluster: no memory for a SYNC: not answered");
			return;
		}
		for (size_t i = 0; i < nwait; i++)
			n[i] = waiters[(wait_head + i) % wait_cap];
		free(waiters);
		waiters = n;
		wait_cap = cap;
		wait_head = 0;
	}
	struct waiter *s = &waiters[(wait_head + nwait) % wait_cap];
	s->bev = bev;
	s->after_no = last_no;
	s->seq = last_no <= acked_no ? acked_seq : 0;
	snprintf(s->id, sizeof(s->id), "%.*s", (int)(idlen < 23 ? idlen : 23),
	    id);
	nwait++;
	waiters_run();
}

void
cluster_forget(struct bufferevent *bev)
{
	for (size_t i = 0; i < nwait; i++)
		if (waiters[(wait_head + i) % wait_cap].bev == bev)
			waiters[(wait_head + i) % wait_cap].bev = NULL;
}

/* --- PUBs ---------------------------------------------------------------- */

size_t
cluster_held(void)
{
	return held_count;
}

void
cluster_pub(const char *topic, size_t tlen, const char *payload,
    size_t plen, int droppable)
{
	struct held *p;

	if (droppable && state != LINK_UP)
		return;
	if ((p = malloc(sizeof(*p) + tlen + plen)) == NULL) {
		log_limited(&lim_pub, 1, "cluster: no memory to hold a PUB on "
		    "%.*s: dropped", (int)tlen, topic);
		return;
	}
	p->next = NULL;
	p->no = ++last_no;
	p->tlen = tlen;
	p->plen = plen;
	memcpy(p->data, topic, tlen);
	memcpy(p->data + tlen, payload, plen);
	if (held_tail != NULL)
		held_tail->next = p;
	else
		held_head = p;
	held_tail = p;
	if (next_send == NULL)
		next_send = p;
	held_bytes += tlen + plen;
	held_count++;
	full_check();
	/* when this turn of the loop ends, with the PUBs read with this one */
	event_active(pump_ev, 0, 0);
}

/* Redis took the oldest batch of PUBs sent, priv of them (or refused
 * it: the link goes, and the batch is sent again). */
static void
pub_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = answer(ac, reply);

	if (r == NULL)
		return;
	if (bad_reply(r, REDIS_REPLY_INTEGER, "a PUB script"))
		return;
	for (uintptr_t n = (uintptr_t)priv; n > 0; n--) {
		struct held *p = held_head;
		held_head = p->next;
		held_bytes -= p->tlen + p->plen;
		held_count--;
		inflight--;
		acked_no = p->no;
		free(p);
	}
	if (held_head == NULL)
		held_tail = NULL;
	if ((uint64_t)r->integer > acked_seq)
		acked_seq = r->integer;
	if ((uint64_t)r->integer > top_seq)
		top_seq = r->integer;
	full_check();
	waiters_run();
	pump();
	if (held_count == 0)
		producer_end_if_done();
}

/* Send one batch from next_send on (at most CLUSTER_BATCH_MAX PUBs and
 * about CLUSTER_BATCH_BYTES); -1 if hiredis refused it. */
static int
send_batch(void)
{
	enum { FIXED = 12 };	/* EVALSHA sha 5 keys... trim epoch node no */
	static const char *argv[FIXED + 2 * CLUSTER_BATCH_MAX];
	static size_t lens[FIXED + 2 * CLUSTER_BATCH_MAX];
	static char trim_s[24], no_s[24];
	struct held *p = next_send;
	size_t bytes = 0;
	int n = 0;

	argv[0] = "EVALSHA", argv[1] = pub_sha, argv[2] = "5";
	argv[3] = k_seq, argv[4] = k_stream, argv[5] = k_values;
	argv[6] = k_epoch, argv[7] = k_pubs;
	argv[8] = trim_s, argv[9] = epoch, argv[10] = node, argv[11] = no_s;
	for (int i = 0; i < FIXED; i++)
		lens[i] = strlen(argv[i]);
	lens[8] = snprintf(trim_s, sizeof(trim_s), "%" PRIu64, trim);
	lens[11] = snprintf(no_s, sizeof(no_s), "%" PRIu64, p->no);
	while (p != NULL && n < CLUSTER_BATCH_MAX &&
	    inflight + n < CLUSTER_INFLIGHT_MAX &&
	    (n == 0 || bytes + p->tlen + p->plen <= CLUSTER_BATCH_BYTES)) {
		argv[FIXED + 2 * n] = p->data;
		lens[FIXED + 2 * n] = p->tlen;
		argv[FIXED + 2 * n + 1] = p->data + p->tlen;
		lens[FIXED + 2 * n + 1] = p->plen;
		bytes += p->tlen + p->plen;
		n++;
		p = p->next;
	}
	if (redisAsyncCommandArgv(W.ac, pub_cb, (void *)(uintptr_t)n,
	    FIXED + 2 * n, argv, lens) != REDIS_OK)
		return -1;
	conn_sent(&W);
	inflight += n;
	next_send = p;
	return 0;
}

/* Send what is held and not sent, while the link is up and settled: the
 * PUBs of one loop turn go in as few scripts as they fit. */
static void
pump(void)
{
	if (state != LINK_UP || evtimer_pending(settle_ev, NULL))
		return;
	while (next_send != NULL && inflight < CLUSTER_INFLIGHT_MAX)
		if (send_batch() == -1) {
			link_down("could not queue a PUB script");
			return;
		}
}

static void
pump_cb(evutil_socket_t fd, short what, void *arg)
{
	pump();
}

/* --- reading the stream -------------------------------------------------- */

/* The value of field name in a stream entry's field list, or NULL. */
static const redisReply *
field(const redisReply *f, const char *name)
{
	for (size_t i = 0; i + 1 < f->elements; i += 2)
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, name) == 0 &&
		    f->element[i + 1]->type == REDIS_REPLY_STRING)
			return f->element[i + 1];
	return NULL;
}

/* Write one stream entry into the bus; returns 1 if a record went in. */
static int
take_entry(const redisReply *e)
{
	const redisReply *t, *p, *ms;
	uint64_t seq;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[1]->type != REDIS_REPLY_ARRAY)
		return 0;
	seq = strtoull(e->element[0]->str, NULL, 10);
	if (seq <= bus_head_seq(H->bus))
		return 0;	/* never a seq twice (a Redis that lost data) */
	t = field(e->element[1], "t");
	p = field(e->element[1], "p");
	if ((ms = field(e->element[1], "ms")) != NULL)
		last_ms = strtoull(ms->str, NULL, 10);
	if (t == NULL || p == NULL || !topic_valid(t->str, t->len) ||
	    p->len == 0) {
		log_limited(&lim_rec, 1, "cluster: stream record %llu is not "
		    "a message: skipped (a GAP for it)",
		    (unsigned long long)seq);
		bus_jump(H->bus, seq + 1, NULL, 0);
		return 0;
	}
	if (bus_append_seq(H->bus, seq, t->str, t->len, p->str, p->len) == 0) {
		log_limited(&lim_rec, 1, "cluster: record %llu on %s too "
		    "large for this node's ring (%zu bytes): skipped (a GAP "
		    "for it)", (unsigned long long)seq, t->str, p->len);
		return 0;
	}
	return 1;
}

static void catchup_cb(redisAsyncContext *, void *, void *);

/* Ask where to read from (cluster_lua_catchup). */
static void
catchup(void)
{
	uint64_t head = bus_head_seq(H->bus);
	char h[24], h1[24];
	size_t hl = snprintf(h, sizeof(h), "%" PRIu64, head);
	size_t h1l = snprintf(h1, sizeof(h1), "%" PRIu64, head + 1);
	const char *argv[] = { "EVAL", cluster_lua_catchup, "3", k_seq,
	    k_stream, k_values, h, h1 };
	size_t lens[] = { 4, strlen(cluster_lua_catchup), 1, strlen(k_seq),
	    strlen(k_stream), strlen(k_values), hl, h1l };

	if (conn_send(&R, catchup_cb, 8, argv, lens) == -1)
		link_down("could not queue the catch-up script");
}

static void
read_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = answer(ac, reply);
	uint64_t n = 0;

	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_NIL) {
		read_next();	/* nothing new within CLUSTER_BLOCK_MS */
		return;
	}
	if (bad_reply(r, REDIS_REPLY_ARRAY, "XREAD"))
		return;
	if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
	    r->element[0]->elements == 2 &&
	    r->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
		const redisReply *es = r->element[0]->element[1];
		if (es->elements > 0 && es->element[0]->type ==
		    REDIS_REPLY_ARRAY && es->element[0]->elements == 2 &&
		    es->element[0]->element[0]->type == REDIS_REPLY_STRING) {
			uint64_t first = strtoull(
			    es->element[0]->element[0]->str, NULL, 10);
			if (first > bus_head_seq(H->bus) + 1 &&
			    first > jump_ok) {
				/* Trimmed past us, or seqs no node has: the
				 * catch-up script says which. */
				catchup();
				return;
			}
		}
		for (size_t i = 0; i < es->elements; i++)
			n += take_entry(es->element[i]);
		if (es->elements > 0) {
			const redisReply *e = es->element[es->elements - 1];
			uint64_t s = strtoull(e->element[0]->str, NULL, 10);
			if (s > top_seq)
				top_seq = s;
		}
	}
	if (n > 0)
		producer_appended(n);
	gauges();
	waiters_run();
	read_next();
}

/* Read the records after the bus's head, waiting for them. */
static void
read_next(void)
{
	char count[16], block[16], id[32];
	size_t cl = snprintf(count, sizeof(count), "%d", CLUSTER_READ_BATCH);
	size_t bl = snprintf(block, sizeof(block), "%d", CLUSTER_BLOCK_MS);
	size_t il = snprintf(id, sizeof(id), "%" PRIu64 "-0",
	    bus_head_seq(H->bus));
	const char *argv[] = { "XREAD", "COUNT", count, "BLOCK", block,
	    "STREAMS", k_stream, id };
	size_t lens[] = { 5, 5, cl, 5, bl, 7, strlen(k_stream), il };

	if (state == LINK_UP && conn_send(&R, read_cb, 8, argv, lens) == -1)
		link_down("could not queue XREAD");
}

/* Take the values of a catch-up (topic, "<seq> <payload>" pairs) with
 * seq above the head, and jump to seq + 1. */
static void
catchup_values(const redisReply *h, uint64_t seq)
{
	uint64_t head = bus_head_seq(H->bus);
	struct bus_value *v = calloc(h->elements / 2 + 1, sizeof(*v));
	size_t n = 0;

	if (v == NULL) {
		link_down("no memory for the catch-up values");
		return;
	}
	for (size_t i = 0; i + 1 < h->elements; i += 2) {
		const redisReply *t = h->element[i], *p = h->element[i + 1];
		char *sp;
		if (t->type != REDIS_REPLY_STRING ||
		    p->type != REDIS_REPLY_STRING ||
		    (sp = memchr(p->str, ' ', p->len)) == NULL)
			continue;
		v[n].seq = strtoull(p->str, NULL, 10);
		if (v[n].seq <= head || v[n].seq > seq || sp + 1 ==
		    p->str + p->len)
			continue;
		v[n].topic = t->str;
		v[n].topic_len = t->len;
		v[n].payload = sp + 1;
		v[n].payload_len = p->str + p->len - sp - 1;
		n++;
	}
	bus_jump(H->bus, seq + 1, v, n);
	free(v);
	log_info("cluster: caught up from the newest values: %zu topics as of "
	    "seq %llu (records %llu..%llu are no longer in Redis: clients "
	    "get a GAP)", n, (unsigned long long)seq,
	    (unsigned long long)head + 1, (unsigned long long)seq);
	producer_appended(0);
}

static void
catchup_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = answer(ac, reply);

	if (r == NULL)
		return;
	if (bad_reply(r, REDIS_REPLY_ARRAY, "the catch-up script"))
		return;
	if (r->elements < 3 || r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER ||
	    r->element[2]->type != REDIS_REPLY_INTEGER) {
		link_down("the catch-up script: unexpected reply");
		return;
	}
	uint64_t seq = r->element[1]->integer;
	if (seq > top_seq)
		top_seq = seq;
	if (r->element[0]->integer == 0) {
		jump_ok = r->element[2]->integer;
	} else if (r->elements == 4 &&
	    r->element[3]->type == REDIS_REPLY_ARRAY &&
	    seq > bus_head_seq(H->bus)) {
		catchup_values(r->element[3], seq);
		if (state != LINK_UP)
			return;
	}
	gauges();
	waiters_run();		/* the SYNCs a jump answers */
	read_next();
}

/* --- the link ------------------------------------------------------------ */

static void
settle_cb(evutil_socket_t fd, short what, void *arg)
{
	pump();
}

static void
poll_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = answer(ac, reply);

	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_STRING) {
		uint64_t s = strtoull(r->str, NULL, 10);
		if (s > top_seq)
			top_seq = s;
	}
	gauges();
}

/* Every CLUSTER_POLL_MS: the stream's top (for the lag), which also
 * times a call on an idle write connection. */
static void
poll_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	const char *argv[] = { "GET", k_seq };
	size_t lens[] = { 3, strlen(k_seq) };

	if (state == LINK_UP && W.pending == 0)
		conn_send(&W, poll_cb, 2, argv, lens);
	gauges();
}

static void
join_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = answer(ac, reply);

	if (r == NULL)
		return;
	if (bad_reply(r, REDIS_REPLY_ARRAY, "the join script"))
		return;
	if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_INTEGER) {
		link_down("the join script: unexpected reply");
		return;
	}
	if (epoch[0] != '\0' && strcmp(epoch, r->element[0]->str) != 0)
		log_warnx("cluster: Redis lost the cluster's data (epoch %s, "
		    "was %s): its seq was raised to at least this node's "
		    "head %llu, so no seq is handed out twice; clients get a "
		    "GAP for what no node has", r->element[0]->str, epoch,
		    (unsigned long long)bus_head_seq(H->bus));
	snprintf(epoch, sizeof(epoch), "%s", r->element[0]->str);
	gauge(CTR_CLUSTER_EPOCH, strtoull(epoch, NULL, 10));
	if (r->element[1]->integer > 0) {
		long long ms = r->element[1]->integer;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		ev_add_or_warn(settle_ev, &tv, "cluster settle");
	}
	state = LINK_UP;
	backoff_ms = CLUSTER_BACKOFF_MIN_MS;
	if (ever_up)
		bus_counter_add(H->bus, SLOT_PRODUCER, CTR_CLUSTER_RECONNECTS, 1);
	if (down_logged || !ever_up)
		log_info("cluster: joined through Redis at %s (epoch %s) at "
		    "seq %llu%s", H->cfg.cluster_redis, epoch,
		    (unsigned long long)bus_head_seq(H->bus), held_count ?
		    ": sending the PUBs held" : "");
	ever_up = 1;
	down_logged = 0;
	attempts = 0;
	gauges();
	catchup();
	pump();
}

static void
script_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = answer(ac, reply);

	if (r == NULL)
		return;
	if (bad_reply(r, REDIS_REPLY_STRING, "SCRIPT LOAD"))
		return;
	snprintf(pub_sha, sizeof(pub_sha), "%s", r->str);
}

static void
auth_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = answer(ac, reply);

	if (r == NULL)
		return;
	/* The message is Redis's; the password is never in a log line. */
	bad_reply(r, REDIS_REPLY_STATUS, "AUTH (cluster.user, "
	    "cluster.password)");
}

/* Queue AUTH if configured; -1 if it could not be. */
static int
conn_auth(struct rconn *c)
{
	const char *argv[] = { "AUTH", H->cfg.cluster_user,
	    H->cfg.cluster_password };
	size_t lens[] = { 4, strlen(H->cfg.cluster_user),
	    strlen(H->cfg.cluster_password) };

	if (H->cfg.cluster_password[0] == '\0')
		return 0;
	if (H->cfg.cluster_user[0] == '\0')
		return conn_send(c, auth_cb, 2, (const char *[]){ "AUTH",
		    H->cfg.cluster_password }, (const size_t []){ 4, lens[2] });
	return conn_send(c, auth_cb, 3, argv, lens);
}

/* The first calls of a new link: AUTH, the PUB script, the join. */
static int
link_begin(void)
{
	uint64_t r = 0;
	char head[24], cand[24], settle[16], last[24];
	size_t hl = snprintf(head, sizeof(head), "%" PRIu64,
	    bus_head_seq(H->bus));
	size_t sl = snprintf(settle, sizeof(settle), "%d", CLUSTER_SETTLE_MS);
	size_t ll = snprintf(last, sizeof(last), "%" PRIu64,
	    held_head != NULL ? held_head->no - 1 : last_no);

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)now_ms() * 2654435761u;
	size_t cl = snprintf(cand, sizeof(cand), "%" PRIu64,
	    (r >> 1) | 1);	/* an integer STAT, never 0 */
	const char *load[] = { "SCRIPT", "LOAD", cluster_lua_pub };
	size_t load_l[] = { 6, 4, strlen(cluster_lua_pub) };
	const char *join[] = { "EVAL", cluster_lua_join, "4", k_seq, k_epoch,
	    k_settle, k_pubs, head, cand, settle, node, last };
	size_t join_l[] = { 4, strlen(cluster_lua_join), 1, strlen(k_seq),
	    strlen(k_epoch), strlen(k_settle), strlen(k_pubs), hl, cl, sl,
	    strlen(node), ll };

	if (conn_auth(&W) == -1 || conn_auth(&R) == -1 ||
	    conn_send(&W, script_cb, 3, load, load_l) == -1 ||
	    conn_send(&W, join_cb, 12, join, join_l) == -1)
		return -1;
	return 0;
}

static void
connect_cb(const redisAsyncContext *ac, int status)
{
	struct rconn *c = conn_of(ac);

	if (c == NULL || status == REDIS_OK)
		return;
	c->ac = NULL;		/* hiredis frees it */
	link_down(ac->errstr[0] ? ac->errstr : "connection refused");
}

static void
disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct rconn *c = conn_of(ac);

	if (c == NULL)
		return;
	c->ac = NULL;		/* hiredis frees it */
	link_down(ac->errstr[0] ? ac->errstr : "connection closed");
}

/* Open one connection (its calls are sent once it is up). */
static int
conn_open(struct rconn *c)
{
	c->ac = raddr.is_unix ? redisAsyncConnectUnix(raddr.path) :
	    redisAsyncConnect(raddr.host[0] ? raddr.host : "127.0.0.1",
	    atoi(raddr.port));
	if (c->ac == NULL || c->ac->err) {
		if (c->ac != NULL)
			redisAsyncFree(c->ac);
		c->ac = NULL;
		return -1;
	}
	redisLibeventAttach(c->ac, base);
	redisAsyncSetConnectCallback(c->ac, connect_cb);
	redisAsyncSetDisconnectCallback(c->ac, disconnect_cb);
	c->pending = 0;
	conn_arm(c);		/* the connect is timed too */
	return 0;
}

static void
link_connect(void)
{
	attempts++;
	state = LINK_JOINING;
	if (conn_open(&W) == -1 || conn_open(&R) == -1 || link_begin() == -1)
		link_down("could not start a connection");
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	link_connect();
}

/*
 * The link is broken (why): drop both connections, send again later what
 * Redis has not acknowledged, and reconnect after a back-off.  Logged
 * once per outage.
 */
static void
link_down(const char *why)
{
	struct timeval tv = { backoff_ms / 1000, (backoff_ms % 1000) * 1000 };

	if (state == LINK_DOWN)
		return;
	state = LINK_DOWN;
	conn_drop(&W);
	conn_drop(&R);
	evtimer_del(settle_ev);
	inflight = 0;
	next_send = held_head;
	if (!down_logged)
		log_warnx("cluster: Redis at %s: %s; holding PUBs (up to "
		    "cluster.hold) and reconnecting", H->cfg.cluster_redis,
		    why);
	else
		log_debug("cluster: attempt %u: %s", attempts, why);
	down_logged = 1;
	gauges();
	ev_add_or_warn(retry_ev, &tv, "cluster reconnect");
	backoff_ms = backoff_ms * 2 > CLUSTER_BACKOFF_MAX_MS ?
	    CLUSTER_BACKOFF_MAX_MS : backoff_ms * 2;
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	log_limit_flush(&lim_pub);
	log_limit_flush(&lim_rec);
}

void
cluster_start(struct herald *h, struct event_base *b)
{
	const char *k = h->cfg.cluster_key;
	char err[256];
	uint32_t id = 0;

	H = h;
	base = b;
	if (net_parse_addr(h->cfg.cluster_redis, 1, &raddr, err,
	    sizeof(err)) == -1)
		fatalx("cluster.redis: %s", err);
	snprintf(k_seq, sizeof(k_seq), "%s:seq", k);
	snprintf(k_stream, sizeof(k_stream), "%s:stream", k);
	snprintf(k_values, sizeof(k_values), "%s:values", k);
	snprintf(k_epoch, sizeof(k_epoch), "%s:epoch", k);
	snprintf(k_settle, sizeof(k_settle), "%s:settle", k);
	snprintf(k_pubs, sizeof(k_pubs), "%s:pubs", k);
	/* As many records as the ring can hold: the smallest record's. */
	trim = h->cfg.cluster_trim > 0 ? (uint64_t)h->cfg.cluster_trim :
	    bus_ring_size(h->bus) / bus_record_size(1, 0);
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint32_t)now_ms();
	snprintf(node, sizeof(node), "%08x-%ld", id, (long)getpid());
	W.timer = ev_new_or_die(b, -1, 0, timeout_cb, &W);
	R.timer = ev_new_or_die(b, -1, 0, timeout_cb, &R);
	retry_ev = ev_new_or_die(b, -1, 0, retry_cb, NULL);
	settle_ev = ev_new_or_die(b, -1, 0, settle_cb, NULL);
	pump_ev = ev_new_or_die(b, -1, 0, pump_cb, NULL);
	poll_ev = ev_new_or_die(b, -1, EV_PERSIST, poll_timer_cb, NULL);
	struct timeval poll = { CLUSTER_POLL_MS / 1000,
	    (CLUSTER_POLL_MS % 1000) * 1000 };
	ev_add_or_die(poll_ev, &poll);
	struct timeval sec = { 1, 0 };
	ev_add_or_die(ev_new_or_die(b, -1, EV_PERSIST, flush_cb, NULL), &sec);
	gauge(CTR_CLUSTER_ROLE, CLUSTER_ROLE_CUT_OFF);
	gauge(CTR_CLUSTER_DOWN, 1);
	gauge(CTR_CLUSTER_FULL, 0);	/* a producer before us may have died
					 * with it set */
	link_connect();
}
