/*
 * heraldd, the master process: reads the configuration, binds every
 * listener, creates the bus, forks the producer and the workers, restarts
 * any that die (with back-off), and turns signals into actions.  It does no
 * client I/O.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "master.h"
#include "authdb.h"
#include "bus.h"
#include "heraldd.h"
#include "log.h"
#include "proc.h"
#include "net.h"
#include "tlsctx.h"

struct herald		 H;
struct child		 children[WORKERS_MAX + 1];
int			 nchildren;
struct event_base	*base;
static enum { RUNNING, STOPPING_WORKERS, STOPPING_PRODUCER } stopping;
static struct event	*grace_timer;
static struct timespec	 stop_began;
static int		 pidfile_fd = -1;
static int		 handed_over;	/* an upgrade ended: the pidfile is
					 * the new master's */

static void	tls_reload(void);

static void
usage(void)
{
	fprintf(stderr, "usage: heraldd [-c file] [-f] [-t] [-V] "
	    "[-o name=value]...\n       heraldd [-c file] [-o name=value]... "
	    "-s upgrade\n       heraldd -o help   "
	    "(lists every setting)\n");
	exit(1);
}

static void
print_error(void *arg, const char *msg)
{
	if (arg != NULL)
		fprintf(stderr, "%s\n", msg);
	else
		log_warnx("%s", msg);
}

/* Bind one TCP address once per worker (SO_REUSEPORT spreads clients). */
static void
bind_tcp(struct listener *l, const struct net_addr *a, int nworkers)
{
	struct net_addr each = *a;
	char err[512];
	int probe;

	/*
	 * SO_REUSEPORT would let a second heraldd share our port silently:
	 * a plain bind first fails if anyone else holds the port.
	 */
	if ((probe = net_listen_tcp(a, 0, err, sizeof(err))) == -1)
		fatalx("cannot listen on %s: %s", l->name, err);
	snprintf(each.port, sizeof(each.port), "%d", net_bound_port(probe));
	close(probe);
	for (int i = 0; i < nworkers; i++) {
		if ((l->fds[i] = net_listen_tcp(&each, 1, err,
		    sizeof(err))) == -1)
			fatalx("cannot listen on %s: %s", l->name, err);
		/* Here, still privileged: a congestion control outside
		 * net.ipv4.tcp_allowed_congestion_control needs it. */
		if (net_client_options(l->fds[i], &H.cfg) == -1 && i == 0)
			log_warn("tcp.congestion \"%s\" on %s",
			    H.cfg.tcp_congestion, l->name);
	}
	log_info("listening on %s (%s%s, port %d, %d sockets)", l->name,
	    listener_kind_name(l->kind),
	    l->tls ? ", TLS" : "", net_bound_port(l->fds[0]), nworkers);
}

static void
bind_listeners(struct herald *h)
{
	const struct herald_config *c = &h->cfg;
	char err[512];

	/* (in the order of enum listener_kind) */
	for (int k = 0; k < 3; k++) {
		const struct strlist *sl = k == LISTEN_CLIENT ? &c->listen :
		    k == LISTEN_INGEST ? &c->ingest : &c->http;
		for (int i = 0; i < sl->n; i++) {
			struct listener *l = &h->listeners[h->nlisteners];
			struct net_addr a;

			if (h->nlisteners == LISTENERS_MAX)
				fatalx("too many listeners (at most %d)",
				    LISTENERS_MAX);
			memset(l, 0, sizeof(*l));
			l->kind = k;
			l->local = config_addr_is_local(sl->v[i]);
			l->shared_fd = -1;
			snprintf(l->name, sizeof(l->name), "%s", sl->v[i]);
			if (net_parse_addr(sl->v[i], k == LISTEN_INGEST, &a,
			    err, sizeof(err)) == -1)
				fatalx("%s", err);
			h->nlisteners++;
			l->tls = a.tls;
			if (!a.is_unix) {
				bind_tcp(l, &a, c->workers);
				continue;
			}
			l->is_unix = 1;
			if ((l->shared_fd = net_listen_unix(&a, c->ingest_mode,
			    err, sizeof(err))) == -1)
				fatalx("cannot listen on %s: %s", l->name, err);
			log_info("listening on %s (ingest)", l->name);
		}
	}
}

