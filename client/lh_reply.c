/*
 * What the server says: HELLO, messages and gaps (which move the client's
 * position in the bus), and the answers to commands, which come in the
 * order the commands were sent.  A PUB is answered only when refused, so
 * a -ERR is matched by what it says: the codes only a PUB gets.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lh.h"

static const char *const cmd_verb[] = {
	[LH_C_SUB] = "SUB", [LH_C_UNSUB] = "UNSUB", [LH_C_GET] = "GET",
	[LH_C_SYNC] = "SYNC", [LH_C_STATS] = "STATS", [LH_C_PING] = "PING",
	[LH_C_AUTH] = "AUTH",
};

/* The server broke the protocol with this line. */
static void
unexpected(struct herald_client *c, const char *why, const char *line,
    size_t len)
{
	char shown[120];

	lh_escape(shown, sizeof(shown), line, len);
	c->broken = lh_fail(c, HERALD_EPROTO, "%s: %s: \"%s\"", c->addr_str,
	    why, shown);
}

/* 1 if the words after HELLO's seq include "auth" (AUTH required). */
static int
says_auth(char *rest)
{
	char *save, *w;

	for (w = strtok_r(rest, " ", &save); w != NULL;
	    w = strtok_r(NULL, " ", &save))
		if (strcmp(w, "auth") == 0)
			return 1;
	return 0;
}

/* The first line on a connection must be HELLO herald/1 <seq>. */
static void
on_hello(struct herald_client *c, const struct lh_line *l, const char *line,
    size_t len)
{
	char shown[120];

	if (l->kind == LH_L_HELLO && strcmp(l->word, "herald/1") == 0) {
		lh_auth_start(c, l->seq, says_auth(l->rest));
		return;
	}
	if (l->kind == LH_L_BYE) {	/* e.g. server-full; EOF follows */
		snprintf(c->bye, sizeof(c->bye), "%s", l->word);
		return;
	}
	lh_escape(shown, sizeof(shown), line, len);
	if (l->kind == LH_L_HELLO)
		c->broken = lh_fail(c, HERALD_EPROTO, "%s speaks %s; this "
		    "client speaks herald/1", c->addr_str, l->word);
	else
		c->broken = lh_fail(c, HERALD_EPROTO, "%s is not a herald "
		    "server (it said \"%s\")", c->addr_str, shown);
}

/* The position moved to seq (everything up to it delivered or lost). */
static void
advance(struct herald_client *c, uint64_t seq)
{
	if (seq > c->pos)
		c->pos = seq;
	if (c->replay_until != 0 && c->pos >= c->replay_until)
		c->replay_until = 0;
}

/* MSG topic seq payload: a live message, for every matching subscription. */
static void
on_msg(struct herald_client *c, const struct lh_line *l)
{
	advance(c, l->seq);
	lh_deliver_all(c, l->word, l->seq, l->rest, l->rest_len, 0);
}

/* A value: part of a SUB's snapshot, a GET's answer, or after a GAP. */
static void
on_val(struct herald_client *c, const struct lh_line *l)
{
	struct lh_cmd *cmd = c->pending.head;

	if (cmd != NULL && cmd->kind == LH_C_GET) {
		free(cmd->payload);
		if ((cmd->payload = malloc(l->rest_len + 1)) == NULL) {
			c->broken = lh_fail(c, HERALD_ENOMEM, "out of memory");
			return;
		}
		memcpy(cmd->payload, l->rest, l->rest_len + 1);
		cmd->payload_len = l->rest_len;
		cmd->seq = l->seq;
	} else if (cmd != NULL && cmd->kind == LH_C_SUB) {
		lh_deliver(c, cmd->sub, l->word, l->seq, l->rest, l->rest_len,
		    1);
	} else {
		lh_deliver_all(c, l->word, l->seq, l->rest, l->rest_len, 1);
	}
}

/* GAP first last: lost for good; the position moves past it. */
static void
on_gap(struct herald_client *c, const struct lh_line *l)
{
	struct lh_cmd *cmd = c->pending.head;
	const char *name = NULL;
	char text[128];

	if (cmd != NULL && cmd->kind == LH_C_SUB && cmd->has_since) {
		cmd->gap_seen = 1;
		name = cmd->sub->pattern;
	}
	c->replay_until = 0;	/* the server ends any replay at a GAP */
	advance(c, l->seq2);
	snprintf(text, sizeof(text), "messages %" PRIu64 "..%" PRIu64
	    " are lost", l->seq, l->seq2);
	lh_event(c, HERALD_EVENT_GAP, 0, text, name, l->seq, l->seq2);
}

