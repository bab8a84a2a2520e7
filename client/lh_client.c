/*
 * A client's life: options, creation, errors, the guard around every
 * public call (callbacks may close the client), losing a connection and
 * scheduling the next, and the blocking wait every blocking call uses.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lh.h"

/* A monotonic clock in milliseconds. */
uint64_t
lh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fill opts with the defaults. */
void
herald_options_init(struct herald_options *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = LH_CONNECT_TIMEOUT_MS;
	o->timeout_ms = LH_TIMEOUT_MS;
	o->reconnect = 1;
	o->reconnect_min_ms = LH_RECONNECT_MIN_MS;
	o->reconnect_max_ms = LH_RECONNECT_MAX_MS;
	o->ping_interval_ms = LH_PING_INTERVAL_MS;
	o->out_limit = LH_OUT_LIMIT;
	o->max_line = LH_MAX_LINE;
}

/* 1 if the options make sense. */
static int
options_valid(const struct herald_options *o)
{
	return o->connect_timeout_ms > 0 && o->timeout_ms >= -1 &&
	    o->reconnect_min_ms > 0 && o->reconnect_max_ms >= 0 &&
	    o->ping_interval_ms >= 0 && o->out_limit >= 1024 &&
	    o->max_line >= 1024;
}

/* Make a client for addr; it does not connect yet. */
struct herald_client *
herald_new(const char *addr, const struct herald_options *opts)
{
	struct herald_client *c;

	if (addr == NULL || (opts != NULL && !options_valid(opts)))
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (opts != NULL)
		c->opt = *opts;
	else
		herald_options_init(&c->opt);
	snprintf(c->addr_str, sizeof(c->addr_str), "%s", addr);
	c->fd = -1;
	c->state = LH_DEAD;
	c->dead_err = HERALD_ECLOSED;
	lh_seterr(c, "not connected (herald_open was not called)");
	c->rng = lh_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;
	return c;
}

/* 1 once a blocking open is over: ready, or given up. */
static int
open_over(void *arg)
{
	const struct herald_client *c = arg;

	return c->state == LH_READY || c->state == LH_DEAD;
}

/* Connect: wait for HELLO (blocking), or start connecting. */
int
herald_open(struct herald_client *c)
{
	int rc;

	lh_enter(c);
	if (c->state != LH_DEAD || c->close_asked)
		return lh_leave(c, lh_fail(c, HERALD_EINVAL,
		    "herald_open: the client is already open"));
	if (lh_addr_parse(c->addr_str, &c->addr, c->errmsg,
	    sizeof(c->errmsg)) == -1) {
		c->dead_err = HERALD_EINVAL;
		return lh_leave(c, HERALD_EINVAL);
	}
	if (c->addr.is_unix && c->tls_ctx != NULL) {
		c->dead_err = HERALD_EINVAL;
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "%s: TLS needs a "
		    "HOST:PORT address, to check the server's name",
		    c->addr_str));
	}
	c->attempts = 0;
	c->no_retry = 0;
	c->blocking_connect = !c->opt.nonblocking;
	lh_connect_start(c);
	if (c->blocking_connect) {
		rc = lh_wait_until(c, open_over, c, -1);
		c->blocking_connect = 0;
		if (rc == HERALD_OK && c->state != LH_READY)
			rc = c->dead_err;
	} else {
		rc = c->state == LH_DEAD ? c->dead_err : HERALD_OK;
	}
	return lh_leave(c, rc);
}

/* herald_new and herald_open in one. */
struct herald_client *
herald_connect(const char *addr, const struct herald_options *opts, int *err)
{
	struct herald_client *c = herald_new(addr, opts);
	int rc;

	if (c == NULL) {
		if (err != NULL)
			*err = addr == NULL || (opts != NULL &&
			    !options_valid(opts)) ? HERALD_EINVAL :
			    HERALD_ENOMEM;
		return NULL;
	}
	if ((rc = herald_open(c)) != HERALD_OK) {
		herald_close(c);
		c = NULL;
	}
	if (err != NULL)
		*err = rc;
	return c;
}

/* Free a queue's commands without calling their callbacks. */
static void
free_queue(struct lh_queue *q)
{
	struct lh_cmd *cmd, *next;

	for (cmd = q->head; cmd != NULL; cmd = next) {
		next = cmd->next;
		free(cmd->line);
		free(cmd->payload);
		free(cmd->stats);
		free(cmd);
	}
	q->head = q->tail = NULL;
}

