/*
 * herald: limits first, then the structures the processes share, then the
 * entry points of each process role.
 */
#ifndef HERALDD_H
#define HERALDD_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "bus.h"
#include "config.h"

/* --- limits and tunables ------------------------------------------------ */
#define LISTENERS_MAX		32	/* listen + ingest addresses */
#define CTL_MSG_MAX		(256 * 1024) /* a control message (config) */
#define FWD_QUEUE_MAX		(8 * 1024 * 1024) /* PUB bytes a worker
					 * queues for the producer; above it,
					 * publishers are not read (TCP pushes
					 * back) until it drains to a quarter */
#define FWD_RETRY_MS		100	/* a worker reconnects to a restarted
					 * producer this often: the master
					 * respawns it within RESTART_DELAY_MIN_MS,
					 * and PUBs wait (-ERR busy) meanwhile */
#define READ_CHUNK		(64 * 1024) /* bytes read from a socket at once */
#define FANOUT_BATCH_RECS	1023	/* records walked per fan-out batch:
					 * with the replies a client has
					 * queued, one sendmsg of at most
					 * IOV_MAX (1024) iovecs */
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
#define REPLY_LINE_FAST		256	/* a formatted reply shorter than
					 * this is made on the stack (most
					 * are); a longer one (a long topic
					 * or pattern) straight in the output */
#define ACCEPT_BATCH		32	/* connections a worker accepts per
					 * wake of a listener: enough to
					 * drain a reconnect storm's queue
					 * quickly, few enough that the
					 * clients it has are served between */
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
#define CLIENT_FLUSH_ROUNDS	64	/* passes of client_flush (write,
					 * walk, run kept input) before the
					 * rest waits for the loop: a client
					 * whose commands keep producing
					 * output cannot hold the worker */
#define BYE_DRAIN_READS		16	/* reads of what a client sent after
					 * its BYE, so that closing with
					 * unread input sends no reset that
					 * could destroy the BYE */
#define BYE_GRACE_MS		5000	/* a client told BYE that does not
					 * read it is closed after this */
#define STOP_TICK_MS		100	/* a stopping worker looks at its
					 * clients this often */
#define STOP_EXIT_EARLY_MS	500	/* ... and exits this long before
					 * shutdown_grace ends, ahead of the
					 * master's KILL */
#define STOP_PRODUCER_MS	1000	/* the producer's least time after the
					 * workers (shutdown_grace may be over):
					 * it only reads what they sent and
					 * writes the bus */
#define EOF_GRACE_MS		5000	/* a client that ended its input
					 * (shutdown, nc -q) is closed once
					 * nothing it is owed has moved for
					 * this long: as a BYE's grace */
#define WORKER_STALL_SEC	5	/* a worker whose loop has not turned
					 * for this long is reported */
#define RESTART_DELAY_MIN_MS	100	/* first respawn delay of a child */
#define RESTART_DELAY_MAX_MS	10000	/* back-off ceiling */
#define RESTART_STABLE_SEC	10	/* a child up this long was healthy */

_Static_assert(FANOUT_BATCH_RECS + 1 <= IOV_MAX, "a batch's sendmsg");

/* Counter slots in the bus: master 0, producer 1, worker i at 1 + i. */
#define SLOT_MASTER		0
#define SLOT_PRODUCER		1
#define SLOT_WORKER(i)		(1 + (i))
_Static_assert(SLOT_WORKER(WORKERS_MAX) < BUS_COUNTER_SLOTS_MAX,
    "the bus has a counter slot for the master, the producer and every worker");

enum listener_kind {
	LISTEN_CLIENT,		/* listen: the line protocol */
	LISTEN_INGEST,		/* ingest: the line protocol, PUB to any topic */
	LISTEN_HTTP		/* http: /metrics, /healthz, /events (http.c) */
};

/* "clients", "ingest" or "http", for the log. */
static inline const char *
listener_kind_name(enum listener_kind k)
{
	return k == LISTEN_CLIENT ? "clients" : k == LISTEN_INGEST ? "ingest" :
	    "http";
}

/*
 * Control messages, master to child: one SOCK_SEQPACKET record of at most
 * CTL_MSG_MAX bytes, the type first.  Master and children are one
 * program, so a type not listed here is a bug (child_ctl_read).
 */
enum ctl_type {
	CTL_RELOAD = 'R',	/* then the configuration text, parsed again */
	CTL_TICKETS = 'T',	/* then struct ticket_keys (tlsctx.h): the
				 * TLS session ticket keys, rotated */
	CTL_HANDOVER = 'H',	/* an upgrade, to a worker of the old master,
				 * with the socket to its successor: hand
				 * every client over (worker/handover.c) */
	CTL_GO = 'G'		/* an upgrade, to a worker of the new master:
				 * the hand-over has begun; accept */
};

/* One configured address; TCP ones have a socket per worker. */
struct listener {
	enum listener_kind	 kind;
	int			 is_unix;
	int			 local;		/* reachable from this machine
						 * only (config_addr_is_local) */
	int			 tls;		/* tls:HOST:PORT (worker/tls.c) */
	char			 name[300];	/* as configured */
	int			 fds[WORKERS_MAX]; /* per worker (TCP) */
	int			 shared_fd;	/* unix: one for all */
};

struct bus;
struct addr_table;
struct authdb;
struct users_cache;
struct ssl_ctx_st;

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
	struct addr_table	*addrs;		/* clients.per_address (addr.h) */
	struct authdb		*auth;		/* the auth files, loaded: a
						 * new worker starts with the
						 * newest (authdb.h) */
	struct users_cache	*users_cache;	/* good password checks, one
						 * cache for all workers */
	struct ssl_ctx_st	*tls_ctx;	/* the tls: listeners' (tlsctx.h),
						 * built before the privileges
						 * are dropped; NULL: none */
	time_t			 started;
	int			 adopt_fds[WORKERS_MAX]; /* the new master of an
						 * upgrade: each worker's end of
						 * the socket its predecessor
						 * hands clients over on
						 * (worker/handover.c); else -1 */
};

/* --- entry points -------------------------------------------------------- */
/* producer.c */
void	producer_main(struct herald *, int ctl_fd) __attribute__((noreturn));
void	producer_publish_status(const char *name, const char *value);
/* worker.c */
void	worker_main(struct herald *, int id, int ctl_fd)
	    __attribute__((noreturn));
/* status.c: append this machine's figures to the bus (producer only) */
void	status_publish(struct herald *);

#endif /* HERALDD_H */
