/*
 * AUTH (herald-protocol(7), Identity): the client's credentials, sent
 * first on every connection (the connection is ready once +OK AUTH came,
 * and only then resubscribes), and the token's renewal: the caller's
 * callback is asked for a new token before the current one's "exp", and
 * the new one sent on the live connection.  A refusal ends the client:
 * the same credentials would be refused again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "lh.h"

/* 1 if s may be one word of a line: 1..max bytes, no blank or line end. */
static int
word_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > max)
		return 0;
	return strpbrk(s, " \t\r\n") == NULL;
}

/* Forget the credentials, wiping the secrets. */
static void
auth_clear(struct lh_auth *a)
{
	OPENSSL_cleanse(a->password, sizeof(a->password));
	a->user[0] = a->password[0] = '\0';
	if (a->token != NULL) {
		OPENSSL_cleanse(a->token, strlen(a->token));
		free(a->token);
	}
	a->token = NULL;
	a->exp_ms = a->refresh_at = 0;
}

/* Free what the credentials hold (the client goes away). */
void
lh_auth_free(struct herald_client *c)
{
	auth_clear(&c->auth);
}

/* 1 if the client has credentials to send. */
int
lh_auth_has(const struct herald_client *c)
{
	return c->auth.token != NULL || c->auth.user[0] != '\0';
}

/* Authenticate with a password from now on. */
int
herald_set_password(struct herald_client *c, const char *user,
    const char *password)
{
	lh_enter(c);
	if (!word_ok(user, LH_SECRET_MAX) || !word_ok(password, LH_SECRET_MAX))
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "herald_set_"
		    "password: a user and a password of 1 to %d bytes, without"
		    " blanks or line ends", LH_SECRET_MAX));
	if (c->state != LH_DEAD)
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "herald_set_"
		    "password: the client is open"));
	auth_clear(&c->auth);
	snprintf(c->auth.user, sizeof(c->auth.user), "%s", user);
	snprintf(c->auth.password, sizeof(c->auth.password), "%s", password);
	return lh_leave(c, HERALD_OK);
}

/* The wall clock in milliseconds since the epoch. */
static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Take token as the client's (a copy): its exp on the monotonic clock,
 * and when to renew it: LH_REFRESH_MARGIN_MS before exp, or a third of
 * its remaining life, whichever is shorter.  Returns HERALD_OK or
 * HERALD_ENOMEM.
 */
static int
take_token(struct herald_client *c, const char *token)
{
	struct lh_auth *a = &c->auth;
	char *t = strdup(token);
	int64_t exp, left;
	uint64_t now = lh_now_ms();

	if (t == NULL)
		return lh_fail(c, HERALD_ENOMEM, "out of memory");
	auth_clear(a);
	a->token = t;
	if (lh_token_exp(t, strlen(t), &exp) != 1)
		return HERALD_OK;	/* no exp known: never renewed */
	left = exp * 1000 - wall_ms();
	a->exp_ms = left > 0 ? now + left : now;
	left = left > 0 ? left / LH_REFRESH_SHARE : 0;
	a->refresh_at = a->exp_ms - (left < LH_REFRESH_MARGIN_MS ? left :
	    LH_REFRESH_MARGIN_MS);
	if (a->refresh_at == 0)
		a->refresh_at = 1;
	return HERALD_OK;
}

/* The AUTH line of the credentials, into buf; its length. */
static size_t
auth_line(const struct herald_client *c, char *buf, size_t len)
{
	if (c->auth.token != NULL)
		return snprintf(buf, len, "AUTH %s\n", c->auth.token);
	return snprintf(buf, len, "AUTH %s %s\n", c->auth.user,
	    c->auth.password);
}

/* Send AUTH with the current token on the live connection. */
static int
send_token(struct herald_client *c)
{
	char line[HERALD_TOKEN_MAX + 8];
	struct lh_cmd *cmd = lh_cmd_new(LH_C_AUTH);
	size_t n;
	int rc;

	if (cmd == NULL)
		return lh_fail(c, HERALD_ENOMEM, "out of memory");
	n = auth_line(c, line, sizeof(line));
	rc = lh_send_cmd(c, cmd, line, n);
	OPENSSL_cleanse(line, sizeof(line));
	return rc;
}

/* Authenticate with a token from now on (at once if connected). */
int
herald_set_token(struct herald_client *c, const char *token)
{
	int rc;

	lh_enter(c);
	if (!word_ok(token, HERALD_TOKEN_MAX))
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "herald_set_"
		    "token: a token of 1 to %d bytes, without blanks or line "
		    "ends", HERALD_TOKEN_MAX));
	if ((rc = take_token(c, token)) == HERALD_OK && c->state == LH_READY)
		rc = send_token(c);
	return lh_leave(c, rc);
}

/* Renew the token with cb from now on. */
int
herald_set_token_refresh(struct herald_client *c, herald_token_cb *cb,
    void *arg)
{
	c->auth.refresh = cb;
	c->auth.refresh_arg = arg;
	return HERALD_OK;
}

