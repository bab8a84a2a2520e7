/*
 * The replay sweep: the resumes (SUB ... since) of one loop turn served
 * together, the ring read once for all of them (fanout.c's batches do
 * the matching and the writing).
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
 * Clients that resume (SUB ... since) replay from the bus.  Walking the
 * ring once per client costs each one the whole backlog: when thousands
 * reconnect at once, every walk makes the next one longer.  Instead the
 * resumes of one loop turn are served by one sweep: the ring is read once
 * from the lowest of their positions, each record matched once against
 * the index, and every client gets its records of a batch in one write,
 * as on the fast path.  A client the sweep cannot finish (its socket
 * fills, the ring laps it) walks alone afterwards.
 */
int
replay_later(struct client *c)
{
	struct worker *w = c->w;

	if (c->cursor == CUR_REPLAY)
		return 0;
	if (w->nreplay == w->replay_cap) {
		int cap = w->replay_cap ? w->replay_cap * 2 : 256;
		struct client **r = realloc(w->replay, cap * sizeof(*r));
		if (r == NULL)
			return -1;
		w->replay = r;
		w->replay_cap = cap;
	}
	if (!event_pending(w->replay_ev, EV_TIMEOUT, NULL)) {
		struct timeval tv = { 0, REPLAY_SWEEP_DELAY_MS * 1000 };
		if (ev_add_or_warn(w->replay_ev, &tv, "replay sweep") == -1)
			return -1;	/* it walks alone */
	}
	w->replay[w->nreplay++] = c;
	client_cursor_set(c, CUR_REPLAY);
	return 0;
}

/* A client leaves the replay list (it is being freed). */
void
replay_forget(struct client *c)
{
	struct worker *w = c->w;

	for (int i = 0; i < w->nreplay; i++)
		if (w->replay[i] == c)
			w->replay[i] = w->replay[--w->nreplay];
	client_cursor_set(c, CUR_ALONE);
}

/*
 * The topics a sweep's clients take, when all their patterns are exact:
 * a record on none of them is skipped without touching the index.  In a
 * reconnect storm the backlog is long and a sweep's clients take few of
 * its topics.
 */
struct sweep_filter {
	uint64_t	*topics;	/* hashes, open addressing; 0 = empty */
	size_t		 nslots;	/* 0: no filter (a wildcard pattern) */
};

static void
sweep_filter(struct sweep_filter *f, struct client **list, int n)
{
	size_t subs = 0;

	f->topics = NULL;
	f->nslots = 0;
	for (int i = 0; i < n; i++)
		for (const struct sub *s = list[i]->subs; s != NULL;
		    s = s->cnext) {
			if (!s->is_exact)
				return;
			subs++;
		}
	size_t slots = 64;
	while (slots < subs * 2)
		slots *= 2;
	uint64_t *t = calloc(slots, sizeof(*t));
	if (t == NULL)
		return;
	for (int i = 0; i < n; i++)
		for (const struct sub *s = list[i]->subs; s != NULL;
		    s = s->cnext) {
			uint64_t h = hash_bytes(s->pattern, s->len) | 1;
			size_t j = h & (slots - 1);
			while (t[j] != 0 && t[j] != h)
				j = (j + 1) & (slots - 1);
			t[j] = h;
		}
	f->topics = t;
	f->nslots = slots;
}

/* 0 if no client of the sweep can take this topic. */
static int
sweep_wants(const struct sweep_filter *f, const char *topic, size_t len)
{
	if (f->nslots == 0)
		return 1;
	uint64_t h = hash_bytes(topic, len) | 1;
	for (size_t j = h & (f->nslots - 1); f->topics[j] != 0;
	    j = (j + 1) & (f->nslots - 1))
		if (f->topics[j] == h)
			return 1;
	return 0;
}

/* One batch of the sweep: records [.., *p) matched and written. */
static int
sweep_batch(struct worker *w, const struct sweep_filter *f, uint64_t *p)
{
	uint64_t start = *p;
	int n = fanout_read(w, p, &w->slow_buf, &w->slow_len, w->slow_recs);

	if (n <= 0)
		return n;	/* lapped, or no memory: they walk alone */
	for (int i = 0; i < n; i++)
		if (w->slow_recs[i].pos >= w->pos) {
			*p = w->slow_recs[i].pos;
			n = i;
			break;
		}
	if (n == 0) {
		*p = start;
		return 0;
	}
	fanout_batch_reset(w);
	struct match m = { .w = w, .recs = w->slow_recs, .replay = 1 };
	for (m.rec = 0; m.rec < n; m.rec++) {
		const struct bus_rec *r = &w->slow_recs[m.rec];
		if (!sweep_wants(f, r->topic, r->topic_len))
			continue;
		if (fanout_dl_reserve(w) == -1)
			return BUS_LAPPED;
		index_match(&w->idx, r->topic, r->topic_len, fanout_collect,
		    &m);
	}
	for (struct client *c = w->touched, *next; c != NULL; c = next) {
		next = c->batch_next;
		fanout_deliver(w, c, w->slow_recs, n, *p);
	}
	return n;
}

static void
replay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t from = UINT64_MAX, p;
	/* Taken whole: flushing a client may run a SUB that starts a list
	 * for the next sweep. */
	struct client **list = w->replay;
	int cnt = w->nreplay, n = 0;

	w->replay = NULL;
	w->nreplay = w->replay_cap = 0;
	/* Those still waiting to replay, and nothing else pending. */
	for (int i = 0; i < cnt; i++) {
		struct client *c = list[i];
		if (c->state != CS_OPEN || c->writing ||
		    c->pos >= w->pos || client_snapshot(c)) {
			client_cursor_set(c, CUR_ALONE);
			if (c->state == CS_OPEN)
				client_flush(c);
			continue;
		}
		client_cursor_set(c, CUR_SWEEP);
		list[n++] = c;
		if (c->pos < from)
			from = c->pos;
	}
	struct sweep_filter filter;
	sweep_filter(&filter, list, n);
	for (p = from; n > 0 && p < w->pos; ) {
		uint64_t last = p;
		int k = sweep_batch(w, &filter, &p);
		if (k <= 0)
			break;
		uint64_t seq = w->slow_recs[k - 1].seq;
		for (int i = 0; i < n; i++) {
			struct client *c = list[i];
			if (c->cursor != CUR_SWEEP)
				continue;
			if (c->state != CS_OPEN || c->writing)	/* cut */
				client_cursor_set(c, CUR_ALONE);
			else if (c->pos >= last && c->pos < p) {
				c->pos = p;
				c->next_seq = seq + 1;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		struct client *c = list[i];
		client_cursor_set(c, c->cursor == CUR_SWEEP && c->pos >= w->pos ?
		    CUR_LIVE : CUR_ALONE);
	}
	for (int i = 0; i < n; i++)
		if (list[i]->state == CS_OPEN)
			client_flush(list[i]);
	free(filter.topics);
	free(list);
}

void
replay_init(struct worker *w)
{
	w->replay_ev = evtimer_new(w->base, replay_cb, w);
	if (w->replay_ev == NULL)
		fatalx("event_new failed");
}

