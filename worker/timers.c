/*
 * The per-client timers of a worker: heartbeats, clients.idle_timeout, the
 * BYE grace period and the stalled-client check, on a wheel of one-second
 * slots.
 *
 * Every client is on the wheel, in the slot of the second when something
 * may next be due for it, so the once-a-second tick looks only at the
 * clients of the seconds that have passed: with 250,000 idle clients and
 * 30 s heartbeats that is ~8,000 a second instead of all of them.  The
 * wheel is lazy: a write or a read only stamps last_out/last_in, and a
 * client whose slot comes up early (it was busy) is put back where its
 * new time falls.  Only changes that bring a time closer (a BYE, a full
 * socket) move a client at once (timers_soon).
 *
 * The slots' lists (wheel.c) are also the list of all the worker's
 * clients (CLIENTS_FOREACH).
 */
#include <stdint.h>

#include "worker.h"

/* The slot of second sec, kept within the wheel's reach: the next second
 * at the earliest, WHEEL_SLOTS - 1 seconds ahead at most (a client whose
 * time is further off is looked at then, and put back). */
static unsigned
slot_for(const struct wheel *wh, uint64_t sec)
{
	if (sec <= wh->sec)
		sec = wh->sec + 1;
	if (sec > wh->sec + WHEEL_SLOTS - 1)
		sec = wh->sec + WHEEL_SLOTS - 1;
	return (unsigned)(sec % WHEEL_SLOTS);
}

/* Milliseconds left until elapsed reaches limit; 0 if it has. */
static uint32_t
left(uint32_t limit, uint32_t elapsed)
{
	return elapsed >= limit ? 0 : limit - elapsed;
}

/* How long nothing has moved for c: no input run, no output written. */
static uint32_t
quiet_for(const struct client *c, uint32_t now)
{
	uint32_t in = now - c->last_in, out = now - c->last_out;

	return in < out ? in : out;
}

/* Milliseconds until the client's token expires, at most UINT32_MAX
 * (never). */
static uint32_t
expiry_left(const struct client *c, uint64_t now_full)
{
	uint64_t at = authn_expires_ms(c);

	if (at == 0)
		return UINT32_MAX;
	if (at <= now_full)
		return 0;
	return at - now_full >= UINT32_MAX ? UINT32_MAX - 1 :
	    (uint32_t)(at - now_full);
}

/* clients.idle_timeout in ms for c, or 0.  A server-sent events stream
 * is exempt: it cannot send a line, and would be closed for it. */
static uint32_t
idle_ms(const struct client *c)
{
	return c->framing == FRAME_SSE ? 0 :
	    c->w->cfg->clients_idle_timeout * 1000U;
}

/* How long until something may be due for c, as of now_full (ms). */
static uint32_t
next_due(const struct client *c, uint64_t now_full)
{
	const struct herald_config *cfg = c->w->cfg;
	uint32_t hb = cfg->clients_heartbeat * 1000U;
	uint32_t idle = idle_ms(c);
	uint32_t now = (uint32_t)now_full;
	uint32_t due = expiry_left(c, now_full);

	if (c->state == CS_CLOSING)
		return left(BYE_GRACE_MS, now - c->last_in);
	if (c->state != CS_OPEN)
		return 1000;		/* the reaper frees it before then */
	if (c->eof)			/* closed when done, or when stuck */
		return left(EOF_GRACE_MS, quiet_for(c, now));
	if (c->framing == FRAME_HTTP)	/* (no output before the answer) */
		return left(cfg->http_request_timeout * 1000U,
		    now - c->last_out);
	if (c->writing && due > 1000)
		due = 1000;		/* stalled? look every second */
	if (idle > 0 && left(idle, now - c->last_in) < due)
		due = left(idle, now - c->last_in);
	if (hb > 0 && left(hb, now - c->last_out) < due)
		due = left(hb, now - c->last_out);
	return due;
}

/* The slot of c's next time, from the moment now_full (ms). */
static unsigned
due_slot(const struct client *c, uint64_t now_full)
{
	return slot_for(&c->w->wheel, (now_full + next_due(c, now_full)) /
	    1000);
}

