/*
 * Subscriptions: the client's list, what each SUB line says (a snapshot,
 * or a resume from the client's position), delivery to callbacks, and
 * what happens to them when a connection is lost or the bus was reset.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh.h"
#include "topic.h"

/* The live (not unsubscribed) subscription to pattern, or NULL. */
static struct lh_sub *
find_sub(struct herald_client *c, const char *p, size_t len)
{
	for (struct lh_sub *s = c->subs; s != NULL; s = s->next)
		if (s->state != LH_SUB_GONE && s->len == len &&
		    memcmp(s->pattern, p, len) == 0)
			return s;
	return NULL;
}

/*
 * Send the SUB line of s: a resume from the client's position once s has
 * been in place on some connection, else from the caller's since, else a
 * snapshot.
 */
int
lh_send_sub(struct herald_client *c, struct lh_sub *s)
{
	struct lh_cmd *cmd = lh_cmd_new(LH_C_SUB);
	char line[300];
	int n;

	if (cmd == NULL)
		return lh_fail(c, HERALD_ENOMEM, "out of memory");
	if (s->acked) {
		cmd->has_since = 1;
		cmd->since = c->pos;
	} else if (s->has_since) {
		cmd->has_since = 1;
		cmd->since = s->since;
	}
	if (cmd->has_since)
		n = snprintf(line, sizeof(line), "SUB %s %" PRIu64 "\n",
		    s->pattern, cmd->since);
	else
		n = snprintf(line, sizeof(line), "SUB %s\n", s->pattern);
	cmd->sub = s;
	s->refs++;
	s->state = LH_SUB_SENT;
	return lh_send_cmd(c, cmd, line, n);
}

/* Add a subscription; sent now if connected, else once connected. */
static int
add_sub(struct herald_client *c, const char *pattern, int has_since,
    uint64_t since, herald_msg_cb *cb, void *arg)
{
	size_t len = pattern != NULL ? strlen(pattern) : 0;
	struct lh_sub *s;

	if (pattern == NULL || !pattern_valid(pattern, len) || cb == NULL)
		return lh_fail(c, HERALD_EINVAL, "bad pattern \"%.300s\"%s",
		    pattern ? pattern : "(null)", cb ? "" : " (no callback)");
	if (find_sub(c, pattern, len) != NULL)
		return lh_fail(c, HERALD_EINVAL, "already subscribed to %s",
		    pattern);
	if (c->close_asked)
		return lh_fail(c, HERALD_ECLOSED, "the client was closed");
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->pattern = strdup(pattern)) == NULL) {
		free(s);
		return lh_fail(c, HERALD_ENOMEM, "out of memory");
	}
	s->len = len;
	s->cb = cb;
	s->arg = arg;
	s->has_since = has_since;
	s->since = since;
	s->state = LH_SUB_NEW;
	struct lh_sub **pp = &c->subs;	/* in order: resubscribed in order */
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = s;
	if (c->state == LH_READY)
		return lh_send_sub(c, s);
	return HERALD_OK;
}

/* Subscribe with a snapshot. */
int
herald_sub(struct herald_client *c, const char *pattern, herald_msg_cb *cb,
    void *arg)
{
	lh_enter(c);
	return lh_leave(c, add_sub(c, pattern, 0, 0, cb, arg));
}

/* Subscribe, resuming after since. */
int
herald_sub_since(struct herald_client *c, const char *pattern,
    uint64_t since, herald_msg_cb *cb, void *arg)
{
	lh_enter(c);
	return lh_leave(c, add_sub(c, pattern, 1, since, cb, arg));
}

