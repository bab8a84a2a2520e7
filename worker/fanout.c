/*
 * Fan-out from the bus.  Each wakeup the worker walks the new records
 * once, matches each against its topic index once, and writes to every
 * caught-up client all its records of the batch in one sendmsg; records
 * that arrive while it writes join the batch (batch_extend).  A client
 * that cannot keep up leaves that fast path and walks the bus from its
 * own cursor when its socket is writable; one that falls too far behind
 * (or is lapped by the ring) gets its slow-consumer policy.  A client
 * costs a cursor, never a queue of copies.
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

static void	note_topics(struct worker *, const struct bus_rec *, int);

/* Index callback (arg: struct match): note that record m->rec of the
 * batch goes to this client. */
void
fanout_collect(void *arg, struct sub *s)
{
	const struct match *m = arg;
	struct worker *w = m->w;
	struct client *c = s->client;
	const struct bus_rec *r = &m->recs[m->rec];
	int cur_rec = m->rec;

	if (c->state != CS_OPEN || s->start_seq > r->seq)
		return;
	/* the fast path serves the caught-up, a sweep those in it that
	 * have reached this record */
	if (m->replay ? c->cursor != CUR_SWEEP || c->pos > r->pos :
	    c->cursor != CUR_LIVE)
		return;
	/* (a batch after a cut one: some were sent it in the cut one) */
	if (r->seq <= c->sent_seq)
		return;
	if (c->batch_first != 0) {
		struct delivery *run = &w->dl[c->batch_last];
		/* Once, even if two of its patterns match. */
		if (run->last == cur_rec)
			return;
		/* The record after its last: the run grows.  A broadcast's
		 * deliveries are one run per client, walked in order (one
		 * entry per record cost a cache miss each in deliver). */
		if (run->last == cur_rec - 1) {
			run->last = cur_rec;
			return;
		}
	}
	int d = w->dl_free;
	if (d >= 0) {
		w->dl_free = w->dl[d].next;
		w->dl_nfree--;
	} else {
		d = w->ndl++;
	}
	w->dl[d].first = w->dl[d].last = cur_rec;
	w->dl[d].next = -1;
	if (c->batch_first == 0) {
		/* in order of arrival: a long batch serves the clients in
		 * the order they were written last time (batch_extend) */
		c->batch_first = d + 1;
		c->batch_next = NULL;
		if (w->touched == NULL)
			w->touched = c;
		else
			w->touched_tail->batch_next = c;
		w->touched_tail = c;
		w->ntouched++;
	} else {
		w->dl[c->batch_last].next = d;
	}
	c->batch_last = d;
}

/*
 * After a short write of iov (records recs[idx[i]], in the client's
 * framing): count what went out, keep the rest of the record that was
 * cut in out, and move the client's cursor past it.  end_pos is where
 * the batch ends.
 */
static void
after_write(struct client *c, const struct bus_rec *recs, const int *idx,
    const struct iovec *iov, int k, size_t written, uint64_t end_pos,
    int nrecs)
{
	struct worker *w = c->w;
	int i;

	bus_counter_add(w->bus, w->slot, CTR_BYTES_OUT, written);
	for (i = 0; i < k && written >= iov[i].iov_len; i++) {
		written -= iov[i].iov_len;
		c->sent_seq = recs[idx[i]].seq;
	}
	bus_counter_add(w->bus, w->slot, CTR_MSGS_OUT, i);
	if (i == k)
		return;
	const struct bus_rec *r = &recs[idx[i]];
	if (client_live(c))
		client_cursor_set(c, CUR_BEHIND);
	if (written > 0) {
		/* Cut mid-line: the rest goes out before anything else. */
		c->pos = idx[i] + 1 < nrecs ? recs[idx[i] + 1].pos : end_pos;
		c->next_seq = r->seq + 1;
		c->sent_seq = r->seq;
		bus_counter_add(w->bus, w->slot, CTR_MSGS_OUT, 1);
		client_reply_framed(c, (const char *)iov[i].iov_base + written,
		    iov[i].iov_len - written);
	} else {
		c->pos = r->pos;
		c->next_seq = r->seq;
	}
	worker_want(c, c->reading, 1);
}

