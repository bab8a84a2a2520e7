/*
 * loadgen: the load generator of herald's benchmarks (bench/README.md).
 *
 * One parent process drives the run and samples the server from /proc;
 * subscriber children (each one epoll loop, at most LG_CHILD_CONNS
 * connections) hold the subscribers; a publisher child paces the PUBs.
 * They share one anonymous MAP_SHARED mapping (struct lg_ctl): the parent
 * writes the phase, each child writes only its own slot.
 */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define LG_MAX_CHILDREN		32	/* subscriber processes */
#define LG_CHILD_CONNS		18500	/* connections one child may hold (fd limit 20000) */
#define LG_MAX_ADDRS		250	/* loopback source addresses 127.0.0.1.. */
#define LG_MAX_PORTS		16	/* servers the subscribers spread over */
#define LG_MAX_TOPICS		100000	/* topics a run may use */
#define LG_MAX_PAYLOAD		65536	/* largest payload */
#define LG_MAX_TOKEN		2048	/* --auth-token: a JWT with claims */
#define LG_TS_DIGITS		20	/* the send time, decimal ns, leads each payload */
#define LG_READ_BUF		(256 * 1024) /* one child's read buffer */
#define LG_MAX_FRAME		(LG_MAX_PAYLOAD + 1024) /* longest frame we accept */
#define LG_MAX_RETRIES		5	/* connect attempts per subscriber */
#define LG_MAX_LADDER		64	/* rates in one ladder */
#define LG_WS_HEADER_MAX	14	/* a client's frame header: 2, 8 for a
					 * 64-bit length, 4 for the mask */
#define LG_RECONNECT_PAUSE_MS	50	/* --reconnect: a child's pause after a
					 * refused reconnect (the server is
					 * restarting), not to spin on it */
#define LG_RECONNECT_RETRIES	1200	/* --reconnect: attempts per subscriber,
					 * a minute of refusals at that pause */

/* The histogram: 32 sub-buckets per power of two of nanoseconds (3 %). */
#define HIST_SUB_BITS		5
#define HIST_SUB		(1 << HIST_SUB_BITS)
#define HIST_BUCKETS		(42 * HIST_SUB)

enum lg_proto { PROTO_HERALD, PROTO_MQTT, PROTO_REDIS, PROTO_NATS };

/* What carries the protocol to the subscribers. */
enum lg_xport {
	XP_TCP,		/* the protocol's bytes on the connection */
	XP_WS,		/* --ws PATH: WebSocket frames after an HTTP upgrade */
	XP_SSE		/* --sse PATH: herald's lines as server-sent events */
};

enum lg_phase {
	PH_CONNECT,	/* connect and subscribe every subscriber */
	PH_DROP,	/* close every connection at once, then resubscribe */
	PH_EXIT		/* close everything and exit */
};

struct lg_hist {
	uint64_t	 n;
	uint64_t	 b[HIST_BUCKETS];
};

/* The figures of one subscriber child, written by that child only. */
struct lg_slot {
	volatile uint64_t connected;	/* TCP connections established, now open */
	volatile uint64_t ready;	/* subscriptions confirmed (ever) */
	volatile uint64_t failed;	/* subscribers given up after LG_MAX_RETRIES */
	volatile uint64_t closed;	/* connections the server closed */
	volatile uint64_t resynced;	/* subscriptions confirmed after PH_DROP */
	volatile uint64_t first_conn_ns; /* first connect() issued */
	volatile uint64_t last_ready_ns; /* latest subscription confirmed */
	volatile uint64_t recv;		/* deliveries sent at or after step_start */
	volatile uint64_t stale;	/* deliveries sent before step_start */
	volatile uint64_t vals;		/* herald VAL lines (conflated values) */
	volatile uint64_t gaps;		/* herald GAP lines */
	volatile uint64_t gap_seqs;	/* seqs covered by GAP lines */
	volatile uint64_t errors;	/* error replies and protocol errors */
	volatile uint64_t max_step;	/* the step max_ns belongs to */
	volatile uint64_t max_ns;	/* largest latency in max_step */
	volatile uint64_t tls_resumed;	/* TLS handshakes that resumed a session */
	volatile uint64_t alive;	/* set when the child is up */
	char		 last_error[128]; /* the latest error reply or reason */
	struct lg_hist	 hist;		/* latencies of recv deliveries */
};

