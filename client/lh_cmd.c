/*
 * Commands: the queue of those awaiting an answer (answers come in the
 * order commands were sent), those deferred until the connection is up,
 * and the public calls that make them: PUB, SYNC, GET, STATS, SUB, UNSUB.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh.h"
#include "topic.h"

/* A new command of that kind, or NULL. */
struct lh_cmd *
lh_cmd_new(enum lh_cmd_kind kind)
{
	struct lh_cmd *cmd = calloc(1, sizeof(*cmd));

	if (cmd != NULL)
		cmd->kind = kind;
	return cmd;
}

/* Free a command (and let go of its subscription). */
void
lh_cmd_free(struct lh_cmd *cmd)
{
	if (cmd->sub != NULL)
		cmd->sub->refs--;
	free(cmd->line);
	free(cmd->payload);
	free(cmd->stats);
	free(cmd);
}

/* Put a command at the end of a queue. */
void
lh_queue_push(struct lh_queue *q, struct lh_cmd *cmd)
{
	cmd->next = NULL;
	if (q->tail != NULL)
		q->tail->next = cmd;
	else
		q->head = cmd;
	q->tail = cmd;
}

/* Take the first command off a queue. */
struct lh_cmd *
lh_queue_pop(struct lh_queue *q)
{
	struct lh_cmd *cmd = q->head;

	if (cmd != NULL) {
		q->head = cmd->next;
		if (q->head == NULL)
			q->tail = NULL;
	}
	return cmd;
}

/*
 * Send a command's line now (connection ready) or when the connection is
 * ready; the command then waits for its answer.  Takes cmd in any case.
 * Returns HERALD_OK, HERALD_ECLOSED (dead client) or HERALD_ENOMEM.
 */
int
lh_send_cmd(struct herald_client *c, struct lh_cmd *cmd, const char *line,
    size_t len)
{
	if (c->state == LH_DEAD || c->close_asked) {
		lh_cmd_free(cmd);
		return lh_fail(c, HERALD_ECLOSED, "not connected: %s",
		    c->state == LH_DEAD ? c->errmsg : "closed");
	}
	if (c->state != LH_READY) {
		if ((cmd->line = malloc(len)) == NULL) {
			lh_cmd_free(cmd);
			return lh_fail(c, HERALD_ENOMEM, "out of memory");
		}
		memcpy(cmd->line, line, len);
		cmd->line_len = len;
		lh_queue_push(&c->deferred, cmd);
		return HERALD_OK;
	}
	char *p = lh_out_reserve(c, len);
	if (p == NULL) {
		lh_cmd_free(cmd);
		return lh_fail(c, HERALD_ENOMEM, "out of memory");
	}
	memcpy(p, line, len);
	lh_queue_push(&c->pending, cmd);
	lh_write(c);
	return HERALD_OK;
}

/* The connection is ready: send the deferred commands, in order. */
void
lh_flush_deferred(struct herald_client *c)
{
	struct lh_cmd *cmd;

	while ((cmd = lh_queue_pop(&c->deferred)) != NULL) {
		char *line = cmd->line;
		cmd->line = NULL;
		lh_send_cmd(c, cmd, line, cmd->line_len);
		free(line);
	}
}

/*
 * Answer a command: call its callback with err (and what cmd holds), then
 * free it.  text explains an error.
 */
void
lh_cmd_done(struct herald_client *c, struct lh_cmd *cmd, int err,
    const char *text, uint64_t seq)
{
	struct herald_reply r;

	if (cmd->cb != NULL && !c->closing && !c->close_asked) {
		memset(&r, 0, sizeof(r));
		r.err = err;
		r.text = text != NULL ? text : "";
		r.seq = seq;
		r.payload = cmd->payload;
		r.payload_len = cmd->payload_len;
		r.stats = cmd->stats;
		r.nstats = cmd->nstats;
		c->depth++;
		c->in_callback++;
		cmd->cb(c, &r, cmd->arg);
		c->in_callback--;
		c->depth--;
	}
	lh_cmd_free(cmd);
}

/* Fail every command of a queue with err (the error text is set). */
void
lh_fail_cmds(struct herald_client *c, struct lh_queue *q, int err)
{
	struct lh_cmd *cmd;
	char text[LH_ERRMSG_MAX];

	snprintf(text, sizeof(text), "%s", c->errmsg);
	while ((cmd = lh_queue_pop(q)) != NULL) {
		if (cmd->kind == LH_C_SUB && cmd->sub != NULL &&
		    cmd->sub->state == LH_SUB_SENT)
			cmd->sub->state = LH_SUB_NEW;
		lh_cmd_done(c, cmd, err, text, 0);
	}
}