/* Make room in the delivery list for one record to every client. */
int
fanout_dl_reserve(struct worker *w)
{
	int need = w->ndl + w->nclients + 1;

	if (need <= w->dl_cap)
		return 0;
	int cap = w->dl_cap ? w->dl_cap : 4096;
	while (cap < need)
		cap *= 2;
	struct delivery *dl = realloc(w->dl, cap * sizeof(*dl));
	if (dl == NULL)
		return -1;
	w->dl = dl;
	w->dl_cap = cap;
	return 0;
}

/* An empty batch: no deliveries, no client to write. */
void
fanout_batch_reset(struct worker *w)
{
	w->ndl = 0;
	w->dl_free = -1;
	w->dl_nfree = 0;
	w->touched = NULL;
	w->ntouched = 0;
}

/* A read buffer always takes a record's topic: after BUS_TOO_BIG the
 * record's topic is there to match. */
_Static_assert(FANOUT_BATCH_BYTES >= TOPIC_MAX, "read buffer below a topic");

/*
 * Grow a read buffer (*buf, *len bytes) for a record whose line is need
 * bytes: a record over what max_payload allowed when the worker started
 * (max_payload raised by a reload, or a bus file kept from a run with a
 * larger one).  To twice that if memory allows, so that a batch holds
 * more than the one record, and never past what any record of the bus
 * can need.  Returns 0, or -1 if memory cannot be had.
 */
static int
buf_fit(struct worker *w, char **buf, size_t *len, size_t need)
{
	size_t max = bus_line_max(w->bus), want = need * 2;
	char *p;

	if (want > max)
		want = max > need ? max : need;
	if ((p = realloc(*buf, want)) == NULL && want > need)
		p = realloc(*buf, want = need);
	if (p == NULL)
		return -1;	/* the caller says what it does instead */
	log_info("read buffer grown to %zu bytes for a record of %zu",
	    want, need);
	*buf = p;
	*len = want;
	return 0;
}

/*
 * bus_read into one of the worker's buffers (w->scratch or w->slow_buf,
 * with nothing of theirs in use), growing it for a record that does not
 * fit.  BUS_TOO_BIG only if memory for the record cannot be had; recs[0]
 * then describes it (bus_read).
 */
int
fanout_read(struct worker *w, uint64_t *p, char **buf, size_t *len,
    struct bus_rec *recs)
{
	int n;

	while ((n = bus_read(w->bus, p, *buf, *len, recs,
	    FANOUT_BATCH_RECS)) == BUS_TOO_BIG &&
	    buf_fit(w, buf, len, recs[0].line_len) == 0)
		;
	return n;
}

/* Ring bytes of a record described by bus_read. */
static uint64_t
rec_end(const struct bus_rec *r)
{
	return r->pos + bus_record_size(r->topic_len, r->payload_len);
}

/* Index callback for batch_skip (arg: the record): a caught-up client
 * that takes it leaves the fast path just before it. */
static void
skip_collect(void *arg, struct sub *s)
{
	struct client *c = s->client;
	const struct bus_rec *r = arg;

	if (c->state != CS_OPEN || !client_live(c) || s->start_seq > r->seq ||
	    r->seq <= c->sent_seq)
		return;
	c->pos = r->pos;
	c->next_seq = r->seq;
	client_cursor_set(c, CUR_BEHIND);
	worker_want(c, c->reading, 1);
}

/*
 * The fast path has no memory for record r (BUS_TOO_BIG): it passes it
 * by.  The clients that take it walk to it on their own, with the slow
 * path's buffer: it is delivered, or they are told its GAP (walk_skip,
 * which counts and logs it).
 */
static void
batch_skip(struct worker *w, const struct bus_rec *r)
{
	index_match(&w->idx, r->topic, r->topic_len, skip_collect,
	    (void *)r);
	note_topics(w, r, 1);
	w->pos = rec_end(r);
	w->head_seq = r->seq;
}

/* Record r of recs as the client gets it: the bus's own MSG line, or
 * its rendering in the client's framing (framed: FRAME_SSE, FRAME_WS). */
static void
rec_iov(struct worker *w, int framed, const struct bus_rec *recs, int r,
    struct iovec *iov)
{
	if (framed) {
		framing_rec(w, framed, recs, r, iov);
		return;
	}
	iov->iov_base = (void *)recs[r].line;
	iov->iov_len = recs[r].line_len;
}

