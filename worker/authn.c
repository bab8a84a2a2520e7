/*
 * Who a connection is and what it may do (herald-protocol(7), "Identity
 * and permissions"): AUTH with a password or a token, the checks of SUB,
 * GET and PUB, the failure delay, token expiry, and a reload that
 * narrows what connections may read.
 *
 * A connection starts anonymous and holds no state here; the first AUTH
 * gives it a struct client_auth.  Password checks cost one slow hash on
 * purpose, so they queue, and the loop runs one per turn: a storm of
 * AUTHs delays those clients, never the fan-out to the others.  A cache
 * (users.h) makes a repeated check cost a digest.  Tokens are checked at
 * once (a signature costs microseconds).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "authdb.h"
#include "grant.h"
#include "handover.h"
#include "ident.h"
#include "jwt.h"
#include "perm.h"
#include "tls.h"
#include "topic.h"
#include "users.h"
#include "worker.h"

/* What a connection that has sent an AUTH holds. */
struct client_auth {
	struct grant	*grant;		/* its user and lists; NULL while it
					 * is anonymous */
	uint64_t	 expires_ms;	/* now_ms() at the token's exp; 0:
					 * never */
	struct auth_job	*job;		/* a check or a reply under way */
	uint8_t		 failures;	/* failed AUTHs on the connection */
	unsigned	 token_perms:1;	/* the lists came from its token:
					 * a reload leaves them alone */
};

/* What waits for the loop: a password to hash, or a failure's reply. */
enum job_kind { JOB_HASH, JOB_FAILED };

struct auth_job {
	struct auth_job	*next;
	struct client	*c;		/* NULL: the client was freed */
	enum job_kind	 kind;
	uint64_t	 due_ms;	/* JOB_FAILED: when to answer */
	size_t		 pwlen;
	char		 user[IDENT_MAX + 1];
	char		 pw[USERS_PASSWORD_MAX + 1];
};

struct job_queue {
	struct auth_job	*head, *tail;
};

struct authn {
	struct authdb		*db;
	struct users_cache	*cache;		/* shared by all workers */
	struct grant_table	 grants;	/* the connections' lists */
	struct job_queue	 hashes;	/* one hashed per loop turn */
	struct job_queue	 failed;	/* answered fail_delay_ms late;
						 * one delay for all: in order */
	struct event		*hash_ev;
	struct event		*failed_ev;
};

static void	hash_cb(evutil_socket_t, short, void *);
static void	failed_cb(evutil_socket_t, short, void *);
static void	recheck(struct client *);

/* Take the database the master loaded (inherited across the fork). */
void
authn_init(struct worker *w)
{
	struct authn *a = calloc(1, sizeof(*a));

	if (a == NULL)
		fatalx("out of memory for the authentication state");
	a->cache = w->h->users_cache;
	a->db = w->h->auth;
	w->h->auth = NULL;	/* the worker's own from now on */
	a->hash_ev = ev_new_or_die(w->base, -1, 0, hash_cb, w);
	a->failed_ev = ev_new_or_die(w->base, -1, 0, failed_cb, w);
	w->auth = a;
}

