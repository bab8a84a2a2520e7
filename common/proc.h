/*
 * Process helpers shared by the master and its children (proc.c): the
 * title in ps, a child's signals, the control channel from the master,
 * and events a process cannot work without.
 */
#ifndef HERALD_PROC_H
#define HERALD_PROC_H

#include <stddef.h>

#include "heraldd.h"

struct event_base;
struct event;
struct timeval;

/* Keep argv's memory for proc_title (the master, before anything else). */
void	title_init(int argc, char **argv);
/* Show a process's role in ps ("heraldd: worker process 1"). */
void	proc_title(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* In a new child, first of all: the master's handlers forgotten, HUP and
 * PIPE ignored, TERM, INT and USR1 blocked until child_signals reads them. */
void	child_signals_init(void);
/* A child's signals as a persistent event on a signalfd: USR1 reopens
 * the log, TERM and INT call stop(arg). */
struct event *child_signals(struct event_base *, void (*stop)(void *),
	    void *arg);
/*
 * The master's next message: CTL_RELOAD with the configuration in *next
 * (apply it, then config_free); CTL_HANDOVER with the descriptor passed
 * in *passed (a worker's only: NULL elsewhere); CTL_GO; 0 if there is
 * nothing to do (no message, or a reload that does not parse: logged);
 * -1 if the master is gone.
 */
int	child_ctl_read(int fd, const struct herald *, struct herald_config *next,
	    int *passed);
/* Returns -1 (errno set) if the child cannot be reached. */
int	ctl_send(int fd, enum ctl_type, const char *data, size_t len);
/* ctl_send with a descriptor passed along (-1: none). */
int	ctl_send_fd(int fd, enum ctl_type, const char *data, size_t len,
	    int passed);

/* event_new and event_add as a process starts (fatal if they fail), and
 * event_add at run time (a failure is logged, naming what, and is -1). */
struct event *ev_new_or_die(struct event_base *, int fd, short what,
	    void (*cb)(int, short, void *), void *arg);
void	ev_add_or_die(struct event *, const struct timeval *);
int	ev_add_or_warn(struct event *, const struct timeval *, const char *what);

#endif /* HERALD_PROC_H */
