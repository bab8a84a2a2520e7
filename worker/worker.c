/*
 * A worker process: one libevent loop, no threads.  Accepts clients from
 * its own SO_REUSEPORT sockets (and the shared unix ingest sockets),
 * wakes on its eventfd when the producer has appended to the bus, sends
 * heartbeats, applies reloads, and stops gracefully.
 */
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net.h"
#include "handover.h"
#include "worker.h"

static struct worker	W;

static void	stop(struct worker *);

/* A cheap monotonic clock in milliseconds, for heartbeats and idling. */
uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The epoll set a client is in while it waits for something. */
static int
client_epfd(const struct client *c)
{
	return c->kind == LISTEN_INGEST || c->publisher ? c->w->pub_epfd :
	    c->w->epfd;
}

/*
 * Set which events a client waits for (read, write).  Clients sit in the
 * worker's own epoll set rather than each in a libevent event: an event
 * and libevent's map entry cost some 170 bytes per socket, two thirds of
 * what a whole idle client may cost.  A client waiting for nothing is
 * out of the set, so a hung-up socket cannot wake the loop in vain.
 */
void
worker_want(struct client *c, int read, int write)
{
	struct epoll_event ev = { 0 };
	int op;

	/* TLS: bytes held for a retry go out on EPOLLOUT, whatever the
	 * caller owes otherwise; and input OpenSSL has that the socket will
	 * not announce is read when the loop turns (EPOLLOUT again:
	 * client_event_cb reads it). */
	if (tls_holds(c) || (read && tls_input_ready(c)))
		write = 1;
	if (c->state == CS_DEAD || (c->reading == read && c->writing == write))
		return;
	if (!c->reading && !c->writing)
		op = EPOLL_CTL_ADD;
	else if (!read && !write)
		op = EPOLL_CTL_DEL;
	else
		op = EPOLL_CTL_MOD;
	/* A full socket: under the disconnect policy, look at it soon. */
	if (write && !c->writing &&
	    c->w->cfg->clients_slow_policy == SLOW_DISCONNECT)
		timers_soon(c);
	c->reading = read;
	c->writing = write;
	ev.events = (read ? EPOLLIN : 0) | (write ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(client_epfd(c), op, c->fd, &ev) == -1) {
		log_warn("client %u: epoll_ctl", c->id);
		client_kill(c);
	}
}

/*
 * A client has published.  One of the client listener (clients.publish)
 * moves to the publishers' epoll set, whose PUBs are taken between the
 * writes of a fan-out round (worker_serve_publishers): in the clients'
 * set its PUBs waited for the round to end.
 */
void
worker_publisher(struct client *c)
{
	int read = c->reading, write = c->writing;

	if (c->publisher || c->kind == LISTEN_INGEST) {
		c->publisher = 1;	/* (ingest: in that set already) */
		return;
	}
	worker_want(c, 0, 0);		/* out of the clients' set */
	c->publisher = 1;
	worker_want(c, read, write);	/* into the publishers' */
}

/* Whether anything besides the fan-out waits to be served: a client's
 * input, a stalled client's socket that has room again, a connection,
 * the producer's answers to SYNCs, the master. */
int
worker_pending(struct worker *w)
{
	struct pollfd pfd[3 + LISTENERS_MAX * 2];
	int n = 0;

	if (w->pubs_waiting)
		return 1;
	pfd[n++] = (struct pollfd){ .fd = w->epfd, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = w->ctl_fd, .events = POLLIN };
	if (w->fwd != NULL)
		pfd[n++] = (struct pollfd){ .fd = bufferevent_getfd(w->fwd),
		    .events = POLLIN };
	for (int i = 0; i < w->nlisten_ev && !w->accept_paused; i++)
		pfd[n++] = (struct pollfd){ .fd = event_get_fd(w->listen_ev[i]),
		    .events = POLLIN };
	return poll(pfd, n, 0) > 0;
}