/* A new client: on the wheel by its first heartbeat or idle time. */
void
timers_add(struct client *c)
{
	wheel_add(&c->w->wheel, c, due_slot(c, now_ms()));
}

void
timers_remove(struct client *c)
{
	wheel_remove(c);
}

/* Something may be due for c sooner than its slot says: look next second. */
void
timers_soon(struct client *c)
{
	struct wheel *wh = &c->w->wheel;

	wheel_move(wh, c, slot_for(wh, wh->sec + 1));
}

/* The limits changed (reload): every client is looked at next second. */
void
timers_all_soon(struct worker *w)
{
	struct client *c;

	CLIENTS_FOREACH(w, c)
		timers_soon(c);
}

/*
 * A client whose input ended: closed once it is owed nothing (a write
 * that ends what it is owed may not have been client_flush's, so look
 * here too), or once nothing it is owed has moved for EOF_GRACE_MS.
 */
static void
eof_due(struct client *c, uint32_t now)
{
	if (quiet_for(c, now) < EOF_GRACE_MS) {
		client_flush(c);
		return;
	}
	worker_limit(c->w, CTR_EOF_UNREAD, 0, "client %u: ended its input; "
	    "what it is owed has not moved for %d ms: closed", c->id,
	    EOF_GRACE_MS);
	client_kill(c);
}

/* What is due for one client at now_full (ms): act on it. */
static void
client_due(struct client *c, uint64_t now_full)
{
	uint32_t now = (uint32_t)now_full;
	struct worker *w = c->w;
	uint32_t hb = w->cfg->clients_heartbeat * 1000U;
	uint32_t idle = idle_ms(c);

	if (c->state == CS_CLOSING && now - c->last_in >= BYE_GRACE_MS) {
		worker_limit(w, CTR_BYE_UNREAD, 0, "client %u: did not read "
		    "its BYE within %d ms: closed", c->id, BYE_GRACE_MS);
		client_kill(c);
	}
	if (c->state != CS_OPEN)
		return;
	if (c->eof) {
		eof_due(c, now);
		return;
	}
	if (expiry_left(c, now_full) == 0) {
		authn_expired(c);
		return;
	}
	if (c->framing == FRAME_HTTP) {
		if (now - c->last_out >= w->cfg->http_request_timeout * 1000U)
			http_timeout(c);
		return;
	}
	/* A stalled client (socket full, never writable) is not walked:
	 * under the disconnect policy find it here. */
	if (c->writing && w->cfg->clients_slow_policy == SLOW_DISCONNECT &&
	    fanout_too_slow(c)) {
		fanout_slow(c, c->next_seq);
		return;
	}
	if (idle > 0 && now - c->last_in >= idle) {
		worker_limit(w, CTR_IDLE_CLOSED, 0, "client %u: silent for "
		    "clients.idle_timeout (%d s): closing", c->id,
		    w->cfg->clients_idle_timeout);
		client_bye(c, "idle");
		client_flush(c);
	} else if (hb > 0 && now - c->last_out >= hb) {
		bus_counter_add(w->bus, w->slot, CTR_HEARTBEATS, 1);
		client_send_seq(c, "HB", w->head_seq);
	}
}

/*
 * The tick: the slots of every second up to now, each client in them
 * acted on if due and put back by its next time.  Times are kept in 32
 * bits of milliseconds (49 days), which wrap harmlessly: every limit is
 * below that, and differences are taken modulo 2^32.
 */
void
timers_run(struct worker *w)
{
	struct wheel *wh = &w->wheel;
	uint64_t now_full = now_ms(), sec = now_full / 1000;
	struct client *c;

	/* Run from the loop: a walk still entered was left by a body. */
	if (wh->walks != NULL)
		fatalx("a walk over the clients was left unfinished");
	/* After a long stop, one turn of the wheel covers every client. */
	if (sec > wh->sec + WHEEL_SLOTS)
		wh->sec = sec - WHEEL_SLOTS;
	while (wh->sec < sec) {
		struct wheel_walk walk = WHEEL_WALK_SLOT(++wh->sec %
		    WHEEL_SLOTS);

		while ((c = wheel_next(wh, &walk)) != NULL) {
			client_due(c, now_full);
			wheel_move(wh, c, due_slot(c, now_full));
		}
	}
}