/*
 * Write a client's records of this batch (recs) in one writev, after the
 * replies it has queued (a sweep's resumed clients: HELLO, +OK SUB).
 */
void
fanout_deliver(struct worker *w, struct client *c, const struct bus_rec *recs,
    int nrecs, uint64_t end_pos)
{
	int idx[FANOUT_BATCH_RECS], k = 0, runs = 0;
	size_t owed = client_pending(c);
	struct iovec *iov = w->iov + 1;
	int framed = client_reframes(c) ? c->framing : 0;
	int no_mem = framed && framing_begin(w, framed, recs) == -1;

	if (owed > 0) {
		w->iov[0].iov_base = c->io->out + c->io->out_off;
		w->iov[0].iov_len = owed;
	}
	for (int d = c->batch_first - 1; d != -1; d = w->dl[d].next) {
		for (int r = w->dl[d].first; r <= w->dl[d].last; r++) {
			idx[k] = r;
			rec_iov(w, no_mem ? 0 : framed, recs, r, &iov[k]);
			k++;
		}
		runs++;
	}
	/* Written, its runs are free for the records that join the batch:
	 * a long batch is bounded by those waiting, not by all. */
	w->dl[c->batch_last].next = w->dl_free;
	w->dl_free = c->batch_first - 1;
	w->dl_nfree += runs;
	c->batch_first = 0;
	/* Closed, or told BYE, by a PUB taken between writes: nothing more
	 * goes to it. */
	if (c->state != CS_OPEN)
		return;
	if (no_mem) {
		log_warnx("client %u: out of memory for framing records",
		    c->id);
		client_kill(c);
		return;
	}
	ssize_t n = client_writev(c, owed > 0 ? w->iov : iov, k + (owed > 0));
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR) {
			client_lost(c, "writev");
			return;
		}
		n = 0;
	}
	if (owed > 0) {
		size_t mine = (size_t)n < owed ? (size_t)n : owed;
		if (mine > 0)
			client_written(c, mine);
		n -= mine;
	}
	if (n > 0)
		c->last_out = (uint32_t)now_ms();
	after_write(c, recs, idx, iov, k, n, end_pos, nrecs);
}

/* The worker itself was lapped (it was stopped, or the ring is tiny):
 * every caught-up client must find out for itself. */
static void
worker_lapped(struct worker *w)
{
	uint64_t tpos, tseq;
	struct client *c;

	CLIENTS_FOREACH(w, c) {
		if (c->state == CS_DEAD || !client_live(c))
			continue;
		client_detach(c);
		worker_want(c, c->reading, 1);
	}
	w->ret_stale = 1;	/* the topics of what it skipped are not in it */
	bus_tail(w->bus, &tpos, &tseq);
	worker_limit(w, CTR_WORKER_LAPPED, 1, "lapped by the bus at seq %llu: "
	    "resuming at seq %llu (bus.size too small for the traffic?)",
	    (unsigned long long)w->head_seq + 1, (unsigned long long)tseq);
	w->pos = tpos;
	w->head_seq = tseq - 1;
}

/* Match recs[from..n) against the index: deliveries for the caught-up
 * clients.  Returns how many were matched (fewer when the delivery list
 * is full). */
static int
batch_match(struct worker *w, int from, int n)
{
	struct match m = { .w = w, .recs = w->recs, .replay = 0 };

	for (m.rec = from; m.rec < n; m.rec++) {
		/* One record may go to every client: room for that, and a
		 * bound on the batch's deliveries. */
		if (m.rec > 0 && (w->ndl - w->dl_nfree >=
		    FANOUT_BATCH_DELIVERIES ||
		    fanout_dl_reserve(w) == -1))
			break;
		if (m.rec == 0 && fanout_dl_reserve(w) == -1)
			fatalx("out of memory for fan-out");
		index_match(&w->idx, w->recs[m.rec].topic,
		    w->recs[m.rec].topic_len, fanout_collect, &m);
	}
	return m.rec;
}

/* The records' topics are retained: the index of retained topics (the
 * snapshots') learns the new ones.  One hash probe for a known topic. */
static void
note_topics(struct worker *w, const struct bus_rec *recs, int n)
{
	if (w->ret == NULL || w->ret_stale)
		return;		/* it is built anew from the table first */
	for (int i = 0; i < n; i++)
		if (retained_note(w->ret, recs[i].topic, recs[i].topic_len) ==
		    -1) {
			w->ret_stale = 1;
			return;
		}
	if (retained_stale(w->ret))
		w->ret_stale = 1;
}