/* Stop a subscription; UNSUB if the server knows it. */
int
herald_unsub(struct herald_client *c, const char *pattern)
{
	struct lh_sub *s;
	char line[300];
	int rc = HERALD_OK;

	lh_enter(c);
	if (pattern == NULL ||
	    (s = find_sub(c, pattern, strlen(pattern))) == NULL)
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "not subscribed "
		    "to \"%.300s\"", pattern ? pattern : "(null)"));
	int known = s->state == LH_SUB_SENT || s->state == LH_SUB_ACTIVE;
	s->state = LH_SUB_GONE;
	if (known && c->state == LH_READY) {
		struct lh_cmd *cmd = lh_cmd_new(LH_C_UNSUB);
		if (cmd == NULL)
			return lh_leave(c, lh_fail(c, HERALD_ENOMEM,
			    "out of memory"));
		cmd->sub = s;
		s->refs++;
		int n = snprintf(line, sizeof(line), "UNSUB %s\n", s->pattern);
		rc = lh_send_cmd(c, cmd, line, n);
	}
	return lh_leave(c, rc);
}

/* 1 when nothing waits for an answer or for the connection. */
static int
all_answered(void *arg)
{
	const struct herald_client *c = arg;

	if (c->state != LH_READY || c->pending.head != NULL ||
	    c->deferred.head != NULL)
		return 0;
	for (const struct lh_sub *s = c->subs; s != NULL; s = s->next)
		if (s->state == LH_SUB_NEW || s->state == LH_SUB_SENT)
			return 0;
	return 1;
}

/* Block until every command is answered; the first refusal since. */
int
herald_wait(struct herald_client *c)
{
	int rc;

	lh_enter(c);
	rc = lh_wait_until(c, all_answered, c, c->opt.timeout_ms);
	if (rc == HERALD_OK && c->wait_err != HERALD_OK) {
		rc = c->wait_err;
		lh_seterr(c, "%s", c->wait_msg);
	}
	c->wait_err = HERALD_OK;
	return lh_leave(c, rc);
}

/* Call s's callback with a message (unless s is gone or c closing). */
void
lh_deliver(struct herald_client *c, struct lh_sub *s, const char *topic,
    uint64_t seq, const char *payload, size_t len, int is_value)
{
	struct herald_msg m;

	if (s->state == LH_SUB_GONE || c->closing || c->close_asked)
		return;
	m.topic = topic;
	m.payload = payload;
	m.payload_len = len;
	m.seq = seq;
	m.is_value = is_value;
	m.pattern = s->pattern;
	c->depth++;
	c->in_callback++;
	s->cb(c, &m, s->arg);
	c->in_callback--;
	c->depth--;
}

/* Deliver to every subscription in place that matches topic. */
void
lh_deliver_all(struct herald_client *c, const char *topic, uint64_t seq,
    const char *payload, size_t len, int is_value)
{
	size_t tlen = strlen(topic);

	for (struct lh_sub *s = c->subs; s != NULL; s = s->next)
		if (s->state == LH_SUB_ACTIVE &&
		    topic_match(s->pattern, s->len, topic, tlen))
			lh_deliver(c, s, topic, seq, payload, len, is_value);
}

/* The connection is lost: every subscription is to be sent again. */
void
lh_subs_reset(struct herald_client *c)
{
	for (struct lh_sub *s = c->subs; s != NULL; s = s->next)
		if (s->state != LH_SUB_GONE)
			s->state = LH_SUB_NEW;
}

/* The bus was reset: subscriptions start over with snapshots. */
void
lh_subs_restart(struct herald_client *c)
{
	for (struct lh_sub *s = c->subs; s != NULL; s = s->next) {
		s->acked = 0;
		s->has_since = 0;
	}
}

/* Free unsubscribed subscriptions no command points to. */
void
lh_sweep_subs(struct herald_client *c)
{
	struct lh_sub **pp = &c->subs;

	while (*pp != NULL) {
		struct lh_sub *s = *pp;
		if (s->state == LH_SUB_GONE && s->refs == 0) {
			*pp = s->next;
			free(s->pattern);
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

/* Free every subscription (the client is going away). */
void
lh_free_subs(struct herald_client *c)
{
	struct lh_sub *s, *next;

	for (s = c->subs; s != NULL; s = next) {
		next = s->next;
		free(s->pattern);
		free(s);
	}
	c->subs = NULL;
}
