/*
 * libherald's insides: limits, the client structure, and the entry points
 * of each file.  Not installed.  Internal names start with lh_ and are not
 * exported from the shared library.
 */
#ifndef LH_H
#define LH_H

#include <stddef.h>
#include <stdint.h>

#include "herald.h"

/* --- limits and defaults ------------------------------------------------ */
#define LH_CONNECT_TIMEOUT_MS	5000	/* connect and HELLO */
#define LH_TIMEOUT_MS		10000	/* a blocking call's answer */
#define LH_RECONNECT_MIN_MS	100	/* first back-off */
#define LH_RECONNECT_MAX_MS	5000	/* back-off ceiling */
#define LH_STABLE_MS		2000	/* a connection up this long was
					 * healthy: the back-off starts over */
#define LH_PING_INTERVAL_MS	30000	/* silence before a PING */
#define LH_OUT_LIMIT		(4 * 1024 * 1024) /* output queued */
#define LH_MAX_LINE		(16 * 1024 * 1024 + 1024) /* server line */
#define LH_READ_CHUNK		(64 * 1024) /* bytes read at once */
#define LH_IN_KEEP		(256 * 1024) /* input room kept when idle */
#define LH_READS_PER_CALL	16	/* reads per herald_process, so one
					 * busy client cannot starve a loop */
#define LH_CORK_CHUNK		(64 * 1024) /* corked: write this much */
#define LH_ERRMSG_MAX		512	/* herald_errmsg's text */
#define LH_SECRET_MAX		256	/* user and password: the server checks
					 * no longer password (its
					 * USERS_PASSWORD_MAX) */
#define LH_REFRESH_MARGIN_MS	30000	/* ask for a new token this long
					 * before exp: room for a slow token
					 * service and a round trip, with the
					 * server's expiry checked to the
					 * second */
#define LH_REFRESH_SHARE	3	/* ... but at most 1/3 of the token's
					 * life before it, so short-lived
					 * tokens are not renewed at once */
#define LH_REFRESH_RETRY_MS	1000	/* a failed refresh callback is
					 * called again after this */
#define LH_TOKEN_JSON_MAX	(HERALD_TOKEN_MAX * 3 / 4) /* its payload,
					 * decoded */

/* --- addresses (lh_addr.c) ----------------------------------------------- */
struct lh_addr {
	int	is_unix;
	char	host[256];	/* TCP: name or numeric */
	char	port[8];
	char	path[108];	/* unix: the socket's path */
};

/* --- the server's lines (lh_proto.c) ------------------------------------- */
enum lh_line_kind {
	LH_L_HELLO,	/* HELLO herald/1 <seq> [auth]: seq, rest */
	LH_L_MSG,	/* MSG topic seq payload */
	LH_L_VAL,	/* VAL topic seq payload */
	LH_L_GAP,	/* GAP first last: seq, seq2 */
	LH_L_HB,	/* HB seq */
	LH_L_BYE,	/* BYE reason: word */
	LH_L_STAT,	/* STAT name value: word, seq */
	LH_L_OK,	/* +OK VERB rest: word (verb), rest */
	LH_L_ERR,	/* -ERR code detail: word (code), rest (detail) */
	LH_L_PONG,	/* PONG [token] */
	LH_L_BAD	/* anything else */
};

/* One parsed line; pointers into the line, which is modified (NULs). */
struct lh_line {
	enum lh_line_kind	 kind;
	char			*word;		/* topic, verb, code, reason,
						 * stat name */
	char			*rest;		/* payload, or what follows */
	size_t			 rest_len;
	uint64_t		 seq;
	uint64_t		 seq2;
};

/* --- a client ------------------------------------------------------------ */
enum lh_state {
	LH_IDLE,	/* no socket: waiting to (re)connect at retry_at */
	LH_CONNECTING,	/* non-blocking connect in progress */
	LH_TLS,		/* connected, TLS handshake in progress */
	LH_HELLO,	/* connected, waiting for HELLO */
	LH_AUTH,	/* HELLO seen, AUTH sent: waiting for +OK AUTH */
	LH_READY,	/* HELLO (and +OK AUTH) seen: commands flow */
	LH_DEAD		/* closed for good (err in dead_err) */
};

enum lh_sub_state {
	LH_SUB_NEW,	/* to be sent when the connection is ready */
	LH_SUB_SENT,	/* SUB sent, no +OK yet */
	LH_SUB_ACTIVE,	/* +OK SUB seen: messages go to cb */
	LH_SUB_GONE	/* unsubscribed: freed when nothing points to it */
};

struct lh_sub {
	char			*pattern;
	size_t			 len;
	herald_msg_cb		*cb;
	void			*arg;
	enum lh_sub_state	 state;
	int			 has_since;	/* the caller's since */
	uint64_t		 since;
	int			 acked;		/* +OK seen, on any connection:
						 * resubscribe with a since */
	int			 refs;		/* commands pointing to it */
	struct lh_sub		*next;
};