/* The mapping the parent and all children share. */
struct lg_ctl {
	volatile int	 phase;		/* enum lg_phase, set by the parent */
	volatile uint64_t step;		/* bumped by the parent at each step */
	volatile uint64_t step_start_ns; /* deliveries sent earlier are stale */
	volatile int	 pub_stop;	/* the publisher stops when set */
	volatile int	 pub_ready;	/* the publisher is connected */
	volatile int	 pub_done;	/* the publisher has finished */
	volatile uint64_t pub_go_ns;	/* the publisher starts at this time */
	volatile uint64_t published;	/* messages the publisher sent */
	volatile uint64_t pub_late_max_ns; /* worst lateness of a send */
	volatile uint64_t pub_reconnects; /* --reconnect: the publisher's */
	char		 pub_error[128];
	int		 nchildren;
	struct lg_slot	 slot[LG_MAX_CHILDREN];
};

/* The run's settings, fixed before the children fork. */
struct lg_opts {
	enum lg_proto	 proto;
	const char	*name;		/* server label in the output */
	const char	*scenario;	/* scenario label in the output */
	char		 host[64];	/* server address (loopback) */
	int		 port;		/* subscribers connect here */
	int		 ports[LG_MAX_PORTS]; /* ... or subscriber i to port
					 * i % nports (--port a,b,c: the
					 * nodes of a cluster) */
	int		 nports;
	int		 storm_move;	/* the storm's resumes go to the next
					 * of the ports */
	int		 pub_port;	/* the publisher connects here */
	int		 server_pid;	/* root of the server's process tree, 0 = none */
	int		 subs;		/* normal subscribers */
	int		 slow;		/* subscribers that never read */
	int		 idle;		/* subscribers of a topic nobody
					 * publishes to */
	int		 topics;	/* subscriber i takes topic i % topics */
	int		 payload;	/* payload bytes */
	int		 naddrs;	/* source addresses 127.0.0.1..naddrs */
	int		 children;	/* subscriber processes (0 = as needed) */
	int		 inflight;	/* connects in flight per child */
	double		 hold;		/* seconds to hold idle connections */
	double		 duration;	/* seconds of publishing per step */
	double		 drain;		/* seconds without progress that end a step */
	double		 connect_timeout; /* seconds without progress ending connect */
	int		 nrates;
	double		 rates[LG_MAX_LADDER]; /* msg/s, one step each */
	int		 stop_on_fail;	/* end a ladder at its first failing step */
	double		 p99_limit_ms;	/* a step passes with no loss and p99 below */
	double		 storm_at;	/* storm: seconds of publishing before the drop */
	double		 series;	/* seconds between RSS samples (0 = none) */
	double		 mark_at;	/* print a MARK line this many seconds
					 * into each step (0 = none) */
	int		 reconnect;	/* a subscriber or publisher the server
					 * closes connects again and resumes */
	int		 pub_nagle;	/* the publisher leaves Nagle on */
	const char	*auth_token;	/* herald: AUTH with it before the SUB */
	int		 tls;		/* subscribers connect with TLS */
	const char	*tls_ca;	/* verify the server against it (or NULL) */
	enum lg_xport	 xport;		/* how the subscribers are served */
	const char	*path;		/* XP_WS, XP_SSE: the request's path */
	int		 verbose;
};

