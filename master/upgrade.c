/*
 * A live upgrade (heraldd(8), "Upgrades"): on USR2 the master executes
 * the binary it was started from (the new version on disk) with one
 * socket inherited, and the two masters go through these steps:
 *
 *   old                                   new
 *   HELLO (version, the bus's fd), then
 *   each LISTENER (its fds)        --->   reads its configuration, checks
 *                                         it fits (listeners, workers,
 *                                         bus), starts its workers (which
 *                                         neither accept nor publish yet)
 *                                  <---   READY (a socket per worker), or
 *                                         REFUSE (why): rolled back
 *   CTL_HANDOVER to each worker
 *   with its successor's socket;
 *   GO                             --->   CTL_GO: its workers accept
 *   (old workers hand their clients over, drain, exit; then the old
 *   producer writes what it has and exits)
 *   COMMIT (the pidfile's fd)      --->   starts its producer (the bus's
 *                                         only writer again), writes the
 *                                         pidfile, tells systemd its pid
 *                                  <---   DONE
 *   exits
 *
 * Until READY, nothing has moved: any failure (the binary does not run,
 * its configuration does not parse or does not fit, another state
 * version, READY not within UPGRADE_READY_SEC) ends the new master and
 * the old one carries on: a rollback, logged and counted.  After READY
 * the clients are moving; if the new master dies then, the old one
 * starts its children again and carries on (the clients moved to the new
 * one resume).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fdpass.h"
#include "log.h"
#include "master.h"
#include "proc.h"
#include "tlsctx.h"
#include "upgrade.h"

/* The masters' messages: a type first, then the fixed part. */
enum up_type {
	UP_HELLO = 'h',		/* struct up_hello; the bus's fd */
	UP_LISTENER = 'l',	/* struct up_listener; its fds */
	UP_READY = 'r',		/* one socket per worker */
	UP_REFUSE = 'x',	/* then why, as text */
	UP_GO = 'g',
	UP_COMMIT = 'c',	/* the pidfile's fd, if there is one */
	UP_DONE = 'd'
};

struct up_hello {
	char		type;
	uint32_t	version;	/* first: the rest is its layout */
	int32_t		pid;
	int32_t		nlisteners;
	int32_t		workers;
	char		bus_file[PATH_MAX];
	int32_t		has_tickets;	/* a tls: listener: the keys follow */
	struct ticket_keys tickets;	/* so that the sessions of the TLS
					 * clients told BYE restart resume */
};

struct up_listener {
	char		type;
	int32_t		kind;
	int32_t		is_unix;
	int32_t		tls;
	int32_t		nfds;
	char		name[300];
};

#define UP_MSG_MAX	(sizeof(struct up_hello) + 1024)
#define UP_REFUSE_MAX	512		/* a REFUSE's text */

static struct {
	/* the old master's side */
	enum { UP_IDLE, UP_STARTING, UP_HANDING_OVER, UP_PRODUCER_ENDING,
	    UP_COMMITTED } state;
	pid_t		 pid;		/* the new master, until reaped */
	int		 fd;		/* the upgrade socket */
	struct event	*ev, *timer;
	char		 exe[PATH_MAX];	/* the binary started */
	int		 foreground;
	/* the new master's side */
	int		 inheriting;	/* started by an upgrade */
	int		 taking_over;	/* ... and not done */
	int		 went;		/* GO came */
	int		 in_fd;		/* its end of the upgrade socket */
	int		 old_ends[WORKERS_MAX]; /* for READY */
	int		 nold_ends;	/* ... held until READY */
	struct event	*in_ev;
} up = { .fd = -1, .in_fd = -1 };

static void	old_read_cb(evutil_socket_t, short, void *);
static void	timer_cb(evutil_socket_t, short, void *);

static int
send_msg(int fd, const void *msg, size_t len, const int *fds, int nfds)
{
	struct iovec iov = { (void *)msg, len };

	return fdpass_send(fd, &iov, 1, fds, nfds, 0) == (ssize_t)len ? 0 : -1;
}

