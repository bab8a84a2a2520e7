/*
 * libherald: a small C client for herald, the push server (libherald(3)).
 *
 * One struct herald_client is one connection to one address, a client or
 * an ingest listener, that comes back by itself when it is lost.  The
 * library has no threads and no global state; a client belongs to one
 * thread at a time.  Use it blocking (every call waits, at most the
 * configured timeout), or from your own loop: poll herald_fd() for
 * herald_events() and call herald_process(), or let herald_attach() do
 * that in a libevent event_base.
 *
 * A client may speak TLS (herald_set_tls) and authenticate (AUTH, with a
 * password or a token, herald_set_password and herald_set_token) on
 * every connection it makes, before it subscribes or sends anything
 * else.
 */
#ifndef LIBHERALD_H
#define LIBHERALD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;		/* libevent; only herald_attach needs it */
struct herald_client;		/* opaque */

/* Errors: every function that can fail returns one of these (< 0). */
enum herald_error {
	HERALD_OK = 0,
	HERALD_EINVAL = -1,	/* bad argument: topic, pattern, payload,
				 * address syntax, or a call not allowed
				 * now */
	HERALD_EADDR = -2,	/* the address's name does not resolve */
	HERALD_ECONNECT = -3,	/* connection refused or unreachable */
	HERALD_ETIMEOUT = -4,	/* no answer within the timeout */
	HERALD_ECLOSED = -5,	/* the connection closed (see herald_errmsg) */
	HERALD_EPROTO = -6,	/* the peer broke the herald/1 protocol */
	HERALD_ESERVER = -7,	/* the server refused: -ERR (herald_errmsg) */
	HERALD_ENOTFOUND = -8,	/* GET: the topic has no value */
	HERALD_EAGAIN = -9,	/* non-blocking: output full, retry later */
	HERALD_ENOMEM = -10,	/* out of memory */
	HERALD_ESYS = -11,	/* a system call failed (see herald_errmsg) */
	HERALD_ETLS = -12,	/* TLS: a certificate, key or CA file is
				 * unusable, the handshake failed, or the
				 * server's certificate did not verify
				 * (herald_errmsg has OpenSSL's reason) */
	HERALD_EAUTH = -13,	/* the server refused the user, password
				 * or token (-ERR auth-failed, BYE
				 * auth-failed), or it requires AUTH and
				 * the client has no credentials */
	HERALD_EEXPIRED = -14	/* the token expired on a live connection
				 * and no new one was given in time (BYE
				 * auth-expired) */
};

/* The longest token herald_set_token and a herald_token_cb take. */
#define HERALD_TOKEN_MAX	4096

/* What herald_events() asks for and herald_process() is told. */
#define HERALD_READ	0x01
#define HERALD_WRITE	0x02

/* A message handed to a subscription's callback. */
struct herald_msg {
	const char	*topic;		/* NUL-terminated */
	const char	*payload;	/* NUL-terminated; no NUL, CR or LF */
	size_t		 payload_len;
	uint64_t	 seq;		/* its bus sequence number */
	int		 is_value;	/* 1: a VAL (the topic's newest value
					 * as of seq: a snapshot, or after a
					 * gap); 0: a live MSG */
	const char	*pattern;	/* the subscription it matched */
};

/* Called for every message matching the subscription. */
typedef void herald_msg_cb(struct herald_client *, const struct herald_msg *,
    void *arg);

enum herald_event_type {
	HERALD_EVENT_CONNECTED,	   /* HELLO seen (seq: bus head); a
				    * reconnect has resubscribed */
	HERALD_EVENT_DISCONNECTED, /* lost (err, text); retry_ms until the
				    * next attempt, -1 if none */
	HERALD_EVENT_SUBSCRIBED,   /* +OK SUB: name's snapshot or replay is
				    * in place; seq: the bus head then */
	HERALD_EVENT_GAP,	   /* seqs first..last may have matched and
				    * are lost; name: the pattern when the
				    * gap answers its resume, else NULL */
	HERALD_EVENT_RESET,	   /* the server's bus is older than what
				    * this client saw (seq went back): the
				    * subscriptions restart from snapshots */
	HERALD_EVENT_ERROR,	   /* the server refused a PUB, SUB or
				    * UNSUB nobody waits for: err, text,
				    * name (topic or pattern); or a token
				    * refresh failed: err HERALD_EAUTH,
				    * name NULL */
	HERALD_EVENT_AUTH	   /* +OK AUTH: the connection is
				    * authenticated, or its token was
				    * replaced; name: the user */
};