/* Bytes of scratch the batch's first n records use. */
static size_t
batch_bytes(const struct worker *w, int n)
{
	const struct bus_rec *last = &w->recs[n - 1];

	return (size_t)(last->line + last->line_len - w->scratch);
}

/*
 * Records that reached the bus while a batch is being written join it:
 * the clients not yet written get them in the same write, those already
 * written in the next round of the same batch (collect queues them in
 * the order they were written).  Without this a record arriving early in
 * a long round waited for the round to end and then for its client's
 * turn in the next: up to two rounds instead of one.  When a batch ends, and which rounds grow, is batch_rounds'.
 */
static void
batch_extend(struct worker *w, uint64_t until_seq, int *n, uint64_t *p)
{
	if (*n == 0 || *n >= FANOUT_BATCH_RECS ||
	    bus_head_seq(w->bus) <= w->recs[*n - 1].seq ||
	    w->recs[*n - 1].seq >= until_seq)
		return;
	size_t used = batch_bytes(w, *n);
	uint64_t q = *p;
	int m = bus_read(w->bus, &q, w->scratch + used, w->scratch_len - used,
	    w->recs + *n, FANOUT_BATCH_RECS - *n);
	if (m <= 0)	/* (one that does not fit starts the next batch) */
		return;
	int end = *n + m;
	for (int i = *n; i < end; i++)
		if (w->recs[i].seq > until_seq) {
			end = i;
			break;
		}
	note_topics(w, w->recs + *n, end - *n);
	int k = batch_match(w, *n, end);
	*p = k < *n + m ? w->recs[k].pos : q;
	*n = k;
}

/* Whether the batch has used half its room (records or bytes): the round
 * that ends it must still have room for what joins it. */
static int
batch_half_full(const struct worker *w, int n)
{
	return n > 0 && (n >= FANOUT_BATCH_RECS / 2 ||
	    batch_bytes(w, n) >= w->scratch_len / 2);
}

/* The batch is cut after its last round: the clients that were to be
 * written again start the next batch with nothing owed. */
static void
batch_cut(struct worker *w)
{
	for (struct client *c = w->touched; c != NULL; c = c->batch_next)
		c->batch_first = 0;
	w->touched = NULL;
	w->ntouched = 0;
}

/*
 * The rounds of a batch.  Each writes every client that has records
 * waiting, in the order they were written before; every
 * FANOUT_EXTEND_EVERY clients it passes on what publishers sent (serve:
 * worker_serve_publishers) and lets records that reached the bus join
 * (batch_extend).  A batch ends when a round adds nothing, or after the
 * round that follows its time (FANOUT_ROLL_MS), half its room, or other
 * work waiting (worker_pending).  That last round still takes records
 * for the clients it has yet to write; then the batch is cut where that
 * round began, and the next batch gives those records to the clients
 * written before they came (collect skips what a client was sent).  So
 * no record waits for a round that will not take it.  Returns 1 if the
 * batch was cut.
 */
static int
batch_rounds(struct worker *w, uint64_t until_seq, int serve, int *n,
    uint64_t *p)
{
	uint64_t started = now_ms();
	int since = 0, last = 0;

	while (w->touched != NULL) {
		struct client *list = w->touched;
		int n0 = *n;
		uint64_t p0 = *p;
		/* Only a long round gains: in a short one no record waits
		 * long, and growing it costs more rounds. */
		int roll = w->ntouched >= FANOUT_ROLL_MIN;

		w->touched = NULL;
		w->ntouched = 0;
		for (struct client *c = list, *next; c != NULL; c = next) {
			next = c->batch_next;
			fanout_deliver(w, c, w->recs, *n, *p);
			if (++since % FANOUT_EXTEND_EVERY != 0)
				continue;
			if (serve)
				worker_serve_publishers(w);
			if (roll)
				batch_extend(w, until_seq, n, p);
		}
		if (last) {
			batch_cut(w);
			*n = n0;
			*p = p0;
			return 1;
		}
		if (w->touched != NULL && (now_ms() - started >=
		    FANOUT_ROLL_MS || batch_half_full(w, *n) ||
		    worker_pending(w)))
			last = 1;
	}
	return 0;
}