void
upgrade_init(int foreground)
{
	const char *env = getenv(UPGRADE_ENV);
	ssize_t n = readlink("/proc/self/exe", up.exe, sizeof(up.exe) - 1);

	up.exe[n > 0 ? n : 0] = '\0';
	up.foreground = foreground;
	if (env == NULL)
		return;
	char *end;
	long fd = strtol(env, &end, 10);
	unsetenv(UPGRADE_ENV);		/* (not for our children) */
	if (*env == '\0' || *end != '\0' || fd < 3 || fd > INT_MAX ||
	    fcntl((int)fd, F_SETFD, FD_CLOEXEC) == -1)
		fatalx("%s=%s: not the descriptor of an upgrade", UPGRADE_ENV,
		    env);
	up.inheriting = up.taking_over = 1;
	up.in_fd = (int)fd;
}

void
upgrade_child_close(void)
{
	if (up.fd != -1)
		close(up.fd);
	up.fd = -1;
	if (up.in_fd != -1)
		close(up.in_fd);
	up.in_fd = -1;
	for (int i = 0; i < up.nold_ends; i++)
		close(up.old_ends[i]);
	up.nold_ends = 0;
}

int
upgrade_inheriting(void)
{
	return up.inheriting;
}

/* ---- the new master ------------------------------------------------- */

/* The upgrade cannot be: say why to the old master, which carries on. */
static void __attribute__((noreturn, format(printf, 1, 2)))
refuse(const char *fmt, ...)
{
	char msg[UP_REFUSE_MAX];
	va_list ap;

	msg[0] = UP_REFUSE;
	va_start(ap, fmt);
	vsnprintf(msg + 1, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	log_warnx("upgrade refused: %s", msg + 1);
	/* Read what the old master sent first: a unix socket closed with
	 * unread messages resets its peer, which could then lose this one. */
	for (;;) {
		char buf[UP_MSG_MAX];
		int fds[FDPASS_MAX], nfds;
		if (fdpass_recv(up.in_fd, buf, sizeof(buf), fds, &nfds,
		    FDPASS_MAX, MSG_DONTWAIT) <= 0)
			break;
		while (nfds > 0)
			close(fds[--nfds]);
	}
	(void)send_msg(up.in_fd, msg, 1 + strlen(msg + 1), NULL, 0);
	exit(1);
}

/* Receive one message of the old master, blocking (start-up). */
static ssize_t
recv_msg(char *buf, size_t len, int *fds, int *nfds)
{
	ssize_t n = fdpass_recv(up.in_fd, buf, len, fds, nfds, FDPASS_MAX, 0);

	if (n <= 0)
		fatalx("upgrade: the old master went away (%s)",
		    n == 0 ? "closed" : strerror(errno));
	return n;
}

/* The listener names of the configuration, in bind order (master.c). */
static const char *
configured_listener(const struct herald_config *c, int i, int *kind)
{
	const struct strlist *sl[3] = { &c->listen, &c->ingest, &c->http };

	for (int k = 0; k < 3; k++) {
		if (i < sl[k]->n) {
			*kind = k;
			return sl[k]->v[i];
		}
		i -= sl[k]->n;
	}
	return NULL;
}

static void
take_listener(struct herald *h, int i)
{
	char buf[UP_MSG_MAX];
	struct up_listener m;
	int fds[FDPASS_MAX], nfds, kind;
	ssize_t n = recv_msg(buf, sizeof(buf), fds, &nfds);
	const char *want = configured_listener(&h->cfg, i, &kind);

	memcpy(&m, buf, n < (ssize_t)sizeof(m) ? (size_t)n : sizeof(m));
	m.name[sizeof(m.name) - 1] = '\0';
	if (n != (ssize_t)sizeof(m) || m.type != UP_LISTENER ||
	    m.nfds != nfds || nfds != (m.is_unix ? 1 : h->cfg.workers))
		refuse("listener %d: not a listener message", i);
	if (want == NULL || kind != m.kind || strcmp(want, m.name) != 0)
		refuse("the configuration's listeners are not the running "
		    "ones (%s %s runs, the configuration has %s there): a "
		    "restart applies a change of listen, ingest or http",
		    listener_kind_name(m.kind), m.name, want ? want : "none");
	struct listener *l = &h->listeners[i];
	memset(l, 0, sizeof(*l));
	l->kind = m.kind;
	l->is_unix = m.is_unix;
	l->tls = m.tls;
	l->local = config_addr_is_local(m.name);
	l->shared_fd = -1;
	snprintf(l->name, sizeof(l->name), "%s", m.name);
	if (m.is_unix)
		l->shared_fd = fds[0];
	else
		memcpy(l->fds, fds, nfds * sizeof(int));
	log_info("listening on %s (%s%s): taken over", l->name,
	    listener_kind_name(l->kind), l->tls ? ", TLS" : "");
}

void
upgrade_take_over(struct herald *h)
{
	char buf[UP_MSG_MAX], err[512];
	struct up_hello hello;
	struct bus_config bc;
	int fds[FDPASS_MAX], nfds, configured, k;
	struct timeval tv = { UPGRADE_READY_SEC, 0 };

	setsockopt(up.in_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = recv_msg(buf, sizeof(buf), fds, &nfds);
	uint32_t version = 0;
	if (n >= 1 + (ssize_t)sizeof(version))
		memcpy(&version, buf + offsetof(struct up_hello, version),
		    sizeof(version));
	if (buf[0] != UP_HELLO || version != handover_version) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		refuse("the running heraldd hands over in state version %u; "
		    "this one (%s) knows version %u only: stop and start it "
		    "instead", version, PACKAGE_VERSION, handover_version);
	}
	memcpy(&hello, buf, n < (ssize_t)sizeof(hello) ? (size_t)n :
	    sizeof(hello));
	hello.bus_file[sizeof(hello.bus_file) - 1] = '\0';
	if (n != (ssize_t)sizeof(hello) || nfds != 1)
		refuse("a HELLO of %zd bytes with %d descriptors", n, nfds);
	for (configured = 0; configured_listener(&h->cfg, configured, &k);)
		configured++;
	if (hello.workers != h->cfg.workers)
		refuse("workers is %d in the configuration, %d run: a restart "
		    "applies it", h->cfg.workers, hello.workers);
	if (hello.nlisteners != configured || configured > LISTENERS_MAX)
		refuse("the configuration names %d listeners, %d run: a "
		    "restart applies a change of listen, ingest or http",
		    configured, hello.nlisteners);
	/* (the keys are the process's: its workers start with them) */
	if (hello.has_tickets && h->tls_ctx != NULL &&
	    tickets_set(&hello.tickets, sizeof(hello.tickets)) == -1)
		refuse("TLS ticket keys of the wrong size");
	if (strcmp(hello.bus_file, h->cfg.bus_file) != 0)
		refuse("bus.file is \"%s\" in the configuration, \"%s\" runs: "
		    "a restart applies it", h->cfg.bus_file, hello.bus_file);
	bus_config_of(&h->cfg, &bc);
	if ((h->bus = bus_adopt(&bc, fds[0], err, sizeof(err))) == NULL)
		refuse("%s: a restart applies a change of bus.*", err);
	h->nlisteners = hello.nlisteners;
	for (int i = 0; i < h->nlisteners; i++)
		take_listener(h, i);
	/* One socket per worker, for its predecessor's clients. */
	for (int i = 0; i < h->cfg.workers; i++) {
		int sv[2], sz = HANDOVER_MSG_MAX + 4096;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv) == -1)
			refuse("socketpair: %s", strerror(errno));
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		h->adopt_fds[i] = sv[0];
		up.old_ends[up.nold_ends++] = sv[1];
	}
	log_info("upgrade: taking over from pid %d: the bus at seq %llu",
	    (int)hello.pid, (unsigned long long)bus_head_seq(h->bus));
}

