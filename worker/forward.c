/*
 * The worker's connection to the producer, the bus's only writer: PUBs
 * from this worker's clients go out in order as "P <topic> <payload>",
 * a SYNC as "S <id>", answered "S <id> <seq>" once what came before it
 * is in the bus.  If the producer restarts, the worker reconnects; what
 * waits meanwhile is answered -ERR busy.  A stopping worker asks for one
 * last answer, for everything it sent (forward_drain), before its BYEs.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "worker.h"

static void	forward_connect(struct worker *);
static void	write_cb(struct bufferevent *, void *);

/* Answer every SYNC still waiting (ok = 0: the producer went away). */
static void
fail_syncs(struct worker *w)
{
	while (w->nsyncs > 0) {
		struct sync_wait *s = &w->syncs[w->syncs_head];
		w->syncs_head = (w->syncs_head + 1) % w->syncs_cap;
		w->nsyncs--;
		if (s->c != NULL)
			client_sync_done(s->c, 0, 0);
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct worker *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		unsigned long id;
		unsigned long long seq;
		if (sscanf(line, "S %lu %llu", &id, &seq) != 2 ||
		    w->nsyncs == 0) {
			log_warnx("producer sent \"%s\": not understood", line);
			free(line);
			continue;
		}
		struct sync_wait *s = &w->syncs[w->syncs_head];
		w->syncs_head = (w->syncs_head + 1) % w->syncs_cap;
		w->nsyncs--;
		if (s->id != id)
			log_warnx("producer answered sync %lu, expected %u", id,
			    s->id);
		if (s->c != NULL)
			client_sync_done(s->c, seq, 1);
		free(line);
		if (w->stopping && s->id == w->drain_sync) {
			worker_drained(w);	/* closes bev: read no more */
			return;
		}
	}
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	forward_connect(arg);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	write_cb(NULL, arg);
}

/* Drop the connection to the producer; SYNCs waiting fail. */
void
forward_close(struct worker *w)
{
	if (w->fwd == NULL)
		return;
	bufferevent_free(w->fwd);
	w->fwd = NULL;
	w->fwd_ready = 0;
	w->fwd_gen++;		/* PUBs sent on it may be lost: see cmd_sync */
	fail_syncs(w);
	write_cb(NULL, w);	/* held publishers now get -ERR busy */
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = { 0, FWD_RETRY_MS * 1000 };

	if (what & BEV_EVENT_CONNECTED) {
		w->fwd_ready = 1;
		return;
	}
	bus_counter_add(w->bus, w->slot, CTR_RECONNECTS, 1);
	if (w->stopping)
		log_warnx("lost the connection to the producer while stopping: "
		    "PUBs it has not confirmed may be lost");
	else
		log_warnx("lost the connection to the producer: reconnecting");
	forward_close(w);
	if (w->stopping)
		worker_drained(w);	/* nothing more to wait for */
	else
		ev_add_or_warn(w->fwd_retry, &tv, "producer reconnect");
}

static void
forward_connect(struct worker *w)
{
	struct sockaddr_un sun;
	size_t plen = strlen(w->h->fwd_path);
	struct timeval tv = { 0, FWD_RETRY_MS * 1000 };

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, w->h->fwd_path, plen);
	w->fwd = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (w->fwd == NULL) {
		ev_add_or_warn(w->fwd_retry, &tv, "producer reconnect");
		return;
	}
	bufferevent_setcb(w->fwd, read_cb, write_cb, event_cb, w);
	bufferevent_setwatermark(w->fwd, EV_WRITE, FWD_QUEUE_MAX / 4, 0);
	if (bufferevent_socket_connect(w->fwd, (struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + 1 + plen) == -1) {
		bufferevent_free(w->fwd);
		w->fwd = NULL;
		ev_add_or_warn(w->fwd_retry, &tv, "producer reconnect");
		return;
	}
	bufferevent_enable(w->fwd, EV_READ);
}

/* Connect to the producer (and keep reconnecting when it goes). */
void
forward_start(struct worker *w)
{
	w->fwd_retry = ev_new_or_die(w->base, -1, 0, retry_cb, w);
	w->fwd_resume = ev_new_or_die(w->base, -1, 0, resume_cb, w);
	forward_connect(w);
}