static void
queue_push(struct job_queue *q, struct auth_job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct auth_job *
queue_pop(struct job_queue *q)
{
	struct auth_job *j = q->head;

	if (j != NULL && (q->head = j->next) == NULL)
		q->tail = NULL;
	return j;
}

static void
job_free(struct auth_job *j)
{
	OPENSSL_cleanse(j->pw, sizeof(j->pw));
	free(j);
}

/* The client's identity, made on its first AUTH; NULL: no memory. */
static struct client_auth *auth_of(struct client *);

/* A job for c, whose commands wait for it; NULL when out of memory (c
 * is closed). */
static struct auth_job *
job_new(struct client *c, enum job_kind kind)
{
	struct auth_job *j;

	if (auth_of(c) == NULL || (j = calloc(1, sizeof(*j))) == NULL) {
		client_kill(c);
		return NULL;
	}
	j->c = c;
	j->kind = kind;
	c->auth->job = j;
	c->auth_wait = 1;
	return j;
}

/* Queue j, arming the queue's event to fire after tv if it was empty. */
static void
job_queue(struct job_queue *q, struct event *ev, const struct timeval *tv,
    struct auth_job *j)
{
	if (q->head == NULL)
		ev_add_or_die(ev, tv);
	queue_push(q, j);
}

/* The client's identity, made on its first AUTH; NULL: no memory. */
static struct client_auth *
auth_of(struct client *c)
{
	if (c->auth == NULL)
		c->auth = calloc(1, sizeof(*c->auth));
	return c->auth;
}

static int
authenticated(const struct client *c)
{
	return c->auth != NULL && c->auth->grant != NULL;
}

/* 1 if the client must AUTH before anything but AUTH, PING and QUIT. */
int
authn_required(const struct client *c)
{
	return c->need_auth && !authenticated(c);
}

/* 1 if the client may read what the valid pattern (or topic) p names. */
int
authn_may_read(const struct client *c, const char *p, size_t len,
    int is_pattern)
{
	const struct perm_list *pl = &c->w->auth->db->anonymous;

	if (authenticated(c)) {
		if (!c->auth->grant->lists)
			return 1;
		pl = &c->auth->grant->read;
	} else if (c->kind == LISTEN_INGEST && !c->need_auth) {
		return 1;	/* a trusted ingest listener (authn_may_publish) */
	}
	return is_pattern ? perm_allows_pattern(pl, p, len) :
	    perm_allows_topic(pl, p, len);
}

/* 1 if the client may PUB to the valid topic t. */
int
authn_may_publish(const struct client *c, const char *t, size_t len)
{
	const struct strlist *pl = &c->w->cfg->clients_publish;

	if (authenticated(c) && c->auth->grant->lists)
		return perm_allows_topic(&c->auth->grant->publish, t, len);
	/* An ingest connection that reached this point is trusted: its
	 * listener is local (and may read and publish anything), or it
	 * authenticated. */
	if (c->kind == LISTEN_INGEST)
		return 1;
	for (int i = 0; i < pl->n; i++)
		if (topic_match(pl->v[i], strlen(pl->v[i]), t, len))
			return 1;
	return 0;
}

/* now_ms() when the client's token expires; 0 if it never does. */
uint64_t
authn_expires_ms(const struct client *c)
{
	return c->auth != NULL ? c->auth->expires_ms : 0;
}

/* Make the client user with these lists (taken; NULL: none), in place
 * of what it was.  -1: no memory (the caller closes it). */
static int
set_grant(struct client *c, const char *user, struct perm_list *read,
    struct perm_list *publish)
{
	struct grant_table *t = &c->w->auth->grants;
	struct grant *old = c->auth->grant;	/* user may be its name */

	c->auth->grant = grant_get(t, user, read, publish);
	grant_put(t, old);
	return c->auth->grant != NULL ? 0 : -1;
}

/* Make the client user with its lists from the ACL (no ACL: none, it
 * reads everything, publishes as anyone may).  -1: no memory. */
static int
acl_perms(struct client *c, const char *user, const struct authdb *db)
{
	struct perm_list read, publish;

	c->auth->token_perms = 0;
	if (db->acl == NULL)
		return set_grant(c, user, NULL, NULL);
	perm_init(&read);
	perm_init(&publish);
	if (acl_permissions(db->acl, user, &read, &publish) == -1) {
		perm_free(&read);
		perm_free(&publish);
		return -1;
	}
	return set_grant(c, user, &read, &publish);
}

/* The answer to a failed AUTH, after its delay: -ERR, and BYE at the
 * limit.  The client's commands go on (the caller flushes). */
static void
answer_failure(struct client *c)
{
	struct worker *w = c->w;

	c->auth_wait = 0;
	client_reply_err(c, PERR_AUTH_FAILED, NULL, 0);
	if (c->auth != NULL &&
	    c->auth->failures >= w->cfg->clients_max_auth_failures) {
		log_info("client %u: %u failed AUTHs "
		    "(clients.max_auth_failures): closing", c->id,
		    c->auth->failures);
		client_bye(c, "auth-failed");
	}
}

/*
 * A failed AUTH: the cause goes to the log (never the secret), the
 * client gets the same line whatever it was, auth.fail_delay_ms later;
 * its commands wait meanwhile.
 */
static void
failed(struct client *c, const char *who, const char *cause)
{
	struct worker *w = c->w;
	struct client_auth *a = auth_of(c);
	char esc[IDENT_MAX * 4 + 1];
	size_t n = proto_escape(esc, sizeof(esc) - 1, who, strlen(who));

	esc[n] = '\0';
	worker_limit(w, CTR_AUTH_FAILURES, 0, "client %u: AUTH %s failed: "
	    "%s", c->id, esc, cause);
	if (a == NULL) {
		client_kill(c);
		return;
	}
	if (a->failures < UINT8_MAX)
		a->failures++;
	if (w->cfg->auth_fail_delay_ms == 0) {
		answer_failure(c);
		return;
	}
	struct auth_job *j = job_new(c, JOB_FAILED);
	if (j == NULL)
		return;
	j->due_ms = now_ms() + w->cfg->auth_fail_delay_ms;
	job_queue(&w->auth->failed, w->auth->failed_ev, &(struct timeval){
	    w->cfg->auth_fail_delay_ms / 1000,
	    w->cfg->auth_fail_delay_ms % 1000 * 1000 }, j);
}

/*
 * Give the client user's identity, its expiry and permissions from the
 * token's claims (NULL: a password; the ACL's).  Returns 1 for a first
 * identity, 0 for a refresh, -1 when the client was closed (no memory).
 */
static int
grant_user(struct client *c, const char *user, struct jwt_claims *claims)
{
	struct worker *w = c->w;
	struct client_auth *a = auth_of(c);
	int first, r;

	if (a == NULL) {
		client_kill(c);
		return -1;
	}
	first = a->grant == NULL;
	a->expires_ms = 0;
	if (claims != NULL && claims->exp != 0) {
		int64_t left = claims->exp - (int64_t)time(NULL);
		a->expires_ms = now_ms() + (left > 0 ? (uint64_t)left * 1000 : 0);
	}
	if (claims != NULL && claims->has_perms) {
		r = set_grant(c, user, &claims->read, &claims->publish);
		a->token_perms = 1;
	} else {
		r = acl_perms(c, user, w->auth->db);
	}
	if (r == -1) {
		log_warnx("client %u: out of memory for %s's permissions",
		    c->id, user);
		client_kill(c);
		return -1;
	}
	a->failures = 0;
	log_debug("client %u: authenticated as %s by %s", c->id, user,
	    claims != NULL ? "token" : "password");
	if (a->expires_ms != 0)
		timers_soon(c);		/* its slot may be past the expiry */
	return first;
}

/*
 * A good AUTH for user: a first one, or a refresh (the same user again),
 * which replaces the expiry and, from a token, the permissions.  claims
 * is NULL for a password.
 */
static void
succeeded(struct client *c, const char *user, struct jwt_claims *claims)
{
	int first;

	if (c->auth != NULL && c->auth->grant != NULL &&
	    strcmp(c->auth->grant->user, user) != 0) {
		failed(c, user, "a connection authenticated as another user");
		return;
	}
	if ((first = grant_user(c, user, claims)) == -1)
		return;
	client_replyf(c, "+OK AUTH %s\n", user);
	if (!first)
		recheck(c);		/* a refreshed token's new claims */
}

/* Check a token; JWT_OK fills claims, else *cause says why not. */
static enum jwt_result
token_check(struct client *c, const char *tok, size_t len,
    struct jwt_claims *claims, const char **cause)
{
	const struct authdb *db = c->w->auth->db;
	enum jwt_result r;

	if (db->keys == NULL) {
		*cause = "no auth.jwt_keys configured";
		return JWT_MALFORMED;
	}
	r = jwt_check(db->keys, &db->jwt_opts, tok, len, time(NULL), claims);
	*cause = jwt_result_str(r);
	return r;
}

static void
auth_token(struct client *c, const char *tok, size_t len)
{
	struct jwt_claims claims;
	const char *cause;

	if (token_check(c, tok, len, &claims, &cause) != JWT_OK) {
		failed(c, "(token)", cause);
		return;
	}
	succeeded(c, claims.sub, &claims);
	jwt_claims_free(&claims);
}

/*
 * A token an HTTP request carries (Authorization: Bearer, ?token=): the
 * connection is its user as after AUTH <token>, without a reply.  A
 * failure is counted and logged as a failed AUTH.  Returns 0 or -1 (a
 * failure, or the client closed for want of memory).
 */
int
authn_http_token(struct client *c, const char *tok, size_t len)
{
	struct jwt_claims claims;
	const char *cause = "longer than the longest token";
	int r = -1;

	if (len <= JWT_TOKEN_MAX &&
	    token_check(c, tok, len, &claims, &cause) == JWT_OK) {
		r = grant_user(c, claims.sub, &claims) == -1 ? -1 : 0;
		jwt_claims_free(&claims);
		return r;
	}
	worker_limit(c->w, CTR_AUTH_FAILURES, 0, "client %u: HTTP token "
	    "refused: %s", c->id, cause);
	return -1;
}

/* Check a password now (a hit of the cache), or queue its hash. */
static void
auth_password(struct client *c, const char *user, size_t ulen,
    const char *pw, size_t pwlen)
{
	struct authn *a = c->w->auth;
	struct auth_job *j;
	char name[IDENT_MAX + 1];

	if (!ident_valid(user, ulen)) {
		failed(c, "(a bad user name)", "not a user name");
		return;
	}
	memcpy(name, user, ulen);
	name[ulen] = '\0';
	if (a->db->users == NULL) {
		failed(c, name, "no auth.users configured");
		return;
	}
	if (pwlen > USERS_PASSWORD_MAX) {
		failed(c, name, users_result_str(USERS_REFUSED));
		return;
	}
	if (users_cache_hit(a->cache, name, pw, pwlen)) {
		succeeded(c, name, NULL);
		return;
	}
	if ((j = job_new(c, JOB_HASH)) == NULL)
		return;
	memcpy(j->user, name, ulen + 1);
	memcpy(j->pw, pw, pwlen);
	j->pwlen = pwlen;
	job_queue(&a->hashes, a->hash_ev, &(struct timeval){ 0, 0 }, j);
}

/*
 * A TLS handshake is done: with auth.cert_user, the CN of the verified
 * client certificate (tls.client_ca) is the connection's user, with its
 * ACL permissions, before HELLO (which then does not ask for AUTH).  A
 * CN that cannot be a user leaves the connection anonymous.
 */
void
authn_certificate(struct client *c)
{
	char cn[IDENT_MAX + 2];
	int n;

	if (!c->w->cfg->auth_cert_user ||
	    (n = tls_peer_cn(c, cn, sizeof(cn))) < 0)
		return;
	if (!ident_valid(cn, n)) {
		worker_limit(c->w, CTR_AUTH_FAILURES, 0, "client %u: its "
		    "certificate's CN cannot be a user name: it stays "
		    "anonymous", c->id);
		return;
	}
	if (auth_of(c) == NULL || acl_perms(c, cn, c->w->auth->db) == -1) {
		log_warnx("client %u: out of memory for its identity", c->id);
		client_kill(c);
		return;
	}
	log_debug("client %u: authenticated as %s by its certificate", c->id,
	    cn);
}

/* AUTH user password, or AUTH token (cmd parsed by proto_parse). */
void
authn_command(struct client *c, const struct cmd *cmd)
{
	c->errors = 0;
	if (cmd->payload_len > 0)
		auth_password(c, cmd->name, cmd->name_len, cmd->payload,
		    cmd->payload_len);
	else if (cmd->name_len > JWT_TOKEN_MAX)
		failed(c, "(token)", "longer than the longest token");
	else
		auth_token(c, cmd->name, cmd->name_len);
}

/* One password hash per loop turn: the oldest waiting. */
static void
hash_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct authn *a = w->auth;
	struct auth_job *j;

	while ((j = queue_pop(&a->hashes)) != NULL && j->c == NULL)
		job_free(j);
	if (a->hashes.head != NULL)
		ev_add_or_die(a->hash_ev, &(struct timeval){ 0, 0 });
	if (j == NULL)
		return;
	struct client *c = j->c;
	c->auth->job = NULL;
	c->auth_wait = 0;
	enum users_result r = USERS_UNKNOWN;
	if (a->db->users != NULL) {
		/* Another worker may have checked it since it queued. */
		if (!users_cache_hit(a->cache, j->user, j->pw, j->pwlen))
			bus_counter_add(w->bus, w->slot, CTR_AUTH_HASHES, 1);
		r = users_check(a->db->users, a->cache, j->user, j->pw,
		    j->pwlen);
	}
	if (c->state != CS_OPEN)
		;	/* closed meanwhile (a stop): nothing to answer */
	else if (r == USERS_OK)
		succeeded(c, j->user, NULL);
	else
		failed(c, j->user, users_result_str(r));
	if (!c->auth_wait && c->state != CS_DEAD)
		client_flush(c);
	job_free(j);
}