/* The old master has ended its producer: the bus is ours to write. */
static void
commit(int pidfile_fd)
{
	char done = UP_DONE;

	if (pidfile_fd != -1)
		pidfile_adopt(pidfile_fd);
	spawn(&children[0]);
	bus_counter_set(H.bus, SLOT_MASTER, CTR_START_TIME, H.started);
	bus_counter_add(H.bus, SLOT_MASTER, CTR_UPGRADES, 1);
	notify_systemd("MAINPID=%d\nREADY=1", (int)getpid());
	(void)send_msg(up.in_fd, &done, 1, NULL, 0);
	up.taking_over = 0;
	log_info("upgrade done: heraldd %s serves (pid %d)", PACKAGE_VERSION,
	    (int)getpid());
}

/* The workers may accept. */
static void
go(void)
{
	up.went = 1;
	for (int i = 1; i < nchildren; i++)
		if (children[i].pid != 0 && ctl_send(children[i].ctl_fd, CTL_GO,
		    NULL, 0) == -1)
			log_warn("upgrade: cannot reach worker %d", i);
}

static void
new_read_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[UP_MSG_MAX];
	int fds[FDPASS_MAX], nfds;
	ssize_t n = fdpass_recv(fd, buf, sizeof(buf), fds, &nfds, FDPASS_MAX,
	    MSG_DONTWAIT);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && buf[0] == UP_GO && nfds == 0) {
		go();
		return;
	}
	if (n > 0 && buf[0] == UP_COMMIT && nfds <= 1) {
		commit(nfds == 1 ? fds[0] : -1);
	} else if (!up.went) {
		fatalx("upgrade: the old master went away before the "
		    "hand-over began: ending");
	} else {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		log_warnx("upgrade: the old master went away during the "
		    "hand-over: carrying on without it (no pidfile)");
		commit(-1);
	}
	event_free(up.in_ev);
	up.in_ev = NULL;
	close(up.in_fd);
	up.in_fd = -1;
}