enum lh_cmd_kind { LH_C_SUB, LH_C_UNSUB, LH_C_GET, LH_C_SYNC, LH_C_STATS,
	LH_C_PING, LH_C_AUTH };

/* A command waiting for its answer (or, deferred, to be sent). */
struct lh_cmd {
	enum lh_cmd_kind	 kind;
	struct lh_sub		*sub;		/* SUB, UNSUB */
	int			 has_since;	/* SUB: sent with a since */
	uint64_t		 since;
	int			 gap_seen;	/* SUB: its answer had a GAP */
	char			*line;		/* deferred: the line to send */
	size_t			 line_len;
	herald_reply_cb		*cb;		/* NULL: nobody waits */
	void			*arg;
	char			*payload;	/* GET: the VAL's payload */
	size_t			 payload_len;
	uint64_t		 seq;		/* GET: the VAL's seq */
	struct herald_stat	*stats;		/* STATS */
	size_t			 nstats, cap_stats;
	struct lh_cmd		*next;
};

struct lh_queue {
	struct lh_cmd	*head;
	struct lh_cmd	*tail;
};

struct lh_ev;			/* libevent glue (lh_event.c) */
struct addrinfo;
struct ssl_ctx_st;		/* OpenSSL's SSL_CTX and SSL */
struct ssl_st;
struct ssl_session_st;
struct bio_method_st;

/* Credentials (lh_auth.c): sent as AUTH on every connection. */
struct lh_auth {
	char		 user[LH_SECRET_MAX + 1];	/* password: */
	char		 password[LH_SECRET_MAX + 1];
	char		*token;		/* or a token (malloc'd), or NULL */
	uint64_t	 exp_ms;	/* the token's exp on lh_now_ms's
					 * clock; 0: none known */
	uint64_t	 refresh_at;	/* call refresh then; 0: never */
	herald_token_cb	*refresh;
	void		*refresh_arg;
};

struct herald_client {
	struct herald_options	 opt;
	struct lh_addr		 addr;
	char			 addr_str[300];	/* as given, for messages */
	enum lh_state		 state;
	int			 fd;
	int			 dead_err;	/* LH_DEAD: why */
	int			 broken;	/* lost, to be handled where it
						 * is safe: lh_step, lh_leave */
	int			 closing;	/* herald_close is flushing */
	char			 errmsg[LH_ERRMSG_MAX];

	/* connecting */
	struct addrinfo		*ai_list;	/* resolved addresses */
	struct addrinfo		*ai_next;	/* the next to try */
	int			 blocking_connect; /* herald_connect waits */
	int			 attempts;	/* failed in a row */
	uint64_t		 retry_at;	/* LH_IDLE: when, ms */
	uint64_t		 deadline;	/* CONNECTING, HELLO: give up */
	uint64_t		 ready_at;	/* when HELLO came */
	uint64_t		 rng;		/* back-off jitter */
	char			 bye[64];	/* reason of the last BYE */
	int			 no_retry;	/* lost for a reason a reconnect
						 * cannot mend: stay dead */

	/* TLS (lh_tls.c) and AUTH (lh_auth.c) */
	struct ssl_ctx_st	*tls_ctx;	/* NULL: plain TCP */
	struct ssl_st		*ssl;		/* this connection's */
	struct bio_method_st	*tls_bio;	/* its sockets' BIO method */
	struct ssl_session_st	*tls_session;	/* the last one, to resume */
	int			 tls_want;	/* HERALD_READ/WRITE the TLS
						 * layer waits for: the
						 * handshake, or a read that
						 * must write first */
	size_t			 out_auth;	/* LH_AUTH: bytes of the AUTH
						 * line still to write */
	struct lh_auth		 auth;

	/* input */
	char			*in;
	size_t			 in_len, in_cap;
	size_t			 in_scan;	/* no LF before this offset */
	uint64_t		 last_in;	/* ms of the last byte read */
	uint64_t		 ping_sent;	/* ms, 0 = no PING out */

	/* output */
	char			*out;
	size_t			 out_off, out_len, out_cap;
	int			 corked;

	/* commands */
	struct lh_queue		 pending;	/* sent, answers due in order */
	struct lh_queue		 deferred;	/* issued while not ready */
	int			 wait_err;	/* first refusal: herald_wait */
	char			 wait_msg[LH_ERRMSG_MAX];
	int			 pub_err;	/* PUB refused since SYNC */
	char			 pub_msg[LH_ERRMSG_MAX];

	/* subscriptions and the position in the bus */
	struct lh_sub		*subs;
	uint64_t		 pos;		/* see herald_position */
	uint64_t		 replay_until;	/* a resume replays to here */
	uint64_t		 hello_seq;