/* The failures whose delay is over: answer them. */
static void
failed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct authn *a = w->auth;
	uint64_t now = now_ms();
	struct auth_job *j;

	while ((j = a->failed.head) != NULL && (j->c == NULL ||
	    j->due_ms <= now)) {
		queue_pop(&a->failed);
		if (j->c != NULL) {
			j->c->auth->job = NULL;
			j->c->auth_wait = 0;
			if (j->c->state == CS_OPEN) {
				answer_failure(j->c);
				client_flush(j->c);
			}
		}
		job_free(j);
	}
	if (j != NULL) {
		uint64_t ms = j->due_ms - now;
		ev_add_or_die(a->failed_ev, &(struct timeval){ ms / 1000,
		    ms % 1000 * 1000 });
	}
}

/* The client is being freed: forget its identity and what waits for it. */
void
authn_forget(struct client *c)
{
	if (c->auth == NULL)
		return;
	if (c->auth->job != NULL)
		c->auth->job->c = NULL;
	grant_put(&c->w->auth->grants, c->auth->grant);
	free(c->auth);
	c->auth = NULL;
}

/* The token has expired (timers.c): say so and close. */
void
authn_expired(struct client *c)
{
	worker_limit(c->w, CTR_AUTH_EXPIRED, 0, "client %u: the token of %s "
	    "expired without a refresh: closing", c->id,
	    c->auth->grant->user);
	c->auth->expires_ms = 0;
	client_bye(c, "auth-expired");
	client_flush(c);
}

