/*
 * Snapshots: the retained values a SUB, a resume's gap branch or a
 * conflation sends, streamed by cursor over the worker's index of the
 * retained topics, step by step as the client's socket takes them; and
 * GET.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "retained.h"
#include "topic.h"
#include "worker.h"

/*
 * A snapshot (the VALs of a SUB, of a resume whose history is gone, of a
 * conflation) is sent by cursor, like the bus: never copied whole.  Each
 * step takes the next values from the retained table, walking the
 * worker's index of retained topics (retained.c) for SNAPSHOT_STEP_NODES
 * nodes at most, until it has SNAPSHOT_STEP_BYTES of them; queues them;
 * and the next step waits until the client's socket has taken them
 * (client_flush).  A client holds about one step, whatever the table
 * holds, and its commands wait until the snapshot is sent.
 *
 * A snapshot is "as of h", h being where the worker is when its first
 * step runs, and the client walks on from h + 1 once it is sent.  A SUB
 * waits until its connection has caught up with the worker
 * (snapshot_may_start), and the worker is moved past the client only
 * where that owes the client nothing (below): else its other
 * subscriptions' MSGs at or below h would come after its +OK.  The table
 * has every record up to h (snapshot_may_start again), so a value with
 * seq <= h is the topic's value as of h.  A topic whose
 * value has changed since h is left out: its newer record, above h,
 * reaches the client as a MSG after the snapshot (or, if the ring laps the
 * client meanwhile, as a VAL after a GAP).  Nothing is lost, and no VAL is
 * older than h.
 *
 * The first step may take h higher when that owes the client nothing (it
 * has no other subscription, or a GAP covers everything up to h), before
 * anything is queued: the worker is fanned out up to the newest record
 * the table has, and, if the whole snapshot fits in the step, up to the
 * newest value it read, the values read before it brought up to that from
 * the ring.  So a small snapshot leaves out nothing, even of a topic that
 * changes all the time.
 */
struct snapshot {
	struct retained	*ri;		/* the index walked (kept while it is) */
	const struct sub *sub;		/* conflation: the pattern walked */
	uint64_t	 h;		/* as of this seq, once started */
	uint64_t	 first;		/* the GAP's first seq (not SNAP_SUB) */
	uint8_t		 kind;		/* enum snap_kind */
	uint8_t		 started;	/* h is fixed and the GAP queued */
	uint16_t	 plen;
	uint16_t	 atlen;
	char		 pattern[TOPIC_MAX];
	char		 at[TOPIC_MAX];	/* where the walk goes on */
};

/* One step of a snapshot, collecting values into w->snap. */
struct snap_step {
	struct worker	*w;
	struct client	*c;
	struct snapshot	*s;
	uint64_t	 max;		/* values above it are left out ... */
	int		 raise;		/* ... unless h may go up to them */
	uint64_t	 max_seen;
	unsigned	 visits;	/* index nodes it may still visit */
	int		 found;
	int		 failed;	/* out of memory */
};

static void
snap_reset(struct snap_set *s)
{
	s->n = 0;
	s->len = 0;
	if (s->slots != NULL)
		memset(s->slots, 0, s->nslots * sizeof(int));
}

static void
snap_set_free(struct snap_set *s)
{
	free(s->e);
	free(s->slots);
	free(s->data);
	memset(s, 0, sizeof(*s));
}

static int
snap_rehash(struct snap_set *s)
{
	int n = s->nslots ? s->nslots * 2 : 256;
	int *slots = calloc(n, sizeof(int));

	if (slots == NULL)
		return -1;
	free(s->slots);
	s->slots = slots;
	s->nslots = n;
	for (int i = 0; i < s->n; i++) {
		const struct snap_entry *e = &s->e[i];
		uint64_t h = hash_bytes(s->data + e->off, e->topic_len);
		int j = h & (n - 1);
		while (slots[j] != 0)
			j = (j + 1) & (n - 1);
		slots[j] = i + 1;
	}
	return 0;
}