/* The producer's listener for PUBs forwarded by workers: an abstract
 * unix socket, so nothing is left on disk. */
static void
bind_forward(struct herald *h)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(h->fwd_path, sizeof(h->fwd_path), "herald-fwd-%d-%ld",
	    (int)getpid(), (long)time(NULL));
	memcpy(sun.sun_path + 1, h->fwd_path, strlen(h->fwd_path));
	h->fwd_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fwd_fd == -1 || bind(h->fwd_fd, (struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + 1 +
	    strlen(h->fwd_path)) == -1 || listen(h->fwd_fd, 256) == -1 ||
	    net_nonblock(h->fwd_fd) == -1)
		fatal("forward socket");
}

/*
 * Create the missing directories above path, like mkdir -p of its dirname,
 * so that the built-in defaults (under the configured localstatedir) work
 * on a machine where nothing was installed.  A failure is left to the open
 * that follows, which names the file.
 */
static void
make_parent_dirs(const char *path, mode_t mode)
{
	char dir[PATH_MAX];

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return;
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char was = *p;
		*p = '\0';
		if (mkdir(dir, mode) == 0)
			log_info("created directory %s", dir);
		else if (errno != EEXIST)
			return;
		if ((*p = was) == '\0')
			return;
	}
}

void
bus_config_of(const struct herald_config *c, struct bus_config *bc)
{
	memset(bc, 0, sizeof(*bc));
	bc->file = c->bus_file;
	bc->ring_size = c->bus_size;
	bc->retained_max = c->bus_retained_max;
	bc->retained_bytes = c->bus_retained_bytes;
	bc->counter_slots = SLOT_WORKER(c->workers) + 1;
}

static void
open_bus(struct herald *h)
{
	struct bus_config bc;
	char err[512];

	bus_config_of(&h->cfg, &bc);
	if (bc.file[0] != '\0')
		make_parent_dirs(bc.file, 0750);
	if ((h->bus = bus_open(&bc, err, sizeof(err))) == NULL)
		fatalx("bus: %s", err);
	const char *note = bus_repair_note(h->bus);
	if (note != NULL && note[0] != '\0')
		log_warnx("bus file %s repaired: %s", bc.file, note);
	log_info("bus: %s, ring %lld bytes, %d retained topics max, head seq "
	    "%llu", bc.file[0] ? bc.file : "anonymous memory",
	    (long long)bc.ring_size, bc.retained_max,
	    (unsigned long long)bus_head_seq(h->bus));
}

/* Lock and check the pidfile before anything binds: one instance only. */
static void
pidfile_lock(const char *path)
{
	char buf[32];
	ssize_t n;

	if (path[0] == '\0')
		return;
	make_parent_dirs(path, 0755);
	pidfile_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (pidfile_fd == -1)
		fatal("pidfile %s", path);
	if (flock(pidfile_fd, LOCK_EX | LOCK_NB) == -1) {
		n = pread(pidfile_fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fatalx("another heraldd is running (pid %s, pidfile %s)",
		    buf[0] ? buf : "?", path);
	}
}

static void
pidfile_write(void)
{
	char buf[32];
	int n;

	if (pidfile_fd == -1)
		return;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(pidfile_fd, 0) == -1 || pwrite(pidfile_fd, buf, n, 0) != n)
		log_warn("pidfile %s", H.cfg.pidfile);
}

void
pidfile_adopt(int fd)
{
	pidfile_fd = fd;
	pidfile_write();
}

int
pidfile_get(void)
{
	return pidfile_fd;
}

void
master_handed_over(void)
{
	handed_over = 1;
	event_base_loopbreak(base);
}