/* Forget the callback of commands whose arg is arg (a timed-out wait). */
static void
forget(struct herald_client *c, void *arg)
{
	struct lh_queue *qs[2] = { &c->pending, &c->deferred };

	for (int i = 0; i < 2; i++)
		for (struct lh_cmd *cmd = qs[i]->head; cmd; cmd = cmd->next)
			if (cmd->arg == arg)
				cmd->cb = NULL;
}

/* --- PUB ----------------------------------------------------------------- */

/* What wait_room waits for: room for n more bytes queued on c. */
struct room {
	struct herald_client	*c;
	size_t			 n;
};

/* 1 when the bytes fit (or nothing is queued: one big line may pass). */
static int
has_room(void *arg)
{
	const struct room *r = arg;

	return lh_out_pending(r->c) == 0 ||
	    lh_out_pending(r->c) + r->n <= r->c->opt.out_limit;
}

/* Wait (blocking) or fail until n more bytes may be queued. */
static int
wait_room(struct herald_client *c, size_t n)
{
	struct room r = { c, n };

	if (has_room(&r))
		return HERALD_OK;
	if (c->opt.nonblocking || c->in_callback)
		return lh_fail(c, HERALD_EAGAIN, "%zu bytes are queued for %s "
		    "already", lh_out_pending(c), c->addr_str);
	lh_write(c);
	return lh_wait_until(c, has_room, &r, c->opt.timeout_ms);
}

/* Queue a PUB and write what the socket takes. */
int
herald_pub(struct herald_client *c, const char *topic, const char *payload,
    size_t len)
{
	size_t tlen = topic != NULL ? strlen(topic) : 0;
	int rc;

	lh_enter(c);
	if (topic == NULL || !topic_valid(topic, tlen))
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "bad topic "
		    "\"%.300s\"", topic != NULL ? topic : "(null)"));
	if (payload == NULL || !lh_payload_valid(payload, len))
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "bad payload for "
		    "%s: %s", topic, len == 0 ? "empty" :
		    "it holds a NUL, CR or LF byte"));
	if (c->state == LH_DEAD || c->close_asked)
		return lh_leave(c, lh_fail(c, HERALD_ECLOSED, "not connected:"
		    " %s", c->errmsg));
	size_t n = 4 + tlen + 1 + len + 1;
	if ((rc = wait_room(c, n)) != HERALD_OK)
		return lh_leave(c, rc);
	char *p = lh_out_reserve(c, n);
	if (p == NULL)
		return lh_leave(c, lh_fail(c, HERALD_ENOMEM, "out of memory"));
	memcpy(p, "PUB ", 4);
	memcpy(p + 4, topic, tlen);
	p[4 + tlen] = ' ';
	memcpy(p + 5 + tlen, payload, len);
	p[n - 1] = '\n';
	if (!c->corked || lh_out_pending(c) >= LH_CORK_CHUNK)
		lh_write(c);
	return lh_leave(c, HERALD_OK);
}

/* Cork or uncork the output. */
void
herald_cork(struct herald_client *c, int on)
{
	lh_enter(c);
	c->corked = on;
	if (!on)
		lh_write(c);
	lh_leave(c, HERALD_OK);
}

/* --- commands with an answer --------------------------------------------- */

/* Make and send a command without a subscription. */
static int
simple_cmd(struct herald_client *c, enum lh_cmd_kind kind, const char *line,
    size_t len, herald_reply_cb *cb, void *arg)
{
	struct lh_cmd *cmd;

	if ((cmd = lh_cmd_new(kind)) == NULL)
		return lh_fail(c, HERALD_ENOMEM, "out of memory");
	cmd->cb = cb;
	cmd->arg = arg;
	return lh_send_cmd(c, cmd, line, len);
}

/* SYNC without waiting. */
int
herald_sync_async(struct herald_client *c, herald_reply_cb *cb, void *arg)
{
	lh_enter(c);
	return lh_leave(c, simple_cmd(c, LH_C_SYNC, "SYNC\n", 5, cb, arg));
}