/*
 * Between the writes of a long fan-out round (fanout.c): pass on the PUBs
 * that publishers (ingest connections, and clients that have published:
 * worker_publisher) sent meanwhile.  Served only by the loop, a
 * publisher on a busy worker would wait for the round to end, and its
 * messages then for their subscribers' turn in the next one: a message's
 * latency would be two rounds instead of one.  Only whole PUB lines are taken (client_take_pubs); the rest waits for
 * the loop, which is told so through worker_pending.
 */
void
worker_serve_publishers(struct worker *w)
{
	struct epoll_event ev[CLIENT_EVENTS_MAX];
	int n = epoll_wait(w->pub_epfd, ev, CLIENT_EVENTS_MAX, 0);

	for (int i = 0; i < n; i++) {
		struct client *c = ev[i].data.ptr;
		if (!(ev[i].events & EPOLLIN) || (ev[i].events & EPOLLOUT) ||
		    !client_take_pubs(c))
			w->pubs_waiting = 1;
	}
	forward_flush(w);
}

/* Some clients are ready: serve a bounded number, then let the loop turn
 * (epfd stays readable while more are ready). */
static void
clients_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[CLIENT_EVENTS_MAX];
	int n = epoll_wait(fd, ev, CLIENT_EVENTS_MAX, 0);

	if (fd == w->pub_epfd)
		w->pubs_waiting = 0;	/* served now */
	for (int i = 0; i < n; i++) {
		struct client *c = ev[i].data.ptr;
		short on = 0;
		if (c->state == CS_DEAD)	/* killed by an earlier one */
			continue;
		if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			on |= EV_READ;
		if (ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			on |= EV_WRITE;
		client_event_cb(c->fd, on, c);
	}
	forward_flush(w);	/* the PUBs just read: before any fan-out */
}

/*
 * A limit was hit: count it under ctr (STATS shows it) and say so in the
 * log, at most once a second per limit.
 */
void
worker_limit(struct worker *w, enum bus_counter ctr, int warn,
    const char *fmt, ...)
{
	va_list ap;

	bus_counter_add(w->bus, w->slot, ctr, 1);
	va_start(ap, fmt);
	log_vlimited(&w->lim[ctr], warn, fmt, ap);
	va_end(ap);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	while (w->dead != NULL) {
		struct client *c = w->dead;
		w->dead = c->dead_next;
		client_free(c);
	}
}

/* Free dead clients once the loop is out of any walk over them. */
void
worker_reap_later(struct worker *w)
{
	event_active(w->reap_ev, 0, 0);
}

static void
pause_accepting(struct worker *w)
{
	struct timeval tv = { ACCEPT_PAUSE_MS / 1000,
	    (ACCEPT_PAUSE_MS % 1000) * 1000 };

	for (int i = 0; i < w->nlisten_ev; i++)
		event_del(w->listen_ev[i]);
	w->accept_paused = 1;
	if (ev_add_or_warn(w->accept_resume, &tv, "accept pause") == -1)
		w->accept_paused = 0;	/* or it would never end */
	worker_limit(w, CTR_ACCEPT_PAUSED, 1, "out of file descriptors with "
	    "%d clients: accepting paused for %d ms", w->nclients,
	    ACCEPT_PAUSE_MS);
}

static void
resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	w->accept_paused = 0;
	if (w->stopping || w->accept_held)
		return;
	for (int i = 0; i < w->nlisten_ev; i++)
		ev_add_or_warn(w->listen_ev[i], NULL, "listener");
}