/* lg_wire.c: protocol encoders and decoders, no I/O. */
enum wire_ev_type {
	EV_NONE,	/* a frame that needs nothing (HELLO, INFO, CONNACK...) */
	EV_MSG,		/* a delivery */
	EV_SUBACK,	/* the subscription is confirmed */
	EV_VAL,		/* herald: a retained value */
	EV_GAP,		/* herald: seqs that will not come */
	EV_PING,	/* NATS: answer PONG */
	EV_ERR,		/* an error reply */
	EV_BYE		/* the server is closing */
};

struct wire_ev {
	enum wire_ev_type type;
	const char	*payload;	/* EV_MSG, EV_VAL: the payload */
	size_t		 plen;
	uint64_t	 seq;		/* herald: MSG/VAL seq, SUB head, GAP first */
	uint64_t	 seq2;		/* herald: GAP last */
	const char	*text;		/* EV_ERR, EV_BYE: the line */
	size_t		 tlen;
};

const char	*wire_proto_name(enum lg_proto);
int		 wire_proto_parse(const char *, enum lg_proto *);
size_t		 wire_topic(enum lg_proto, char *, size_t, int);
size_t		 wire_subscribe(enum lg_proto, char *, size_t, const char *,
		    uint32_t, int, uint64_t);
size_t		 wire_connect(enum lg_proto, char *, size_t, uint32_t);
size_t		 wire_publish(enum lg_proto, char *, size_t, const char *,
		    const char *, size_t);
size_t		 wire_pong(enum lg_proto, char *, size_t);
long		 wire_parse(enum lg_proto, const char *, size_t,
		    struct wire_ev *);
long		 wire_parse_sse(const char *, size_t, struct wire_ev *);
void		 wire_payload(char *, size_t, uint64_t);
int		 wire_payload_ts(const char *, size_t, uint64_t *);

/* lg_hist.c */
void		 hist_add(struct lg_hist *, uint64_t);
void		 hist_merge(struct lg_hist *, const struct lg_hist *);
void		 hist_sub(struct lg_hist *, const struct lg_hist *);
uint64_t	 hist_quantile(const struct lg_hist *, double);

/* lg_proc.c: the server's process tree from /proc. */
struct proc_sample {
	uint64_t	 rss_kb;	/* VmRSS summed over the tree */
	uint64_t	 pss_kb;	/* Pss summed over the tree */
	double		 cpu_s;		/* utime + stime summed over the tree */
	int		 nproc;		/* processes in the tree */
};
int		 proc_sample_tree(int, struct proc_sample *);
double		 proc_cpu_pids(const int *, int);

/* lg_tls.c: TLS on the subscribers' non-blocking sockets. */
SSL_CTX		*tls_client_ctx(const struct lg_opts *, char *, size_t);
SSL		*tls_conn_new(SSL_CTX *, int, SSL_SESSION **);
int		 tls_handshake(SSL *, uint32_t *);
ssize_t		 tls_recv(SSL *, char *, size_t, int *);
int		 tls_send(SSL *, const char *, size_t);
void		 tls_conn_free(SSL *);
void		 tls_error(char *, size_t, const char *);

/* lg_ws.c: the subscribers over WebSocket or server-sent events. */
struct ws_conn;
struct ws_conn	*ws_conn_new(void);
void		 ws_conn_free(struct ws_conn *);
long		 ws_unframe(struct ws_conn *, const char *, size_t, char *);
size_t		 ws_frame(char *, int, const char *, size_t);
const char	*ws_pong(struct ws_conn *, size_t *);
size_t		 http_request(const struct lg_opts *, char *, size_t, uint32_t,
		    const char *);
long		 http_response(const struct lg_opts *, uint32_t, const char *,
		    size_t, char *, size_t);

/* lg_sub.c: a subscriber child. */
void		 sub_child_main(const struct lg_opts *, struct lg_ctl *, int,
		    int, int, int);

/* lg_pub.c: the publisher child. */
void		 pub_child_main(const struct lg_opts *, struct lg_ctl *, double,
		    double);

/* loadgen.c */
uint64_t	 now_ns(void);
int		 tcp_connect_nb(const char *, int, int);

#endif /* LOADGEN_H */