/*
 * +OK SUB pattern h.  A snapshot (or a GAP) puts the client at h, unless
 * a replay is still on its way; a replay puts it at since and will bring
 * it to h message by message.
 */
static void
sub_done(struct herald_client *c, struct lh_cmd *cmd, uint64_t h)
{
	struct lh_sub *s = cmd->sub;

	if (cmd->has_since && !cmd->gap_seen && cmd->since < h) {
		advance(c, cmd->since);
		if (h > c->replay_until)
			c->replay_until = h;
		if (c->pos >= c->replay_until)
			c->replay_until = 0;
	} else if (c->replay_until == 0) {
		advance(c, h);
	}
	if (s->state == LH_SUB_SENT) {
		s->state = LH_SUB_ACTIVE;
		s->acked = 1;
		lh_event(c, HERALD_EVENT_SUBSCRIBED, 0, "subscribed",
		    s->pattern, h, 0);
	}
}

/* The last word of s as a seq, or -1. */
static int
last_seq(const char *s, size_t len, uint64_t *out)
{
	const char *sp = memrchr(s, ' ', len);
	const char *w = sp != NULL ? sp + 1 : s;

	return lh_parse_seq(w, len - (w - s), out);
}

/* +OK VERB ...: the answer to the first pending command. */
static void
on_ok(struct herald_client *c, const struct lh_line *l, const char *line,
    size_t len)
{
	struct lh_cmd *cmd = c->pending.head;
	uint64_t seq = 0;

	if (cmd == NULL || cmd->kind == LH_C_PING ||
	    strcasecmp(l->word, cmd_verb[cmd->kind]) != 0 ||
	    ((cmd->kind == LH_C_SUB || cmd->kind == LH_C_SYNC) &&
	    last_seq(l->rest, l->rest_len, &seq) == -1)) {
		unexpected(c, "unexpected answer", line, len);
		return;
	}
	lh_queue_pop(&c->pending);
	if (cmd->kind == LH_C_AUTH) {
		lh_auth_answer(c, cmd, 1, l->rest);
		return;
	}
	if (cmd->kind == LH_C_SUB)
		sub_done(c, cmd, seq);
	if (cmd->kind == LH_C_GET) {
		seq = cmd->seq;
		if (cmd->payload == NULL) {
			lh_cmd_free(cmd);
			unexpected(c, "+OK GET without a VAL", line, len);
			return;
		}
	}
	if (cmd->kind == LH_C_SYNC && c->pub_err != HERALD_OK) {
		int err = c->pub_err;
		c->pub_err = HERALD_OK;
		lh_cmd_done(c, cmd, err, c->pub_msg, seq);
		return;
	}
	lh_cmd_done(c, cmd, HERALD_OK, NULL, seq);
}

/* 1 if a -ERR can only be the answer to a PUB (herald-protocol(7),
 * ERROR REPLIES). */
static int
is_pub_err(const char *code, const char *detail)
{
	static const char *const pub_codes[] = { "forbidden", "bad-payload",
	    "payload-too-large", "line-too-long", "bad-topic" };

	for (size_t i = 0; i < sizeof(pub_codes) / sizeof(pub_codes[0]); i++)
		if (strcmp(code, pub_codes[i]) == 0)
			return 1;
	if (strcmp(code, "busy") == 0)
		return strncasecmp(detail, "SYNC", 4) != 0;
	if (strcmp(code, "syntax") == 0)
		return strncasecmp(detail, "PUB", 3) == 0;
	return 0;
}

/* Remember the first refusal for herald_wait (and SYNC for PUBs). */
static void
note_refusal(struct herald_client *c, int is_pub, const char *text)
{
	if (c->wait_err == HERALD_OK) {
		c->wait_err = HERALD_ESERVER;
		snprintf(c->wait_msg, sizeof(c->wait_msg), "%s", text);
	}
	if (is_pub && c->pub_err == HERALD_OK) {
		c->pub_err = HERALD_ESERVER;
		snprintf(c->pub_msg, sizeof(c->pub_msg), "%s", text);
	}
}

