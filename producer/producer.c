/*
 * The producer: the bus's only writer.  It takes the PUBs that workers
 * forward from their clients (ingest and permitted client PUBs) and the
 * built-in status figures, gives each the next seq, appends it to the
 * ring and the retained table, and wakes every worker once per batch.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bus.h"
#include "cluster.h"
#include "heraldd.h"
#include "log.h"
#include "proc.h"
#include "net.h"
#include "topic.h"

static struct herald	*H;
static struct event_base *base;
static struct event	*wake_ev;
static struct event	*status_ev;
static struct event	*accept_ev;
static struct event	*ctl_ev;
static struct event	*stop_ev;	/* bounds a stop */
static struct event	*held_ev;	/* ... and its wait for Redis */
static int		 dirty;		/* appended since the last wake */
static int		 nconns;	/* workers' connections open */
static int		 stopping;

/* Wake every worker: one eventfd write each, per batch. */
static void
wake_workers(void)
{
	uint64_t one = 1;

	dirty = 0;
	for (int i = 0; i < H->cfg.workers; i++)
		(void)!write(H->wake_fds[i], &one, sizeof(one));
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	if (dirty)
		wake_workers();
}

/* Lines about messages that can repeat fast, at most one a second each. */
static struct log_limiter lim_bad, lim_big, lim_kept;

/* Say in the bus that the loop runs (GET /healthz reads it). */
static void
loop_turned(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	bus_counter_set(H->bus, SLOT_PRODUCER, CTR_LOOP_TIME, ts.tv_sec);
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	loop_turned();
	log_limit_flush(&lim_bad);
	log_limit_flush(&lim_big);
	log_limit_flush(&lim_kept);
}

/* A cluster node: records written by cluster.c, workers woken now (a
 * SYNC answer that follows must not reach a worker before its wake). */
void
producer_appended(uint64_t n)
{
	bus_counter_add(H->bus, SLOT_PRODUCER, CTR_MSGS_IN, n);
	wake_workers();
}

/* Append one message; the wake follows when this turn of the loop ends.
 * A cluster node sends it to Redis instead (droppable: status figures). */
static void
publish(const char *topic, size_t tlen, const char *payload, size_t plen,
    int droppable)
{
	uint64_t dropped = bus_retained_dropped(H->bus);

	if (!topic_valid(topic, tlen) || plen == 0) {
		log_limited(&lim_bad, 1, "dropped a malformed message from a "
		    "worker");
		return;
	}
	if (H->cfg.cluster_redis[0] != '\0') {
		cluster_pub(topic, tlen, payload, plen, droppable);
		return;
	}
	if (bus_append(H->bus, topic, tlen, payload, plen) == 0) {
		log_limited(&lim_big, 1, "message on %.*s too large for the "
		    "ring (%zu bytes)", (int)tlen, topic, plen);
		return;
	}
	if (bus_retained_dropped(H->bus) != dropped)
		log_limited(&lim_kept, 1, "retained table full (bus.retained_max "
		    "%d, bus.retained_bytes %llu): %.*s delivered but its value "
		    "not kept for GET and snapshots", H->cfg.bus_retained_max,
		    (unsigned long long)H->cfg.bus_retained_bytes, (int)tlen,
		    topic);
	bus_counter_add(H->bus, SLOT_PRODUCER, CTR_MSGS_IN, 1);
	if (!dirty) {
		dirty = 1;
		event_active(wake_ev, 0, 0);
	}
}

/* Status figures as text, through the same path as every message. */
void
producer_publish_status(const char *name, const char *value)
{
	char topic[TOPIC_MAX + 1];
	int n = snprintf(topic, sizeof(topic), "%s/%s", H->cfg.status_prefix,
	    name);

	if (n > 0 && n <= TOPIC_MAX)
		publish(topic, n, value, strlen(value), 1);
}

/* One line from a worker: "P <topic> <payload>" or "S <id>". */
static void
handle_line(struct bufferevent *bev, const char *line, size_t len)
{
	if (len > 2 && line[0] == 'P' && line[1] == ' ') {
		const char *t = line + 2, *sp = memchr(t, ' ', len - 2);
		if (sp == NULL) {
			log_warnx("malformed PUB from a worker");
			return;
		}
		publish(t, sp - t, sp + 1, line + len - sp - 1, 0);
	} else if (len > 2 && line[0] == 'S' && line[1] == ' ' &&
	    H->cfg.cluster_redis[0] != '\0') {
		cluster_sync(bev, line + 2, len - 2);
	} else if (len > 2 && line[0] == 'S' && line[1] == ' ') {
		/* The worker will hear of the new records before the SYNC
		 * answer reaches its client. */
		if (dirty)
			wake_workers();
		evbuffer_add_printf(bufferevent_get_output(bev), "S %.*s %llu\n",
		    (int)(len - 2), line + 2,
		    (unsigned long long)bus_head_seq(H->bus));
	} else {
		log_warnx("unknown line from a worker (%zu bytes)", len);
	}
}

static void
fwd_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL,
		    EVBUFFER_EOL_LF);
		if (eol.pos == -1)
			break;
		char *line = (char *)evbuffer_pullup(in, eol.pos + 1);
		handle_line(bev, line, eol.pos);
		evbuffer_drain(in, eol.pos + 1);
	}
}

/*
 * A worker's connection ends when all it sent has been read.  A write
 * that fails (the worker is gone: its SYNC answers have nobody to go to)
 * ends nothing: what it sent before it went may still be unread, and is
 * taken in as any other.
 */
static void
fwd_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (!(what & BEV_EVENT_EOF) && !(what & BEV_EVENT_READING))
		return;
	if (H->cfg.cluster_redis[0] != '\0')
		cluster_forget(bev);
	bufferevent_free(bev);
	if (--nconns == 0 && stopping)
		producer_end_if_done();
}