/*
 * Ask the caller's callback for a new token and take it.  Returns
 * HERALD_OK, or HERALD_EAUTH after an error event (no token, or one
 * that expires no later than the current one).
 */
static int
refresh_token(struct herald_client *c)
{
	char buf[HERALD_TOKEN_MAX + 1];
	uint64_t old_exp = c->auth.exp_ms;
	int rc;

	buf[0] = '\0';
	c->depth++;
	c->in_callback++;
	rc = c->auth.refresh(c, buf, sizeof(buf), c->auth.refresh_arg);
	c->in_callback--;
	c->depth--;
	buf[sizeof(buf) - 1] = '\0';
	if (rc != 0 || !word_ok(buf, HERALD_TOKEN_MAX))
		rc = lh_fail(c, HERALD_EAUTH, "the token refresh callback "
		    "gave no token");
	else if ((rc = take_token(c, buf)) == HERALD_OK &&
	    c->auth.exp_ms != 0 && c->auth.exp_ms <= old_exp)
		rc = lh_fail(c, HERALD_EAUTH, "the token refresh callback "
		    "gave a token that expires no later than the last");
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc != HERALD_OK) {
		c->auth.refresh_at = lh_now_ms() + LH_REFRESH_RETRY_MS;
		lh_event(c, HERALD_EVENT_ERROR, rc, c->errmsg, NULL, 0, 0);
	}
	return rc;
}

/*
 * HELLO came (head: the bus head; required: it said "auth").  With
 * credentials: AUTH goes out first, ahead of the PUBs kept from the last
 * connection, and the connection waits for its answer (LH_AUTH).  A
 * token due for renewal is renewed first.  Without: ready, unless the
 * server requires AUTH, which ends the client.
 */
void
lh_auth_start(struct herald_client *c, uint64_t head, int required)
{
	char line[HERALD_TOKEN_MAX + 2 * LH_SECRET_MAX + 8];
	struct lh_cmd *cmd;
	size_t n;

	if (!lh_auth_has(c)) {
		if (!required) {
			lh_ready(c, head);
			return;
		}
		c->no_retry = 1;
		c->broken = lh_fail(c, HERALD_EAUTH, "%s requires AUTH: give "
		    "a user and password, or a token", c->addr_str);
		return;
	}
	if (c->auth.token != NULL && c->auth.refresh != NULL &&
	    c->auth.refresh_at != 0 && lh_now_ms() >= c->auth.refresh_at)
		refresh_token(c);
	if ((cmd = lh_cmd_new(LH_C_AUTH)) == NULL) {
		c->broken = lh_fail(c, HERALD_ENOMEM, "out of memory");
		return;
	}
	n = auth_line(c, line, sizeof(line));
	if (lh_out_prepend(c, line, n) == -1) {
		lh_cmd_free(cmd);
		c->broken = lh_fail(c, HERALD_ENOMEM, "out of memory");
	} else {
		lh_queue_push(&c->pending, cmd);
		c->hello_seq = head;
		c->out_auth = n;
		c->state = LH_AUTH;
		lh_write(c);
	}
	OPENSSL_cleanse(line, sizeof(line));
}

/*
 * The answer to an AUTH (ok, and the rest of +OK AUTH or the -ERR's
 * text).  The first on a connection: ready, or the client ends with
 * HERALD_EAUTH (not retried).  A renewal: the next is scheduled, or an
 * error event says the server kept the old token.  Frees cmd.
 */
void
lh_auth_answer(struct herald_client *c, struct lh_cmd *cmd, int ok,
    const char *text)
{
	const char *what = c->auth.token != NULL ? "the token" :
	    "the password of";

	lh_cmd_free(cmd);
	if (c->state == LH_AUTH && !ok) {
		c->no_retry = 1;
		c->broken = lh_fail(c, HERALD_EAUTH, "%s refused %s%s%s: %s",
		    c->addr_str, what, c->auth.token ? "" : " ",
		    c->auth.token ? "" : c->auth.user, text);
		return;
	}
	if (!ok) {
		c->auth.refresh_at = 0;	/* the server ends it at exp */
		lh_fail(c, HERALD_EAUTH, "%s refused the new token: %s",
		    c->addr_str, text);
		lh_event(c, HERALD_EVENT_ERROR, HERALD_EAUTH, c->errmsg, NULL,
		    0, 0);
		return;
	}
	lh_event(c, HERALD_EVENT_AUTH, 0, "authenticated", text, 0, 0);
	if (c->state == LH_AUTH)
		lh_ready(c, c->hello_seq);
}

/* When the token is due for renewal on the live connection, or 0. */
uint64_t
lh_auth_deadline(const struct herald_client *c)
{
	if (c->state != LH_READY || c->auth.token == NULL ||
	    c->auth.refresh == NULL)
		return 0;
	return c->auth.refresh_at;
}

/* The renewal is due: ask for a new token and send it. */
void
lh_auth_timer(struct herald_client *c, uint64_t now)
{
	uint64_t d = lh_auth_deadline(c);

	if (d == 0 || d > now)
		return;
	if (refresh_token(c) == HERALD_OK)
		send_token(c);
}
