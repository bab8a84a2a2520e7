/*
 * A worker process: one libevent loop serving many clients.  Structures
 * shared by worker.c (loop, accept, reloads), client.c (a client's input,
 * commands, output), fanout.c (delivery from the bus), index.c (topic ->
 * subscriptions), forward.c (PUBs to the producer) and timers.c (the
 * per-client timers).
 */
#ifndef HERALD_WORKER_H
#define HERALD_WORKER_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/event.h>

#include "addr.h"
#include "bus.h"
#include "heraldd.h"
#include "index.h"
#include "log.h"
#include "proc.h"
#include "protocol.h"
#include "retained.h"
#include "tls.h"
#include "wheel.h"

enum client_state {
	CS_OPEN,	/* reading commands, receiving messages */
	CS_CLOSING,	/* a BYE is queued: flush it, then close */
	CS_DEAD		/* closed; freed by the reaper, never touched again */
};

/*
 * Where a client's cursor into the bus stands, and who moves it.  Only
 * client_cursor_set changes it, and it refuses (fatal: a broken
 * invariant) any move not drawn here:
 *
 *   LIVE --a reply, a command, a short write, the worker lapped--> BEHIND
 *   BEHIND --its walk reaches the worker (fanout_walk)--> LIVE
 *   BEHIND --a resume to replay (client_flush)--> REPLAY
 *   REPLAY --the sweep takes it--> SWEEP --done--> LIVE
 *   REPLAY, SWEEP --cut (socket full, lapped, nothing to replay, the
 *                    client freed)--> ALONE
 *   ALONE --its walk reaches the worker--> LIVE
 *   ALONE --a snapshot places it after h--> BEHIND
 */
enum cursor {
	CUR_LIVE,	/* caught up: it has seen every record up to the
			 * worker's position (w->pos) and takes part in the
			 * batched fast path; pos is not used */
	CUR_BEHIND,	/* its own cursor (pos, next_seq) below the worker's:
			 * it walks the bus itself when its socket has room */
	CUR_REPLAY,	/* a resume waiting in w->replay for the next sweep */
	CUR_SWEEP,	/* being served by the replay sweep running now */
	CUR_ALONE	/* a resume the sweep did not finish: it replays by
			 * its own walk, as BEHIND, and is not queued again */
};

/* How a client's bytes are framed (herald-protocol(7), "Other framings"). */
enum framing {
	FRAME_LINES,	/* the line protocol, both ways */
	FRAME_HTTP,	/* an HTTP request being read, or its answer
			 * being written (http.c) */
	FRAME_SSE,	/* server-sent events: each server line an event
			 * (sse.c); its input is dropped */
	FRAME_WS	/* WebSocket: lines in text frames, both ways
			 * (ws.c) */
};

/* What framing a line adds to it at most (framing.c): an SSE event's
 * "event: ", "data: ", "id: " with 20 digits, LFs and its blank line; a
 * WebSocket frame's header is less (WS_HEADER_MAX). */
#define FRAME_OVERHEAD		48

/*
 * A client holds a cursor into the bus, not a queue (enum cursor).
 *
 * Every byte here is paid a hundred thousand times over: an idle client
 * is this struct and its subscriptions, nothing else (no libevent event:
 * clients sit in the worker's own epoll set; no buffers: io exists only
 * while replies wait to be written, an unfinished line waits for its
 * end, or a snapshot is being sent).  A TLS client adds its tls_conn and
 * OpenSSL's SSL, without buffers when idle (tls.c); a plaintext one only
 * the pointer to it.
 */
struct client_io {
	char		*out;		/* replies, at most one cut record */
	uint32_t	 out_len, out_off, out_cap;
	uint32_t	 in_len;
	uint32_t	 sse_from;	/* SSE, WS: out from here holds lines
					 * not yet framed (framing_convert) */
	char		*in;		/* unfinished input */
	struct ws_reader *ws;		/* WS: a frame, message or line read
					 * in part (ws.c) */
	struct snapshot	*snap;		/* a snapshot being sent (fanout.c) */
};