/* Free everything; the callbacks of unanswered commands are not called. */
static void
client_free(struct herald_client *c)
{
	lh_ev_free(c);
	lh_close_socket(c);
	lh_tls_free(c);
	lh_auth_free(c);
	free_queue(&c->pending);
	free_queue(&c->deferred);
	lh_free_subs(c);
	free(c->in);
	free(c->out);
	free(c);
}

/* 1 when everything queued has been written (or cannot be). */
static int
out_flushed(void *arg)
{
	const struct herald_client *c = arg;

	return c->out_off == c->out_len || c->state != LH_READY;
}

/* Close the client; a blocking one writes what is queued first. */
void
herald_close(struct herald_client *c)
{
	if (c == NULL)
		return;
	if (c->depth > 0) {		/* inside a callback: lh_leave frees */
		c->close_asked = 1;
		return;
	}
	if (!c->opt.nonblocking && c->state == LH_READY &&
	    c->out_off < c->out_len) {
		c->closing = 1;		/* no more callbacks */
		c->depth++;
		lh_wait_until(c, out_flushed, c, c->opt.timeout_ms);
		c->depth--;
	}
	client_free(c);
}

/* 1 if connected and HELLO was seen. */
int
herald_is_connected(const struct herald_client *c)
{
	return c != NULL && c->state == LH_READY && !c->broken;
}

/* The last error's text. */
const char *
herald_errmsg(const struct herald_client *c)
{
	return c != NULL ? c->errmsg : "no client";
}

/* The library's version. */
const char *
herald_version(void)
{
	return PACKAGE_VERSION;
}

/* Where the client is in the bus. */
uint64_t
herald_position(const struct herald_client *c)
{
	return c->pos;
}

/* A short description of an error code. */
const char *
herald_strerror(int err)
{
	switch (err) {
	case HERALD_OK:		return "success";
	case HERALD_EINVAL:	return "invalid argument";
	case HERALD_EADDR:	return "bad or unknown address";
	case HERALD_ECONNECT:	return "cannot connect";
	case HERALD_ETIMEOUT:	return "timed out";
	case HERALD_ECLOSED:	return "connection closed";
	case HERALD_EPROTO:	return "protocol error";
	case HERALD_ESERVER:	return "refused by the server";
	case HERALD_ENOTFOUND:	return "no such value";
	case HERALD_EAGAIN:	return "output buffer full, try again";
	case HERALD_ENOMEM:	return "out of memory";
	case HERALD_ESYS:	return "system error";
	case HERALD_ETLS:	return "TLS failed";
	case HERALD_EAUTH:	return "authentication refused";
	case HERALD_EEXPIRED:	return "the token expired";
	}
	return "unknown error";
}

/* Format into a copy first: fmt's arguments may include errmsg itself. */
static void
vseterr(struct herald_client *c, const char *fmt, va_list ap)
{
	char text[LH_ERRMSG_MAX];

	vsnprintf(text, sizeof(text), fmt, ap);
	memcpy(c->errmsg, text, sizeof(text));
}

/* Set the client's error text (which fmt's arguments may include). */
void
lh_seterr(struct herald_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vseterr(c, fmt, ap);
	va_end(ap);
}

/* Set the error text and return err: `return lh_fail(c, E, "...")`. */
int
lh_fail(struct herald_client *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vseterr(c, fmt, ap);
	va_end(ap);
	return err;
}

/* Every public call that may call back starts with this ... */
void
lh_enter(struct herald_client *c)
{
	c->depth++;
}

/*
 * ... and returns through this.  The outermost call handles a connection
 * found broken meanwhile, frees unsubscribed subscriptions, frees the
 * client if a callback closed it, and updates the libevent events.
 * Returns rc (the client may be gone then).
 */
int
lh_leave(struct herald_client *c, int rc)
{
	if (c->depth > 1) {
		c->depth--;
		return rc;
	}
	if (c->broken && !c->close_asked)
		lh_lost(c, c->broken);
	if (c->close_asked) {
		c->depth = 0;
		client_free(c);
		return rc;
	}
	lh_sweep_subs(c);
	lh_ev_update(c);
	c->depth = 0;
	return rc;
}