/* The address table's key of a peer's address (0: not tracked). */
uint64_t
worker_addr_key(const struct sockaddr_storage *ss)
{
	uint64_t h;

	if (ss->ss_family == AF_INET)
		h = hash_bytes(&((const struct sockaddr_in *)ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6)
		h = hash_bytes(&((const struct sockaddr_in6 *)ss)->sin6_addr,
		    16);
	else
		return 0;
	return h ? h : 1;
}

/* Turn a connection away: HELLO, BYE server-full (HTTP: a 503), close
 * (TLS: only close; a handshake is not spent on a connection that is
 * refused). */
static void
reject_full(struct worker *w, int fd, const struct listener *l,
    enum bus_counter ctr, const char *why)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "HELLO herald/1 %llu\nBYE "
	    "server-full\n", (unsigned long long)w->head_seq);

	if (l->kind == LISTEN_HTTP && !l->tls)
		http_refuse_full(fd);
	else if (!l->tls)
		(void)!write(fd, line, n);
	close(fd);
	if (ctr != CTR_REJECTED_FULL)	/* rejected_full counts them all */
		bus_counter_add(w->bus, w->slot, CTR_REJECTED_FULL, 1);
	worker_limit(w, ctr, 1, "connection refused: %s", why);
}

/* Accept one connection; returns -1 when there is none (or no fds). */
static int
accept_one(struct worker *w, int lfd, const struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			pause_accepting(w);
		else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("accept");
		return -1;
	}
	if (bus_counter_sum(w->bus, CTR_CLIENTS) >=
	    (uint64_t)w->cfg->clients_max) {
		reject_full(w, fd, l, CTR_REJECTED_FULL,
		    "clients.max reached");
		return 0;
	}
	int slot = addr_admit(w->h->addrs, w->id, w->cfg->workers,
	    worker_addr_key(&ss), w->cfg->clients_per_address);
	if (slot == ADDR_REFUSED) {
		reject_full(w, fd, l, CTR_REJECTED_ADDRESS,
		    "clients.per_address reached");
		return 0;
	}
	if (slot == ADDR_FULL)
		worker_limit(w, CTR_ADDR_UNTRACKED, 1, "no place for a new "
		    "address in the address table (%d places): its connection "
		    "is admitted without clients.per_address", ADDR_SLOTS);
	else if (slot == ADDR_BUSY)
		worker_limit(w, CTR_ADDR_UNTRACKED, 1, "the address table "
		    "stayed locked for %d ms (its holder stopped?): a "
		    "connection is admitted without clients.per_address",
		    ADDR_LOCK_WAIT_MS);
	if (client_new(w, fd, l, slot >= 0 ? slot : -1) == NULL) {
		log_warnx("out of memory for a new client");
		if (slot >= 0)
			addr_release(w->h->addrs, w->id, slot);
		close(fd);
	}
	return 0;
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct worker *w = &W;
	const struct listener *l = arg;

	/* HELLO tells the newest seq: be up to date with the bus. */
	fanout_run(w);
	for (int i = 0; i < ACCEPT_BATCH && !w->accept_paused; i++)
		if (accept_one(w, lfd, l) == -1)
			break;
}

/* The producer appended to the bus: fan the new records out. */
static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t n;

	(void)!read(fd, &n, sizeof(n));
	fanout_run(w);
}

/* A fan-out that let the loop turn goes on (fanout_batches). */
static void
more_cb(evutil_socket_t fd, short what, void *arg)
{
	fanout_run(arg);
}

/* Once a second: the clients' timers, held-back log lines, and a safety
 * fan-out. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	bus_counter_set(w->bus, w->slot, CTR_LOOP_TIME, now_ms() / 1000);
	fanout_run(w);
	for (int i = 0; i < CTR__COUNT; i++)
		log_limit_flush(&w->lim[i]);
	timers_run(w);
	tls_expire(w);
}

/*
 * An upgrade (CTL_HANDOVER): accept nothing more, run no more commands,
 * and move every client to the new binary's worker on sock
 * (handover.c), on the stop clock; then drain as a stop does.
 */
static void	stop_check(evutil_socket_t, short, void *);

/* The start of a stop or a hand-over (mode): accept nothing more, and
 * start the stop's clock (stop_check).  -1 if the clock could not be
 * started (logged, naming what). */
