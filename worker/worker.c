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
	if (epoll_ctl(c->kind == LISTEN_INGEST ? c->w->pub_epfd : c->w->epfd,
	    op, c->fd, &ev) == -1) {
		log_warn("client %u: epoll_ctl", c->id);
		client_kill(c);
	}
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
 * that ingest connections sent meanwhile.  Served only by the loop, a
 * publisher on a busy worker waited for the round to end, and its
 * messages then for their subscribers' turn in the next one (broadcast to
 * 10k at 100 msg/s: 34 ms at the median before the producer saw them).
 * Only whole PUB lines are taken (client_take_pubs); the rest waits for
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
	evtimer_add(w->accept_resume, &tv);
	worker_limit(w, CTR_ACCEPT_PAUSED, 1, "out of file descriptors with "
	    "%d clients: accepting paused for %d ms", w->nclients,
	    ACCEPT_PAUSE_MS);
}

static void
resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	w->accept_paused = 0;
	if (w->stopping)
		return;
	for (int i = 0; i < w->nlisten_ev; i++)
		event_add(w->listen_ev[i], NULL);
}

static uint64_t
addr_key(const struct sockaddr_storage *ss)
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

/*
 * Count a connection from this address; returns its table row, -1 when
 * not tracked (unix socket, or the table is full), -2 when the address
 * is at clients.per_address.
 */
static int
addr_admit(struct worker *w, const struct sockaddr_storage *ss)
{
	struct addr_table *t = &w->h->addrs;
	uint64_t key = addr_key(ss);

	if (key == 0)
		return -1;
	for (int probe = 0; probe < 64; probe++) {
		int slot = (key + probe) & (ADDR_SLOTS - 1);
		uint64_t cur = __atomic_load_n(&t->keys[slot], __ATOMIC_ACQUIRE);
		if (cur == 0) {
			uint64_t zero = 0;
			if (!__atomic_compare_exchange_n(&t->keys[slot], &zero,
			    key, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
			    zero != key)
				continue;
		} else if (cur != key) {
			continue;
		}
		int64_t sum = 0;
		for (int i = 1; i <= w->cfg->workers; i++)
			sum += __atomic_load_n(&ADDR_COUNT(t, i, slot),
			    __ATOMIC_RELAXED);
		if (sum >= w->cfg->clients_per_address)
			return -2;
		__atomic_fetch_add(&ADDR_COUNT(t, w->id, slot), 1,
		    __ATOMIC_RELAXED);
		return slot;
	}
	return -1;
}

/* Turn a connection away: HELLO, BYE server-full, close. */
static void
reject_full(struct worker *w, int fd, enum bus_counter ctr, const char *why)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "HELLO herald/1 %llu\nBYE "
	    "server-full\n", (unsigned long long)w->head_seq);

	(void)!write(fd, line, n);
	close(fd);
	if (ctr != CTR_REJECTED_FULL)	/* rejected_full counts them all */
		bus_counter_add(w->bus, w->slot, CTR_REJECTED_FULL, 1);
	worker_limit(w, ctr, 1, "connection refused: %s", why);
}

/* Accept one connection; returns -1 when there is none (or no fds). */
static int
accept_one(struct worker *w, int lfd, enum listener_kind kind)
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
		reject_full(w, fd, CTR_REJECTED_FULL, "clients.max reached");
		return 0;
	}
	int slot = addr_admit(w, &ss);
	if (slot == -2) {
		reject_full(w, fd, CTR_REJECTED_ADDRESS,
		    "clients.per_address reached");
		return 0;
	}
	if (client_new(w, fd, kind, slot) == NULL) {
		log_warnx("out of memory for a new client");
		if (slot >= 0)
			__atomic_fetch_sub(&ADDR_COUNT(&w->h->addrs, w->id,
			    slot), 1, __ATOMIC_RELAXED);
		close(fd);
	}
	return 0;
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct worker *w = &W;
	enum listener_kind kind = (enum listener_kind)(intptr_t)arg;

	/* HELLO tells the newest seq: be up to date with the bus. */
	fanout_run(w);
	/* A few at a time, so that a storm does not starve the others. */
	for (int i = 0; i < 32 && !w->accept_paused; i++)
		if (accept_one(w, lfd, kind) == -1)
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
}

static void
reload_error(void *arg, const char *msg)
{
	log_warnx("reload: %s", msg);
}

/* A message from the master: 'R' + configuration text = reload. */
static void
ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	static char msg[CTL_MSG_MAX + 2];
	ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
	struct herald_config next;

	if (n <= 0) {
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		log_warnx("master went away: stopping");
		event_del(w->ctl_ev);
		stop(w);
		return;
	}
	msg[n] = '\0';
	if (msg[0] != 'R')
		return;
	if (config_load(&next, w->cfg->file, msg + 1, w->h->overrides,
	    w->h->noverrides, reload_error, NULL) != 0) {
		config_free(&next);
		return;
	}
	config_apply_reload(w->cfg, &next, NULL, NULL);
	timers_all_soon(w);	/* heartbeat, idle_timeout, slow_policy */
	log_set_level(w->cfg->log_level);
	for (int i = 0; i < w->h->nlisteners; i++)	/* tcp.* settings */
		if (!w->h->listeners[i].is_unix &&
		    net_client_options(w->h->listeners[i].fds[w->id - 1],
		    w->cfg) == -1 && i == 0 && w->id == 1)
			log_warn("reload: tcp.congestion \"%s\"",
			    w->cfg->tcp_congestion);
	config_free(&next);
	log_debug("configuration reloaded");
}