/*
 * systemd's notify protocol (sd_notify(3)), which is one datagram to the
 * socket NOTIFY_SOCKET names ('@': an abstract one): not worth libsystemd.
 * An upgrade's new master tells its pid (MAINPID=) before the old one
 * ends, so that systemd follows the service to it (NotifyAccess=all).
 */
void
notify_systemd(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char msg[256];
	va_list ap;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sun,
	    offsetof(struct sockaddr_un, sun_path) + strlen(path)) == -1)
		log_warn("systemd notify socket %s", path);
	close(fd);
}

/* Raise the descriptor limit to what clients.max needs, or say why not. */
static void
raise_nofile(const struct herald_config *c)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)c->clients_max / c->workers + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		log_warnx("open files limit is %llu per process (wanted %llu): "
		    "each worker can hold about %llu clients, %llu in all",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)want,
		    (unsigned long long)(rl.rlim_cur - 64),
		    (unsigned long long)(rl.rlim_cur - 64) * c->workers);
}

/* Bind first, then drop to the configured user and group. */
static void
drop_privileges(const struct herald_config *c)
{
	struct passwd *pw = NULL;
	gid_t gid;

	if (c->user[0] == '\0' && c->group[0] == '\0')
		return;
	if (c->user[0] != '\0' && (pw = getpwnam(c->user)) == NULL)
		fatalx("user \"%s\" does not exist", c->user);
	gid = pw ? pw->pw_gid : getgid();
	if (c->group[0] != '\0') {
		struct group *gr = getgrnam(c->group);
		if (gr == NULL)
			fatalx("group \"%s\" does not exist", c->group);
		gid = gr->gr_gid;
	}
	/* What the children reopen or write after the drop. */
	if (c->bus_file[0] != '\0' && pw != NULL &&
	    chown(c->bus_file, pw->pw_uid, gid) == -1)
		log_warn("chown %s", c->bus_file);
	if (c->log_file[0] != '\0' && pw != NULL &&
	    chown(c->log_file, pw->pw_uid, gid) == -1)
		log_warn("chown %s", c->log_file);
	if (setgroups(1, &gid) == -1 || setgid(gid) == -1)
		fatal("cannot set group %d", (int)gid);
	if (pw != NULL && setuid(pw->pw_uid) == -1)
		fatal("cannot set user %s", c->user);
	log_info("running as user %s, group %d", pw ? c->user : "(same)",
	    (int)gid);
}

static struct child *
child_by_pid(pid_t pid)
{
	for (int i = 0; i < nchildren; i++)
		if (children[i].pid == pid)
			return &children[i];
	return NULL;
}

static const char *
child_name(const struct child *c, char *buf, size_t len)
{
	if (c->id == 0)
		snprintf(buf, len, "producer");
	else
		snprintf(buf, len, "worker %d", c->id);
	return buf;
}

/* In a new child: the child's signal handling (proc.c), run the role. */
static void
child_run(struct child *c, int fd)
{
	child_signals_init();
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	for (int i = 0; i < nchildren; i++)
		if (children[i].ctl_fd != -1)
			close(children[i].ctl_fd);
	for (int i = 0; i < H.cfg.workers; i++)
		if (H.adopt_fds[i] != -1 && i != c->id - 1) {
			close(H.adopt_fds[i]);
			H.adopt_fds[i] = -1;
		}
	if (pidfile_fd != -1)
		close(pidfile_fd);
	upgrade_child_close();
	if (c->id == 0)
		producer_main(&H, fd);
	worker_main(&H, c->id, fd);
}

/* Start c again after its back-off, which doubles each time. */
static void
respawn_later(struct child *c)
{
	struct timeval tv = { c->delay_ms / 1000, (c->delay_ms % 1000) * 1000 };
	char name[32];

	log_info("restarting %s in %d ms", child_name(c, name, sizeof(name)),
	    c->delay_ms);
	ev_add_or_warn(c->respawn, &tv, "restart");
	c->delay_ms *= 2;
	if (c->delay_ms > RESTART_DELAY_MAX_MS)
		c->delay_ms = RESTART_DELAY_MAX_MS;
}

