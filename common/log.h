/*
 * Logging, after OpenBSD's log.c: stderr in the foreground, syslog once
 * detached, or a file.  log_warn adds strerror(errno); fatal exits.
 */
#ifndef HERALD_LOG_H
#define HERALD_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARNING, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Start logging to stderr as process "name" at level info. */
void	log_init(const char *name);

/* Set the level; returns -1 for an unknown level name. */
int	log_set_level(const char *level);

/*
 * Choose the destination: file (non-empty path, opened O_APPEND), else
 * syslog with facility when use_syslog, else stderr.  Returns -1 if the
 * file cannot be opened (logging stays where it was).
 */
int	log_open(const char *file, int use_syslog, const char *facility);

/* Reopen the log file (after rotation, on SIGUSR1). */
void	log_reopen(void);

/* The process name shown in each line (e.g. "worker 2"). */
void	log_procname(const char *name);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Rate limiting for lines about events that can repeat fast (limits hit,
 * slow consumers): returns 1 if a line may be logged now, at most one per
 * second per limiter; then l->reported is the number of lines held back
 * since the previous one (for "N similar lines suppressed").
 */
struct log_limiter {
	long		last;		/* second of the last line logged */
	unsigned long	suppressed;	/* lines held back since then */
	unsigned long	reported;	/* held back before this line */
	int		warn;		/* of the last line: warning? */
	char		msg[160];	/* the last line logged (log_vlimited) */
};
int	log_limit(struct log_limiter *);

/* Log a line through a limiter, with "(N similar suppressed)" after it;
 * warn chooses a warning rather than an informational line. */
void	log_limited(struct log_limiter *, int warn, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	log_vlimited(struct log_limiter *, int warn, const char *, va_list);

/* Once the second is over, tell how many lines a limiter held back, so
 * that a burst followed by quiet is accounted for (call it once a second). */
void	log_limit_flush(struct log_limiter *);

#endif /* HERALD_LOG_H */
