/*
 * herald: limits first, then the structures the processes share, then the
 * entry points of each process role.
 */
#ifndef HERALD_H
#define HERALD_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* --- limits and tunables ------------------------------------------------ */
#define WORKERS_MAX		128	/* worker processes */
#define LISTENERS_MAX		32	/* listen + ingest addresses */
#define CTL_MSG_MAX		(256 * 1024) /* a control message (config) */
#define FWD_QUEUE_MAX		(8 * 1024 * 1024) /* PUB bytes a worker
					 * queues for the producer; above it,
					 * publishers are not read (TCP pushes
					 * back) until it drains to a quarter */
#define READ_CHUNK		(64 * 1024) /* bytes read from a socket at once */
#define FANOUT_BATCH_RECS	1024	/* records walked per fan-out batch */
#define FANOUT_BATCH_BYTES	(512 * 1024) /* ... and bytes copied */
#define FANOUT_BATCH_DELIVERIES (256 * 1024) /* ... and runs of them waiting */
#define FANOUT_EXTEND_EVERY	64	/* clients written between looks at the
					 * bus (and at the publishers) */
#define FANOUT_ROLL_MS		1000	/* a batch grows for this long, then
					 * the loop turns */
#define FANOUT_ROLL_MIN		256	/* ... in rounds of at least this many
					 * clients */
#define CLIENT_EVENTS_MAX	256	/* client events served per loop turn */
#define CLIENT_WRITE_MAX	(256 * 1024) /* bytes written to one client
					 * per turn, so one cannot hog */
#define REPLY_HIGH_WATER	(1024 * 1024) /* replies queued: stop reading */
#define ACCEPT_PAUSE_MS		1000	/* pause accepting on EMFILE */
#define REPLAY_SWEEP_DELAY_MS	5	/* resumes gathered for one sweep */
#define SNAPSHOT_STEP_BYTES	(64 * 1024) /* VAL bytes a snapshot queues
					 * for a client at a time: what it
					 * holds stays near this whatever the
					 * retained table holds */
#define SNAPSHOT_STEP_NODES	1024	/* topic index nodes one snapshot
					 * step visits at most: a pattern that
					 * passes many topics and returns few
					 * (a/+/x) lets the loop turn too */
#define CLIENT_COMMANDS_PER_TURN 32	/* commands of one client run before
					 * the loop turns (PUBs and resumes
					 * not counted: cheap, and resumes go
					 * together); each is bounded (a SUB
					 * runs one snapshot step), so a turn
					 * spent on one pipelining client
					 * stays near a millisecond */
#define BYE_GRACE_MS		5000	/* a client told BYE that does not
					 * read it is closed after this */
#define WORKER_STALL_SEC	5	/* a worker whose loop has not turned
					 * for this long is reported */
#define RESTART_DELAY_MIN_MS	100	/* first respawn delay of a child */
#define RESTART_DELAY_MAX_MS	10000	/* back-off ceiling */
#define RESTART_STABLE_SEC	10	/* a child up this long was healthy */
#define ADDR_SLOTS		16384	/* source addresses tracked for
					 * clients.per_address */

/* Counter slots in the bus: master 0, producer 1, worker i at 1 + i. */
#define SLOT_MASTER		0
#define SLOT_PRODUCER		1
#define SLOT_WORKER(i)		(1 + (i))

enum listener_kind { LISTEN_CLIENT, LISTEN_INGEST };

/* One configured address; TCP ones have a socket per worker. */
struct listener {
	enum listener_kind	 kind;
	int			 is_unix;
	char			 name[300];	/* as configured */
	int			 fds[WORKERS_MAX]; /* per worker (TCP) */
	int			 shared_fd;	/* unix: one for all */
};

/*
 * Per-address connection counts, shared by all workers: a key per address
 * hash, and one block of counts per worker (so that a restarted worker
 * zeroes only its own pages).
 */
struct addr_table {
	uint64_t	*keys;		/* ADDR_SLOTS, 0 = free */
	int32_t		*counts;	/* WORKERS_MAX blocks of ADDR_SLOTS */
};
#define ADDR_COUNT(t, worker_id, slot) \
	((t)->counts[(size_t)((worker_id) - 1) * ADDR_SLOTS + (slot)])

struct bus;

/* What the master prepares before forking; every child inherits it. */
struct herald {
	struct herald_config	 cfg;
	char			**overrides;	/* -o NAME=VALUE, for reloads */
	int			 noverrides;
	struct bus		*bus;
	struct listener		 listeners[LISTENERS_MAX];
	int			 nlisteners;
	int			 wake_fds[WORKERS_MAX];	/* eventfds */
	int			 fwd_fd;	/* producer's listener for the
						 * PUBs workers forward */
	char			 fwd_path[108];	/* its abstract address */
	struct addr_table	 addrs;
	time_t			 started;
};

/* --- entry points -------------------------------------------------------- */
/* producer.c */
void	producer_main(struct herald *, int ctl_fd) __attribute__((noreturn));
void	producer_publish_status(const char *name, const char *value);
/* worker.c */
void	worker_main(struct herald *, int id, int ctl_fd)
	    __attribute__((noreturn));
/* master.c */
struct event_base;
struct event;
void	proc_title(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct event *child_signals(struct event_base *, const int *sigs, int n,
	    void (*cb)(int, short, void *), void *arg);
int	child_signal_read(int fd);
/* status.c: append this machine's figures to the bus (producer only) */
void	status_publish(struct herald *);

#endif /* HERALD_H */