struct herald_event {
	enum herald_event_type	 type;
	int			 err;	/* DISCONNECTED, ERROR */
	const char		*text;	/* what happened, for people */
	const char		*name;	/* topic or pattern, or NULL */
	uint64_t		 seq;	/* CONNECTED, SUBSCRIBED */
	uint64_t		 first;	/* GAP */
	uint64_t		 last;	/* GAP */
	int			 retry_ms; /* DISCONNECTED */
};

/* Called for connection and subscription events (all optional). */
typedef void herald_event_cb(struct herald_client *,
    const struct herald_event *, void *arg);

/* Settings of a client; fill with herald_options_init(), then change. */
struct herald_options {
	int		 connect_timeout_ms; /* connect and HELLO (5000) */
	int		 timeout_ms;	/* blocking calls' wait for an answer;
					 * -1 = forever (10000) */
	int		 reconnect;	/* 1: reconnect, resubscribe and resume
					 * when the connection is lost (1) */
	int		 reconnect_min_ms; /* first back-off (100) */
	int		 reconnect_max_ms; /* back-off ceiling (5000) */
	int		 ping_interval_ms; /* PING after this much silence; no
					 * answer in as long again = lost;
					 * 0 = never (30000) */
	int		 nonblocking;	/* 1: herald_open and herald_pub never
					 * wait (0; herald_attach sets it) */
	size_t		 out_limit;	/* bytes queued for the server before
					 * herald_pub waits or fails (4 MiB) */
	size_t		 max_line;	/* longest line taken from the server
					 * (16 MiB + 1 KiB) */
	herald_event_cb	*on_event;	/* NULL: no events */
	void		*event_arg;
};

/* A STATS figure. */
struct herald_stat {
	char		 name[64];
	uint64_t	 value;
};

/* The answer to an asynchronous command (herald_*_async). */
struct herald_reply {
	int				 err;	/* HERALD_OK or an error */
	const char			*text;	/* the error, for people */
	uint64_t			 seq;	/* SYNC: the bus head; GET:
						 * the value's seq */
	const char			*payload; /* GET, NUL-terminated */
	size_t				 payload_len;
	const struct herald_stat	*stats;	/* STATS */
	size_t				 nstats;
};

/* Called once with the answer; data in it is valid only during the call. */
typedef void herald_reply_cb(struct herald_client *,
    const struct herald_reply *, void *arg);

/* --- connecting ---------------------------------------------------------- */

/* Fill opts with the defaults shown in struct herald_options. */
void	 herald_options_init(struct herald_options *opts);

/*
 * A client for addr: "HOST:PORT", "[IPv6]:PORT" or "unix:/PATH"; opts may
 * be NULL for the defaults.  Does not connect: subscribe or attach first
 * if you like, then herald_open().  Returns NULL if opts are invalid or
 * memory is short.
 */
struct herald_client *herald_new(const char *addr,
	    const struct herald_options *opts);

/*
 * Connect.  Blocking: returns HERALD_OK once the server's HELLO came, or
 * the error of the first attempt (herald_errmsg says more; the client can
 * be opened again); HERALD_EINVAL for an address that does not parse.
 * Non-blocking: starts connecting (herald_process goes on) and fails only
 * for an unusable address.
 */
int	 herald_open(struct herald_client *c);

/* herald_new and herald_open in one: NULL on failure, with the error in
 * *err if err is not NULL. */
struct herald_client *herald_connect(const char *addr,
	    const struct herald_options *opts, int *err);

/*
 * Close the connection and free the client.  A blocking client first
 * writes what is queued (at most timeout_ms); call herald_sync() first to
 * know your PUBs arrived.  Safe inside the client's own callbacks.
 */
void	 herald_close(struct herald_client *c);

/* 1 if the client is connected and has seen HELLO, else 0. */
int	 herald_is_connected(const struct herald_client *c);

/* The text of the client's last error ("" if none), e.g. "connect to
 * 127.0.0.1:7400: Connection refused". */
const char *herald_errmsg(const struct herald_client *c);

/* A short description of an error code. */
const char *herald_strerror(int err);