/* Record (topic, seq, payload) unless a newer value is there already. */
static int
snap_put(struct snap_set *s, const char *t, size_t tlen, uint64_t seq,
    const char *pl, size_t plen)
{
	if (s->n * 2 >= s->nslots && snap_rehash(s) == -1)
		return -1;
	uint64_t h = hash_bytes(t, tlen);
	int j = h & (s->nslots - 1);
	struct snap_entry *e = NULL;
	for (; s->slots[j] != 0; j = (j + 1) & (s->nslots - 1)) {
		e = &s->e[s->slots[j] - 1];
		if (e->topic_len == tlen && memcmp(s->data + e->off, t, tlen) == 0)
			break;
		e = NULL;
	}
	if (e != NULL && e->seq >= seq)
		return 0;
	if (s->len + tlen + plen > s->cap_data) {
		size_t cap = s->cap_data ? s->cap_data : 65536;
		while (cap < s->len + tlen + plen)
			cap *= 2;
		char *d = realloc(s->data, cap);
		if (d == NULL)
			return -1;
		s->data = d;
		s->cap_data = cap;
	}
	if (e == NULL) {
		if (s->n == s->cap) {
			int cap = s->cap ? s->cap * 2 : 64;
			struct snap_entry *ne = realloc(s->e, cap * sizeof(*ne));
			if (ne == NULL)
				return -1;
			s->e = ne;
			s->cap = cap;
		}
		e = &s->e[s->n++];
		s->slots[j] = s->n;
	}
	e->seq = seq;
	e->off = s->len;
	e->topic_len = tlen;
	e->payload_len = plen;
	memcpy(s->data + s->len, t, tlen);
	memcpy(s->data + s->len + tlen, pl, plen);
	s->len += tlen + plen;
	return 0;
}

/* 1 if the snapshot is of all the client's patterns, not of one. */
static int
snap_multi(const struct snapshot *s)
{
	return s->kind == SNAP_CONFLATE || s->kind == SNAP_SUBS;
}

/* 1 if the snapshot takes topic t's value with this seq.  (The patterns
 * of SNAP_SUBS deliver nothing yet: their start_seq is not set.) */
static int
snap_wants(const struct snap_step *f, const char *t, size_t tlen,
    uint64_t seq)
{
	const struct snapshot *s = f->s;

	if (seq > f->max && !f->raise)
		return 0;
	if (!snap_multi(s))
		return topic_match(s->pattern, s->plen, t, tlen);
	if (s->kind == SNAP_CONFLATE && seq < s->first)
		return 0;
	for (const struct sub *u = f->c->subs; u != NULL; u = u->cnext)
		if ((s->kind == SNAP_SUBS || u->start_seq <= seq) &&
		    topic_match(u->pattern, u->len, t, tlen))
			return 1;
	return 0;
}

static int
snap_value_cb(void *arg, const struct bus_value *v)
{
	struct snap_step *f = arg;

	f->found = 1;
	if (!snap_wants(f, v->topic, v->topic_len, v->seq))
		return 0;
	if (snap_put(&f->w->snap, v->topic, v->topic_len, v->seq, v->payload,
	    v->payload_len) == -1)
		f->failed = 1;
	else if (v->seq > f->max_seen)
		f->max_seen = v->seq;
	return 0;
}

/* 1 when the step has collected enough. */
static int
snap_full(const struct snap_step *f)
{
	return f->failed || f->w->snap.len >= SNAPSHOT_STEP_BYTES;
}

/* A topic the walk found (or an exact pattern): take its value, if the
 * table has it.  Returns 1 when the step has collected enough. */
static int
snap_topic(void *arg, const char *t, size_t len)
{
	struct snap_step *f = arg;
	struct snapshot *s = f->s;

	/* several patterns: a topic an earlier one matches was seen there */
	if (snap_multi(s))
		for (const struct sub *u = f->c->subs; u != s->sub;
		    u = u->cnext)
			if (topic_match(u->pattern, u->len, t, len))
				return snap_full(f);
	f->found = 0;
	bus_retained_foreach(f->w->bus, t, len, snap_value_cb, f);
	if (!f->found && s->ri != NULL)
		retained_forget(s->ri, t, len);
	return snap_full(f);
}

