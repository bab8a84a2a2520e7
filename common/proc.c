/*
 * What the master and its children share about processes (after
 * OpenBSD's proc.c and nginx's ngx_process.c, ngx_setproctitle.c): the
 * title a process shows in ps, which signals a child takes and which it
 * ignores, the control channel from the master, and the events a process
 * cannot work without.  No file of a child role includes the master's.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "heraldd.h"
#include "log.h"
#include "fdpass.h"
#include "proc.h"
#include "tlsctx.h"

/* For proc_title: the argv area we may overwrite, and environ's copy. */
static char		*title_start;
static size_t		 title_len;
/* volatile: only written, the compiler would drop it, and the copy would
 * look lost once libc's exit-time cleanup clears environ (valgrind). */
static char		**volatile title_environ;


/* Keep argv's memory for proc_title: move environ out of its way. */
void
title_init(int argc, char **argv)
{
	extern char **environ;
	char *end = argv[0] + strlen(argv[0]);
	int n = 0;

	for (int i = 1; i < argc; i++)
		if (argv[i] == end + 1)
			end = argv[i] + strlen(argv[i]);
	for (; environ[n] != NULL; n++)
		if (environ[n] == end + 1)
			end = environ[n] + strlen(environ[n]);
	char **env = calloc(n + 1, sizeof(char *));
	if (env == NULL)
		return;
	for (int i = 0; i < n; i++)
		env[i] = strdup(environ[i]);
	environ = title_environ = env;
	title_start = argv[0];
	title_len = end - argv[0];
}


/* Show a process's role in ps, as nginx does ("heraldd: producer"). */
void
proc_title(const char *fmt, ...)
{
	va_list ap;
	char buf[128];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	prctl(PR_SET_NAME, buf + (strncmp(buf, "heraldd: ", 9) ? 0 : 9));
	if (title_start == NULL || title_len < 2)
		return;
	memset(title_start, 0, title_len);
	snprintf(title_start, title_len, "%s", buf);
}

/*
 * The signals a child acts on (read from a signalfd), and those it
 * ignores.  The master handles SIGCHLD, SIGTERM, SIGINT, SIGHUP and
 * SIGUSR1 (main_loop in master.c): a child takes TERM, INT and USR1 as
 * the master does, and ignores HUP, which means a reload only to the
 * master (the children get the new configuration from it); `pkill -HUP
 * heraldd` reaches every process, and HUP's default action would kill
 * them.  SIGCHLD's default is already to ignore it.  SIGPIPE: a write to
 * a closed socket fails with EPIPE instead.
 */
static const int child_taken[] = { SIGTERM, SIGINT, SIGUSR1 };
static const int child_ignored[] = { SIGHUP, SIGPIPE };
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static void
taken_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < NELEM(child_taken); i++)
		sigaddset(set, child_taken[i]);
}

/*
 * In a new child, before anything else: forget the master's handlers,
 * ignore what the child must ignore, and keep blocked what it will read
 * from child_signals, so that a TERM that comes before the child's loop
 * exists waits for it.  The master forks with every signal blocked; one
 * ignored here that came meanwhile is dropped.
 */