/* 1 if s is a valid topic, pattern or payload (herald-protocol(7), Names). */
int	 herald_valid_topic(const char *s);
int	 herald_valid_pattern(const char *s);
int	 herald_valid_payload(const char *p, size_t len);

/* The library's version, e.g. "0.1.0". */
const char *herald_version(void);

/* --- security ---------------------------------------------------------- */

/* TLS settings; fill with herald_tls_init(), then change. */
struct herald_tls {
	const char	*ca_file;	/* PEM CA certificates the server's
					 * must chain to; NULL: the system's
					 * default store */
	const char	*cert_file;	/* the client's certificate chain
					 * (PEM), or NULL for none */
	const char	*key_file;	/* its private key (PEM); NULL: in
					 * cert_file */
};

/* Fill tls with no files: the system's CAs, no client certificate. */
void	 herald_tls_init(struct herald_tls *tls);

/*
 * Speak TLS (1.2 or later) on every connection: the server's certificate
 * must chain to a CA of tls (or of the system) and name the address's
 * host (an IP address is checked as one); the host name is sent as SNI.
 * Call before herald_open.  The files are read now.  Returns HERALD_OK,
 * HERALD_ETLS (a file is unusable: herald_errmsg says which and why),
 * HERALD_EINVAL (the client is open, or tls is NULL) or HERALD_ENOMEM.
 */
int	 herald_set_tls(struct herald_client *c, const struct herald_tls *tls);

/*
 * Authenticate every connection with "AUTH user password" right after
 * HELLO, before any other command (they wait for +OK AUTH).  Neither may
 * hold a space, tab, CR, LF or NUL; both are copied (and wiped when the
 * client is freed).  Call before herald_open, or on a dead client before
 * opening it again.  Returns HERALD_OK, HERALD_EINVAL or HERALD_ENOMEM.
 * A refusal closes the client with HERALD_EAUTH: it is not tried again.
 */
int	 herald_set_password(struct herald_client *c, const char *user,
	    const char *password);

/*
 * Authenticate every connection with "AUTH token" (a JWT, at most
 * HERALD_TOKEN_MAX bytes, no whitespace), as herald_set_password does.
 * When the token's payload has an "exp" claim and a refresh callback is
 * set, the client asks for a new token before it expires.  Call before
 * herald_open, on a dead client, or at any time to replace the token
 * (sent at once on a live connection).  Returns HERALD_OK, HERALD_EINVAL
 * or HERALD_ENOMEM.
 */
int	 herald_set_token(struct herald_client *c, const char *token);

/*
 * Called for a new token: write it (NUL-terminated) into buf of len
 * bytes and return 0, or return -1 if there is none now.
 */
typedef int herald_token_cb(struct herald_client *, char *buf, size_t len,
    void *arg);

/*
 * Register cb (NULL: none) to renew the token: it is called before the
 * current token's "exp" (a margin of at most 30 s, at most a third of
 * the token's life), and its token sent as "AUTH token" on the live
 * connection, so the server does not end it with BYE auth-expired; also
 * when a connection is made with a token that has expired.  A failed
 * call is reported as a HERALD_EVENT_ERROR (err HERALD_EAUTH) and tried
 * again a second later.  Returns HERALD_OK.
 */
int	 herald_set_token_refresh(struct herald_client *c,
	    herald_token_cb *cb, void *arg);

/* --- publishing ---------------------------------------------------------- */

/*
 * Queue "PUB topic payload" (len bytes) and write what the socket takes.
 * Returns HERALD_OK, HERALD_EINVAL (bad topic or payload), HERALD_ECLOSED,
 * or when out_limit bytes are queued HERALD_EAGAIN (non-blocking) or
 * HERALD_ETIMEOUT (blocking, after waiting for room).  While reconnecting,
 * PUBs are kept and sent once connected.  The server's refusal comes as a
 * HERALD_EVENT_ERROR and from the next herald_sync().
 */
int	 herald_pub(struct herald_client *c, const char *topic,
	    const char *payload, size_t len);

/*
 * Corked (on = 1), herald_pub only writes in big chunks: for bulk loads.
 * Uncorking writes what is queued.
 */
void	 herald_cork(struct herald_client *c, int on);

/*
 * Blocking SYNC: every PUB sent before it is in the bus.  Returns
 * HERALD_OK and the bus head in *seq (may be NULL), or HERALD_ESERVER if
 * the server refused a PUB since the last SYNC (herald_errmsg says which),
 * or the error that stopped it.
 */