struct client {
	struct worker	*w;
	struct sub	*subs;
	struct client_io *io;		/* NULL when nothing is pending */
	struct client_auth *auth;	/* NULL until its first AUTH
					 * (authn.c) */
	struct tls_conn	*tls;		/* NULL: plaintext (tls.c) */
	struct wheel_link link;		/* its slot of the timer wheel */
	struct client	*dead_next;	/* reaper list */
	struct client	*batch_next;	/* clients touched this batch */
	uint64_t	 pos;		/* next record to examine, unless LIVE */
	uint64_t	 next_seq;	/* its seq */
	uint64_t	 replay_end;	/* resume: walk freely up to here */
	uint64_t	 sent_seq;	/* highest seq sent as MSG or in a GAP */
	uint32_t	 last_in, last_out; /* now_ms() mod 2^32: see timers.c */
	int		 batch_first;	/* fast path: deliveries this batch */
	int		 batch_last;
	int		 fd;
	uint32_t	 id;
	int		 addr_slot;	/* row in the address table, or -1 */
	uint32_t	 errors;	/* bad lines in a row */
	uint32_t	 pub_gen;	/* fwd_gen of its last unsynced PUB */
	uint16_t	 nsubs;
	uint8_t		 state;		/* enum client_state */
	uint8_t		 kind;		/* enum listener_kind */
	unsigned	 cursor:3;	/* enum cursor: client_cursor_set */
	unsigned	 discarding:1;	/* dropping a too-long line */
	unsigned	 waiting_sync:1; /* a SYNC is with the producer */
	unsigned	 reading:1;	/* EPOLLIN is wanted */
	unsigned	 writing:1;	/* EPOLLOUT is wanted */
	unsigned	 pub_paused:1;	/* PUBs wait for the producer queue */
	unsigned	 pub_unsynced:1; /* PUBs forwarded since its last SYNC */
	unsigned	 publisher:1;	/* has published: see client_ack_now,
					 * worker_publisher */
	unsigned	 no_quickack:1;	/* not TCP (unix ingest): none asked */
	unsigned	 eof:1;		/* its input ended: no more reading;
					 * closed once owed nothing */
	unsigned	 input_wait:1;	/* its input goes on when the loop has
					 * turned (client_input) */
	unsigned	 wheel_slot:8;	/* its slot of w->wheel (wheel.c) */
	unsigned	 in_walk:1;	/* held by a walk of the wheel */
	unsigned	 need_auth:1;	/* its listener requires AUTH */
	unsigned	 auth_wait:1;	/* an AUTH is checked, or its failure
					 * answered late: commands wait */
	unsigned	 auth_recheck:1; /* a reload's permission check waits
					 * for its snapshot (authn.c) */
	unsigned	 framing:2;	/* enum framing */
	unsigned	 listener:5;	/* its index in h->listeners */
	unsigned	 head_only:1;	/* HTTP: a HEAD, answered without its
					 * body */
};
_Static_assert(LISTENERS_MAX <= 32, "client.listener holds an index");

/* 1 if the client is caught up, on the fast path. */
static inline int
client_live(const struct client *c)
{
	return c->cursor == CUR_LIVE;
}

/* 1 if the client's lines are framed (SSE, WS: framing.c) on their way
 * out. */
static inline int
client_reframes(const struct client *c)
{
	return c->framing == FRAME_SSE || c->framing == FRAME_WS;
}

/* Bytes of output queued for the client and not yet written. */
static inline uint32_t
client_pending(const struct client *c)
{
	return c->io != NULL ? c->io->out_len - c->io->out_off : 0;
}

/* 1 while a snapshot is being sent to the client: its VALs come before
 * anything else, and its commands wait. */
static inline int
client_snapshot(const struct client *c)
{
	return c->io != NULL && c->io->snap != NULL;
}

/*
 * Every client of the worker, each once: they are all on the timer wheel.
 * The body may move any client to another slot, kill it, or walk them
 * all again; it must not free a client, nor leave the loop (break,
 * return): see wheel.h.
 */
#define CLIENTS_FOREACH(w, c)						\
	for (struct wheel_walk walk_ = WHEEL_WALK_ALL;			\
	    ((c) = wheel_next(&(w)->wheel, &walk_)) != NULL; )