void
upgrade_ready(void)
{
	char ready = UP_READY;

	/* The workers have their ends; the master keeps none (a worker
	 * started again later adopts nothing: it accepts). */
	for (int i = 0; i < H.cfg.workers; i++) {
		close(H.adopt_fds[i]);
		H.adopt_fds[i] = -1;
	}
	if (send_msg(up.in_fd, &ready, 1, up.old_ends, H.cfg.workers) == -1)
		fatal("upgrade: READY");
	for (int i = 0; i < H.cfg.workers; i++)
		close(up.old_ends[i]);
	up.nold_ends = 0;
	up.in_ev = ev_new_or_die(base, up.in_fd, EV_READ | EV_PERSIST,
	    new_read_cb, NULL);
	ev_add_or_die(up.in_ev, NULL);
	log_info("upgrade: ready; waiting for the old master's clients");
}

/* ---- the old master --------------------------------------------------- */

int
upgrade_under_way(void)
{
	return up.state != UP_IDLE;
}

int
upgrade_retiring(void)
{
	return up.state >= UP_HANDING_OVER;
}

static void
arm_timer(int sec)
{
	struct timeval tv = { sec, 0 };

	evtimer_del(up.timer);
	ev_add_or_warn(up.timer, &tv, "upgrade");
}

/* Back to serving alone. */
static void
end_upgrade(void)
{
	up.state = UP_IDLE;
	if (up.ev != NULL) {
		event_free(up.ev);
		up.ev = NULL;
	}
	if (up.timer != NULL)
		evtimer_del(up.timer);
	if (up.fd != -1) {
		close(up.fd);
		up.fd = -1;
	}
	proc_title("heraldd: master process");
}