/*
 * A child could not be started (what failed, errno set): counted, and
 * tried again as if it had crashed at once, or a worker would stay dead
 * while its listening socket is dealt a share of new connections.
 */
static void
spawn_failed(struct child *c, const char *what)
{
	char name[32];

	log_warn("cannot start %s: %s", child_name(c, name, sizeof(name)), what);
	bus_counter_add(H.bus, SLOT_MASTER, CTR_SPAWN_FAILED, 1);
	if (!stopping)
		respawn_later(c);
}

/* Fork one child; its control socket closes when the master dies. */
void
spawn(struct child *c)
{
	int sv[2];
	sigset_t all, old;
	char name[32];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		spawn_failed(c, "socketpair");
		return;
	}
	int sz = CTL_MSG_MAX + 1024;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	/* No signal may run the master's handlers in the child. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		child_run(c, sv[1]);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		spawn_failed(c, "fork");
		close(sv[0]);
		close(sv[1]);
		return;
	}
	close(sv[1]);
	c->pid = pid;
	c->ctl_fd = sv[0];
	c->stalled = 0;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	log_info("started %s, pid %d", child_name(c, name, sizeof(name)),
	    (int)pid);
	if (c->id > 0)
		bus_counter_add(H.bus, SLOT_MASTER, CTR_WORKERS, 1);
}

/*
 * Once a second: a worker whose loop has not turned for WORKER_STALL_SEC
 * (SIGSTOPped, or stuck) serves nobody, not even the new connections its
 * listening socket is dealt.  Say so (it is not killed: a stop may be an
 * operator's), and say when it runs again.
 */
static void
watch_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct timespec now;
	char name[32];

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (int i = 1; i < nchildren; i++) {
		struct child *c = &children[i];
		if (c->pid == 0 || now.tv_sec - c->started.tv_sec <
		    WORKER_STALL_SEC)
			continue;
		long t = (long)bus_counter_get(H.bus, SLOT_WORKER(c->id),
		    CTR_LOOP_TIME);
		long idle = now.tv_sec - t;
		if (idle >= WORKER_STALL_SEC) {
			/* when it is found, then once a minute */
			if (c->stalled == 0 || idle / 60 != c->stalled / 60)
				log_warnx("%s (pid %d) has not run its loop for "
				    "%ld s: stopped or stuck; its clients wait",
				    child_name(c, name, sizeof(name)),
				    (int)c->pid, idle);
			c->stalled = idle;
		} else if (c->stalled > 0) {
			log_info("%s (pid %d) runs again after %ld s or more",
			    child_name(c, name, sizeof(name)), (int)c->pid,
			    c->stalled);
			c->stalled = 0;
		}
	}
}

static void
respawn_cb(evutil_socket_t fd, short ev, void *arg)
{
	if (!stopping)
		spawn(arg);
}

/* Log how a child ended and schedule its restart with back-off. */
static void
child_exited(struct child *c, int status)
{
	struct timespec now;
	char name[32];
	long ran;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ran = now.tv_sec - c->started.tv_sec;
	child_name(c, name, sizeof(name));
	if (WIFSIGNALED(status))
		log_warnx("%s (pid %d) killed by signal %d after %lds", name,
		    (int)c->pid, WTERMSIG(status), ran);
	else if (WEXITSTATUS(status) != 0 || (!stopping && !upgrade_retiring()))
		log_warnx("%s (pid %d) exited with status %d after %lds", name,
		    (int)c->pid, WEXITSTATUS(status), ran);
	else
		log_info("%s (pid %d) stopped", name, (int)c->pid);
	c->pid = 0;
	close(c->ctl_fd);
	c->ctl_fd = -1;
	if (c->id > 0) {
		bus_counter_add(H.bus, SLOT_MASTER, CTR_WORKERS, -1);
		if (addr_unlock_dead(H.addrs, c->id))
			log_warnx("%s died holding the address table's lock: "
			    "released", name);
	}
	if (stopping || upgrade_retiring())
		return;
	/* A child that ran a while was healthy: restart it at once. */
	if (ran >= RESTART_STABLE_SEC)
		c->delay_ms = RESTART_DELAY_MIN_MS;
	respawn_later(c);
}

