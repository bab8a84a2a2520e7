/*
 * A cluster node's producer (cluster.c, cluster_lua.c): Redis numbers
 * every record, and every node writes every record into its bus under
 * that number.  Limits first, then the calls producer.c makes, then the
 * ones it offers cluster.c.
 */
#ifndef HERALD_CLUSTER_H
#define HERALD_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_INFLIGHT_MAX	1024	/* PUBs sent and not answered (in
					 * batches): a round trip carries up
					 * to this many, and a link that
					 * breaks has no more than this to
					 * send again */
#define CLUSTER_BATCH_MAX	256	/* PUBs one script call takes: a
					 * call costs Redis more than a record
					 * does, so a busy node sends few */
#define CLUSTER_BATCH_BYTES	(256 * 1024) /* ... and about this many
					 * bytes: one call's work stays short
					 * for the other nodes' calls */
#define CLUSTER_READ_BATCH	1024	/* records one XREAD returns: as a
					 * fan-out batch, so one read is one
					 * wake of the workers */
#define CLUSTER_BLOCK_MS	1000	/* an XREAD waits this long for new
					 * records; its call timer allows it
					 * on top of cluster.timeout */
#define CLUSTER_BACKOFF_MIN_MS	100	/* first wait before reconnecting */
#define CLUSTER_BACKOFF_MAX_MS	1000	/* back-off ceiling: every node
					 * tries again at least this often,
					 * so all are back within a settle */
#define CLUSTER_SETTLE_MS	2500	/* after a node finds Redis empty
					 * (and starts an epoch), no PUB goes
					 * in for this long: every running
					 * node rejoins meanwhile and raises
					 * the seq above its head first */
#define CLUSTER_STOP_WAIT_MS	500	/* a stopping producer, its workers
					 * gone, waits this long for Redis to
					 * take what it holds: the master
					 * gives it STOP_PRODUCER_MS, and it
					 * must still write the bus */
#define CLUSTER_POLL_MS		1000	/* the stream's top is asked this
					 * often (lag in STATS), which also
					 * keeps an idle link checked */

/* STAT cluster_role (shown only with cluster.redis): what the node does
 * in the cluster now. */
#define CLUSTER_ROLE_IN_STEP	1	/* a node reading the stream as it
					 * grows */
#define CLUSTER_ROLE_CATCHING_UP 2	/* ... more than a read behind */
#define CLUSTER_ROLE_CUT_OFF	3	/* ... Redis cannot be reached */

struct herald;
struct event_base;
struct bufferevent;

/* cluster.c */
/* Start the link to cluster.redis on the producer's loop (it reconnects
 * by itself for as long as the producer runs). */
void	cluster_start(struct herald *, struct event_base *);
/* Hold a valid PUB and send it to Redis in order; a droppable one (the
 * status figures) is dropped while Redis cannot be reached. */
void	cluster_pub(const char *topic, size_t tlen, const char *payload,
	    size_t plen, int droppable);
/* Answer "S <id> <seq>" on bev once Redis has every PUB queued before it
 * and the bus holds them. */
void	cluster_sync(struct bufferevent *, const char *id, size_t idlen);
/* bev is going away: its waiting SYNCs answer nobody. */
void	cluster_forget(struct bufferevent *);
/* PUBs held (not yet in Redis), for a stopping producer. */
size_t	cluster_held(void);

/* producer.c */
/* n records were written to the bus: count them, wake the workers. */
void	producer_appended(uint64_t n);
/* A stopping producer ends if its workers are read and (a cluster node)
 * the last held PUB went in. */
void	producer_end_if_done(void);

/* cluster_lua.c: the scripts, run in Redis. */
extern const char cluster_lua_pub[];
extern const char cluster_lua_join[];
extern const char cluster_lua_catchup[];

#endif /* HERALD_CLUSTER_H */