static int
stop_begin(struct worker *w, enum worker_stop mode, const char *what)
{
	struct timeval tv = { 0, STOP_TICK_MS * 1000 };

	w->stopping = mode;
	w->stop_ms = now_ms();
	for (int i = 0; i < w->nlisten_ev; i++)
		event_del(w->listen_ev[i]);
	return ev_add_or_warn(w->stop_timer, &tv, what);
}

static void
hand_over(struct worker *w, int sock)
{
	if (w->stopping) {
		log_warnx("upgrade: already stopping: the clients are not "
		    "handed over");
		close(sock);
		return;
	}
	(void)stop_begin(w, STOP_HANDING_OVER, "hand-over");
	handover_start(w, sock);
	fanout_run(w);		/* they move as up to date as can be */
	stop_check(-1, 0, w);
}

/* A new worker of an upgrade: the hand-over has begun (CTL_GO). */
static void
accept_now(struct worker *w)
{
	if (!w->accept_held)
		return;
	w->accept_held = 0;
	if (w->stopping || w->accept_paused)
		return;
	for (int i = 0; i < w->nlisten_ev; i++)
		ev_add_or_warn(w->listen_ev[i], NULL, "listener");
}

/* A message from the master (child_ctl_read); EOF: the master is gone. */
static void
ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct herald_config next;
	int passed = -1;
	int r = child_ctl_read(fd, w->h, &next, &passed);

	if (r == -1) {
		log_warnx("master went away: stopping");
		event_del(w->ctl_ev);
		stop(w);
		return;
	}
	if (r == CTL_HANDOVER) {
		hand_over(w, passed);
		return;
	}
	if (r == CTL_GO) {
		accept_now(w);
		return;
	}
	if (r == 0)
		return;
	config_apply_reload(w->cfg, &next, NULL, NULL);
	authn_reload(w);
	timers_all_soon(w);	/* heartbeat, idle_timeout, slow_policy */
	log_set_level(w->cfg->log_level);
	for (int i = 0; i < w->h->nlisteners; i++)	/* tcp.* settings */
		if (!w->h->listeners[i].is_unix &&
		    net_client_options(w->h->listeners[i].fds[w->id - 1],
		    w->cfg) == -1 && i == 0 && w->id == 1)
			log_warn("reload: tcp.congestion \"%s\"",
			    w->cfg->tcp_congestion);
	config_free(&next);
	tls_worker_reload(w);
	log_debug("configuration reloaded");
}

/*
 * The producer has every PUB this stopping worker read (or cannot be
 * reached, or did not answer in time): close the connection to it (a
 * SYNC still waiting is answered -ERR busy), and say BYE shutdown to
 * every client.
 */
void
worker_drained(struct worker *w)
{
	struct client *c;

	if (w->stopping != STOP_DRAINING)
		return;
	w->stopping = STOP_SAYING_BYE;
	forward_close(w);
	CLIENTS_FOREACH(w, c) {
		if (c->state == CS_DEAD)
			continue;
		client_bye(c, "shutdown");
		client_flush(c);
	}
	/* After a hand-over the new producer waits for this worker to end:
	 * look now, not at the next tick. */
	if (w->handed_over_ms != 0)
		event_active(w->stop_timer, 0, 0);
}

/*
 * A stop's clock: the PUBs to pass on get half of the worker's time
 * (shutdown_grace, less STOP_EXIT_EARLY_MS), the BYEs the rest; the
 * worker ends when every client has gone, or when its time is up.
 */