int	 herald_sync(struct herald_client *c, uint64_t *seq);

/* SYNC without waiting: cb gets the answer as herald_sync describes it. */
int	 herald_sync_async(struct herald_client *c, herald_reply_cb *cb,
	    void *arg);

/* --- subscribing --------------------------------------------------------- */

/*
 * Subscribe to pattern: cb gets the snapshot (VALs) and then every live
 * MSG, and after a reconnect everything since the last seq seen, or a
 * HERALD_EVENT_GAP.  Does not wait: herald_wait() does, and failures come
 * as HERALD_EVENT_ERROR.  Returns HERALD_OK, HERALD_EINVAL (bad pattern,
 * or already subscribed), HERALD_ECLOSED or HERALD_ENOMEM.
 */
int	 herald_sub(struct herald_client *c, const char *pattern,
	    herald_msg_cb *cb, void *arg);

/* Like herald_sub, resuming after seq since instead of a snapshot. */
int	 herald_sub_since(struct herald_client *c, const char *pattern,
	    uint64_t since, herald_msg_cb *cb, void *arg);

/* Stop a subscription: its callback is not called again. */
int	 herald_unsub(struct herald_client *c, const char *pattern);

/*
 * The client's position in the bus: every message with a seq up to this
 * one that matched its subscriptions was delivered or reported as a gap.
 * A reconnect resumes from here; pass it to herald_sub_since() to resume
 * in another process.
 */
uint64_t herald_position(const struct herald_client *c);

/*
 * Block until every command sent so far is answered (subscriptions in
 * place, snapshots delivered).  Returns HERALD_OK, or the first refusal
 * (HERALD_ESERVER) since the last herald_wait, or the error that stopped it.
 */
int	 herald_wait(struct herald_client *c);

/* --- asking -------------------------------------------------------------- */

/*
 * Blocking GET of topic's retained value.  Returns HERALD_OK with a
 * malloc'd NUL-terminated copy in *payload (free it), its length in *len
 * and its seq in *seq (len and seq may be NULL); or HERALD_ENOTFOUND.
 */
int	 herald_get(struct herald_client *c, const char *topic,
	    char **payload, size_t *len, uint64_t *seq);

/* GET without waiting. */
int	 herald_get_async(struct herald_client *c, const char *topic,
	    herald_reply_cb *cb, void *arg);

/*
 * Blocking STATS.  Returns HERALD_OK with a malloc'd array in *stats (free
 * it) of *n figures, in the server's order.
 */
int	 herald_stats(struct herald_client *c, struct herald_stat **stats,
	    size_t *n);

/* STATS without waiting. */
int	 herald_stats_async(struct herald_client *c, herald_reply_cb *cb,
	    void *arg);

/* --- your own loop ------------------------------------------------------- */

/* The socket to watch, or -1 (none now: only the timeout matters).  It
 * changes when the client reconnects: ask again every time. */
int	 herald_fd(const struct herald_client *c);

/* HERALD_READ and/or HERALD_WRITE: what to watch herald_fd() for. */
int	 herald_events(const struct herald_client *c);

/* Milliseconds until herald_process() must be called even if the socket
 * is quiet (reconnects, timeouts, PINGs), or -1 for no such deadline. */
int	 herald_timeout(const struct herald_client *c);

/*
 * Do what the socket's readiness (HERALD_READ, HERALD_WRITE, or 0 for
 * none) and the clock allow, calling callbacks; never blocks.  Returns
 * HERALD_OK, or the error that closed the client for good.
 */
int	 herald_process(struct herald_client *c, int ready);

/*
 * Wait up to timeout_ms (-1: until something happens) for the socket or a
 * deadline, then herald_process().  Returns as herald_process().
 */
int	 herald_run_once(struct herald_client *c, int timeout_ms);

/*
 * Let a libevent loop drive the client (it becomes non-blocking): from
 * now on herald_process() is called from base's events.  Returns
 * HERALD_OK, or HERALD_ENOMEM.
 */
int	 herald_attach(struct herald_client *c, struct event_base *base);

/* Undo herald_attach: remove the client's events from the base. */
void	 herald_detach(struct herald_client *c);

#ifdef __cplusplus
}
#endif

#endif /* LIBHERALD_H */