/*
 * Fan out the bus from the worker's position up to until_seq (or the
 * head): batch by batch, each record matched once, each client written
 * once per round with all its records of the batch so far.  Publishers
 * are served between writes (serve) only in the loop's own fan-out,
 * never in one run from inside a command (a snapshot).
 */
static void
fanout_batches(struct worker *w, uint64_t until_seq, int serve)
{
	/* The batch's state (w->touched, w->dl, the cursors it moves) has
	 * one owner at a time: a command run from inside a round that
	 * fanned out again would write its clients records twice. */
	if (w->in_fanout)
		fatalx("the fan-out was entered again from inside a round");
	w->in_fanout = 1;
	forward_flush(w);	/* PUBs read in this turn: see forward_flush */
	while (w->head_seq < until_seq) {
		uint64_t p = w->pos;
		int n = fanout_read(w, &p, &w->scratch, &w->scratch_len,
		    w->recs);
		if (n == BUS_LAPPED) {
			worker_lapped(w);
			continue;
		}
		if (n == BUS_TOO_BIG) {
			batch_skip(w, &w->recs[0]);
			continue;
		}
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if (w->recs[i].seq > until_seq) {
				p = w->recs[i].pos;
				n = i;
				break;
			}
		}
		note_topics(w, w->recs, n);
		fanout_batch_reset(w);
		int k = batch_match(w, 0, n);
		if (k < n) {
			p = w->recs[k].pos;
			n = k;
		}
		int cut = batch_rounds(w, until_seq, serve, &n, &p);
		w->pos = p;
		if (n > 0)
			w->head_seq = w->recs[n - 1].seq;
		if (cut && serve) {
			/* Under a publisher that never pauses the bus is never
			 * done: let the loop turn, and go on when it has (a
			 * timer: an event made active here would run again in
			 * this same turn, before any socket or timer). */
			static const struct timeval now = { 0, 0 };
			ev_add_or_warn(w->more_ev, &now, "fan-out resume");
			break;
		}
	}
	bus_counter_set(w->bus, w->slot, CTR_FANOUT_SEQ, w->head_seq);
	w->in_fanout = 0;
}

/* A fan-out from inside a command: up to until_seq, serving no one else. */
void
fanout_advance(struct worker *w, uint64_t until_seq)
{
	fanout_batches(w, until_seq, 0);
}

/* The loop's own fan-out (a wakeup, the tick, before a HELLO): the one
 * that may serve publishers between its writes. */
void
fanout_run(struct worker *w)
{
	fanout_batches(w, UINT64_MAX, 1);
}

/* The client fell behind by more than out_limit or was lapped: its
 * policy.  Conflation is a snapshot (GAP, VALs) that client_flush sends
 * before the client walks on. */
void
fanout_slow(struct client *c, uint64_t first_lost)
{
	struct worker *w = c->w;

	if (w->cfg->clients_slow_policy == SLOW_DISCONNECT) {
		worker_limit(w, CTR_SLOW_CONSUMERS, 0, "client %u: slow "
		    "consumer at seq %llu: disconnected", c->id,
		    (unsigned long long)first_lost);
		client_bye(c, "slow-consumer");
		return;
	}
	if (client_snapshot(c))
		return;		/* one already: it walks on after that */
	/* (a cut batch may have sent it records past its cursor) */
	if (first_lost <= c->sent_seq)
		first_lost = c->sent_seq + 1;
	worker_limit(w, CTR_SLOW_CONSUMERS, 0, "client %u: slow consumer: "
	    "skipping from seq %llu, sending newest values", c->id,
	    (unsigned long long)first_lost);
	c->replay_end = 0;
	snapshot_start(c, SNAP_CONFLATE, NULL, 0, first_lost);
}

/* 1 if a client behind the worker is too far behind: over out_limit
 * (outside a resume's replay) or lapped by the ring. */
int
fanout_too_slow(const struct client *c)
{
	struct worker *w = c->w;
	uint64_t tpos, tseq;

	if (client_live(c) || c->pos >= w->pos)
		return 0;
	if (c->pos >= c->replay_end &&
	    w->pos - c->pos > (uint64_t)w->cfg->clients_out_limit)
		return 1;
	bus_tail(w->bus, &tpos, &tseq);
	return c->pos < tpos;
}