static void
stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t ran = now_ms() - w->stop_ms;
	uint64_t budget = w->cfg->shutdown_grace * 1000 - STOP_EXIT_EARLY_MS;

	if (w->stopping == STOP_HANDING_OVER) {
		if (handover_step(w) == 0)
			return;
		/* Every client moved (or told BYE restart): pass on the PUBs
		 * taken, then end; the BYEs get HANDOVER_BYE_MS. */
		w->handed_over_ms = now_ms();
		w->stopping = STOP_DRAINING;
		if (forward_drain(w) == -1)
			worker_drained(w);
		return;
	}
	if (w->handed_over_ms != 0 && w->stopping == STOP_SAYING_BYE &&
	    (w->nclients == 0 ||
	    now_ms() - w->handed_over_ms >= HANDOVER_BYE_MS)) {
		event_base_loopbreak(w->base);
		return;
	}
	if (w->stopping == STOP_DRAINING) {
		if (ran < budget / 2)
			return;
		log_warnx("the producer has not confirmed the PUBs passed on "
		    "%llu ms ago: stopping without it", (unsigned long long)ran);
		worker_drained(w);
	}
	if (w->nclients == 0 || ran >= budget)
		event_base_loopbreak(w->base);
}

/*
 * TERM, INT, or the master gone.  Accept nothing more and run no more
 * commands (may_execute): what clients send from now on is not taken;
 * pass on the PUBs already taken, and say BYE once the producer has
 * them all (worker_drained).  The master stops the producer only after
 * the workers, so that none of them is lost.
 */
static void
stop(struct worker *w)
{
	if (w->stopping)
		return;
	if (stop_begin(w, STOP_DRAINING, "stop") == -1) {
		worker_drained(w);	/* without its clock, a stop could
					 * last for ever: end it now */
		event_base_loopbreak(w->base);
		return;
	}
	if (forward_drain(w) == -1)
		worker_drained(w);
}

/* TERM/INT (child_signals): stop gracefully. */
static void
signal_stop(void *arg)
{
	stop(arg);
}

/*
 * Every way out of a worker ends here (after OpenBSD's proc_shutdown):
 * its clients are gone with it.
 */
static void __attribute__((noreturn))
worker_shutdown(struct worker *w)
{
	struct client *c;

	/* After a hand-over the successor counts in the same slot: take
	 * off only the clients still here. */
	if (w->handed_over_ms != 0) {
		CLIENTS_FOREACH(w, c)
			client_kill(c);
	} else {
		bus_counter_set(w->bus, w->slot, CTR_CLIENTS, 0);
	}
	log_debug("stopped");
	exit(0);
}

static void
add_listener(struct worker *w, int fd, struct listener *l)
{
	struct event *ev = ev_new_or_die(w->base, fd, EV_READ | EV_PERSIST,
	    accept_cb, l);

	if (!w->accept_held)
		ev_add_or_die(ev, NULL);
	w->listen_ev[w->nlisten_ev++] = ev;
}

/* Keep only this worker's listening sockets open. */
static void
setup_listeners(struct worker *w)
{
	struct herald *h = w->h;

	for (int i = 0; i < h->nlisteners; i++) {
		struct listener *l = &h->listeners[i];
		if (l->is_unix) {
			add_listener(w, l->shared_fd, l);
			continue;
		}
		for (int k = 0; k < w->cfg->workers; k++)
			if (k != w->id - 1)
				close(l->fds[k]);
		add_listener(w, l->fds[w->id - 1], l);
	}
	close(h->fwd_fd);
	for (int k = 0; k < w->cfg->workers; k++)
		if (k != w->id - 1)
			close(h->wake_fds[k]);
}