static void
stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	static int ticks;

	/* Everyone has had their BYE, or the grace period is nearly over. */
	if (w->nclients == 0 || ++ticks * 100 >= (w->cfg->shutdown_grace * 1000
	    - 500)) {
		bus_counter_set(w->bus, w->slot, CTR_CLIENTS, 0);
		exit(0);
	}
}

/* TERM/INT: BYE shutdown to every client, then exit. */
static void
stop(struct worker *w)
{
	struct timeval tv = { 0, 100 * 1000 };
	struct client *c;

	if (w->stopping)
		return;
	w->stopping = 1;
	for (int i = 0; i < w->nlisten_ev; i++)
		event_del(w->listen_ev[i]);
	CLIENTS_FOREACH(w, c) {
		if (c->state == CS_DEAD)
			continue;
		c->waiting_sync = 0;
		client_bye(c, "shutdown");
		client_flush(c);
	}
	w->stop_timer = event_new(w->base, -1, EV_PERSIST, stop_check, w);
	event_add(w->stop_timer, &tv);
}

/* TERM/INT: stop gracefully; USR1: reopen the log. */
static void
signal_cb(evutil_socket_t fd, short what, void *arg)
{
	int sig;

	while ((sig = child_signal_read(fd)) != 0) {
		if (sig == SIGUSR1)
			log_reopen();
		else
			stop(arg);
	}
}

static void
add_listener(struct worker *w, int fd, enum listener_kind kind)
{
	struct event *ev = event_new(w->base, fd, EV_READ | EV_PERSIST,
	    accept_cb, (void *)(intptr_t)kind);

	if (ev == NULL || event_add(ev, NULL) == -1)
		fatalx("cannot watch a listener");
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
			add_listener(w, l->shared_fd, l->kind);
			continue;
		}
		for (int k = 0; k < w->cfg->workers; k++)
			if (k != w->id - 1)
				close(l->fds[k]);
		add_listener(w, l->fds[w->id - 1], l->kind);
	}
	close(h->fwd_fd);
	for (int k = 0; k < w->cfg->workers; k++)
		if (k != w->id - 1)
			close(h->wake_fds[k]);
}

static void
alloc_buffers(struct worker *w)
{
	/* Large enough for any record (bus_read never splits one). */
	w->scratch_len = FANOUT_BATCH_BYTES;
	size_t rec = w->cfg->max_payload + 1024;
	if (w->scratch_len < rec * 2)
		w->scratch_len = rec * 2;
	w->scratch = malloc(w->scratch_len);
	w->slow_buf = malloc(w->scratch_len);
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
	static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1 };
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
	/* A restarted worker's clients are gone with its predecessor. */
	bus_counter_set(w->bus, w->slot, CTR_CLIENTS, 0);
	bus_counter_set(w->bus, w->slot, CTR_LOOP_TIME, now_ms() / 1000);
	memset(&ADDR_COUNT(&h->addrs, id, 0), 0, ADDR_SLOTS * sizeof(int32_t));
	alloc_buffers(w);
	index_init(&w->idx);
	bus_head(w->bus, &w->pos, &w->head_seq);
	setup_listeners(w);
	w->reap_ev = event_new(w->base, -1, 0, reap_cb, w);
	fanout_replay_init(w);
	w->accept_resume = evtimer_new(w->base, resume_accepting, w);
	w->wake_ev = event_new(w->base, h->wake_fds[id - 1],
	    EV_READ | EV_PERSIST, wake_cb, w);
	event_add(w->wake_ev, NULL);
	w->more_ev = evtimer_new(w->base, more_cb, w);
	struct timeval sec = { 1, 0 };
	wheel_init(&w->wheel, now_ms() / 1000);
	w->tick_ev = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
	event_add(w->tick_ev, &sec);
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	w->epoll_ev = event_new(w->base, w->epfd, EV_READ | EV_PERSIST,
	    clients_cb, w);
	event_add(w->epoll_ev, NULL);
	if ((w->pub_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	w->pub_epoll_ev = event_new(w->base, w->pub_epfd,
	    EV_READ | EV_PERSIST, clients_cb, w);
	event_add(w->pub_epoll_ev, NULL);
	w->ctl_ev = event_new(w->base, ctl_fd, EV_READ | EV_PERSIST, ctl_cb, w);
	event_add(w->ctl_ev, NULL);
	child_signals(w->base, sigs, 3, signal_cb, w);
	forward_start(w);
	log_debug("worker %d ready at seq %llu", id,
	    (unsigned long long)w->head_seq);
	event_base_dispatch(w->base);
	exit(0);
}
