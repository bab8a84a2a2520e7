/*
 * Logging to stderr, a file or syslog.  One line per notable event.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char	*log_name = "heraldd";
static char		 log_proc[32] = "master";
static int		 log_level = LOG_LVL_INFO;
static int		 log_use_syslog;
static int		 log_fd = STDERR_FILENO;
static char		 log_path[4096];

static const char *const level_names[] = { "error", "warning", "info",
    "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
    LOG_DEBUG };

/* Start logging to stderr as process "name" at level info. */
void
log_init(const char *name)
{
	log_name = name;
	log_fd = STDERR_FILENO;
	log_use_syslog = 0;
}

/* Set the level; returns -1 for an unknown level name. */
int
log_set_level(const char *level)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(level, level_names[i]) == 0) {
			log_level = i;
			return 0;
		}
	}
	return -1;
}

static int
facility_value(const char *facility)
{
	static const struct { const char *name; int value; } map[] = {
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(facility, map[i].name) == 0)
			return map[i].value;
	return LOG_DAEMON;
}

/* Choose the destination (file, syslog or stderr). */
int
log_open(const char *file, int use_syslog, const char *facility)
{
	if (file != NULL && file[0] != '\0') {
		int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0640);
		if (fd == -1)
			return -1;
		if (log_fd != STDERR_FILENO)
			close(log_fd);
		log_fd = fd;
		snprintf(log_path, sizeof(log_path), "%s", file);
		log_use_syslog = 0;
	} else if (use_syslog) {
		openlog(log_name, LOG_PID | LOG_NDELAY, facility_value(facility));
		log_use_syslog = 1;
	}
	return 0;
}

/* Reopen the log file after rotation. */
void
log_reopen(void)
{
	if (log_path[0] == '\0')
		return;
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640);
	if (fd == -1)
		return;		/* keep writing to the old one */
	dup2(fd, log_fd);
	close(fd);
}

/* The process name shown in each line. */
void
log_procname(const char *name)
{
	snprintf(log_proc, sizeof(log_proc), "%s", name);
}

static void
vlog(int level, int with_errno, const char *fmt, va_list ap)
{
	char msg[1024];
	int saved = errno;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	if (log_use_syslog) {
		syslog(syslog_prio[level], "%s: %s", log_proc, msg);
	} else {
		char line[1200], stamp[32];
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
		int n = snprintf(line, sizeof(line), "%s.%03ld %s[%d] %s %s: %s\n",
		    stamp, ts.tv_nsec / 1000000, log_name, (int)getpid(),
		    log_proc, level_names[level], msg);
		if (n > (int)sizeof(line) - 1)
			n = sizeof(line) - 1;
		/* One write per line so concurrent processes do not mix. */
		(void)!write(log_fd, line, n);
	}
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_WARNING, 1, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_WARNING, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/* 1 if a rate-limited line may be logged now (one per second). */
int
log_limit(struct log_limiter *l)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec == l->last) {
		l->suppressed++;
		return 0;
	}
	l->last = ts.tv_sec;
	l->reported = l->suppressed;
	l->suppressed = 0;
	return 1;
}

void
log_limited(struct log_limiter *l, int warn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlimited(l, warn, fmt, ap);
	va_end(ap);
}

void
log_vlimited(struct log_limiter *l, int warn, const char *fmt, va_list ap)
{
	if (!log_limit(l))
		return;
	vsnprintf(l->msg, sizeof(l->msg), fmt, ap);
	l->warn = warn;
	if (warn)
		log_warnx("%s (%lu similar suppressed)", l->msg, l->reported);
	else
		log_info("%s (%lu similar suppressed)", l->msg, l->reported);
}

void
log_limit_flush(struct log_limiter *l)
{
	struct timespec ts;

	if (l->suppressed == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec == l->last)
		return;		/* the second is not over */
	if (l->warn)
		log_warnx("since: %s (%lu similar suppressed)", l->msg,
		    l->suppressed);
	else
		log_info("since: %s (%lu similar suppressed)", l->msg,
		    l->suppressed);
	l->suppressed = 0;
	l->last = ts.tv_sec;
}