/* 1 if the queue to the producer is full: publishers must wait. */
int
forward_full(struct worker *w)
{
	if (w->fwd == NULL)
		return 0;	/* PUBs are answered busy, not held */
	if (!w->fwd_full && evbuffer_get_length(
	    bufferevent_get_output(w->fwd)) > FWD_QUEUE_MAX)
		w->fwd_full = 1;
	return w->fwd_full;
}

/* The queue drained to its low mark: read the held publishers again. */
static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct worker *w = arg;
	struct client *c;

	if (!w->fwd_full)
		return;
	w->fwd_full = 0;
	CLIENTS_FOREACH(w, c) {
		if (c->state != CS_OPEN || !c->pub_paused)
			continue;
		c->pub_paused = 0;
		client_flush(c);
	}
}

/*
 * Write what is queued for the producer now rather than when the loop
 * turns again: in a turn that also fans out, the PUBs read in it would
 * wait for every round of that fan-out before the producer saw them.
 * What the
 * socket does not take, the bufferevent writes later as before.
 */
void
forward_flush(struct worker *w)
{
	if (w->fwd == NULL || !w->fwd_ready)
		return;
	struct evbuffer *out = bufferevent_get_output(w->fwd);
	if (evbuffer_get_length(out) == 0)
		return;
	/* An error is the bufferevent's to find and report (event_cb). */
	(void)evbuffer_write(out, bufferevent_getfd(w->fwd));
	/* Drained here, the bufferevent will not call write_cb for it; and
	 * this may run between fan-out writes, where no command may run:
	 * the held publishers are read again when the loop turns. */
	if (w->fwd_full && evbuffer_get_length(out) <= FWD_QUEUE_MAX / 4)
		event_active(w->fwd_resume, 0, 0);
}

/* Queue a valid PUB for the producer; -1 if it is unreachable. */
int
forward_pub(struct worker *w, const char *topic, size_t tlen,
    const char *payload, size_t plen)
{
	struct evbuffer *out;

	if (w->fwd == NULL)
		return -1;
	out = bufferevent_get_output(w->fwd);
	evbuffer_add(out, "P ", 2);
	evbuffer_add(out, topic, tlen);
	evbuffer_add(out, " ", 1);
	evbuffer_add(out, payload, plen);
	evbuffer_add(out, "\n", 1);
	return 0;
}

/* Ask the producer to confirm the client's PUBs so far; -1 if it cannot. */
int
forward_sync(struct worker *w, struct client *c)
{
	if (w->fwd == NULL)
		return -1;
	if (w->nsyncs == w->syncs_cap) {
		int cap = w->syncs_cap ? w->syncs_cap * 2 : 64;
		struct sync_wait *s = malloc(cap * sizeof(*s));
		if (s == NULL)
			return -1;
		for (int i = 0; i < w->nsyncs; i++)
			s[i] = w->syncs[(w->syncs_head + i) % w->syncs_cap];
		free(w->syncs);
		w->syncs = s;
		w->syncs_cap = cap;
		w->syncs_head = 0;
	}
	struct sync_wait *s = &w->syncs[(w->syncs_head + w->nsyncs) %
	    w->syncs_cap];
	s->c = c;
	s->id = ++w->next_sync;
	w->nsyncs++;
	evbuffer_add_printf(bufferevent_get_output(w->fwd), "S %u\n", s->id);
	return 0;
}

/*
 * A stopping worker: write what is queued for the producer and ask it to
 * confirm that it has it all; worker_drained follows once it has (or is
 * gone).  -1 if it cannot be reached: there is nothing to wait for.
 */
int
forward_drain(struct worker *w)
{
	event_del(w->fwd_retry);	/* stopping: no reconnecting */
	if (forward_sync(w, NULL) == -1)
		return -1;
	w->drain_sync = w->next_sync;
	forward_flush(w);
	return 0;
}

/* A client is going away: its waiting SYNCs answer nobody. */
void
forward_forget(struct worker *w, struct client *c)
{
	for (int i = 0; i < w->nsyncs; i++) {
		struct sync_wait *s = &w->syncs[(w->syncs_head + i) %
		    w->syncs_cap];
		if (s->c == c)
			s->c = NULL;
	}
}