/*
 * A client's walk meets a record the worker has no memory to read: step
 * over it, with a GAP for it if the client takes it.  Returns 1 if a GAP
 * was queued (it goes out before the walk writes anything more).
 */
static int
walk_skip(struct client *c, const struct bus_rec *r)
{
	struct worker *w = c->w;
	int lost = r->seq > c->sent_seq && client_matches(c, r);

	c->pos = rec_end(r);
	c->next_seq = r->seq + 1;
	if (!lost)
		return 0;
	worker_limit(w, CTR_GAPS, 1, "client %u: no memory to read the "
	    "%u-byte record seq %llu: GAP", c->id, r->line_len,
	    (unsigned long long)r->seq);
	client_replyf(c, "GAP %llu %llu\n", (unsigned long long)r->seq,
	    (unsigned long long)r->seq);
	c->sent_seq = r->seq;
	return 1;
}

/*
 * The slow path: write the client's records from its own cursor up to
 * the worker's position.  Returns 1 when it has caught up (or has new
 * output queued: a GAP, a cut record), 0 when its socket is full, -1
 * when it was closed.
 */
int
fanout_walk(struct client *c)
{
	struct worker *w = c->w;
	size_t budget = CLIENT_WRITE_MAX;
	int idx[FANOUT_BATCH_RECS];
	int framed = client_reframes(c) ? c->framing : 0;

	while (c->pos < w->pos) {
		if (c->pos >= c->replay_end &&
		    w->pos - c->pos > (uint64_t)w->cfg->clients_out_limit) {
			fanout_slow(c, c->next_seq);
			return c->state == CS_DEAD ? -1 : 1;
		}
		uint64_t p = c->pos;
		int n = fanout_read(w, &p, &w->slow_buf, &w->slow_len,
		    w->slow_recs);
		if (n == BUS_LAPPED) {
			fanout_slow(c, c->next_seq);
			return c->state == CS_DEAD ? -1 : 1;
		}
		if (n == BUS_TOO_BIG && w->slow_recs[0].pos < w->pos) {
			if (walk_skip(c, &w->slow_recs[0]))
				return c->state == CS_DEAD ? -1 : 1;
			continue;
		}
		if (n <= 0)
			break;
		if (framed && framing_begin(w, framed, w->slow_recs) == -1) {
			log_warnx("client %u: out of memory for framing "
			    "records", c->id);
			client_kill(c);
			return -1;
		}
		int k = 0, nrecs = n;
		for (int i = 0; i < n; i++) {
			const struct bus_rec *r = &w->slow_recs[i];
			if (r->pos >= w->pos) {
				p = r->pos;
				nrecs = i;
				break;
			}
			/* (what a cut batch sent it is behind it) */
			if (r->seq <= c->sent_seq || !client_matches(c, r))
				continue;
			idx[k] = i;
			rec_iov(w, framed, w->slow_recs, i, &w->iov[k]);
			k++;
		}
		if (nrecs == 0)
			break;
		uint64_t last_seq = w->slow_recs[nrecs - 1].seq;
		if (k == 0) {
			c->pos = p;
			c->next_seq = last_seq + 1;
			continue;
		}
		ssize_t wr = client_writev(c, w->iov, k);
		if (wr == -1) {
			if (errno != EAGAIN && errno != EINTR) {
				client_lost(c, "writev");
				return -1;
			}
			wr = 0;
		}
		if (wr > 0)
			c->last_out = (uint32_t)now_ms();
		size_t want = 0;
		for (int i = 0; i < k; i++)
			want += w->iov[i].iov_len;
		if ((size_t)wr < want) {
			after_write(c, w->slow_recs, idx, w->iov, k, wr, p,
			    nrecs);
			/* after_write queued a cut record, or set the cursor
			 * to the first record not written */
			return client_pending(c) > 0 ? 1 : 0;
		}
		after_write(c, w->slow_recs, idx, w->iov, k, wr, p, nrecs);
		c->pos = p;
		c->next_seq = last_seq + 1;
		if (budget <= (size_t)wr) {
			worker_want(c, c->reading, 1);	/* let others run */
			return 0;
		}
		budget -= wr;
	}
	client_cursor_set(c, CUR_LIVE);
	return 1;
}
