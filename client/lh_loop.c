/*
 * Driving a client: what its socket waits for, its deadlines (reconnect,
 * connect timeout, PING), and one step of work.  herald_run_once is the
 * small loop for blocking programs; herald_process is the step for the
 * caller's own loop.
 */
#include <stdio.h>

#include "lh.h"

/* The socket to watch, or -1. */
int
herald_fd(const struct herald_client *c)
{
	return c->state == LH_CONNECTING || c->state == LH_TLS ||
	    c->state == LH_HELLO || c->state == LH_AUTH ||
	    c->state == LH_READY ? c->fd : -1;
}

/* What to watch the socket for. */
int
herald_events(const struct herald_client *c)
{
	switch (c->state) {
	case LH_CONNECTING:
		return HERALD_WRITE;
	case LH_TLS:
		return lh_tls_events(c);
	case LH_HELLO:
		return HERALD_READ | lh_tls_events(c);
	case LH_AUTH:
		return HERALD_READ | lh_tls_events(c) |
		    (c->out_auth > 0 ? HERALD_WRITE : 0);
	case LH_READY:
		return HERALD_READ | lh_tls_events(c) |
		    (lh_out_pending(c) > 0 ? HERALD_WRITE : 0);
	default:
		return 0;
	}
}

/* When a PING is due, or the silence after one is too long; or 0. */
static uint64_t
ping_deadline(const struct herald_client *c)
{
	uint64_t iv = c->opt.ping_interval_ms;

	if (iv == 0)
		return 0;
	if (c->ping_sent == 0)
		return c->last_in + iv;
	return (c->last_in > c->ping_sent ? c->last_in : c->ping_sent) + iv;
}

/* The earlier of two deadlines (0: none). */
static uint64_t
earlier(uint64_t a, uint64_t b)
{
	return a == 0 || (b != 0 && b < a) ? b : a;
}

/* The next deadline of the client in ms on lh_now_ms's clock, or 0. */
static uint64_t
next_deadline(const struct herald_client *c)
{
	if (c->broken)
		return 1;	/* due at once */
	switch (c->state) {
	case LH_IDLE:
		return c->retry_at;
	case LH_CONNECTING:
	case LH_TLS:
	case LH_HELLO:
	case LH_AUTH:
		return c->deadline;
	case LH_READY:
		return earlier(ping_deadline(c), lh_auth_deadline(c));
	default:
		return 0;
	}
}

/* Milliseconds until a deadline, or -1. */
int
herald_timeout(const struct herald_client *c)
{
	uint64_t d = next_deadline(c), now;

	if (lh_tls_pending(c))
		return 0;	/* input read already: handle it now */
	if (d == 0)
		return -1;
	now = lh_now_ms();
	if (d <= now)
		return 0;
	return d - now > 0x7fffffff ? 0x7fffffff : (int)(d - now);
}

/* The PING deadline passed: send one, or give up on a silent server. */
static void
ping_due(struct herald_client *c, uint64_t now)
{
	struct lh_cmd *cmd;

	if (c->ping_sent != 0) {
		c->broken = lh_fail(c, HERALD_ETIMEOUT, "%s: no answer to "
		    "PING within %d ms", c->addr_str,
		    c->opt.ping_interval_ms);
		return;
	}
	if ((cmd = lh_cmd_new(LH_C_PING)) == NULL)
		return;
	c->ping_sent = now;
	lh_send_cmd(c, cmd, "PING\n", 5);
}

/* Act on the deadlines that have passed. */
static void
timers(struct herald_client *c)
{
	uint64_t d = next_deadline(c), now = lh_now_ms();

	if (d == 0 || d > now || c->broken)
		return;
	switch (c->state) {
	case LH_IDLE:
		lh_connect_start(c);
		break;
	case LH_CONNECTING:
	case LH_TLS:
	case LH_HELLO:
	case LH_AUTH:
		lh_connect_timeout(c);
		break;
	case LH_READY:
		d = ping_deadline(c);
		if (d != 0 && d <= now)
			ping_due(c, now);
		lh_auth_timer(c, now);
		break;
	default:
		break;
	}
}

/* One step: what the socket's readiness allows, then the deadlines. */
void
lh_step(struct herald_client *c, int ready)
{
	int live;

	if (c->state == LH_CONNECTING && ready != 0)
		lh_connect_check(c);
	if (c->state == LH_TLS && ready != 0 && !c->broken)
		lh_tls_handshake(c);
	live = c->state == LH_HELLO || c->state == LH_AUTH ||
	    c->state == LH_READY;
	/* TLS: a read may wait for the socket writable, and a record
	 * read already may hold more than one read took. */
	if (live && ((ready & HERALD_READ) || lh_tls_pending(c) ||
	    ((ready & HERALD_WRITE) && (c->tls_want & HERALD_WRITE))))
		lh_read(c);
	if ((c->state == LH_READY || c->state == LH_AUTH) &&
	    lh_out_pending(c) > 0)
		lh_write(c);
	if (c->broken && !c->close_asked)
		lh_lost(c, c->broken);
	if (!c->close_asked)
		timers(c);
	if (c->broken && !c->close_asked)
		lh_lost(c, c->broken);
}

/* Do the work the socket and the clock allow; never blocks. */
int
herald_process(struct herald_client *c, int ready)
{
	lh_enter(c);
	if (c->in_callback)
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "herald_process "
		    "inside a callback of the same client"));
	lh_step(c, ready);
	return lh_leave(c, c->state == LH_DEAD ? c->dead_err : HERALD_OK);
}

/* Wait up to timeout_ms for the socket or a deadline, then process. */
int
herald_run_once(struct herald_client *c, int timeout_ms)
{
	lh_enter(c);
	if (c->in_callback)
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "herald_run_once"
		    " inside a callback of the same client"));
	if (c->state != LH_DEAD)
		lh_poll_step(c, timeout_ms);
	return lh_leave(c, c->state == LH_DEAD ? c->dead_err : HERALD_OK);
}
