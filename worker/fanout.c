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

#include "topic.h"
#include "worker.h"

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
	if (cur_replay ? !c->in_sweep || c->pos > r->pos : !c->caught_up)
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
	c->caught_up = 0;
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

	if (c->state != CS_OPEN || !c->caught_up || s->start_seq > r->seq ||
	    r->seq <= c->sent_seq)
		return;
	c->caught_up = 0;
	c->pos = r->pos;
	c->next_seq = r->seq;
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
		if (c->state == CS_DEAD || !c->caught_up)
			continue;
		c->caught_up = 0;
		c->pos = w->pos;
		c->next_seq = w->head_seq + 1;
		worker_want(c, c->reading, 1);
	}
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
			evtimer_add(w->more_ev, &now);
			break;
		}
	}
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

/* The client fell behind by more than out_limit or was lapped. */
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
	uint64_t h = snapshot_build(w, c, NULL, 0, first_lost);
	worker_limit(w, CTR_SLOW_CONSUMERS, 0, "client %u: slow consumer: "
	    "skipped seq %llu..%llu, sending newest values", c->id,
	    (unsigned long long)first_lost, (unsigned long long)h);
	client_replyf(c, "GAP %llu %llu\n", (unsigned long long)first_lost,
	    (unsigned long long)h);
	bus_counter_add(w->bus, w->slot, CTR_GAPS, 1);
	snapshot_emit(w, c, "VAL");
	c->pos = w->pos;
	c->next_seq = h + 1;
	c->sent_seq = h;
	c->replay_end = 0;
}

/* 1 if a client behind the worker is too far behind: over out_limit
 * (outside a resume's replay) or lapped by the ring. */