/* Nothing has moved: end the new master; this one carries on. */
static void __attribute__((format(printf, 1, 2)))
rollback(const char *fmt, ...)
{
	char why[UP_REFUSE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (up.pid != 0)
		kill(up.pid, SIGKILL);	/* (its workers follow: PDEATHSIG) */
	bus_counter_add(H.bus, SLOT_MASTER, CTR_UPGRADE_ROLLBACKS, 1);
	log_warnx("upgrade rolled back: %s; heraldd %s (pid %d) carries on",
	    why, PACKAGE_VERSION, (int)getpid());
	end_upgrade();
}

/*
 * The new master is gone after the hand-over began: start this one's
 * children again (what is not running: those that had not ended yet
 * still hand over, fail, and end), and carry on.
 */
static void
failed_late(const char *why)
{
	log_warnx("upgrade failed after the hand-over began: %s; heraldd %s "
	    "(pid %d) starts its processes again (clients it had handed over "
	    "reconnect)", why, PACKAGE_VERSION, (int)getpid());
	bus_counter_add(H.bus, SLOT_MASTER, CTR_UPGRADE_ROLLBACKS, 1);
	if (up.state == UP_COMMITTED && pidfile_get() != -1)
		pidfile_adopt(pidfile_get());
	end_upgrade();
	for (int i = 0; i < nchildren; i++)
		if (children[i].pid == 0)
			spawn(&children[i]);
}

/* The new master's next message, without waiting.  A reset (it ended
 * with messages of ours unread) is reported once, before what it had
 * sent: read past it. */
static ssize_t
recv_from_new(char *buf, size_t len, int *fds, int *nfds)
{
	ssize_t n = -1;

	*nfds = 0;
	errno = EBADF;
	for (int i = 0; i < 2 && up.fd != -1; i++) {
		n = fdpass_recv(up.fd, buf, len, fds, nfds, FDPASS_MAX,
		    MSG_DONTWAIT);
		if (n != -1 || errno != ECONNRESET)
			break;
	}
	return n;
}

/* Send the new master what it starts with: the bus, the listeners. */
static int
send_hello(void)
{
	struct up_hello hello;
	int bus = bus_fd(H.bus);

	memset(&hello, 0, sizeof(hello));
	hello.type = UP_HELLO;
	hello.version = handover_version;
	hello.pid = getpid();
	hello.nlisteners = H.nlisteners;
	hello.workers = H.cfg.workers;
	snprintf(hello.bus_file, sizeof(hello.bus_file), "%s", H.cfg.bus_file);
	if (H.tls_ctx != NULL) {
		hello.has_tickets = 1;
		hello.tickets = *tickets_get();
	}
	if (send_msg(up.fd, &hello, sizeof(hello), &bus, 1) == -1)
		return -1;
	for (int i = 0; i < H.nlisteners; i++) {
		const struct listener *l = &H.listeners[i];
		struct up_listener m;
		memset(&m, 0, sizeof(m));
		m.type = UP_LISTENER;
		m.kind = l->kind;
		m.is_unix = l->is_unix;
		m.tls = l->tls;
		m.nfds = l->is_unix ? 1 : H.cfg.workers;
		snprintf(m.name, sizeof(m.name), "%s", l->name);
		if (send_msg(up.fd, &m, sizeof(m), l->is_unix ? &l->shared_fd :
		    l->fds, m.nfds) == -1)
			return -1;
	}
	return 0;
}

/* The command line of the new master: how this one was started. */
static char **
new_argv(void)
{
	char **v = calloc(6 + 2 * H.noverrides, sizeof(char *));
	int n = 0;

	if (v == NULL)
		return NULL;
	v[n++] = up.exe;
	if (up.foreground)
		v[n++] = "-f";
	if (H.cfg.file != NULL) {
		v[n++] = "-c";
		v[n++] = H.cfg.file;
	}
	for (int i = 0; i < H.noverrides; i++) {
		v[n++] = "-o";
		v[n++] = H.overrides[i];
	}
	return v;
}

/* environ, and the upgrade socket's number. */
static char **
new_envp(int fd)
{
	extern char **environ;
	static char var[64];
	int n = 0, k = 0;

	while (environ[n] != NULL)
		n++;
	char **v = calloc(n + 2, sizeof(char *));
	if (v == NULL)
		return NULL;
	for (int i = 0; i < n; i++)
		if (strncmp(environ[i], UPGRADE_ENV "=",
		    strlen(UPGRADE_ENV) + 1) != 0)
			v[k++] = environ[i];
	snprintf(var, sizeof(var), "%s=%d", UPGRADE_ENV, fd);
	v[k] = var;
	return v;
}

void
upgrade_start(void)
{
	sigset_t all, old;
	int sv[2];

	if (up.taking_over) {
		log_warnx("SIGUSR2: this master is still taking over from the "
		    "old one: no upgrade");
		return;
	}
	if (up.state != UP_IDLE) {
		log_warnx("SIGUSR2: an upgrade is under way already (new "
		    "master pid %d): ignored", (int)up.pid);
		return;
	}
	if (up.exe[0] == '\0' || access(up.exe, X_OK) == -1) {
		log_warnx("SIGUSR2: cannot execute \"%s\": no upgrade",
		    up.exe);
		bus_counter_add(H.bus, SLOT_MASTER, CTR_UPGRADE_ROLLBACKS, 1);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("SIGUSR2: socketpair: no upgrade");
		return;
	}
	char **argv = new_argv(), **envp = new_envp(sv[1]);
	if (argv == NULL || envp == NULL) {
		log_warnx("SIGUSR2: out of memory: no upgrade");
		goto fail;
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		/* Only the upgrade socket crosses the exec. */
		if (fcntl(sv[1], F_SETFD, 0) == -1)
			_exit(126);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(up.exe, argv, envp);
		log_warn("upgrade: cannot execute %s", up.exe);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		log_warn("SIGUSR2: fork: no upgrade");
		goto fail;
	}
	close(sv[1]);
	free(argv);
	free(envp);
	up.fd = sv[0];
	up.pid = pid;
	up.state = UP_STARTING;
	proc_title("heraldd: master process (upgrading)");
	log_info("SIGUSR2: upgrading to %s (new master pid %d)", up.exe,
	    (int)pid);
	if (up.timer == NULL)
		up.timer = ev_new_or_die(base, -1, 0, timer_cb, NULL);
	arm_timer(UPGRADE_READY_SEC);
	up.ev = ev_new_or_die(base, up.fd, EV_READ | EV_PERSIST, old_read_cb,
	    NULL);
	ev_add_or_die(up.ev, NULL);
	if (send_hello() == -1)
		rollback("cannot reach the new master: %s", strerror(errno));
	return;
fail:
	free(argv);
	free(envp);
	close(sv[0]);
	close(sv[1]);
}

/* READY: each worker hands its clients over to its successor. */
static void
hand_over(int *fds, int nfds)
{
	char go = UP_GO;

	up.state = UP_HANDING_OVER;
	for (int i = 1; i < nchildren; i++) {
		evtimer_del(children[i].respawn);	/* none restarts now */
		if (children[i].pid != 0 && ctl_send_fd(children[i].ctl_fd,
		    CTL_HANDOVER, NULL, 0, fds[i - 1]) == -1)
			log_warn("upgrade: cannot reach worker %d", i);
		close(fds[i - 1]);
	}
	evtimer_del(children[0].respawn);
	(void)send_msg(up.fd, &go, 1, NULL, 0);
	log_info("upgrade: the new master is ready: handing the clients over");
	arm_timer(UPGRADE_READY_SEC);
	upgrade_next();
}

void
upgrade_next(void)
{
	int workers = 0;

	for (int i = 1; i < nchildren; i++)
		workers += children[i].pid != 0;
	if (up.state == UP_HANDING_OVER && workers == 0) {
		up.state = UP_PRODUCER_ENDING;
		if (children[0].pid != 0)
			kill(children[0].pid, SIGTERM);
		arm_timer(UPGRADE_READY_SEC);
	}
	if (up.state == UP_PRODUCER_ENDING && children[0].pid == 0) {
		char commit = UP_COMMIT;
		int pf = pidfile_get();
		if (send_msg(up.fd, &commit, 1, &pf, pf != -1) == -1) {
			failed_late("cannot reach the new master");
			return;
		}
		up.state = UP_COMMITTED;
		arm_timer(UPGRADE_READY_SEC);
		log_info("upgrade: the bus is the new master's");
	}
}

static void
old_read_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[UP_MSG_MAX];
	int fds[FDPASS_MAX], nfds;
	ssize_t n = recv_from_new(buf, sizeof(buf) - 1, fds, &nfds);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && buf[0] == UP_READY && up.state == UP_STARTING &&
	    nfds == H.cfg.workers) {
		hand_over(fds, nfds);
		return;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (n > 0 && buf[0] == UP_DONE && up.state == UP_COMMITTED) {
		/* (the title stays "upgrading" until the end: heraldd -s
		 * upgrade tells a rollback by its change) */
		event_free(up.ev);
		up.ev = NULL;
		evtimer_del(up.timer);
		master_handed_over();
		return;
	}
	if (n > 0 && buf[0] == UP_REFUSE) {
		buf[n] = '\0';
		rollback("the new binary refused: %s", buf + 1);
		return;
	}
	/* It closed its end, or said what it must not. */
	if (up.state == UP_STARTING)
		rollback("the new master ended before it was ready (its log "
		    "says why)");
	else if (up.state == UP_COMMITTED)
		failed_late("the new master went away before it was done");
	else
		failed_late("the new master went away");
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	switch (up.state) {
	case UP_STARTING:
		rollback("the new master was not ready within %d s",
		    UPGRADE_READY_SEC);
		break;
	case UP_HANDING_OVER:
		log_warnx("upgrade: workers still handing over after %d s: "
		    "killing them", UPGRADE_READY_SEC);
		for (int i = 1; i < nchildren; i++)
			if (children[i].pid != 0)
				kill(children[i].pid, SIGKILL);
		break;
	case UP_PRODUCER_ENDING:
		log_warnx("upgrade: the producer still runs after %d s: "
		    "killing it", UPGRADE_READY_SEC);
		if (children[0].pid != 0)
			kill(children[0].pid, SIGKILL);
		break;
	case UP_COMMITTED:
		failed_late("the new master did not confirm");
		break;
	case UP_IDLE:
		break;
	}
}