/*
 * End each subscription the client may no longer read (a reload, or a
 * refreshed token): an unprompted "-ERR forbidden <pattern>", and no MSG
 * for it after.  A snapshot being sent is a command's answer, which the
 * line must not split, and a conflation holds one of the subscriptions:
 * the client is looked at again when it ends (authn_snapshot_done).
 * The caller flushes.
 */
static void
recheck(struct client *c)
{
	struct sub **pp = &c->subs;

	if (client_snapshot(c)) {
		c->auth_recheck = 1;
		return;
	}
	c->auth_recheck = 0;
	while (*pp != NULL) {
		struct sub *s = *pp;
		if (authn_may_read(c, s->pattern, s->len, 1)) {
			pp = &s->cnext;
			continue;
		}
		*pp = s->cnext;
		c->nsubs--;
		worker_limit(c->w, CTR_FORBIDDEN, 0, "client %u: SUB %.*s "
		    "ended: no longer allowed", c->id, (int)s->len,
		    s->pattern);
		client_reply_err(c, PERR_FORBIDDEN, s->pattern, s->len);
		index_remove(&c->w->idx, s);
	}
}

/* A snapshot has been sent: a recheck it held off runs now. */
void
authn_snapshot_done(struct client *c)
{
	if (c->auth_recheck && c->state == CS_OPEN)
		recheck(c);
}

