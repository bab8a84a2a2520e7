/*
 * The bus: one shared mapping holding the ring of messages, the retained
 * table (newest value per topic) and the per-process counters.
 *
 * One writer (the producer) appends; any number of reader processes read
 * without locks.  Every ring record is stored ready to send, as its
 * "MSG <topic> <seq> <payload>\n" line, so fan-out copies bytes and never
 * formats them.
 *
 * Layout of the mapping (all offsets in the header, all 64-byte aligned):
 *   header | ring (ring_size bytes) | seq index | retained slots |
 *   retained heap | counter blocks (one per process slot)
 */
#ifndef HERALD_BUS_H
#define HERALD_BUS_H

#include <stddef.h>
#include <stdint.h>

#define BUS_MAGIC		0x5355424c44524548ULL	/* "HERLDBUS" */
#define BUS_VERSION		2
#define BUS_RING_MIN		(64 * 1024)		/* smallest ring */
#define BUS_RETAINED_MIN	16			/* fewest topics */
#define BUS_COUNTER_SLOTS_MAX	130	/* master + producer + 128 workers */
#define BUS_RECORD_SHARE	4	/* a record takes at most this fraction
					 * of the ring (1/4): the ring always
					 * holds several, so a reader lapped by
					 * one has lost only that much */

/* Counter ids; each process adds only to its own block. */
enum bus_counter {
	CTR_CLIENTS,		/* gauge: clients connected now */
	CTR_WORKERS,		/* gauge (master's block): live workers */
	CTR_START_TIME,		/* gauge (master's block): unix time started */
	CTR_MSGS_IN,		/* records appended (producer) */
	CTR_MSGS_OUT,		/* MSG lines delivered to clients */
	CTR_BYTES_OUT,		/* bytes written to clients */
	CTR_GAPS,		/* GAP lines sent */
	CTR_SLOW_CONSUMERS,	/* clients conflated or cut as slow */
	CTR_CONNECTIONS,	/* connections accepted, ever */
	CTR_REJECTED_FULL,	/* BYE server-full (clients.max/per_address) */
	CTR_BAD_LINES,		/* lines answered with a "bad" error */
	CTR_ERRORS_CLOSED,	/* BYE too-many-errors */
	CTR_LINES_TOO_LONG,	/* -ERR line-too-long */
	CTR_FORBIDDEN,		/* -ERR forbidden */
	CTR_TOO_MANY_SUBS,	/* -ERR too-many-subs */
	CTR_BUSY,		/* -ERR busy (producer unreachable or full) */
	CTR_IDLE_CLOSED,	/* BYE idle */
	CTR_ACCEPT_PAUSED,	/* accept paused for lack of descriptors */
	CTR_RETAINED_DROPPED,	/* values not retained: table or heap full */
	CTR_HEARTBEATS,		/* HB lines sent */
	CTR_RECONNECTS,		/* worker reconnections to the producer */
	CTR_REJECTED_ADDRESS,	/* of which: clients.per_address */
	CTR_PAYLOAD_TOO_LARGE,	/* -ERR payload-too-large (max_payload) */
	CTR_CONN_ERRORS,	/* connections lost to a socket error (reset,
				 * timed out: dead peers) */
	CTR_WORKER_LAPPED,	/* a worker's own position lapped by the ring */
	CTR_BYE_UNREAD,		/* closed: BYE not read within BYE_GRACE_MS */
	CTR_LOOP_TIME,		/* gauge (a worker's block): monotonic second
				 * of its last tick; the master watches it */
	CTR_SPAWN_FAILED,	/* children the master could not start
				 * (socketpair or fork failed): retried */
	CTR_ADDR_UNTRACKED,	/* connections admitted without the
				 * clients.per_address check: the address
				 * table was full (or its lock held) */
	CTR_EOF_UNREAD,		/* closed: input ended, what it was owed
				 * stuck for EOF_GRACE_MS */
	CTR_AUTH_FAILURES,	/* -ERR auth-failed */
	CTR_AUTH_EXPIRED,	/* BYE auth-expired */
	CTR_AUTH_HASHES,	/* password hashes computed (cache misses) */
	/* TLS (worker/tls.c) */
	CTR_TLS_HANDSHAKES,	/* TLS handshakes done */
	CTR_TLS_RESUMED,	/* of which: sessions resumed (tickets) */
	CTR_TLS_HANDSHAKE_FAILURES, /* closed: handshake failed (plaintext
				 * on a TLS port, a refused certificate) */
	CTR_TLS_HANDSHAKE_TIMEOUTS, /* closed: handshake not done within
				 * TLS_HANDSHAKE_MS */
	/* a cluster node's producer (gauges but the reconnects) */
	CTR_CLUSTER_DOWN,	/* 1 while Redis cannot be reached */
	CTR_CLUSTER_RECONNECTS,	/* times the link came back */
	CTR_CLUSTER_FULL,	/* 1 while cluster.hold is full: PUBs busy */
	CTR_CLUSTER_LAG,	/* records Redis has that the bus has not */
	CTR_CLUSTER_LAG_MS,	/* ... age of the newest read, while behind */
	CTR_CLUSTER_EPOCH,	/* the epoch of Redis's data */
	CTR_CLUSTER_ROLE,	/* CLUSTER_ROLE_* (producer/cluster.h) */
	CTR_FANOUT_SEQ,		/* gauge (a worker's block): the seq it has
				 * fanned out up to (GET /metrics: its lag) */
	CTR_HTTP_REQUESTS,	/* HTTP requests answered (http.c) */
	CTR_HTTP_BAD_REQUESTS,	/* ... refused with a 4xx (not 401) */
	CTR_WS_PROTOCOL_ERRORS,	/* WebSocket connections closed for a frame
				 * the framing refuses (ws.c) */
	CTR_UPGRADES,		/* master's block: upgrades completed (heraldd(8),
				 * "Upgrades") */
	CTR_UPGRADE_ROLLBACKS,	/* master's block: upgrades rolled back */
	CTR_HANDED_OVER,	/* clients a worker handed to its successor */
	CTR_ADOPTED,		/* clients a worker took from its predecessor */
	CTR_HANDOVER_RESTARTS,	/* clients told BYE restart in an upgrade:
				 * TLS, SSE, WebSocket, or not movable */
	CTR__COUNT
};
#define BUS_COUNTERS_PER_SLOT	64	/* the block a process owns */
_Static_assert(CTR__COUNT <= BUS_COUNTERS_PER_SLOT, "counter block full");