int
fanout_too_slow(const struct client *c)
{
	struct worker *w = c->w;
	uint64_t tpos, tseq;

	if (c->caught_up || c->pos >= w->pos)
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
	c->caught_up = 1;
	c->replay_end = 0;
	c->walk_alone = 0;
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

	if (c->in_replay)
		return 0;
	if (w->nreplay == w->replay_cap) {
		int cap = w->replay_cap ? w->replay_cap * 2 : 256;
		struct client **r = realloc(w->replay, cap * sizeof(*r));
		if (r == NULL)
			return -1;
		w->replay = r;
		w->replay_cap = cap;
	}
	w->replay[w->nreplay++] = c;
	c->in_replay = 1;
	if (!event_pending(w->replay_ev, EV_TIMEOUT, NULL)) {
		struct timeval tv = { 0, REPLAY_SWEEP_DELAY_MS * 1000 };
		evtimer_add(w->replay_ev, &tv);
	}
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
	c->in_replay = c->in_sweep = 0;
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
		c->in_replay = 0;
		if (c->state != CS_OPEN || c->caught_up || c->writing ||
		    c->pos >= w->pos) {
			if (c->state == CS_OPEN) {
				c->walk_alone = 1;
				client_flush(c);
			}
			continue;
		}
		c->in_sweep = 1;
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
			if (!c->in_sweep)
				continue;
			if (c->state != CS_OPEN || c->writing)
				c->in_sweep = 0;	/* cut: it walks alone */
			else if (c->pos >= last && c->pos < p) {
				c->pos = p;
				c->next_seq = seq + 1;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		struct client *c = list[i];
		if (c->in_sweep && c->pos >= w->pos) {
			c->caught_up = 1;
			c->replay_end = 0;
			c->walk_alone = 0;
		} else {
			c->walk_alone = 1;
		}
		c->in_sweep = 0;
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

static void
snap_reset(struct snapshot *s)
{
	s->n = 0;
	s->len = 0;
	if (s->slots != NULL)
		memset(s->slots, 0, s->nslots * sizeof(int));
}

/* Free a snapshot's memory. */
void
snapshot_free(struct snapshot *s)
{
	free(s->e);
	free(s->slots);
	free(s->data);
	memset(s, 0, sizeof(*s));
}

static int
snap_rehash(struct snapshot *s)
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
snap_put(struct snapshot *s, const char *t, size_t tlen, uint64_t seq,
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

/* What a snapshot collects: one pattern, or all of a client's. */
struct snap_filter {
	struct snapshot		*s;
	const struct client	*c;
	const char		*pattern;
	size_t			 plen;
	uint64_t		 min_seq;
	uint64_t		 max_seen;
	int			 failed;
};

static int
filter_match(const struct snap_filter *f, const char *t, size_t tlen,
    uint64_t seq)
{
	if (seq < f->min_seq)
		return 0;
	if (f->pattern != NULL)
		return topic_match(f->pattern, f->plen, t, tlen);
	for (const struct sub *s = f->c->subs; s != NULL; s = s->cnext)
		if (s->start_seq <= seq && topic_match(s->pattern, s->len, t,
		    tlen))
			return 1;
	return 0;
}

static int
snap_value_cb(void *arg, const struct bus_value *v)
{
	struct snap_filter *f = arg;

	if (!filter_match(f, v->topic, v->topic_len, v->seq))
		return 0;
	if (snap_put(f->s, v->topic, v->topic_len, v->seq, v->payload,
	    v->payload_len) == -1) {
		f->failed = 1;
		return 1;
	}
	if (v->seq > f->max_seen)
		f->max_seen = v->seq;
	return 0;
}

/*
 * Patch the snapshot with the ring's records from position p up to seq
 * until: values the retained table did not have when it was read.
 * Returns -1 if the ring has moved past p meanwhile.
 */
static int
snap_patch(struct worker *w, struct snap_filter *f, uint64_t p,
    uint64_t until)
{
	uint64_t seq = 0;

	while (seq < until) {
		int n = read_grow(w, &p, &w->slow_buf, &w->slow_len,
		    w->slow_recs);
		if (n == BUS_LAPPED || n == BUS_TOO_BIG)
			return -1;
		if (n == 0)
			return 0;
		for (int i = 0; i < n && (seq = w->slow_recs[i].seq) <= until;
		    i++) {
			const struct bus_rec *r = &w->slow_recs[i];
			if (filter_match(f, r->topic, r->topic_len, r->seq))
				snap_put(f->s, r->topic, r->topic_len, r->seq,
				    r->payload, r->payload_len);
		}
	}
	return 0;
}

/*
 * One try at the snapshot as of h = max(worker head, newest value seen).
 * The table may lag the ring by the record being appended now, and the
 * producer may write while it is read: the records after what the table
 * had for sure are taken from the ring.  Returns h, or 0 when the ring
 * moved too fast (the caller tries again).
 */
static uint64_t
snapshot_try(struct worker *w, struct snap_filter *f)
{
	uint64_t h0 = w->head_seq, from = w->pos, h;
	uint64_t complete = bus_retained_seq(w->bus);

	snap_reset(f->s);
	f->max_seen = 0;
	bus_retained_foreach(w->bus, f->pattern ? f->pattern : "#",
	    f->pattern ? f->plen : 1, snap_value_cb, f);
	h = f->max_seen > h0 ? f->max_seen : h0;
	if (complete < h0 &&
	    bus_find_seq(w->bus, complete + 1, &from) != BUS_OK)
		return 0;
	if (complete < h && snap_patch(w, f, from, h) == -1)
		return 0;
	/* Live delivery continues right above h. */
	if (h > h0)
		fanout_advance(w, h);
	return w->head_seq == h ? h : 0;
}

/*
 * Build the snapshot "as of h" of the retained values matching pattern
 * (or, when pattern is NULL, any of the client's subscriptions), keeping
 * values with seq >= min_seq.  Returns h; the worker has fanned out up to
 * h when it returns, so live delivery continues exactly above it.
 */
uint64_t
snapshot_build(struct worker *w, struct client *c, const char *pattern,
    size_t plen, uint64_t min_seq)
{
	struct snap_filter f = { &w->snap, c, pattern, plen, min_seq, 0, 0 };
	/* Tries are counted and timed: 16 tries alone ran out once in a
	 * loaded CI run (the worker short of CPU, lapped by the bus 32
	 * times), and a VAL older than h went out. */
	uint64_t until = now_ms() + SNAPSHOT_TRY_MS;

	for (int tries = 0; tries < 16 || now_ms() < until; tries++) {
		uint64_t h = snapshot_try(w, &f);
		if (f.failed)
			log_warnx("snapshot: out of memory; it is incomplete");
		if (h != 0 || (w->head_seq == 0 && f.max_seen == 0))
			return h;
		/* Lapped: catch the worker up and take it again. */
		fanout_advance(w, UINT64_MAX);
	}
	log_warnx("snapshot: the ring turns faster than a snapshot can be "
	    "taken (bus.size too small?); values may be older than seq %llu",
	    (unsigned long long)w->head_seq);
	return w->head_seq;
}

/* Queue the snapshot's lines ("VAL topic seq payload") for the client. */
void
snapshot_emit(struct worker *w, struct client *c, const char *kind)
{
	struct snapshot *s = &w->snap;

	for (int i = 0; i < s->n && c->state != CS_DEAD; i++) {
		const struct snap_entry *e = &s->e[i];
		client_replyf(c, "%s %.*s %llu ", kind, (int)e->topic_len,
		    s->data + e->off, (unsigned long long)e->seq);
		client_reply(c, s->data + e->off + e->topic_len, e->payload_len);
		client_reply(c, "\n", 1);
	}
	/* Do not keep a big snapshot's memory around. */
	if (s->cap_data > 1024 * 1024 || s->cap > 65536)
		snapshot_free(s);
}