/* Children running from first to last in the table (0 = the producer). */
static int
children_alive(int first, int last)
{
	int n = 0;

	for (int i = first; i <= last && i < nchildren; i++)
		n += children[i].pid != 0;
	return n;
}

/* Send sig to every running child from first to last. */
static void
signal_children(int first, int last, int sig)
{
	for (int i = first; i <= last && i < nchildren; i++)
		if (children[i].pid != 0)
			kill(children[i].pid, sig);
}

/*
 * A stop's next step: once no worker runs, the producer is told to stop
 * (it takes in what the workers passed on, and writes the bus), within
 * what is left of shutdown_grace but never less than STOP_PRODUCER_MS;
 * once nothing runs, the master ends.
 */
static void
stop_next(void)
{
	struct timeval tv = { STOP_PRODUCER_MS / 1000,
	    (STOP_PRODUCER_MS % 1000) * 1000 };
	struct timespec now;

	if (stopping == STOPPING_WORKERS && children_alive(1, nchildren) == 0) {
		stopping = STOPPING_PRODUCER;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ran_ms = (now.tv_sec - stop_began.tv_sec) * 1000 +
		    (now.tv_nsec - stop_began.tv_nsec) / 1000000;
		if (children[0].pid != 0)
			kill(children[0].pid, SIGTERM);
		if (H.cfg.shutdown_grace * 1000L - ran_ms < STOP_PRODUCER_MS) {
			evtimer_del(grace_timer);
			ev_add_or_warn(grace_timer, &tv, "producer stop");
		}
	}
	if (children_alive(0, nchildren) == 0)
		event_base_loopbreak(base);
}

static void
sigchld_cb(evutil_socket_t sig, short ev, void *arg)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = child_by_pid(pid);
		if (upgrade_child_exited(pid, status))
			continue;
		if (c != NULL)
			child_exited(c, status);
	}
	if (stopping)
		stop_next();
	else if (upgrade_under_way())
		upgrade_next();
}

/* The part of a stop that is running is over its time: kill it. */
static void
grace_cb(evutil_socket_t fd, short ev, void *arg)
{
	if (stopping == STOPPING_WORKERS) {
		log_warnx("workers still running %d s after TERM: killing them",
		    H.cfg.shutdown_grace);
		signal_children(1, nchildren, SIGKILL);
	} else {
		log_warnx("producer still running after the workers stopped: "
		    "killing it");
		signal_children(0, 0, SIGKILL);
	}
}

/*
 * TERM/INT: stop the workers first (each passes on the PUBs it has read,
 * then says BYE shutdown to its clients), then the producer (stop_next),
 * so that no PUB a worker had taken is lost; kill what is still running
 * shutdown_grace after the signal (the producer: STOP_PRODUCER_MS after
 * the workers, if that is later).
 */
static void
sigterm_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct timeval tv = { H.cfg.shutdown_grace, 0 };

	if (stopping)
		return;
	stopping = STOPPING_WORKERS;
	clock_gettime(CLOCK_MONOTONIC, &stop_began);
	log_info("signal %d: stopping", (int)sig);
	notify_systemd("STOPPING=1");
	upgrade_abort();
	for (int i = 0; i < nchildren; i++)
		evtimer_del(children[i].respawn);
	signal_children(1, nchildren, SIGTERM);
	ev_add_or_warn(grace_timer, &tv, "shutdown_grace");
	stop_next();
}