/* The REFUSE the new master sent before it exited, if it did: its
 * reason in why (SIGCHLD may come before the message is read). */
static int
refusal(char *why, size_t len)
{
	char buf[UP_REFUSE_MAX + 1];
	int fds[FDPASS_MAX], nfds;
	ssize_t n = recv_from_new(buf, sizeof(buf) - 1, fds, &nfds);

	for (int i = 0; n > 0 && i < nfds; i++)
		close(fds[i]);
	if (n <= 1 || buf[0] != UP_REFUSE)
		return 0;
	buf[n] = '\0';
	snprintf(why, len, "%s", buf + 1);
	return 1;
}

int
upgrade_child_exited(pid_t pid, int status)
{
	char how[64], why[UP_REFUSE_MAX];

	if (pid != up.pid || pid == 0)
		return 0;
	up.pid = 0;
	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d",
		    WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));
	if (up.state == UP_STARTING && refusal(why, sizeof(why)))
		rollback("the new binary refused: %s", why);
	else if (up.state == UP_STARTING)
		rollback("the new master %s before it was ready (its log says "
		    "why)", how);
	else if (up.state != UP_IDLE) {
		snprintf(why, sizeof(why), "the new master %s", how);
		failed_late(why);
	}
	return 1;
}

void
upgrade_abort(void)
{
	if (up.state == UP_STARTING)
		rollback("stopping");
	else if (up.state != UP_IDLE && up.pid != 0) {
		log_warnx("upgrade: stopping during the hand-over: the new "
		    "master (pid %d) stops too", (int)up.pid);
		kill(up.pid, SIGTERM);
		end_upgrade();
	}
}

