/*
 * libevent glue: herald_attach gives a client events in the caller's
 * event_base, for its socket (readable, writable) and for its next
 * deadline, and keeps them in step with the client after every public
 * call.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "lh.h"

struct lh_ev {
	struct event_base	*base;
	int			 fd;		/* of rd and wr, or -1 */
	struct event		*rd;		/* the socket readable */
	struct event		*wr;		/* the socket writable */
	int			 rd_on, wr_on;	/* added to the base */
	struct event		*timer;
	uint64_t		 timer_at;	/* armed for, 0 = not */
};

/* The events' callbacks: one step of the client. */
static void
rd_cb(evutil_socket_t fd, short what, void *arg)
{
	herald_process(arg, HERALD_READ);
}

static void
wr_cb(evutil_socket_t fd, short what, void *arg)
{
	herald_process(arg, HERALD_WRITE);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct herald_client *c = arg;

	c->ev->timer_at = 0;
	herald_process(c, 0);
}

/* Remove the socket's events (before the socket is closed). */
void
lh_ev_drop_io(struct herald_client *c)
{
	struct lh_ev *e = c->ev;

	if (e == NULL || e->fd < 0)
		return;
	event_free(e->rd);
	event_free(e->wr);
	e->rd = e->wr = NULL;
	e->rd_on = e->wr_on = 0;
	e->fd = -1;
}

/* Add or delete ev so that it is on (1) or off (0). */
static void
set_event(struct event *ev, int *is_on, int on)
{
	if (on && !*is_on)
		event_add(ev, NULL);
	else if (!on && *is_on)
		event_del(ev);
	*is_on = on;
}

/* The socket's events: made once per socket, switched on and off. */
static void
update_io(struct herald_client *c)
{
	struct lh_ev *e = c->ev;
	int fd = herald_fd(c), want = herald_events(c);

	if (e->fd != fd)
		lh_ev_drop_io(c);
	if (fd < 0)
		return;
	if (e->fd < 0) {
		e->rd = event_new(e->base, fd, EV_READ | EV_PERSIST, rd_cb, c);
		e->wr = event_new(e->base, fd, EV_WRITE | EV_PERSIST, wr_cb, c);
		if (e->rd == NULL || e->wr == NULL) {
			if (e->rd != NULL)
				event_free(e->rd);
			if (e->wr != NULL)
				event_free(e->wr);
			e->rd = e->wr = NULL;
			return;		/* the timer still comes */
		}
		e->fd = fd;
	}
	set_event(e->rd, &e->rd_on, want & HERALD_READ);
	set_event(e->wr, &e->wr_on, want & HERALD_WRITE);
}

/* Arm the timer for the client's next deadline, if it changed. */
static void
update_timer(struct herald_client *c)
{
	struct lh_ev *e = c->ev;
	int t = herald_timeout(c);
	uint64_t at = t < 0 ? 0 : lh_now_ms() + t;

	if (t < 0) {
		if (e->timer_at != 0)
			evtimer_del(e->timer);
		e->timer_at = 0;
		return;
	}
	if (e->timer_at == at)
		return;
	struct timeval tv = { t / 1000, (t % 1000) * 1000 };
	evtimer_add(e->timer, &tv);
	e->timer_at = at;
}

/* Make the events match what the client waits for now. */
void
lh_ev_update(struct herald_client *c)
{
	if (c->ev == NULL)
		return;
	update_io(c);
	update_timer(c);
}

/* Free the events (the client goes away, or is detached). */
void
lh_ev_free(struct herald_client *c)
{
	if (c->ev == NULL)
		return;
	lh_ev_drop_io(c);
	if (c->ev->timer != NULL)
		event_free(c->ev->timer);
	free(c->ev);
	c->ev = NULL;
}

/* Let base's loop drive the client. */
int
herald_attach(struct herald_client *c, struct event_base *base)
{
	lh_enter(c);
	lh_ev_free(c);
	if ((c->ev = calloc(1, sizeof(*c->ev))) == NULL)
		return lh_leave(c, lh_fail(c, HERALD_ENOMEM, "out of memory"));
	c->ev->base = base;
	c->ev->fd = -1;
	if ((c->ev->timer = evtimer_new(base, timer_cb, c)) == NULL) {
		free(c->ev);
		c->ev = NULL;
		return lh_leave(c, lh_fail(c, HERALD_ENOMEM, "out of memory"));
	}
	c->opt.nonblocking = 1;
	return lh_leave(c, HERALD_OK);
}

/* Take the client's events out of the base. */
void
herald_detach(struct herald_client *c)
{
	lh_ev_free(c);
}