/* HUP: check the new configuration; if good, hand it to every child. */
static void
sighup_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct herald_config next;
	struct authdb *auth;
	char *text = NULL;

	if (upgrade_under_way()) {
		log_warnx("SIGHUP: an upgrade is under way: reload refused "
		    "(send it to the new master once it is done)");
		return;
	}
	log_info("SIGHUP: reloading %s", H.cfg.file ? H.cfg.file :
	    "(built-in defaults)");
	if (H.cfg.file != NULL && (text = config_read_text(H.cfg.file)) == NULL) {
		log_warn("reload refused: cannot read %s", H.cfg.file);
		return;
	}
	if (text != NULL && 1 + strlen(text) > CTL_MSG_MAX) {
		log_warnx("reload refused: %s is larger than %d bytes",
		    H.cfg.file, CTL_MSG_MAX - 1);
		free(text);
		return;
	}
	if (config_load(&next, H.cfg.file, text ? text : "", H.overrides,
	    H.noverrides, print_error, NULL) != 0 ||
	    (auth = authdb_load(&next, print_error, NULL)) == NULL) {
		log_warnx("reload refused: the configuration has errors; the "
		    "running one stays in force");
		config_free(&next);
		free(text);
		return;
	}
	authdb_free(H.auth);	/* a child started from now on has these */
	H.auth = auth;
	config_apply_reload(&H.cfg, &next, print_error, NULL);
	log_set_level(H.cfg.log_level);
	config_free(&next);
	tls_reload();
	/* The text, which the children parse the same way. */
	for (int i = 0; i < nchildren; i++)
		if (children[i].pid != 0 && ctl_send(children[i].ctl_fd,
		    CTL_RELOAD, text ? text : "", text ? strlen(text) : 0) == -1)
			log_warn("reload: cannot reach child %d",
			    (int)children[i].pid);
	free(text);
	log_info("reload accepted");
}

/*
 * A reload's TLS part: the context is built again from the files, so that
 * a worker respawned later starts with the new certificate (the running
 * workers build theirs: worker/tls.c).  A bad one is refused, and the one
 * in use stays.
 */