/* Where the bus lives and how big it is. */
struct bus_config {
	const char	*file;		/* NULL or "" = anonymous shared memory */
	uint64_t	 ring_size;	/* ring bytes, power of two >= BUS_RING_MIN */
	uint32_t	 retained_max;	/* topics the retained table holds */
	uint64_t	 retained_bytes; /* heap bytes for retained values */
	uint32_t	 counter_slots;	/* process slots, <= BUS_COUNTER_SLOTS_MAX */
};

/* One record as a reader sees it; pointers point into the caller's buffer. */
struct bus_rec {
	uint64_t	 seq;
	uint64_t	 pos;		/* ring position of this record */
	const char	*line;		/* "MSG <topic> <seq> <payload>\n" */
	uint32_t	 line_len;	/* including the LF */
	const char	*topic;		/* inside line */
	uint16_t	 topic_len;
	const char	*payload;	/* inside line */
	uint32_t	 payload_len;
};

/* A retained value as a reader sees it; pointers into the caller's buffer. */
struct bus_value {
	uint64_t	 seq;
	const char	*topic;
	uint16_t	 topic_len;
	const char	*payload;
	uint32_t	 payload_len;
};

struct bus;	/* per-process handle; the mapping itself is shared */

/* Return values of the reader calls. */
#define BUS_OK		0
#define BUS_LAPPED	(-1)	/* the position was overwritten */
#define BUS_GONE	(-2)	/* bus_find_seq: seq older than the ring holds */
#define BUS_AHEAD	(-3)	/* bus_find_seq: seq not yet written */
#define BUS_TOO_BIG	(-4)	/* bus_read: the next record is longer
				 * than the buffer */

/*
 * Create or open the bus described by cfg.  A file is created if missing;
 * an existing one is checked (magic, version, sizes, per-record and
 * per-slot checksums) and a torn tail is dropped.  Returns NULL with a
 * message in err (e.g. "bus file X has version 2, expected 1") on failure.
 */
struct bus	*bus_open(const struct bus_config *cfg, char *err, size_t errlen);

/*
 * Map the bus another heraldd runs on, from its descriptor (an upgrade:
 * bus.file's, or the memfd of one in memory), as it is: no recovery, the
 * counters kept.  The configuration must give the same layout.  Returns
 * NULL with a message in err.
 */
struct bus	*bus_adopt(const struct bus_config *cfg, int fd, char *err,
		    size_t errlen);

/* The descriptor of the bus's file or memory, for bus_adopt. */
int		 bus_fd(const struct bus *);

/* Unmap; the mapping stays valid in other processes. */
void		 bus_close(struct bus *);

/* Write the mapping back to its file (no-op when anonymous). */
int		 bus_sync(struct bus *);

/* Bytes a record for this topic and payload takes in the ring. */
size_t		 bus_record_size(size_t topic_len, size_t payload_len);

/*
 * The longest line a record of this bus can have (bus_append refuses a
 * record over 1/BUS_RECORD_SHARE of the ring, whatever max_payload says):
 * a bus_read buffer this long takes any record.
 */
size_t		 bus_line_max(const struct bus *);

/*
 * Writer only.  Append one record (topic and payload must be valid; the
 * caller checks) and set it as the topic's retained value.  Returns the
 * record's seq, or 0 if the record cannot fit the ring.
 */
uint64_t	 bus_append(struct bus *, const char *topic, size_t topic_len,
		    const char *payload, size_t payload_len);