static int
index_build_cb(void *arg, const struct bus_value *v)
{
	return retained_note(arg, v->topic, v->topic_len) == -1;
}

/*
 * The worker's index of retained topics, built from a walk of the table
 * if there is none or it is stale.  Returns 0 (*ri set), 1 when it must
 * wait (the table lacks a record the worker has read, whose topic the
 * walk would miss: the producer is between the two), -1 when memory runs
 * out.
 */
static int
snap_index(struct worker *w, struct retained **ri)
{
	if (w->ret == NULL || w->ret_stale) {
		if (bus_retained_seq(w->bus) < w->head_seq)
			return 1;
		struct retained *n = retained_new();
		if (n == NULL || bus_retained_foreach(w->bus, "#", 1,
		    index_build_cb, n) != 0) {
			retained_free(n);
			return -1;
		}
		retained_built(n);
		/* an old one that snapshots walk is freed after the last */
		if (w->ret != NULL && w->ret->refs == 0)
			retained_free(w->ret);
		w->ret = n;
		w->ret_stale = 0;
	}
	*ri = w->ret;
	return 0;
}

/* Collect pattern p's values from s->at on.  Returns 1 when it has them
 * all, 0 when the step ends first, -1 when it must wait (snap_index). */
static int
snap_walk(struct snap_step *f, const char *p, size_t plen)
{
	struct snapshot *s = f->s;

	if (pattern_is_exact(p, plen)) {	/* no walk: one look-up */
		if (f->visits > 0)
			f->visits--;
		snap_topic(f, p, plen);
		return 1;
	}
	if (s->ri == NULL) {
		int rc = snap_index(f->w, &s->ri);
		if (rc != 0) {
			f->failed = rc == -1;
			return -1;
		}
		s->ri->refs++;
	}
	struct retained_walk rw = { .cb = snap_topic, .arg = f,
	    .visits = f->visits, .atlen = s->atlen };
	memcpy(rw.at, s->at, s->atlen);
	int done = retained_walk(s->ri, p, plen, &rw);
	f->visits = rw.visits;
	s->atlen = done ? 0 : rw.atlen;
	memcpy(s->at, rw.at, s->atlen);
	return done;
}

/* One step's values: 1 when the snapshot has them all, 0 when there is
 * more, -1 when it must wait. */
static int
snap_collect(struct snap_step *f)
{
	struct snapshot *s = f->s;

	if (!snap_multi(s))
		return snap_walk(f, s->pattern, s->plen);
	for (; s->sub != NULL; s->sub = s->sub->cnext) {
		if (snap_full(f) || f->visits == 0)
			return 0;
		int r = snap_walk(f, s->sub->pattern, s->sub->len);
		if (r != 1)
			return r;
	}
	return 1;
}

/*
 * The step read values above the worker's head: bring every value up to
 * h with the ring's records from the worker's position on, so that all
 * are as of h.  The table took some while it was read, and the index
 * lacks the topics first seen after the head: those come from the ring
 * too.  -1 when the ring no longer holds them.
 */
static int
snap_patch(struct snap_step *f, uint64_t h)
{
	struct worker *w = f->w;
	uint64_t p = w->pos, seq = w->head_seq;

	while (seq < h) {
		int n = fanout_read(w, &p, &w->slow_buf, &w->slow_len,
		    w->slow_recs);
		if (n <= 0)
			return -1;
		for (int i = 0; i < n && (seq = w->slow_recs[i].seq) <= h;
		    i++) {
			const struct bus_rec *r = &w->slow_recs[i];
			if (snap_wants(f, r->topic, r->topic_len, r->seq) &&
			    snap_put(&w->snap, r->topic, r->topic_len, r->seq,
			    r->payload, r->payload_len) == -1)
				f->failed = 1;
		}
	}
	return 0;
}