static void
tls_reload(void)
{
	char err[512];
	SSL_CTX *ctx;

	if (H.tls_ctx == NULL)
		return;
	if ((ctx = tlsctx_new(&H.cfg, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s: TLS keeps the certificate it has", err);
		return;
	}
	SSL_CTX_free(H.tls_ctx);
	H.tls_ctx = ctx;
}

/* Every TICKET_ROTATE_SEC: a new session ticket key, to every worker (the
 * one before stays valid: tlsctx.h). */
static void
rotate_tickets_cb(evutil_socket_t fd, short ev, void *arg)
{
	if (tickets_rotate() == -1) {
		log_warnx("TLS ticket keys: no random bytes: not rotated");
		return;
	}
	for (int i = 1; i < nchildren; i++)
		if (children[i].pid != 0 && ctl_send(children[i].ctl_fd,
		    CTL_TICKETS, (const char *)tickets_get(),
		    sizeof(struct ticket_keys)) == -1)
			log_warn("TLS ticket keys: cannot reach worker %d",
			    children[i].id);
	log_debug("TLS ticket keys rotated");
}

/* USR2: upgrade to the binary on disk (upgrade.c). */
static void
sigusr2_cb(evutil_socket_t sig, short ev, void *arg)
{
	if (stopping) {
		log_warnx("SIGUSR2: stopping: no upgrade");
		return;
	}
	upgrade_start();
}

/* USR1: reopen the log file here and in every child. */
static void
sigusr1_cb(evutil_socket_t sig, short ev, void *arg)
{
	log_reopen();
	for (int i = 0; i < nchildren; i++)
		if (children[i].pid != 0)
			kill(children[i].pid, SIGUSR1);
	log_info("log reopened");
}

/*
 * With a tls: listener, read the certificate, its key and the client CAs
 * now, still privileged (the children inherit the context), and make the
 * ticket keys.  Returns the number of errors (printed for heraldd -t).
 */
static int
load_tls(int check_only)
{
	char err[512];

	if (!config_has_tls(&H.cfg))
		return 0;
	if ((H.tls_ctx = tlsctx_new(&H.cfg, err, sizeof(err))) == NULL) {
		print_error(check_only ? (void *)1 : NULL, err);
		return 1;
	}
	if (tickets_init() == -1)
		fatalx("TLS ticket keys: no random bytes");
	return 0;
}

static void
load_config(const char *file, int explicit_file, char **ov, int nov,
    int check_only)
{
	int errors;

	if (!explicit_file && access(file, F_OK) == -1)
		file = NULL;	/* no default file: built-in defaults */
	errors = config_load(&H.cfg, file, NULL, ov, nov, print_error,
	    check_only ? (void *)1 : NULL);
	/* The files the auth settings name are part of the configuration:
	 * checked with it, loaded once here, inherited by every child. */
	if (errors == 0 && (H.auth = authdb_load(&H.cfg, print_error,
	    check_only ? (void *)1 : NULL)) == NULL)
		errors++;
	if (errors == 0 && !check_only &&
	    (H.users_cache = users_cache_new()) == NULL)
		fatalx("cannot make the password cache (out of memory or of "
		    "randomness)");
	if (errors == 0)
		errors = load_tls(check_only);
	if (check_only) {
		if (errors == 0)
			printf("%s: configuration ok\n", file ? file :
			    "(built-in defaults)");
		exit(errors ? 1 : 0);
	}
	if (errors != 0)
		fatalx("%d error%s in the configuration", errors,
		    errors > 1 ? "s" : "");
	/* Reloads and daemon mode need an absolute path. */
	if (H.cfg.file != NULL && H.cfg.file[0] != '/') {
		char *abs = realpath(H.cfg.file, NULL);
		if (abs != NULL) {
			free(H.cfg.file);
			H.cfg.file = abs;
		}
	}
}

static void
setup_logging(int foreground)
{
	const struct herald_config *c = &H.cfg;

	log_set_level(c->log_level);
	if (log_open(c->log_file, !foreground && c->log_syslog,
	    c->log_facility) == -1)
		fatal("log file %s", c->log_file);
}

static void
main_loop(void)
{
	struct event *ev[6];
	int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };
	event_callback_fn cbs[] = { sigchld_cb, sigterm_cb, sigterm_cb,
	    sighup_cb, sigusr1_cb, sigusr2_cb };

	for (int i = 0; i < 6; i++) {
		ev[i] = ev_new_or_die(base, sigs[i], EV_SIGNAL | EV_PERSIST,
		    cbs[i], NULL);
		ev_add_or_die(ev[i], NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	grace_timer = ev_new_or_die(base, -1, 0, grace_cb, NULL);
	nchildren = 1 + H.cfg.workers;
	for (int i = 0; i < nchildren; i++) {
		children[i].id = i;
		children[i].ctl_fd = -1;
		children[i].delay_ms = RESTART_DELAY_MIN_MS;
		children[i].respawn = ev_new_or_die(base, -1, 0, respawn_cb,
		    &children[i]);
	}
	/* In an upgrade, the producer starts once the old one has ended
	 * (upgrade.c): the bus has one writer. */
	for (int i = upgrade_inheriting() ? 1 : 0; i < nchildren; i++)
		spawn(&children[i]);
	if (upgrade_inheriting())
		upgrade_ready();
	else
		notify_systemd("MAINPID=%d\nREADY=1", (int)getpid());
	struct timeval sec = { 1, 0 };
	ev_add_or_die(ev_new_or_die(base, -1, EV_PERSIST, watch_cb, NULL), &sec);
	struct timeval rotate = { TICKET_ROTATE_SEC, 0 };
	if (H.tls_ctx != NULL)
		ev_add_or_die(ev_new_or_die(base, -1, EV_PERSIST,
		    rotate_tickets_cb, NULL), &rotate);
	event_base_dispatch(base);
}

/* heraldd -s NAME: what it asks of the running master.  Exits. */
static void
run_command(const char *name, const char *file, int explicit_file)
{
	if (strcmp(name, "upgrade") != 0) {
		fprintf(stderr, "heraldd: -s %s: unknown (known: upgrade)\n",
		    name);
		exit(1);
	}
	if (!explicit_file && access(file, F_OK) == -1)
		file = NULL;
	if (config_load(&H.cfg, file, NULL, H.overrides, H.noverrides,
	    print_error, (void *)1) != 0)
		exit(1);
	if (H.cfg.pidfile[0] == '\0') {
		fprintf(stderr, "heraldd: -s upgrade needs a pidfile, and "
		    "pidfile is \"\"\n");
		exit(1);
	}
	upgrade_command(H.cfg.pidfile);
}

int
main(int argc, char *argv[])
{
	const char *file = CONFIG_DEFAULT_FILE, *command = NULL;
	int explicit_file = 0, foreground = 0, check_only = 0, ch;
	char **ov = calloc(argc, sizeof(char *));
	int nov = 0;

	log_init("heraldd");
	for (int i = 0; i < WORKERS_MAX; i++)
		H.adopt_fds[i] = -1;
	while ((ch = getopt(argc, argv, "c:fo:s:tVh")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			explicit_file = 1;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'o':
			if (strcmp(optarg, "help") == 0) {
				config_print_help(stdout);
				exit(0);
			}
			/* Copied: proc_title later overwrites argv. */
			if ((ov[nov++] = strdup(optarg)) == NULL)
				fatal("strdup");
			break;
		case 's':
			command = optarg;
			break;
		case 't':
			check_only = 1;
			break;
		case 'V':
			printf("heraldd %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	H.overrides = ov;
	H.noverrides = nov;
	if (command != NULL)
		run_command(command, file, explicit_file);
	upgrade_init(foreground);
	load_config(file, explicit_file, ov, nov, check_only);
	title_init(argc, argv);
	setup_logging(foreground);
	if (upgrade_inheriting()) {
		/* exec'd by the old master: its listeners and its bus */
		log_info("heraldd %s taking over from the running one: %d "
		    "workers, config %s", PACKAGE_VERSION, H.cfg.workers,
		    H.cfg.file ? H.cfg.file : "(built-in defaults)");
		raise_nofile(&H.cfg);
		upgrade_take_over(&H);
	} else {
		log_info("heraldd %s starting: %d workers, config %s",
		    PACKAGE_VERSION, H.cfg.workers, H.cfg.file ? H.cfg.file :
		    "(built-in defaults)");
		pidfile_lock(H.cfg.pidfile);
		raise_nofile(&H.cfg);
		bind_listeners(&H);
		open_bus(&H);
	}
	bind_forward(&H);
	if ((H.addrs = addr_table_create()) == NULL)
		fatal("mmap address table");
	for (int i = 0; i < H.cfg.workers; i++)
		if ((H.wake_fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
			fatal("eventfd");
	H.started = time(NULL);
	if (upgrade_inheriting()) {
		/* (the old master dropped them, or had none to drop; it is
		 * a daemon already; its workers are still counted) */
		if (geteuid() == 0)
			drop_privileges(&H.cfg);
	} else {
		drop_privileges(&H.cfg);
		if (!foreground && daemon(0, 0) == -1)
			fatal("daemon");
		pidfile_write();
		bus_counter_set(H.bus, SLOT_MASTER, CTR_START_TIME, H.started);
		bus_counter_set(H.bus, SLOT_MASTER, CTR_WORKERS, 0);
	}
	proc_title("heraldd: master process");
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	main_loop();
	bus_sync(H.bus);
	if (handed_over) {
		log_info("upgrade done: the new master serves");
		return 0;
	}
	if (pidfile_fd != -1)
		unlink(H.cfg.pidfile);
	log_info("stopped");
	return 0;
}