/* A stopping producer ends once the workers' connections are read and
 * (a cluster node) Redis has every PUB held. */
void
producer_end_if_done(void)
{
	struct timeval tv = { 0, CLUSTER_STOP_WAIT_MS * 1000 };

	if (!stopping || nconns > 0)
		return;
	if (H->cfg.cluster_redis[0] == '\0' || cluster_held() == 0)
		event_base_loopbreak(base);
	else if (!evtimer_pending(held_ev, NULL) &&
	    ev_add_or_warn(held_ev, &tv, "stop (PUBs held for Redis)") == -1)
		event_base_loopbreak(base);
}

/* Accept one worker's connection; -1 when none is waiting. */
static int
fwd_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("accept (worker connection)");
		return -1;
	}
	struct bufferevent *bev = bufferevent_socket_new(base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return 0;
	}
	bufferevent_setcb(bev, fwd_read_cb, NULL, fwd_event_cb, NULL);
	bufferevent_enable(bev, EV_READ);
	nconns++;
	return 0;
}

static void
fwd_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	fwd_accept(lfd);
}

static void
status_cb(evutil_socket_t fd, short what, void *arg)
{
	status_publish(H);
}

static void
arm_status(void)
{
	struct timeval tv = { H->cfg.status_interval, 0 };

	evtimer_del(status_ev);
	if (H->cfg.status_interval > 0) {
		status_publish(H);
		ev_add_or_warn(status_ev, &tv, "status.interval");
	}
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	if (nconns > 0)
		log_warnx("%d worker connection%s still open %d s after the "
		    "stop began: stopping without what they may still send",
		    nconns, nconns == 1 ? "" : "s", H->cfg.shutdown_grace);
	event_base_loopbreak(base);
}

/*
 * TERM, INT, or the master gone.  The master stops the workers first:
 * each passes on the PUBs it has read and closes its connection, so the
 * producer ends once every connection has been read to its end (at once,
 * when the master sends TERM after the workers are gone), or after
 * shutdown_grace if a worker is slow to close (all stopped together, as
 * by `pkill -TERM heraldd`).  Connections still waiting in the
 * listener's queue are taken first: a worker may have written before it
 * was accepted.
 */
static void
producer_stop(void)
{
	struct timeval tv = { H->cfg.shutdown_grace, 0 };

	if (stopping)
		return;
	stopping = 1;
	while (fwd_accept(H->fwd_fd) == 0)
		;
	event_del(accept_ev);
	if (ev_add_or_warn(stop_ev, &tv, "stop") == -1)
		event_base_loopbreak(base);
	else
		producer_end_if_done();
}

/*
 * Every way out of the producer ends here (after OpenBSD's
 * proc_shutdown): wake the workers for what was appended, write the bus
 * to its file, exit.
 */
static void __attribute__((noreturn))
producer_shutdown(void)
{
	if (dirty)
		wake_workers();
	if (H->cfg.cluster_redis[0] != '\0' && cluster_held() > 0)
		log_warnx("cluster: stopping with %zu PUBs Redis has not "
		    "taken: they are lost", cluster_held());
	bus_sync(H->bus);
	log_debug("stopped at seq %llu",
	    (unsigned long long)bus_head_seq(H->bus));
	exit(0);
}

/* A message from the master (child_ctl_read); EOF: the master is gone. */
static void
ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct herald_config next;
	int r = child_ctl_read(fd, H, &next, NULL);

	if (r == -1) {
		log_warnx("master went away: stopping");
		event_del(ctl_ev);
		producer_stop();
		return;
	}
	if (r != CTL_RELOAD)
		return;
	config_apply_reload(&H->cfg, &next, NULL, NULL);
	log_set_level(H->cfg.log_level);
	config_free(&next);
	arm_status();
}

/* TERM/INT (child_signals): stop. */
static void
signal_stop(void *arg)
{
	producer_stop();
}

/* Run the producer until stopped. */
void
producer_main(struct herald *h, int ctl_fd)
{
	H = h;
	log_procname("producer");
	proc_title("heraldd: producer");
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	for (int i = 0; i < h->nlisteners; i++) {
		struct listener *l = &h->listeners[i];
		if (l->is_unix)
			close(l->shared_fd);
		else
			for (int k = 0; k < h->cfg.workers; k++)
				close(l->fds[k]);
	}
	wake_ev = ev_new_or_die(base, -1, 0, wake_cb, NULL);
	accept_ev = ev_new_or_die(base, h->fwd_fd, EV_READ | EV_PERSIST,
	    fwd_accept_cb, NULL);
	ev_add_or_die(accept_ev, NULL);
	ctl_ev = ev_new_or_die(base, ctl_fd, EV_READ | EV_PERSIST, ctl_cb, NULL);
	ev_add_or_die(ctl_ev, NULL);
	stop_ev = ev_new_or_die(base, -1, 0, stop_cb, NULL);
	held_ev = ev_new_or_die(base, -1, 0, stop_cb, NULL);
	child_signals(base, signal_stop, NULL);
	status_ev = ev_new_or_die(base, -1, EV_PERSIST, status_cb, NULL);
	arm_status();
	struct timeval sec = { 1, 0 };
	ev_add_or_die(ev_new_or_die(base, -1, EV_PERSIST, flush_cb, NULL), &sec);
	if (h->cfg.cluster_redis[0] != '\0')
		cluster_start(h, base);
	loop_turned();
	log_debug("producer ready at seq %llu",
	    (unsigned long long)bus_head_seq(h->bus));
	if (event_base_dispatch(base) == -1)
		log_warnx("event loop failed");
	producer_shutdown();
}