/* Deliveries in a fast-path batch: a run of records (indexes first..last)
 * for one client, and its next run. */
struct delivery {
	int	first, last;
	int	next;
};

/* What a snapshot is for (snapshot_start). */
enum snap_kind {
	SNAP_SUB,	/* SUB pattern: VALs, then +OK SUB */
	SNAP_SUB_GAP,	/* SUB pattern since, history gone: GAP, VALs, +OK */
	SNAP_CONFLATE,	/* a slow client: GAP, VALs of all its patterns */
	SNAP_SUBS	/* the patterns of an HTTP request, together: (GAP),
			 * VALs of all, +OK of each (command_subs) */
};

/* The values of one snapshot step, newest per topic (fanout.c). */
struct snap_entry {
	uint64_t	 seq;
	uint32_t	 off;		/* topic then payload in snap_set.data */
	uint16_t	 topic_len;
	uint32_t	 payload_len;
};

struct snap_set {
	struct snap_entry *e;
	int		   n, cap;
	int		  *slots;	/* hash of topic -> index+1 */
	int		   nslots;
	char		  *data;
	size_t		   len, cap_data;
};

/* A worker's stop (worker.c stop): running (0), passing on the PUBs it
 * has read, then saying BYE to its clients. */
enum worker_stop { STOP_DRAINING = 1, STOP_SAYING_BYE,
	STOP_HANDING_OVER	/* an upgrade: clients move to the successor
				 * (handover.c), then it drains */
};

struct sync_wait {
	struct client	*c;
	uint32_t	 id;
};

struct worker {
	struct herald		*h;
	struct herald_config	*cfg;
	struct bus		*bus;
	int			 id;		/* 1..N */
	unsigned		 slot;		/* counter slot */
	struct event_base	*base;
	int			 stopping;	/* enum worker_stop */
	uint64_t		 stop_ms;	/* now_ms() when it began */

	uint8_t			 in_fanout;	/* fanout_batches runs: never
						 * entered again */
	uint8_t			 in_snapshot;	/* ... a snapshot step runs */
	uint64_t		 pos;		/* bus position fanned out to */
	uint64_t		 head_seq;	/* seq of the record before pos */

	char			*scratch;	/* bus_read copies here */
	size_t			 scratch_len;
	struct bus_rec		*recs;
	struct delivery		*dl;
	int			 ndl, dl_cap;
	int			 dl_free, dl_nfree; /* written: reused */
	int			 accept_paused;
	struct client		*touched, *touched_tail; /* this batch's */
	int			 ntouched;	/* ... in the round to come */
	struct iovec		*iov;
	char			*rbuf;		/* socket reads */
	char			*pub_rbuf;	/* reads between fan-out writes */
	char			*slow_buf;	/* slow path's own copy */
	size_t			 slow_len;
	struct bus_rec		*slow_recs;

	struct index		 idx;
	struct snap_set		 snap;		/* a snapshot step's values */
	struct retained		*ret;		/* retained topics (fanout.c) */
	int			 ret_stale;	/* ... to be built anew */

	struct wheel		 wheel;		/* timers.c; all clients */
	int			 nclients;
	uint32_t		 next_id;
	struct client		*dead;
	struct event		*reap_ev;

	struct event		*listen_ev[LISTENERS_MAX * 2];
	int			 nlisten_ev;
	struct event		*accept_resume;
	struct event		*wake_ev;
	struct event		*more_ev;	/* a fan-out to go on with */
	struct event		*tick_ev;
	struct event		*replay_ev;	/* the replay sweep */
	struct client		**replay;	/* clients waiting for it */
	int			 nreplay, replay_cap;
	int			 epfd;		/* the clients' epoll set */
	struct event		*epoll_ev;	/* libevent watches epfd */
	int			 pub_epfd;	/* ... the publishers' */
	struct event		*pub_epoll_ev;
	int			 pubs_waiting;	/* input the loop must serve */
	struct event		*ctl_ev;
	struct event		*stop_timer;
	int			 ctl_fd;
	int			 accept_held;	/* a new worker of an upgrade:
						 * accepts from CTL_GO on */
	struct event		*ho_ev;		/* ... adopts clients here */
	uint64_t		 handed_over_ms; /* an old one: when its last
						 * client moved, or 0 */