/* GET without waiting. */
int
herald_get_async(struct herald_client *c, const char *topic,
    herald_reply_cb *cb, void *arg)
{
	char line[8 + 256];
	size_t tlen = topic != NULL ? strlen(topic) : 0;

	lh_enter(c);
	if (topic == NULL || !topic_valid(topic, tlen))
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "bad topic "
		    "\"%.300s\"", topic != NULL ? topic : "(null)"));
	int n = snprintf(line, sizeof(line), "GET %s\n", topic);
	return lh_leave(c, simple_cmd(c, LH_C_GET, line, n, cb, arg));
}

/* STATS without waiting. */
int
herald_stats_async(struct herald_client *c, herald_reply_cb *cb, void *arg)
{
	lh_enter(c);
	return lh_leave(c, simple_cmd(c, LH_C_STATS, "STATS\n", 6, cb, arg));
}

/* What a blocking call waits for: its answer, copied. */
struct answer {
	int		 done;
	int		 err;
	uint64_t	 seq;
	char		*payload;
	size_t		 payload_len;
	struct herald_stat *stats;
	size_t		 nstats;
	char		 text[LH_ERRMSG_MAX];
};

/* 1 once the answer came. */
static int
answered(void *arg)
{
	return ((struct answer *)arg)->done;
}

/* The callback of a blocking call: copy the answer. */
static void
keep_answer(struct herald_client *c, const struct herald_reply *r,
    void *arg)
{
	struct answer *a = arg;

	a->done = 1;
	a->err = r->err;
	a->seq = r->seq;
	snprintf(a->text, sizeof(a->text), "%s", r->text);
	if (r->err == HERALD_OK && r->payload != NULL &&
	    (a->payload = malloc(r->payload_len + 1)) != NULL) {
		memcpy(a->payload, r->payload, r->payload_len + 1);
		a->payload_len = r->payload_len;
	}
	if (r->err == HERALD_OK && r->nstats > 0 &&
	    (a->stats = malloc(r->nstats * sizeof(*r->stats))) != NULL) {
		memcpy(a->stats, r->stats, r->nstats * sizeof(*r->stats));
		a->nstats = r->nstats;
	}
	if (r->err == HERALD_OK && ((r->payload != NULL && !a->payload) ||
	    (r->nstats > 0 && !a->stats)))
		a->err = HERALD_ENOMEM;
}

/* Wait for the answer a; on error, the client's text says why. */
static int
wait_answer(struct herald_client *c, struct answer *a, int rc)
{
	if (rc == HERALD_OK)
		rc = lh_wait_until(c, answered, a, c->opt.timeout_ms);
	if (rc != HERALD_OK) {
		forget(c, a);
		return rc;
	}
	if (a->err != HERALD_OK)
		lh_seterr(c, "%s", a->err == HERALD_ENOMEM ? "out of memory" :
		    a->text);
	return a->err;
}

/* Blocking SYNC. */
int
herald_sync(struct herald_client *c, uint64_t *seq)
{
	struct answer a = { 0 };
	int rc;

	lh_enter(c);
	rc = simple_cmd(c, LH_C_SYNC, "SYNC\n", 5, keep_answer, &a);
	rc = wait_answer(c, &a, rc);
	if (rc == HERALD_OK && seq != NULL)
		*seq = a.seq;
	return lh_leave(c, rc);
}

/* Blocking GET. */
int
herald_get(struct herald_client *c, const char *topic, char **payload,
    size_t *len, uint64_t *seq)
{
	struct answer a = { 0 };
	int rc;

	lh_enter(c);
	rc = herald_get_async(c, topic, keep_answer, &a);
	rc = wait_answer(c, &a, rc);
	if (rc == HERALD_OK) {
		if (len != NULL)
			*len = a.payload_len;
		if (seq != NULL)
			*seq = a.seq;
		*payload = a.payload;
	} else {
		free(a.payload);
		*payload = NULL;
	}
	return lh_leave(c, rc);
}

/* Blocking STATS. */
int
herald_stats(struct herald_client *c, struct herald_stat **stats, size_t *n)
{
	struct answer a = { 0 };
	int rc;

	lh_enter(c);
	rc = simple_cmd(c, LH_C_STATS, "STATS\n", 6, keep_answer, &a);
	rc = wait_answer(c, &a, rc);
	if (rc == HERALD_OK) {
		*stats = a.stats;
		*n = a.nstats;
	} else {
		free(a.stats);
		*stats = NULL;
		*n = 0;
	}
	return lh_leave(c, rc);
}