/* Queue "VAL topic seq payload" for the client; returns its bytes. */
static size_t
val_line(struct client *c, const char *t, size_t tlen, uint64_t seq,
    const char *pl, size_t plen)
{
	char head[TOPIC_MAX + 32];
	int n = snprintf(head, sizeof(head), "VAL %.*s %llu ", (int)tlen, t,
	    (unsigned long long)seq);

	client_reply(c, head, n);
	client_reply(c, pl, plen);
	client_reply(c, "\n", 1);
	return n + plen + 1;
}

/*
 * The first step: fix h, queue the GAP, and place the client's cursor
 * after h.  When that owes the client nothing (f->raise), h is taken as
 * high as the table goes, the worker fanned out up to it first; and if
 * the whole snapshot fits in this step, as high as the newest value it
 * read.  Returns as snap_collect does; -1 leaves the snapshot as it was,
 * to be tried again when the loop has turned.
 */
static int
snap_first(struct snap_step *f)
{
	struct worker *w = f->w;
	struct client *c = f->c;
	struct snapshot *s = f->s;

	f->raise = s->kind != SNAP_SUB || c->subs == NULL;
	if (f->raise) {
		uint64_t r0 = bus_retained_seq(w->bus);
		/* (a cut batch sent it records the table may not have yet) */
		if (r0 < c->sent_seq)
			return -1;
		if (r0 > w->head_seq)
			fanout_advance(w, r0);
		/* lapped meanwhile, the worker may be past the table */
		if (bus_retained_seq(w->bus) < w->head_seq)
			return -1;
	}
	uint64_t h = f->max = w->head_seq;
	s->sub = c->subs;
	int r = snap_collect(f);
	if (r == 1 && f->raise && f->max_seen > h && !f->failed) {
		/* lapped meanwhile: no stale value, the client waits */
		h = f->max_seen;
		if (snap_patch(f, h) == -1)
			r = -1;
		else if (fanout_advance(w, h), w->head_seq != h)
			r = -1;
	}
	if (r == -1) {
		snap_reset(&w->snap);
		s->atlen = 0;
		return -1;
	}
	s->h = h;
	s->started = 1;
	c->pos = w->pos;
	c->next_seq = h + 1;
	client_cursor_set(c, CUR_BEHIND);
	if (s->kind == SNAP_SUB || (s->kind == SNAP_SUBS && s->first == 0))
		return r;
	/* the GAP covers everything up to h, for every pattern */
	if (c->sent_seq < h)
		c->sent_seq = h;
	c->replay_end = 0;
	if (s->first > h) {	/* nothing lost after all */
		snap_reset(&w->snap);
		return 1;
	}
	client_replyf(c, "GAP %llu %llu\n", (unsigned long long)s->first,
	    (unsigned long long)h);
	bus_counter_add(w->bus, w->slot, CTR_GAPS, 1);
	return r;
}

/* Queue the step's values as of h for the client; returns the bytes. */
static size_t
snap_emit(struct worker *w, struct client *c, uint64_t h)
{
	struct snap_set *set = &w->snap;
	size_t bytes = 0;

	for (int i = 0; i < set->n && c->state != CS_DEAD; i++) {
		const struct snap_entry *e = &set->e[i];
		if (e->seq > h)		/* changed since h: a MSG follows */
			continue;
		bytes += val_line(c, set->data + e->off, e->topic_len, e->seq,
		    set->data + e->off + e->topic_len, e->payload_len);
	}
	snap_reset(set);
	/* a step of huge values: do not keep their memory around */
	if (set->cap_data > 4 * SNAPSHOT_STEP_BYTES)
		snap_set_free(set);
	return bytes;
}

/* 1 if a SUB's snapshot may start now (else the SUB waits, see
 * client_input): the client has been sent everything it is owed up to the
 * worker's position and nothing beyond it, and the table has every record
 * the worker has. */
