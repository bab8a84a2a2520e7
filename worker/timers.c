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
 * The slots' lists are also the list of all the worker's clients
 * (CLIENTS_FOREACH).
 */
#include <stdint.h>

#include "worker.h"

_Static_assert(WHEEL_SLOTS <= 256, "struct client's wheel_slot is 8 bits");

/* The slot of a second on now_ms()'s clock. */
static unsigned
slot_of(uint64_t sec)
{
	return (unsigned)(sec % WHEEL_SLOTS);
}

static void
wheel_unlink(struct worker *w, struct client *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->wheel[c->wheel_slot] = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* Put c in the slot of second sec, kept within the wheel's reach: the
 * next second at the earliest, WHEEL_SLOTS - 1 seconds ahead at most
 * (a client whose time is further off is looked at then, and put back). */
static void
wheel_insert(struct worker *w, struct client *c, uint64_t sec)
{
	if (sec <= w->wheel_sec)
		sec = w->wheel_sec + 1;
	if (sec > w->wheel_sec + WHEEL_SLOTS - 1)
		sec = w->wheel_sec + WHEEL_SLOTS - 1;
	unsigned s = slot_of(sec);

	c->wheel_slot = s;
	c->prev = NULL;
	c->next = w->wheel[s];
	if (c->next != NULL)
		c->next->prev = c;
	w->wheel[s] = c;
}

/* Milliseconds left until elapsed reaches limit; 0 if it has. */
static uint32_t
left(uint32_t limit, uint32_t elapsed)
{
	return elapsed >= limit ? 0 : limit - elapsed;
}

/* How long until something may be due for c, as of now (ms, wrapping). */
static uint32_t
next_due(const struct client *c, uint32_t now)
{
	const struct herald_config *cfg = c->w->cfg;
	uint32_t hb = cfg->clients_heartbeat * 1000U;
	uint32_t idle = cfg->clients_idle_timeout * 1000U;
	uint32_t due = UINT32_MAX;

	if (c->state == CS_CLOSING)
		return left(BYE_GRACE_MS, now - c->last_in);
	if (c->state != CS_OPEN)
		return 1000;		/* the reaper frees it before then */
	if (c->writing)
		due = 1000;		/* stalled? look every second */
	if (idle > 0 && left(idle, now - c->last_in) < due)
		due = left(idle, now - c->last_in);
	if (hb > 0 && left(hb, now - c->last_out) < due)
		due = left(hb, now - c->last_out);
	return due;
}

/* Place c by its next time, from the moment now_full (ms). */
static void
wheel_place(struct worker *w, struct client *c, uint64_t now_full)
{
	wheel_insert(w, c, (now_full + next_due(c, (uint32_t)now_full)) /
	    1000);
}

/* A new client: on the wheel by its first heartbeat or idle time. */
void
timers_add(struct client *c)
{
	wheel_place(c->w, c, now_ms());
}

void
timers_remove(struct client *c)
{
	wheel_unlink(c->w, c);
}

/* Something may be due for c sooner than its slot says: look next second. */
void
timers_soon(struct client *c)
{
	struct worker *w = c->w;

	wheel_unlink(w, c);
	wheel_insert(w, c, w->wheel_sec + 1);
}

/* The limits changed (reload): every client is looked at next second. */
void
timers_all_soon(struct worker *w)
{
	struct client *c, *nx;

	CLIENTS_FOREACH(w, c, nx)	/* one met again is moved again: harmless */
		timers_soon(c);
}

/* What is due for one client at now (ms, wrapping): act on it. */
static void
client_due(struct client *c, uint32_t now)
{
	struct worker *w = c->w;
	uint32_t hb = w->cfg->clients_heartbeat * 1000U;
	uint32_t idle = w->cfg->clients_idle_timeout * 1000U;

	if (c->state == CS_CLOSING && now - c->last_in >= BYE_GRACE_MS) {
		worker_limit(w, CTR_BYE_UNREAD, 0, "client %u: did not read "
		    "its BYE within %d ms: closed", c->id, BYE_GRACE_MS);
		client_kill(c);
	}
	if (c->state != CS_OPEN)
		return;
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
	uint64_t now_full = now_ms(), sec = now_full / 1000;
	uint32_t now = (uint32_t)now_full;

	/* After a long stop, one turn of the wheel covers every client. */
	if (sec > w->wheel_sec + WHEEL_SLOTS)
		w->wheel_sec = sec - WHEEL_SLOTS;
	while (w->wheel_sec < sec) {
		struct client *c, *nx;

		w->wheel_sec++;
		for (c = w->wheel[slot_of(w->wheel_sec)]; c != NULL; c = nx) {
			nx = c->next;
			client_due(c, now);
			/* c may have moved (timers_soon) but is on the wheel */
			wheel_unlink(w, c);
			wheel_place(w, c, now_full);
		}
	}
}
