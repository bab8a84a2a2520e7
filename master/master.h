/*
 * The master's parts that its files share: the process table (master.c
 * runs it) and a live upgrade (upgrade.c hands it over).
 */
#ifndef HERALD_MASTER_H
#define HERALD_MASTER_H

#include <sys/types.h>
#include <time.h>

#include "heraldd.h"

struct event;
struct event_base;

/* One child in the process table (after nginx's ngx_processes). */
struct child {
	pid_t		 pid;		/* 0 = not running */
	int		 id;		/* 0 = producer, 1..N = worker */
	int		 ctl_fd;	/* master's end of the control socket */
	struct timespec	 started;
	int		 delay_ms;	/* back-off for the next respawn */
	struct event	*respawn;	/* timer that restarts it */
	long		 stalled;	/* seconds its loop had stood, or 0 */
};

/* master.c */
extern struct herald	 H;
extern struct child	 children[WORKERS_MAX + 1];
extern int		 nchildren;
extern struct event_base *base;

void	spawn(struct child *);
/* The bus's settings of a configuration. */
void	bus_config_of(const struct herald_config *, struct bus_config *);
/* Take the pidfile over from the old master (its lock comes with the
 * descriptor) and write this master's pid in it. */
void	pidfile_adopt(int fd);
/* The running master's pidfile descriptor, or -1. */
int	pidfile_get(void);
/* End the master's loop once its upgrade is done (its children are
 * gone; the pidfile is the new master's). */
void	master_handed_over(void);
/* Tell systemd (Type=notify) how the service stands; nothing without
 * NOTIFY_SOCKET. */
void	notify_systemd(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

/* upgrade.c: a live upgrade (heraldd(8), "Upgrades") */
#define UPGRADE_READY_SEC	30	/* the new master must be ready (its
					 * configuration read, its workers
					 * started) within this, or it is
					 * killed and the upgrade rolled back */
#define UPGRADE_WAIT_SEC	60	/* heraldd -s upgrade waits this long
					 * for the old master to end */

/* Remember the binary and how it was started (main, before the title
 * overwrites argv). */
void	upgrade_init(int foreground);
/* In a new child: close the masters' ends of the upgrade's sockets, which
 * are not the child's (a worker holding the old workers' ends would never
 * see its predecessor finish). */
void	upgrade_child_close(void);
/* 1 if this master was started by an upgrade (UPGRADE_ENV). */
int	upgrade_inheriting(void);
/* New master: the old one's listeners and bus, checked against the
 * configuration (exits, refusing the upgrade, if they do not fit). */
void	upgrade_take_over(struct herald *);
/* New master: its workers run; the old master may hand over. */
void	upgrade_ready(void);
/* Old master: USR2. */
void	upgrade_start(void);
/* Old master: a child ended; 1 if it was the new master. */
int	upgrade_child_exited(pid_t, int status);
/* Old master: 1 once its workers are handing over (none is restarted). */
int	upgrade_retiring(void);
/* Old master: 1 while an upgrade is under way. */
int	upgrade_under_way(void);
/* Old master: a child ended in an upgrade: go on with it. */
void	upgrade_next(void);
/* Old master: TERM or INT during an upgrade. */
void	upgrade_abort(void);
/* heraldd -s upgrade: signal the master of the pidfile and wait; exits. */
void	upgrade_command(const char *pidfile) __attribute__((noreturn));

#endif /* HERALD_MASTER_H */