int
snapshot_may_start(const struct client *c)
{
	struct worker *w = c->w;

	if (!client_live(c) && c->pos < w->pos)
		return 0;	/* behind: its MSGs up to h come first */
	if (c->sent_seq > w->head_seq)
		return 0;	/* a cut batch took it past the worker */
	return bus_retained_seq(w->bus) >= w->head_seq;
}

/*
 * Start sending a snapshot to the client: for a SUB (kind SNAP_SUB, or
 * SNAP_SUB_GAP with first = since + 1), of pattern; for a conflation,
 * from first (its first lost seq).  client_flush sends it, step by step
 * (snapshot_step).  Returns -1 when the client was closed (no memory).
 */
int
snapshot_start(struct client *c, enum snap_kind kind, const char *pattern,
    size_t plen, uint64_t first)
{
	struct client_io *io = client_io(c);
	struct snapshot *s = calloc(1, sizeof(*s));

	if (io == NULL || s == NULL) {
		free(s);
		log_warnx("client %u: out of memory for a snapshot", c->id);
		client_kill(c);
		return -1;
	}
	s->kind = kind;
	s->first = first;
	s->plen = plen;
	if (plen > 0)		/* (a conflation has none) */
		memcpy(s->pattern, pattern, plen);
	io->snap = s;
	client_detach(c);	/* it walks on after the snapshot */
	return 0;
}

/*
 * One step of the client's snapshot: queue its next values (and, the
 * first time, the GAP; the last time, the +OK of a SUB).  Adds the bytes
 * queued to *queued.  Returns 1 when it progressed, 0 when it must be
 * tried again when the loop has turned, -1 when the client was closed.
 */
int
snapshot_step(struct client *c, size_t *queued)
{
	struct worker *w = c->w;
	struct snapshot *s = c->io->snap;
	struct snap_step f = { .w = w, .c = c, .s = s, .max = s->h,
	    .visits = SNAPSHOT_STEP_NODES };
	int started = s->started;

	/* w->snap holds one step's values; and a first step may fan out,
	 * which a round under way owns (fanout_batches). */
	if (w->in_snapshot || w->in_fanout)
		fatalx("a snapshot step was run from inside a %s",
		    w->in_snapshot ? "snapshot step" : "fan-out round");
	w->in_snapshot = 1;
	int r = started ? snap_collect(&f) : snap_first(&f);
	w->in_snapshot = 0;

	if (f.failed) {
		snap_reset(&w->snap);
		log_warnx("client %u: out of memory for a snapshot", c->id);
		client_kill(c);
		return -1;
	}
	if (r == -1 && !started)
		return 0;
	*queued += snap_emit(w, c, s->h);
	if (s->ri != NULL && s->ri == w->ret && retained_stale(s->ri))
		w->ret_stale = 1;
	if (r == 1) {
		if (s->kind == SNAP_SUBS)
			command_subs_done(c, s->h);
		else if (s->kind != SNAP_CONFLATE)
			client_snapshot_done(c, s->pattern, s->plen, s->h);
		snapshot_end(c);
		authn_snapshot_done(c);
	}
	if (c->state == CS_DEAD)
		return -1;
	return r == -1 ? 0 : 1;
}

/* Forget the client's snapshot (sent, or the client is freed). */
void
snapshot_end(struct client *c)
{
	struct worker *w = c->w;
	struct snapshot *s = c->io->snap;

	c->io->snap = NULL;
	if (s->ri != NULL && --s->ri->refs == 0 && s->ri != w->ret)
		retained_free(s->ri);
	free(s);
}

static int
get_value_cb(void *arg, const struct bus_value *v)
{
	val_line(arg, v->topic, v->topic_len, v->seq, v->payload,
	    v->payload_len);
	return 1;
}

/* GET: queue the topic's VAL line; 0 if the table does not have it. */
int
snapshot_get(struct client *c, const char *topic, size_t len)
{
	return bus_retained_foreach(c->w->bus, topic, len, get_value_cb, c);
}