/*
 * A reload: load the users, the ACL and the keys anew (on a failure the
 * old ones stay, and say so), forget the cached checks, work out each
 * authenticated connection's permissions again (a token's own claims
 * stay), and end the subscriptions no longer allowed.
 */
void
authn_reload(struct worker *w)
{
	struct authn *a = w->auth;
	struct authdb *db = authdb_load(w->cfg, NULL, NULL);
	struct client *c;

	if (db == NULL) {
		log_warnx("reload: the auth files could not be loaded: the "
		    "old ones stay in force in this worker");
		return;
	}
	authdb_free(a->db);
	a->db = db;
	users_cache_clear(a->cache);
	CLIENTS_FOREACH(w, c) {
		if (c->state != CS_OPEN)
			continue;
		if (authenticated(c) && !c->auth->token_perms &&
		    acl_perms(c, c->auth->grant->user, db) == -1) {
			log_warnx("client %u: out of memory for its "
			    "permissions", c->id);
			client_kill(c);
			continue;
		}
		recheck(c);
		client_flush(c);
	}
}

/* --- an upgrade's hand-over (handover.c) --------------------------------- */

static void
save_list(struct ho_out *o, const struct perm_list *pl)
{
	ho_u16(o, (uint16_t)pl->n);
	for (size_t i = 0; i < pl->n; i++)
		ho_str(o, pl->v[i], strlen(pl->v[i]));
}