/* -ERR code detail: a PUB's refusal, or the first pending command's. */
static void
on_err(struct herald_client *c, const struct lh_line *l)
{
	struct lh_cmd *cmd = c->pending.head;
	char text[LH_ERRMSG_MAX], detail[300];
	int pub = cmd == NULL || is_pub_err(l->word, l->rest);
	const char *verb = pub ? "PUB" : cmd_verb[cmd->kind];
	const char *sp = strchr(l->rest, ' ');
	size_t dlen = sp != NULL ? (size_t)(sp - l->rest) : l->rest_len;

	snprintf(text, sizeof(text), "%s refused %s: -ERR %s%s%s", c->addr_str,
	    verb, l->word, l->rest_len ? " " : "", l->rest);
	snprintf(detail, sizeof(detail), "%.*s", (int)dlen, l->rest);
	if (!pub && cmd->kind == LH_C_AUTH) {
		lh_queue_pop(&c->pending);
		snprintf(text, sizeof(text), "-ERR %s%s%s", l->word,
		    l->rest_len ? " " : "", l->rest);
		lh_auth_answer(c, cmd, 0, text);
		return;
	}
	if (pub || cmd->kind == LH_C_SUB) {
		note_refusal(c, pub, text);
		if (!pub && cmd->sub->state != LH_SUB_GONE)
			cmd->sub->state = LH_SUB_GONE;
		lh_event(c, HERALD_EVENT_ERROR, HERALD_ESERVER, text,
		    pub ? detail : cmd->sub->pattern, 0, 0);
		if (pub)
			return;
	}
	lh_queue_pop(&c->pending);
	if (cmd->kind == LH_C_UNSUB)	/* not-subscribed: it is not */
		lh_cmd_done(c, cmd, HERALD_OK, NULL, 0);
	else if (cmd->kind == LH_C_GET && strcmp(l->word, "not-found") == 0)
		lh_cmd_done(c, cmd, HERALD_ENOTFOUND, text, 0);
	else
		lh_cmd_done(c, cmd, HERALD_ESERVER, text, 0);
}

/* STAT name value: part of the answer to STATS. */
static void
on_stat(struct herald_client *c, const struct lh_line *l, const char *line,
    size_t len)
{
	struct lh_cmd *cmd = c->pending.head;

	if (cmd == NULL || cmd->kind != LH_C_STATS) {
		unexpected(c, "STAT without STATS", line, len);
		return;
	}
	if (cmd->nstats == cmd->cap_stats) {
		size_t cap = cmd->cap_stats ? cmd->cap_stats * 2 : 32;
		struct herald_stat *st = realloc(cmd->stats,
		    cap * sizeof(*st));
		if (st == NULL) {
			c->broken = lh_fail(c, HERALD_ENOMEM, "out of memory");
			return;
		}
		cmd->stats = st;
		cmd->cap_stats = cap;
	}
	struct herald_stat *st = &cmd->stats[cmd->nstats++];
	snprintf(st->name, sizeof(st->name), "%s", l->word);
	st->value = l->seq;
}

/* PONG: the answer to the PING that checks the connection is alive. */
static void
on_pong(struct herald_client *c, const char *line, size_t len)
{
	struct lh_cmd *cmd = c->pending.head;

	if (cmd == NULL || cmd->kind != LH_C_PING) {
		unexpected(c, "PONG without PING", line, len);
		return;
	}
	lh_queue_pop(&c->pending);
	c->ping_sent = 0;
	lh_cmd_done(c, cmd, HERALD_OK, NULL, 0);
}

/* Handle one line from the server (without LF; line[len] is writable). */
void
lh_handle_line(struct herald_client *c, char *line, size_t len)
{
	struct lh_line l;

	lh_parse_line(line, len, &l);
	if (c->state == LH_HELLO) {
		on_hello(c, &l, line, len);
		return;
	}
	switch (l.kind) {
	case LH_L_MSG:
		on_msg(c, &l);
		break;
	case LH_L_VAL:
		on_val(c, &l);
		break;
	case LH_L_GAP:
		on_gap(c, &l);
		break;
	case LH_L_HB:
		break;
	case LH_L_BYE:
		snprintf(c->bye, sizeof(c->bye), "%s", l.word);
		break;
	case LH_L_STAT:
		on_stat(c, &l, line, len);
		break;
	case LH_L_OK:
		on_ok(c, &l, line, len);
		break;
	case LH_L_ERR:
		on_err(c, &l);
		break;
	case LH_L_PONG:
		on_pong(c, line, len);
		break;
	case LH_L_HELLO:
	case LH_L_BAD:
		unexpected(c, "unexpected line", line, len);
		break;
	}
}