void
child_signals_init(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	for (size_t i = 0; i < NELEM(child_ignored); i++)
		sigaction(child_ignored[i], &sa, NULL);
	taken_set(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
}

/* What a child does on TERM or INT (child_signals): one per process. */
static void	(*child_stop)(void *);
static void	 *child_stop_arg;

/* The next signal from the signalfd, or 0. */
static int
child_signal_read(int fd)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

/* USR1: reopen the log; TERM, INT: the child's stop. */
static void
child_signal_cb(evutil_socket_t fd, short what, void *arg)
{
	int sig;

	while ((sig = child_signal_read(fd)) != 0) {
		if (sig == SIGUSR1)
			log_reopen();
		else
			child_stop(child_stop_arg);
	}
}

/*
 * A child's signals as an event: libevent allows signal events in only
 * one event base per process, and the master's (inherited) has them, so
 * children read theirs from a signalfd instead.
 */
struct event *
child_signals(struct event_base *b, void (*stop)(void *), void *arg)
{
	sigset_t set;
	int fd;

	child_stop = stop;
	child_stop_arg = arg;
	taken_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	struct event *ev = ev_new_or_die(b, fd, EV_READ | EV_PERSIST,
	    child_signal_cb, NULL);
	ev_add_or_die(ev, NULL);
	return ev;
}

static void
reload_error(void *arg, const char *msg)
{
	log_warnx("reload: %s", msg);
}

/*
 * Read the master's next control message.  Master and children are one
 * program (forked, never exec'd), so a message of an unknown type or
 * larger than CTL_MSG_MAX is a bug, not input: fatal, like OpenBSD's
 * proc_dispatch with an invalid imsg.
 */
int
child_ctl_read(int fd, const struct herald *h, struct herald_config *next,
    int *passed)
{
	static char msg[CTL_MSG_MAX + 1];
	int fds[1], nfds;
	ssize_t n = fdpass_recv(fd, msg, sizeof(msg) - 1, fds, &nfds, 1,
	    MSG_TRUNC);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == -1 && errno == EMSGSIZE)
		fatalx("control message from the master with more than one "
		    "descriptor, or larger than %d bytes", CTL_MSG_MAX);
	if (n <= 0)
		return -1;
	if (n > (ssize_t)sizeof(msg) - 1)
		fatalx("control message of %zd bytes from the master (at most "
		    "%d)", n, CTL_MSG_MAX);
	msg[n] = '\0';
	if ((nfds == 1) != (msg[0] == CTL_HANDOVER) || (nfds == 1 &&
	    passed == NULL))
		fatalx("control message 0x%02x from the master with %d "
		    "descriptors", (unsigned char)msg[0], nfds);
	switch (msg[0]) {
	case CTL_RELOAD:
		if (config_load(next, h->cfg.file, msg + 1, h->overrides,
		    h->noverrides, reload_error, NULL) != 0) {
			config_free(next);
			return 0;
		}
		return CTL_RELOAD;
	case CTL_TICKETS:
		if (tickets_set(msg + 1, n - 1) == -1)
			fatalx("TLS ticket keys of %zd bytes from the master",
			    n - 1);
		return 0;
	case CTL_HANDOVER:
		*passed = fds[0];
		return CTL_HANDOVER;
	case CTL_GO:
		return CTL_GO;
	default:
		fatalx("control message of unknown type 0x%02x (%zd bytes) "
		    "from the master", (unsigned char)msg[0], n);
	}
}

/* Returns -1 (errno set) if the child cannot be reached. */
int
ctl_send(int fd, enum ctl_type type, const char *data, size_t len)
{
	return ctl_send_fd(fd, type, data, len, -1);
}

/* ctl_send, with the descriptor passed (-1: none). */
int
ctl_send_fd(int fd, enum ctl_type type, const char *data, size_t len,
    int passed)
{
	struct iovec iov[2] = {
		{ .iov_base = &(char){ (char)type }, .iov_len = 1 },
		{ .iov_base = (void *)data, .iov_len = len },
	};

	return fdpass_send(fd, iov, 2, &passed, passed != -1, MSG_DONTWAIT) ==
	    -1 ? -1 : 0;
}

/* An event a process sets up as it starts: without it, it cannot work. */
struct event *
ev_new_or_die(struct event_base *b, evutil_socket_t fd, short what,
    event_callback_fn cb, void *arg)
{
	struct event *ev = event_new(b, fd, what, cb, arg);

	if (ev == NULL)
		fatalx("cannot create an event (fd %d)", (int)fd);
	return ev;
}

/* Add an event as the process starts (tv: its timeout, or NULL). */
void
ev_add_or_die(struct event *ev, const struct timeval *tv)
{
	if (event_add(ev, tv) == -1)
		fatalx("cannot add an event (fd %d)", (int)event_get_fd(ev));
}

/* Add an event at run time; a failure is logged (what names the event,
 * for the reader of the log) and returns -1. */
int
ev_add_or_warn(struct event *ev, const struct timeval *tv, const char *what)
{
	if (event_add(ev, tv) == 0)
		return 0;
	log_warnx("cannot add the %s event", what);
	return -1;
}