static int
restore_list(struct ho_in *in, struct perm_list *pl)
{
	unsigned n = ho_get_u16(in);

	if (n > PERM_MAX)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		size_t len;
		const char *p = ho_get_str(in, &len);
		if (p == NULL || !pattern_valid(p, len) ||
		    perm_add(pl, p, len) == -1)
			return -1;
	}
	return 0;
}

/* The client's identity and permissions as they are: the new binary's
 * worker takes them as they are (no check again, no reload). */
void
authn_save(const struct client *c, struct ho_out *o)
{
	const struct client_auth *a = c->auth;
	const struct grant *g = a != NULL ? a->grant : NULL;

	ho_u8(o, a != NULL);
	if (a == NULL)
		return;
	ho_u8(o, a->failures);
	ho_u8(o, a->token_perms);
	ho_u64(o, a->expires_ms);	/* (CLOCK_MONOTONIC: system-wide) */
	ho_u8(o, g != NULL);
	if (g == NULL)
		return;
	ho_str(o, g->user, strlen(g->user));
	ho_u8(o, g->lists);
	save_list(o, &g->read);
	save_list(o, &g->publish);
}

int
authn_restore(struct client *c, struct ho_in *in)
{
	struct perm_list read, publish;
	char user[IDENT_MAX + 1];
	size_t len;
	int r = -1;

	if (!ho_get_u8(in))
		return in->bad ? -1 : 0;
	struct client_auth *a = auth_of(c);
	if (a == NULL)
		return -1;
	a->failures = ho_get_u8(in);
	a->token_perms = ho_get_u8(in) & 1;
	a->expires_ms = ho_get_u64(in);
	if (!ho_get_u8(in))
		return in->bad ? -1 : 0;
	const char *u = ho_get_str(in, &len);
	int lists = ho_get_u8(in);
	if (u == NULL || len > IDENT_MAX || !ident_valid(u, len))
		return -1;
	memcpy(user, u, len);
	user[len] = '\0';
	perm_init(&read);
	perm_init(&publish);
	if (restore_list(in, &read) == 0 && restore_list(in, &publish) == 0 &&
	    !in->bad)
		r = set_grant(c, user, lists ? &read : NULL,
		    lists ? &publish : NULL);
	perm_free(&read);
	perm_free(&publish);
	return r;
}