	/* forward.c: the connection to the producer */
	struct bufferevent	*fwd;
	struct event		*fwd_retry;
	int			 fwd_full;	/* queue above FWD_QUEUE_MAX */
	int			 fwd_ready;	/* connected: forward_flush may write */
	struct event		*fwd_resume;	/* held publishers: read again */
	uint32_t		 fwd_gen;	/* connections lost so far */
	struct sync_wait	*syncs;
	int			 nsyncs, syncs_cap, syncs_head;
	uint32_t		 next_sync;
	uint32_t		 drain_sync;	/* stopping: the last one's id */

	struct authn		*auth;		/* identities (authn.c) */

	struct rec_frames	*frames[2][2];	/* SSE and WS renderings
						 * of w->recs' and
						 * w->slow_recs (framing.c) */

	struct log_limiter	 lim[CTR__COUNT];	/* one per limit */
	struct tls_worker	*tls;		/* NULL: no tls: listener */
};

/* worker.c */
uint64_t now_ms(void);
uint64_t worker_addr_key(const struct sockaddr_storage *);
void	worker_limit(struct worker *, enum bus_counter, int warn,
	    const char *, ...) __attribute__((format(printf, 4, 5)));
void	worker_want(struct client *, int read, int write);
void	worker_reap_later(struct worker *);
int	worker_pending(struct worker *);
void	worker_serve_publishers(struct worker *);
void	worker_publisher(struct client *);
void	worker_drained(struct worker *);

/* client.c */
struct client *client_new(struct worker *, int fd, const struct listener *,
	    int addr_slot);
struct client *client_alloc(struct worker *, int fd, const struct listener *,
	    int addr_slot);