	/* callbacks and re-entry */
	int			 depth;		/* public calls on the stack */
	int			 in_callback;	/* inside a user callback */
	int			 close_asked;	/* herald_close while depth>0 */

	struct lh_ev		*ev;		/* herald_attach, or NULL */
};

/* --- entry points -------------------------------------------------------- */
/* lh_addr.c */
int	lh_addr_parse(const char *s, struct lh_addr *a, char *err,
	    size_t errlen);

/* lh_proto.c: pure, no I/O (names: common/topic.c) */
int	lh_payload_valid(const char *p, size_t len);
int	lh_parse_seq(const char *s, size_t len, uint64_t *out);
void	lh_parse_line(char *line, size_t len, struct lh_line *l);
uint64_t lh_backoff_ms(int attempts, int min_ms, int max_ms,
	    uint64_t *rng);
void	lh_escape(char *dst, size_t dstlen, const char *src, size_t len);

/* lh_client.c */
uint64_t lh_now_ms(void);
void	lh_seterr(struct herald_client *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	lh_fail(struct herald_client *, int err, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	lh_enter(struct herald_client *);
int	lh_leave(struct herald_client *, int rc);
void	lh_event(struct herald_client *, enum herald_event_type, int err,
	    const char *text, const char *name, uint64_t a, uint64_t b);
void	lh_lost(struct herald_client *, int err);
int	lh_wait_until(struct herald_client *, int (*done)(void *), void *arg,
	    int timeout_ms);
void	lh_poll_step(struct herald_client *, int wait_ms);

/* lh_loop.c */
void	lh_step(struct herald_client *, int ready);

/* lh_conn.c */
void	lh_connect_start(struct herald_client *);
void	lh_connect_check(struct herald_client *);
void	lh_close_socket(struct herald_client *);
void	lh_connect_timeout(struct herald_client *);
void	lh_ready(struct herald_client *, uint64_t head);

/* lh_io.c */
char	*lh_out_reserve(struct herald_client *, size_t n);
int	lh_out_prepend(struct herald_client *, const char *line, size_t n);
size_t	lh_out_pending(const struct herald_client *);
void	lh_write(struct herald_client *);
void	lh_read(struct herald_client *);
void	lh_keep_pubs(struct herald_client *);

/* lh_cmd.c */
struct lh_cmd *lh_cmd_new(enum lh_cmd_kind);
void	lh_cmd_free(struct lh_cmd *);
struct lh_cmd *lh_queue_pop(struct lh_queue *);
void	lh_queue_push(struct lh_queue *, struct lh_cmd *);
void	lh_cmd_done(struct herald_client *, struct lh_cmd *, int err,
	    const char *text, uint64_t seq);
int	lh_send_cmd(struct herald_client *, struct lh_cmd *, const char *line,
	    size_t len);
void	lh_fail_cmds(struct herald_client *, struct lh_queue *, int err);
void	lh_flush_deferred(struct herald_client *);

/* lh_sub.c */
int	lh_send_sub(struct herald_client *, struct lh_sub *);
void	lh_deliver(struct herald_client *, struct lh_sub *, const char *topic,
	    uint64_t seq, const char *payload, size_t len, int is_value);
void	lh_deliver_all(struct herald_client *, const char *topic,
	    uint64_t seq, const char *payload, size_t len, int is_value);
void	lh_subs_reset(struct herald_client *);
void	lh_subs_restart(struct herald_client *);
void	lh_sweep_subs(struct herald_client *);
void	lh_free_subs(struct herald_client *);

/* lh_tls.c */
void	lh_tls_start(struct herald_client *);
void	lh_tls_handshake(struct herald_client *);
int	lh_tls_events(const struct herald_client *);
long	lh_sock_send(struct herald_client *, const char *buf, size_t len);
long	lh_sock_recv(struct herald_client *, char *buf, size_t len);
int	lh_tls_pending(const struct herald_client *);
void	lh_tls_close(struct herald_client *);
void	lh_tls_free(struct herald_client *);

/* lh_auth.c */
int	lh_token_exp(const char *token, size_t len, int64_t *exp);
int	lh_auth_has(const struct herald_client *);
void	lh_auth_start(struct herald_client *, uint64_t head, int required);
void	lh_auth_answer(struct herald_client *, struct lh_cmd *, int ok,
	    const char *text);
uint64_t lh_auth_deadline(const struct herald_client *);
void	lh_auth_timer(struct herald_client *, uint64_t now);
void	lh_auth_free(struct herald_client *);

/* lh_reply.c */
void	lh_handle_line(struct herald_client *, char *line, size_t len);

/* lh_event.c */
void	lh_ev_update(struct herald_client *);
void	lh_ev_drop_io(struct herald_client *);
void	lh_ev_free(struct herald_client *);

#endif /* LH_H */