/* ---- heraldd -s upgrade ------------------------------------------------ */

/* The pid in the pidfile, or 0. */
static pid_t
read_pidfile(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd == -1 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd != -1)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long pid = strtol(buf, NULL, 10);
	return pid > 0 && pid < INT_MAX ? (pid_t)pid : 0;
}

/* A process that runs (not a zombie): its title in *title. */
static int
running(pid_t pid, char *title, size_t len)
{
	char path[64], stat[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	stat[n > 0 ? n : 0] = '\0';
	const char *paren = strrchr(stat, ')');
	if (paren == NULL || paren[1] == '\0' || paren[2] == 'Z')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	title[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, title, len - 1);
		close(fd);
		title[n > 0 ? n : 0] = '\0';
	}
	return 1;
}

void
upgrade_command(const char *pidfile)
{
	char title[256];
	pid_t pid = read_pidfile(pidfile);
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	int seen = 0;

	if (pid == 0 || !running(pid, title, sizeof(title))) {
		fprintf(stderr, "heraldd: no master runs (pidfile %s)\n",
		    pidfile);
		exit(1);
	}
	if (strstr(title, "(upgrading)") != NULL) {
		fprintf(stderr, "heraldd: pid %d is upgrading already\n",
		    (int)pid);
		exit(1);
	}
	if (kill(pid, SIGUSR2) == -1) {
		fprintf(stderr, "heraldd: kill %d: %s\n", (int)pid,
		    strerror(errno));
		exit(1);
	}
	for (long ms = 0; ms < UPGRADE_WAIT_SEC * 1000L; ms += 5) {
		nanosleep(&tick, NULL);
		if (!running(pid, title, sizeof(title))) {
			pid_t now = read_pidfile(pidfile);
			if (now != 0 && now != pid &&
			    running(now, title, sizeof(title))) {
				printf("heraldd: upgraded: pid %d -> %d\n",
				    (int)pid, (int)now);
				exit(0);
			}
			fprintf(stderr, "heraldd: pid %d ended, and no new "
			    "master runs: see the log\n", (int)pid);
			exit(1);
		}
		if (title[0] == '\0')
			continue;	/* exiting: its memory is gone */
		if (strstr(title, "(upgrading)") != NULL)
			seen = 1;
		else if (seen || ms >= 2000) {
			fprintf(stderr, "heraldd: the upgrade of pid %d was "
			    "rolled back: see the log\n", (int)pid);
			exit(1);
		}
	}
	fprintf(stderr, "heraldd: pid %d has not ended its upgrade within %d "
	    "s: see the log\n", (int)pid, UPGRADE_WAIT_SEC);
	exit(1);
}