int	client_take_output(struct client *, const char *data, size_t len);
int	client_keep_input(struct client *, const char *data, size_t len);
struct client_io *client_io(struct client *);
void	client_cursor_set(struct client *, enum cursor);
void	client_detach(struct client *);
void	client_input(struct client *, const char *data, size_t len);
void	client_resume_input(struct client *);
void	client_reply(struct client *, const char *data, size_t len);
void	client_reply_framed(struct client *, const char *data, size_t len);
void	client_end(struct client *);
void	client_replyf(struct client *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	client_flush(struct client *);
void	client_written(struct client *, size_t);
void	client_send_seq(struct client *, const char *word, uint64_t seq);
void	client_bye(struct client *, const char *reason);
void	client_close_drained(struct client *);
void	client_kill(struct client *);
ssize_t	client_writev(struct client *, struct iovec *, int n);
void	client_lost(struct client *, const char *what);
void	client_free(struct client *);
void	client_event_cb(evutil_socket_t, short, void *);
int	client_take_pubs(struct client *);
void	client_sync_done(struct client *, uint64_t seq, int ok);
int	client_matches(const struct client *, const struct bus_rec *);
void	client_reply_err(struct client *, enum proto_err, const char *detail,
	    size_t dlen);
void	client_bad_line(struct client *);
void	client_snapshot_done(struct client *, const char *pattern, size_t plen,
	    uint64_t h);

/* A record being matched against the index for a batch (the fast path's,
 * or a replay sweep's): fanout_collect's argument. */
struct match {
	struct worker		*w;
	const struct bus_rec	*recs;
	int			 rec;		/* recs[rec] is matched now */
	int			 replay;	/* for the sweep's clients */
};

/* command.c: run one line; returns what it counts against
 * CLIENT_COMMANDS_PER_TURN, or -1 when it must wait (not run); add one
 * subscription (an adopted client's: handover.c); subscribe an HTTP
 * request's patterns together, and end their snapshot */
int	command_execute(struct client *, const char *line, size_t len);
int	command_add_sub(struct client *, const char *pattern, size_t len,
	    uint64_t start_seq);
void	command_subs(struct client *, char *const *patterns, const size_t *lens,
	    int n, int has_since, uint64_t since);
void	command_subs_done(struct client *, uint64_t h);

/* stats.c: the STATS lines, and the same figures for Prometheus */
void	stats_reply(struct client *);
char	*stats_metrics(struct worker *, size_t *len);

/* http.c: an HTTP request read (FRAME_HTTP); 0 when more is needed (the
 * caller keeps the bytes), 1 when it was answered */
int	http_input(struct client *, const char *data, size_t len);
void	http_timeout(struct client *);
void	http_refuse_full(int fd);

/* web/page.c, made from web/index.html at build time (web/embed.sh):
 * the status page GET / serves */
extern const unsigned char http_page[];
extern const size_t http_page_len;

/* sse.c: server-sent events */
int	sse_line(char *dst, const char *line, size_t len, int with_id);
void	sse_ok(struct client *, const char *pattern, size_t plen, uint64_t h);

/* ws.c: WebSocket (GET /ws, then the line protocol in text frames) */
struct http_request;
int	ws_upgrade(struct client *, const struct http_request *,
	    const char **why);
size_t	ws_input(struct client *, char *buf, size_t len, int *close);
void	ws_close(struct client *, int code);
void	ws_forget(struct client *);

/* framing.c: lines in a client's framing (SSE, WS) */
size_t	framing_render(int framing, char *dst, const char *lines, size_t len);
void	framing_convert(struct client *);
int	framing_begin(struct worker *, int framing, const struct bus_rec *);
void	framing_rec(struct worker *, int framing, const struct bus_rec *,
	    int i, struct iovec *);

/* fanout.c */
void	fanout_advance(struct worker *, uint64_t until_seq);
void	fanout_run(struct worker *);
int	fanout_walk(struct client *);
void	fanout_slow(struct client *, uint64_t first_lost);
int	fanout_too_slow(const struct client *);
/* ... what replay.c and snapshot.c use of it: a batch's deliveries
 * (collect, reserve, reset, deliver) and reading the bus into a growing
 * buffer */
void	fanout_collect(void *match, struct sub *);
int	fanout_dl_reserve(struct worker *);
void	fanout_batch_reset(struct worker *);
void	fanout_deliver(struct worker *, struct client *,
	    const struct bus_rec *, int nrecs, uint64_t end_pos);
int	fanout_read(struct worker *, uint64_t *pos, char **buf, size_t *len,
	    struct bus_rec *);

/* replay.c: queue a resume for the next sweep (-1: no memory; it walks
 * alone), take a freed client out of it, make the sweep's event */
int	replay_later(struct client *);
void	replay_forget(struct client *);
void	replay_init(struct worker *);

/* snapshot.c */
int	snapshot_may_start(const struct client *);
int	snapshot_start(struct client *, enum snap_kind, const char *pattern,
	    size_t plen, uint64_t first);
int	snapshot_step(struct client *, size_t *queued);
void	snapshot_end(struct client *);
int	snapshot_get(struct client *, const char *topic, size_t len);

/* forward.c */
void	forward_start(struct worker *);
void	forward_flush(struct worker *);
int	forward_pub(struct worker *, const char *topic, size_t tlen,
	    const char *payload, size_t plen);
int	forward_sync(struct worker *, struct client *);
int	forward_full(struct worker *);
int	forward_drain(struct worker *);
void	forward_close(struct worker *);
void	forward_forget(struct worker *, struct client *);

/* authn.c: identities and permissions (herald-protocol(7), "Identity
 * and permissions") */
void	authn_init(struct worker *);
void	authn_reload(struct worker *);
void	authn_command(struct client *, const struct cmd *);
int	authn_required(const struct client *);
int	authn_http_token(struct client *, const char *tok, size_t len);
int	authn_may_read(const struct client *, const char *p, size_t len,
	    int is_pattern);
int	authn_may_publish(const struct client *, const char *t, size_t len);
uint64_t authn_expires_ms(const struct client *);
void	authn_expired(struct client *);
void	authn_snapshot_done(struct client *);
void	authn_certificate(struct client *);
void	authn_forget(struct client *);

/* timers.c */
void	timers_add(struct client *);
void	timers_remove(struct client *);
void	timers_soon(struct client *);
void	timers_all_soon(struct worker *);
void	timers_run(struct worker *);

#endif /* HERALD_WORKER_H */