static void
alloc_buffers(struct worker *w)
{
	/* Two of any record max_payload allows now (bus_read never splits
	 * one); one that it did not (max_payload raised since, or a kept
	 * bus file) grows them (fanout.c). */
	w->scratch_len = FANOUT_BATCH_BYTES;
	size_t rec = w->cfg->max_payload + 1024;
	if (w->scratch_len < rec * 2)
		w->scratch_len = rec * 2;
	w->slow_len = w->scratch_len;
	w->scratch = malloc(w->scratch_len);
	w->slow_buf = malloc(w->slow_len);
	w->recs = calloc(FANOUT_BATCH_RECS, sizeof(*w->recs));
	w->slow_recs = calloc(FANOUT_BATCH_RECS, sizeof(*w->slow_recs));
	/* a batch's records, after the replies a client has queued */
	w->iov = calloc(FANOUT_BATCH_RECS + 1, sizeof(*w->iov));
	w->rbuf = malloc(READ_CHUNK);
	w->pub_rbuf = malloc(READ_CHUNK);
	if (!w->scratch || !w->slow_buf || !w->recs || !w->slow_recs ||
	    !w->iov || !w->rbuf || !w->pub_rbuf)
		fatalx("out of memory");
}

/* Run worker id (1..N) until stopped. */
void
worker_main(struct herald *h, int id, int ctl_fd)
{
	struct worker *w = &W;
	char name[32];

	snprintf(name, sizeof(name), "worker %d", id);
	log_procname(name);
	proc_title("heraldd: worker process %d", id);
	w->h = h;
	w->cfg = &h->cfg;
	w->bus = h->bus;
	w->id = id;
	w->slot = SLOT_WORKER(id);
	w->ctl_fd = ctl_fd;
	if ((w->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	/* A restarted worker's clients are gone with its predecessor; in
	 * an upgrade they come to it (handover.c), counted as they come,
	 * and it accepts once the old master says so (CTL_GO). */
	w->accept_held = h->adopt_fds[id - 1] != -1;
	if (!w->accept_held)
		bus_counter_set(w->bus, w->slot, CTR_CLIENTS, 0);
	bus_counter_set(w->bus, w->slot, CTR_LOOP_TIME, now_ms() / 1000);
	addr_worker_reset(h->addrs, id);
	alloc_buffers(w);
	tls_worker_init(w);
	index_init(&w->idx);
	bus_head(w->bus, &w->pos, &w->head_seq);
	setup_listeners(w);
	w->reap_ev = ev_new_or_die(w->base, -1, 0, reap_cb, w);
	replay_init(w);
	authn_init(w);
	w->accept_resume = ev_new_or_die(w->base, -1, 0, resume_accepting, w);
	w->wake_ev = ev_new_or_die(w->base, h->wake_fds[id - 1],
	    EV_READ | EV_PERSIST, wake_cb, w);
	ev_add_or_die(w->wake_ev, NULL);
	w->more_ev = ev_new_or_die(w->base, -1, 0, more_cb, w);
	struct timeval sec = { 1, 0 };
	wheel_init(&w->wheel, now_ms() / 1000);
	w->tick_ev = ev_new_or_die(w->base, -1, EV_PERSIST, tick_cb, w);
	ev_add_or_die(w->tick_ev, &sec);
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	w->epoll_ev = ev_new_or_die(w->base, w->epfd, EV_READ | EV_PERSIST,
	    clients_cb, w);
	ev_add_or_die(w->epoll_ev, NULL);
	if ((w->pub_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	w->pub_epoll_ev = ev_new_or_die(w->base, w->pub_epfd,
	    EV_READ | EV_PERSIST, clients_cb, w);
	ev_add_or_die(w->pub_epoll_ev, NULL);
	w->ctl_ev = ev_new_or_die(w->base, ctl_fd, EV_READ | EV_PERSIST, ctl_cb,
	    w);
	ev_add_or_die(w->ctl_ev, NULL);
	w->stop_timer = ev_new_or_die(w->base, -1, EV_PERSIST, stop_check, w);
	child_signals(w->base, signal_stop, w);
	if (w->accept_held)
		handover_adopt(w, h->adopt_fds[id - 1]);
	forward_start(w);
	log_debug("worker %d ready at seq %llu", id,
	    (unsigned long long)w->head_seq);
	if (event_base_dispatch(w->base) == -1)
		log_warnx("event loop failed");
	worker_shutdown(w);
}