/*
 * Writer only, for a cluster node (whose records Redis numbers): make
 * next_seq, above head_seq + 1, the seq of the next record.  The seqs
 * between are records this bus will never hold: the ring is emptied past
 * every reader (one at the head too), so each is lapped and its clients
 * get a GAP, and a resume from before next_seq gets the GAP and the
 * snapshot.  The nvals values (each seq below next_seq; others are
 * ignored) go into the retained table unless it holds the topic as of a
 * later seq, before readers may take a snapshot.  Returns 0, or -1 if
 * next_seq is not above head_seq + 1 (then nothing changes).
 */
int		 bus_jump(struct bus *, uint64_t next_seq,
		    const struct bus_value *vals, size_t nvals);

/*
 * Writer only, for a cluster node: append a record under seq, above
 * head_seq (bus_jump over the seqs between first).  Returns seq; 0 if
 * seq is not above head_seq (a seq is never written twice: nothing
 * changes), or if the record cannot fit the ring (it is jumped over:
 * readers get a GAP for it).
 */
uint64_t	 bus_append_seq(struct bus *, uint64_t seq, const char *topic,
		    size_t topic_len, const char *payload, size_t payload_len);

/* Newest seq in the bus (0 if none) and the position after it. */
uint64_t	 bus_head_seq(const struct bus *);
uint64_t	 bus_head_pos(const struct bus *);

/* Newest seq and the position after it, read as one consistent pair. */
void		 bus_head(const struct bus *, uint64_t *pos, uint64_t *seq);

/* Oldest record the ring still holds: its position and seq (seq = head+1
 * and pos = head pos when the ring is empty). */
void		 bus_tail(const struct bus *, uint64_t *pos, uint64_t *seq);

/*
 * Copy whole records from *pos on into buf (at most buflen bytes and
 * maxrecs records, never past the head), check they were not overwritten
 * while copied, and describe them in recs.  Advances *pos past them.
 * Returns the number of records (0 when *pos is the head), BUS_LAPPED if
 * *pos is no longer in the ring, or BUS_TOO_BIG if the first record's
 * line is longer than buflen; in both cases *pos is unchanged.  After
 * BUS_TOO_BIG, recs[0] describes that record but for its line and
 * payload (NULL): seq, pos, line_len (the buflen it needs, at most
 * bus_line_max), payload_len, and topic, copied to buf (NULL if even
 * that does not fit).  A record that does not fit after others were
 * copied waits for the next call.
 */
int		 bus_read(struct bus *, uint64_t *pos, char *buf, size_t buflen,
		    struct bus_rec *recs, int maxrecs);

/*
 * Find the ring position of the record with this seq.  Returns BUS_OK and
 * sets *pos, BUS_GONE if the ring no longer holds it, BUS_AHEAD if seq is
 * beyond the head (head_seq + 1 is found: it is the head position).
 */
int		 bus_find_seq(struct bus *, uint64_t seq, uint64_t *pos);

/*
 * Copy the retained value of a topic into buf (buflen >= topic + payload).
 * Returns 1 if found, 0 if not.  Consistent: never a torn value.
 */
int		 bus_retained_get(struct bus *, const char *topic,
		    size_t topic_len, struct bus_value *v, char *buf,
		    size_t buflen);

/*
 * Call cb for every retained value whose topic matches pattern (a valid
 * pattern; "#" matches all), each a consistent copy in a scratch buffer
 * valid during the call.  cb returns 0 to go on, non-zero to stop; that
 * value is returned (0 when all were visited).
 */
typedef int	(*bus_value_cb)(void *arg, const struct bus_value *v);
int		 bus_retained_foreach(struct bus *, const char *pattern,
		    size_t pattern_len, bus_value_cb cb, void *arg);

/*
 * The seq up to which the retained table has taken every record (the
 * head is published before the table is updated).  A reader that needs
 * the table "as of" a seq h reads this first, then the table, then takes
 * the records after it, up to h, from the ring.
 */
uint64_t	 bus_retained_seq(const struct bus *);

/* Number of topics retained now. */
uint32_t	 bus_retained_count(const struct bus *);

/* Values not retained since bus_open (table full, heap full, too big);
 * an existing topic that lost its storage was removed, and counts too. */
uint64_t	 bus_retained_dropped(const struct bus *);

/* What bus_open repaired in an existing file, e.g. "dropped 3 torn
 * records (seq 41..43), 1 bad retained slot"; "" if nothing. */
const char	*bus_repair_note(const struct bus *);

/* Counters: a process adds to its own slot; anyone sums them all. */
void		 bus_counter_add(struct bus *, unsigned slot, enum bus_counter,
		    int64_t delta);
void		 bus_counter_set(struct bus *, unsigned slot, enum bus_counter,
		    uint64_t value);
uint64_t	 bus_counter_get(const struct bus *, unsigned slot,
		    enum bus_counter);
uint64_t	 bus_counter_sum(const struct bus *, enum bus_counter);

/* Sizes as configured (for checks and STATS). */
uint64_t	 bus_ring_size(const struct bus *);
uint32_t	 bus_retained_max(const struct bus *);

#endif /* HERALD_BUS_H */
