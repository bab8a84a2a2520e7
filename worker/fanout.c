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

static const struct bus_rec *cur_recs;	/* the batch being matched */
static int	 cur_rec;	/* the record of it being matched */
static int	 cur_replay;	/* matching for the replay sweep */

/* Write iov to a client's socket.  sendmsg rather than writev: a socket
 * needs none of the file layer writev goes through (a few per cent of a
 * busy worker's time), and MSG_NOSIGNAL spares a closed peer's SIGPIPE. */
static ssize_t
send_iov(struct client *c, struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };

	return sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Index callback: note that record cur_rec goes to this client. */
static void
collect(void *arg, struct sub *s)
{
	struct worker *w = arg;
	struct client *c = s->client;
	const struct bus_rec *r = &cur_recs[cur_rec];

	if (c->state != CS_OPEN || s->start_seq > r->seq)
		return;
	/* the fast path serves the caught-up, a sweep those in it that
	 * have reached this record */
	if (cur_replay ? c->cursor != CUR_SWEEP || c->pos > r->pos :
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
 * After a short write of iov (records recs[idx[i]]): count what went
 * out, keep the rest of the record that was cut in out, and move the
 * client's cursor past it.  end_pos is where the batch ends.
 */
static void
after_write(struct client *c, const struct bus_rec *recs, const int *idx,
    int k, size_t written, uint64_t end_pos, int nrecs)
{
	struct worker *w = c->w;
	int i;

	bus_counter_add(w->bus, w->slot, CTR_BYTES_OUT, written);
	for (i = 0; i < k && written >= recs[idx[i]].line_len; i++) {
		written -= recs[idx[i]].line_len;
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
		client_reply(c, r->line + written, r->line_len - written);
	} else {
		c->pos = r->pos;
		c->next_seq = r->seq;
	}
	worker_want(c, c->reading, 1);
}

/* Make room in the delivery list for one record to every client. */
static int
dl_reserve(struct worker *w)
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
static void
batch_reset(struct worker *w)
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
static int
read_grow(struct worker *w, uint64_t *p, char **buf, size_t *len,
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

/* Index callback for batch_skip: a caught-up client that takes record
 * cur_recs[0] leaves the fast path just before it. */
static void
skip_collect(void *arg, struct sub *s)
{
	struct client *c = s->client;
	const struct bus_rec *r = cur_recs;

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
	cur_recs = r;
	index_match(&w->idx, r->topic, r->topic_len, skip_collect, w);
	note_topics(w, r, 1);
	w->pos = rec_end(r);
	w->head_seq = r->seq;
}

/*
 * Write a client's records of this batch (recs) in one writev, after the
 * replies it has queued (a sweep's resumed clients: HELLO, +OK SUB).
 */
static void
deliver(struct worker *w, struct client *c, const struct bus_rec *recs,
    int nrecs, uint64_t end_pos)
{
	int idx[FANOUT_BATCH_RECS], k = 0, runs = 0;
	size_t owed = client_pending(c);
	struct iovec *iov = w->iov + 1;

	if (owed > 0) {
		w->iov[0].iov_base = c->io->out + c->io->out_off;
		w->iov[0].iov_len = owed;
	}
	for (int d = c->batch_first - 1; d != -1; d = w->dl[d].next) {
		for (int r = w->dl[d].first; r <= w->dl[d].last; r++) {
			idx[k] = r;
			iov[k].iov_base = (void *)recs[r].line;
			iov[k].iov_len = recs[r].line_len;
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
	ssize_t n = send_iov(c, owed > 0 ? w->iov : iov, k + (owed > 0));
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
	after_write(c, recs, idx, k, n, end_pos, nrecs);
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
	cur_recs = w->recs;
	cur_replay = 0;
	for (cur_rec = from; cur_rec < n; cur_rec++) {
		/* One record may go to every client: room for that, and a
		 * bound on the batch's deliveries. */
		if (cur_rec > 0 && (w->ndl - w->dl_nfree >=
		    FANOUT_BATCH_DELIVERIES ||
		    dl_reserve(w) == -1))
			break;
		if (cur_rec == 0 && dl_reserve(w) == -1)
			fatalx("out of memory for fan-out");
		index_match(&w->idx, w->recs[cur_rec].topic,
		    w->recs[cur_rec].topic_len, collect, w);
	}
	return cur_rec;
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
 * turn in the next: up to two rounds instead of one (broadcast to 10k at
 * 100 msg/s, p99 in one sitting: 180-185 ms without, 147-159 ms with).
 * When a batch ends, and which rounds grow, is batch_rounds'.
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
			deliver(w, c, w->recs, *n, *p);
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
		int n = read_grow(w, &p, &w->scratch, &w->scratch_len,
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
		batch_reset(w);
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

	while (c->pos < w->pos) {
		if (c->pos >= c->replay_end &&
		    w->pos - c->pos > (uint64_t)w->cfg->clients_out_limit) {
			fanout_slow(c, c->next_seq);
			return c->state == CS_DEAD ? -1 : 1;
		}
		uint64_t p = c->pos;
		int n = read_grow(w, &p, &w->slow_buf, &w->slow_len,
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
			w->iov[k].iov_base = (void *)r->line;
			w->iov[k].iov_len = r->line_len;
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
		ssize_t wr = send_iov(c, w->iov, k);
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
			after_write(c, w->slow_recs, idx, k, wr, p, nrecs);
			/* after_write queued a cut record, or set the cursor
			 * to the first record not written */
			return client_pending(c) > 0 ? 1 : 0;
		}
		after_write(c, w->slow_recs, idx, k, wr, p, nrecs);
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

/* --- the replay sweep ------------------------------------------------------ */

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
fanout_replay_later(struct client *c)
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
fanout_replay_forget(struct client *c)
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
static uint64_t	*sweep_topics;	/* hashes, open addressing; 0 = empty */
static size_t	 sweep_nslots;	/* 0: no filter (a wildcard pattern) */

static void
sweep_filter(struct client **list, int n)
{
	size_t subs = 0;

	sweep_nslots = 0;
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
	free(sweep_topics);
	sweep_topics = t;
	sweep_nslots = slots;
}

/* 0 if no client of the sweep can take this topic. */
static int
sweep_wants(const char *topic, size_t len)
{
	if (sweep_nslots == 0)
		return 1;
	uint64_t h = hash_bytes(topic, len) | 1;
	for (size_t j = h & (sweep_nslots - 1); sweep_topics[j] != 0;
	    j = (j + 1) & (sweep_nslots - 1))
		if (sweep_topics[j] == h)
			return 1;
	return 0;
}

/* One batch of the sweep: records [.., *p) matched and written. */
static int
sweep_batch(struct worker *w, uint64_t *p)
{
	uint64_t start = *p;
	int n = read_grow(w, p, &w->slow_buf, &w->slow_len, w->slow_recs);

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
	batch_reset(w);
	cur_recs = w->slow_recs;
	cur_replay = 1;
	for (cur_rec = 0; cur_rec < n; cur_rec++) {
		const struct bus_rec *r = &w->slow_recs[cur_rec];
		if (!sweep_wants(r->topic, r->topic_len))
			continue;
		if (dl_reserve(w) == -1)
			return BUS_LAPPED;
		index_match(&w->idx, r->topic, r->topic_len, collect, w);
	}
	for (struct client *c = w->touched, *next; c != NULL; c = next) {
		next = c->batch_next;
		deliver(w, c, w->slow_recs, n, *p);
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
	sweep_filter(list, n);
	for (p = from; n > 0 && p < w->pos; ) {
		uint64_t last = p;
		int k = sweep_batch(w, &p);
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
	free(list);
}

void
fanout_replay_init(struct worker *w)
{
	w->replay_ev = evtimer_new(w->base, replay_cb, w);
	if (w->replay_ev == NULL)
		fatalx("event_new failed");
}

/* --- snapshots ------------------------------------------------------------ */

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

/* 1 if the snapshot takes topic t's value with this seq. */
static int
snap_wants(const struct snap_step *f, const char *t, size_t tlen,
    uint64_t seq)
{
	const struct snapshot *s = f->s;

	if (seq > f->max && !f->raise)
		return 0;
	if (s->kind != SNAP_CONFLATE)
		return topic_match(s->pattern, s->plen, t, tlen);
	if (seq < s->first)
		return 0;
	for (const struct sub *u = f->c->subs; u != NULL; u = u->cnext)
		if (u->start_seq <= seq &&
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

	/* conflation: a topic an earlier pattern matches was seen there */
	if (s->kind == SNAP_CONFLATE)
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

	if (s->kind != SNAP_CONFLATE)
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
		int n = read_grow(w, &p, &w->slow_buf, &w->slow_len,
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
	if (s->kind == SNAP_SUB)
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
		if (s->kind != SNAP_CONFLATE)
			client_snapshot_done(c, s->pattern, s->plen, s->h);
		snapshot_end(c);
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