/* Call the event callback, if any; callbacks cannot free c under us. */
void
lh_event(struct herald_client *c, enum herald_event_type type, int err,
    const char *text, const char *name, uint64_t a, uint64_t b)
{
	struct herald_event ev;

	if (c->opt.on_event == NULL || c->closing || c->close_asked)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.err = err;
	ev.text = text != NULL ? text : "";
	ev.name = name;
	switch (type) {
	case HERALD_EVENT_DISCONNECTED:
		ev.retry_ms = b == (uint64_t)-1 ? -1 : (int)b;
		break;
	case HERALD_EVENT_GAP:
		ev.first = a;
		ev.last = b;
		break;
	default:
		ev.seq = a;
		break;
	}
	c->depth++;
	c->in_callback++;
	c->opt.on_event(c, &ev, c->opt.event_arg);
	c->in_callback--;
	c->depth--;
}

/*
 * The connection (or the attempt to make one) is over, with err; the
 * error text is already set.  Unanswered commands fail; unsent PUBs are
 * kept; subscriptions will be sent again.  Then either a reconnect is
 * scheduled, or the client is dead.
 */
void
lh_lost(struct herald_client *c, int err)
{
	int was_ready = c->state == LH_READY;
	uint64_t now = lh_now_ms();
	char text[LH_ERRMSG_MAX];

	snprintf(text, sizeof(text), "%s", c->errmsg);
	lh_close_socket(c);
	c->broken = 0;
	lh_keep_pubs(c);
	lh_subs_reset(c);
	c->replay_until = 0;
	c->ping_sent = 0;
	c->bye[0] = '\0';
	if (was_ready && now - c->ready_at >= LH_STABLE_MS)
		c->attempts = 0;
	if (c->opt.reconnect && !c->blocking_connect && !c->closing &&
	    !c->close_asked && !c->no_retry) {
		uint64_t delay = lh_backoff_ms(c->attempts++,
		    c->opt.reconnect_min_ms, c->opt.reconnect_max_ms, &c->rng);
		c->state = LH_IDLE;
		c->retry_at = now + delay;
		lh_fail_cmds(c, &c->pending, err);
		lh_event(c, HERALD_EVENT_DISCONNECTED, err, text, NULL, 0,
		    delay);
	} else {
		c->state = LH_DEAD;
		c->dead_err = err;
		lh_fail_cmds(c, &c->pending, err);
		lh_fail_cmds(c, &c->deferred, err);
		lh_event(c, HERALD_EVENT_DISCONNECTED, err, text, NULL, 0,
		    (uint64_t)-1);
	}
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", text);
}

/* What poll should wait for on the client's socket. */
static short
poll_events(const struct herald_client *c)
{
	int want = herald_events(c);

	return (want & HERALD_READ ? POLLIN : 0) |
	    (want & HERALD_WRITE ? POLLOUT : 0);
}

/* Wait for the socket or a deadline (at most wait_ms), then step. */
void
lh_poll_step(struct herald_client *c, int wait_ms)
{
	struct pollfd p = { .fd = c->fd, .events = poll_events(c) };
	int t = herald_timeout(c), ready = 0;

	if (t >= 0 && (wait_ms < 0 || t < wait_ms))
		wait_ms = t;
	if (p.fd < 0) {
		if (wait_ms != 0)
			poll(NULL, 0, wait_ms);
	} else if (poll(&p, 1, wait_ms) > 0) {
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			ready |= HERALD_READ;
		if (p.revents & (POLLOUT | POLLHUP | POLLERR))
			ready |= HERALD_WRITE;
	}
	lh_step(c, ready);
}

/*
 * Run the client until done(arg) is true: returns HERALD_OK, or the
 * error that makes it impossible, or HERALD_ETIMEOUT after timeout_ms
 * (-1: no limit).  Not from the client's own callbacks: they run inside
 * its reading.
 */
int
lh_wait_until(struct herald_client *c, int (*done)(void *), void *arg,
    int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : lh_now_ms() + timeout_ms;

	if (c->in_callback)
		return lh_fail(c, HERALD_EINVAL, "a blocking call inside a "
		    "callback of the same client");
	for (;;) {
		if (done(arg))
			return HERALD_OK;
		if (c->close_asked)
			return lh_fail(c, HERALD_ECLOSED, "the client was "
			    "closed");
		if (c->state == LH_DEAD)
			return c->dead_err;
		int wait = -1;
		if (deadline != 0) {
			uint64_t now = lh_now_ms();
			if (now >= deadline)
				return lh_fail(c, HERALD_ETIMEOUT, "%s: no "
				    "answer within %d ms", c->addr_str,
				    timeout_ms);
			wait = deadline - now;
		}
		lh_poll_step(c, wait);
	}
}
