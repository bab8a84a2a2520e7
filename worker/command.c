/*
 * A client's commands (herald-protocol(7), COMMANDS): SUB and its
 * resume, UNSUB, GET, PUB, SYNC, PING, STATS, QUIT, run one line at a
 * time by command_execute as client.c's input hands them over.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "protocol.h"
#include "topic.h"
#include "worker.h"

/* 1 if record r matches one of the client's subscriptions that may
 * deliver it. */
int
client_matches(const struct client *c, const struct bus_rec *r)
{
	for (const struct sub *s = c->subs; s != NULL; s = s->cnext)
		if (s->start_seq <= r->seq &&
		    topic_match(s->pattern, s->len, r->topic, r->topic_len))
			return 1;
	return 0;
}

static struct sub *
find_sub(struct client *c, const char *p, size_t len)
{
	for (struct sub *s = c->subs; s != NULL; s = s->cnext)
		if (s->len == len && memcmp(s->pattern, p, len) == 0)
			return s;
	return NULL;
}

/* Subscribe c to the pattern, delivering from start on (if it is not
 * already); -1 when out of memory. */
int
command_add_sub(struct client *c, const char *p, size_t len, uint64_t start)
{
	struct sub *s = find_sub(c, p, len);

	if (s != NULL)		/* already there: keep delivering, no dups */
		return 0;
	if ((s = index_add(&c->w->idx, c, p, len, start)) == NULL)
		return -1;
	s->cnext = c->subs;
	c->subs = s;
	c->nsubs++;
	return 0;
}

/* -ERR forbidden <name>: the permission fault (herald-protocol(7)). */
static void
forbidden(struct client *c, const struct cmd *cmd, const char *why)
{
	worker_limit(c->w, CTR_FORBIDDEN, 0, "client %u: %.*s %.*s refused: "
	    "%s", c->id, (int)cmd->verb_len, cmd->verb_str,
	    (int)cmd->name_len, cmd->name, why);
	client_reply_err(c, PERR_FORBIDDEN, cmd->name, cmd->name_len);
}

/* The highest seq this connection has been sent (or told it lost). */
static uint64_t
conn_position(const struct client *c)
{
	return c->sent_seq;
}

/* How SUB pattern since is answered (herald-protocol(7)). */
enum resume {
	RESUME_NOW,	/* since >= h: +OK, then live MSGs */
	RESUME_REPLAY,	/* the bus holds since+1..h: +OK, then the MSGs */
	RESUME_GAP	/* GAP since+1 h, the snapshot, +OK */
};

static enum resume
resume_kind(const struct client *c, uint64_t since, uint64_t *pos)
{
	struct worker *w = c->w;

	if (since >= w->head_seq)
		return RESUME_NOW;
	/* A connection never goes back before what it was sent: nothing
	 * after since was sent on it, so walking again from there can
	 * only deliver what the new pattern adds. */
	if (since >= conn_position(c) &&
	    bus_find_seq(w->bus, since + 1, pos) == BUS_OK && *pos <= w->pos)
		return RESUME_REPLAY;
	return RESUME_GAP;
}

/*
 * 1 if this SUB must wait (its line is kept, and run again when the loop
 * has turned): one that takes a snapshot waits until the connection has
 * been sent every MSG its other subscriptions are owed up to the worker's
 * position, so that none at or below the snapshot's h follows its +OK
 * (snapshot_may_start).
 */
static int
sub_waits(const struct client *c, const struct cmd *cmd)
{
	uint64_t pos;

	if (cmd->has_since && resume_kind(c, cmd->since, &pos) != RESUME_GAP)
		return 0;
	return !snapshot_may_start(c);
}

/* The snapshot of a SUB has been sent (fanout.c): the subscription
 * delivers from h + 1 on. */
void
client_snapshot_done(struct client *c, const char *p, size_t len,
    uint64_t h)
{
	if (command_add_sub(c, p, len, h + 1) == -1) {
		client_kill(c);
		return;
	}
	client_replyf(c, "+OK SUB %.*s %llu\n", (int)len, p,
	    (unsigned long long)h);
}

/* SUB pattern since: +OK and the replay, or GAP and the snapshot.
 * Returns 1 for the snapshot, 0 otherwise. */
static int
cmd_sub_since(struct client *c, const char *p, size_t len, uint64_t since)
{
	struct worker *w = c->w;
	uint64_t h = w->head_seq, pos;

	switch (resume_kind(c, since, &pos)) {
	case RESUME_NOW:
		client_snapshot_done(c, p, len, h);
		break;
	case RESUME_REPLAY:
		/* Move the cursor back to since+1; the sweep replays. */
		if (c->pos > pos) {
			c->pos = pos;
			c->next_seq = since + 1;
		}
		if (c->replay_end < w->pos)
			c->replay_end = w->pos;
		if (command_add_sub(c, p, len, since + 1) == -1)
			client_kill(c);
		else
			client_replyf(c, "+OK SUB %.*s %llu\n", (int)len, p,
			    (unsigned long long)h);
		break;
	case RESUME_GAP:
		/* The bus no longer holds it all: GAP, then the snapshot. */
		if (snapshot_start(c, SNAP_SUB_GAP, p, len, since + 1) == 0)
			snapshot_step(c, &(size_t){ 0 });
		return 1;
	}
	return 0;
}

/*
 * SUB, run when it need not wait (sub_waits).  A snapshot's first step is
 * taken at once, while the connection is where sub_waits saw it; a small
 * snapshot is all sent in it, VALs and +OK, and the next command runs
 * right after.  A bigger one goes on from client_flush, and the commands
 * after it wait until it is sent.  Returns 0 for a resume that replays or
 * starts at the head (cheap, and a client's resumes go together), else 1.
 */
static int
cmd_sub(struct client *c, const struct cmd *cmd)
{
	struct worker *w = c->w;

	if (!authn_may_read(c, cmd->name, cmd->name_len, 1)) {
		forbidden(c, cmd, "not within the connection's read patterns");
		return 1;
	}
	if (find_sub(c, cmd->name, cmd->name_len) == NULL &&
	    c->nsubs >= w->cfg->clients_max_subs) {
		worker_limit(w, CTR_TOO_MANY_SUBS, 0, "client %u: SUB %.*s "
		    "refused: clients.max_subs (%d) reached", c->id,
		    (int)cmd->name_len, cmd->name, w->cfg->clients_max_subs);
		client_reply_err(c, PERR_TOO_MANY_SUBS, cmd->name, cmd->name_len);
		return 1;
	}
	if (cmd->has_since)
		return cmd_sub_since(c, cmd->name, cmd->name_len, cmd->since);
	if (snapshot_start(c, SNAP_SUB, cmd->name, cmd->name_len, 0) == 0)
		snapshot_step(c, &(size_t){ 0 });
	return 1;
}

/*
 * The patterns of an HTTP request (/events), valid and allowed, each
 * once, subscribed together (herald-protocol(7), "Other framings"): one
 * snapshot of them all, or one replay, with one head.  With since: a
 * replay, +OKs and the MSGs after since, if the bus holds them; else a
 * GAP, the snapshot and the +OKs.
 */
void
command_subs(struct client *c, char *const *patterns, const size_t *lens,
    int n, int has_since, uint64_t since)
{
	struct worker *w = c->w;
	uint64_t h = w->head_seq, pos;
	enum resume kind = has_since ? resume_kind(c, since, &pos) : RESUME_GAP;

	for (int i = 0; i < n; i++) {
		/* (a snapshot's patterns deliver nothing until it is sent) */
		uint64_t start = kind == RESUME_NOW ? h + 1 :
		    kind == RESUME_REPLAY ? since + 1 : UINT64_MAX;
		if (command_add_sub(c, patterns[i], lens[i], start) == -1) {
			client_kill(c);
			return;
		}
		if (kind != RESUME_GAP)
			client_replyf(c, "+OK SUB %.*s %llu\n", (int)lens[i],
			    patterns[i], (unsigned long long)h);
	}
	if (kind == RESUME_REPLAY) {	/* the sweep replays (cmd_sub_since) */
		c->pos = pos;
		c->next_seq = since + 1;
		c->replay_end = w->pos;
	} else if (kind == RESUME_GAP && snapshot_start(c, SNAP_SUBS, NULL, 0,
	    has_since ? since + 1 : 0) == 0) {
		snapshot_step(c, &(size_t){ 0 });
	}
}

/* The snapshot of command_subs has been sent, as of h: its patterns
 * deliver from h + 1 on, and each gets its +OK (with h as its id). */
void
command_subs_done(struct client *c, uint64_t h)
{
	for (struct sub *s = c->subs; s != NULL; s = s->cnext) {
		s->start_seq = h + 1;
		sse_ok(c, s->pattern, s->len, h);
	}
}

static void
cmd_unsub(struct client *c, const struct cmd *cmd)
{
	struct sub **pp = &c->subs;

	for (; *pp != NULL; pp = &(*pp)->cnext) {
		struct sub *s = *pp;
		if (s->len == cmd->name_len &&
		    memcmp(s->pattern, cmd->name, s->len) == 0) {
			*pp = s->cnext;
			index_remove(&c->w->idx, s);
			c->nsubs--;
			client_replyf(c, "+OK UNSUB %.*s\n",
			    (int)cmd->name_len, cmd->name);
			return;
		}
	}
	client_reply_err(c, PERR_NOT_SUBSCRIBED, cmd->name, cmd->name_len);
}

static void
cmd_get(struct client *c, const struct cmd *cmd)
{
	if (!authn_may_read(c, cmd->name, cmd->name_len, 0)) {
		forbidden(c, cmd, "not within the connection's read patterns");
		return;
	}
	if (!snapshot_get(c, cmd->name, cmd->name_len)) {
		client_reply_err(c, PERR_NOT_FOUND, cmd->name, cmd->name_len);
		return;
	}
	client_replyf(c, "+OK GET %.*s\n", (int)cmd->name_len, cmd->name);
}

static void
cmd_pub(struct client *c, const struct cmd *cmd)
{
	struct worker *w = c->w;

	if (!authn_may_publish(c, cmd->name, cmd->name_len)) {
		c->errors = 0;
		forbidden(c, cmd, "not a publish pattern of the connection");
		return;
	}
	if (cmd->payload_err == PERR_PAYLOAD_TOO_LARGE)
		worker_limit(w, CTR_PAYLOAD_TOO_LARGE, 0, "client %u: PUB %.*s "
		    "refused: payload over max_payload (%d bytes)", c->id,
		    (int)cmd->name_len, cmd->name, w->cfg->max_payload);
	if (cmd->payload_err != PERR_NONE) {
		client_reply_err(c, cmd->payload_err, cmd->name, cmd->name_len);
		if (proto_err_is_bad(cmd->payload_err))
			client_bad_line(c);
		else
			c->errors = 0;
		return;
	}
	c->errors = 0;
	/* A cluster node holding as much as cluster.hold for Redis. */
	if (bus_counter_get(w->bus, SLOT_PRODUCER, CTR_CLUSTER_FULL)) {
		worker_limit(w, CTR_BUSY, 1, "client %u: PUB %.*s refused: "
		    "the PUBs held for Redis fill cluster.hold", c->id,
		    (int)cmd->name_len, cmd->name);
		client_reply_err(c, PERR_BUSY, cmd->name, cmd->name_len);
		return;
	}
	worker_publisher(c);
	c->pub_unsynced = 1;
	c->pub_gen = w->fwd_gen;
	if (forward_pub(w, cmd->name, cmd->name_len, cmd->payload,
	    cmd->payload_len) == -1) {
		worker_limit(w, CTR_BUSY, 1, "client %u: PUB %.*s refused: the "
		    "producer cannot be reached", c->id, (int)cmd->name_len,
		    cmd->name);
		client_reply_err(c, PERR_BUSY, cmd->name, cmd->name_len);
	}
}

static void
cmd_sync(struct client *c)
{
	/* PUBs went to a producer that died: they may not be in the bus,
	 * and SYNC must not say they are.  The client resends. */
	if (c->pub_unsynced && c->pub_gen != c->w->fwd_gen) {
		c->pub_unsynced = 0;
		worker_limit(c->w, CTR_BUSY, 1, "client %u: SYNC refused: "
		    "PUBs before it went to a producer that was lost",
		    c->id);
		client_reply_err(c, PERR_BUSY, "SYNC", 4);
		return;
	}
	c->pub_unsynced = 0;	/* this SYNC answers for them */
	if (forward_sync(c->w, c) == -1) {
		worker_limit(c->w, CTR_BUSY, 1, "client %u: SYNC refused: the "
		    "producer cannot be reached", c->id);
		client_reply_err(c, PERR_BUSY, "SYNC", 4);
		return;
	}
	c->waiting_sync = 1;
}

/* The producer has the PUBs sent before a SYNC (or is gone: ok = 0). */
void
client_sync_done(struct client *c, uint64_t seq, int ok)
{
	c->waiting_sync = 0;
	if (ok)
		client_replyf(c, "+OK SYNC %llu\n", (unsigned long long)seq);
	else
		client_reply_err(c, PERR_BUSY, "SYNC", 4);
	client_flush(c);
}

/*
 * Run one command line (without LF/CR).  Returns what it counts against
 * CLIENT_COMMANDS_PER_TURN: 0 for a PUB, a blank line or a resume that
 * replays (cheap, and a client's resumes are run together), else 1; or
 * -1 when the command must wait (it was not run: sub_waits).
 */
int
command_execute(struct client *c, const char *line, size_t len)
{
	struct worker *w = c->w;
	struct cmd cmd;
	enum proto_err err = proto_parse(line, len, w->cfg->max_payload, &cmd);
	int cost = 1;

	/* Before AUTH, a known verb is refused whatever its words hold. */
	if (err != PERR_UNKNOWN_COMMAND && cmd.verb != CMD_NONE &&
	    cmd.verb != CMD_AUTH && cmd.verb != CMD_PING &&
	    cmd.verb != CMD_QUIT && authn_required(c)) {
		client_reply_err(c, PERR_AUTH_REQUIRED, cmd.verb_str,
		    cmd.verb_len);
		client_bad_line(c);
		return 1;
	}
	if (err != PERR_NONE) {
		const char *d = cmd.verb_str;
		size_t dl = cmd.verb_len;
		if (err == PERR_BAD_TOPIC || err == PERR_BAD_PATTERN) {
			d = cmd.name;
			dl = cmd.name_len;
		}
		client_reply_err(c, err, d, dl);
		client_bad_line(c);
		return 1;
	}
	if (cmd.verb == CMD_NONE)
		return 0;	/* blank: no answer, no count */
	if (cmd.verb == CMD_SUB && sub_waits(c, &cmd))
		return -1;
	if (cmd.verb != CMD_PUB)	/* cmd_pub knows if its line is bad */
		c->errors = 0;
	client_detach(c);
	switch (cmd.verb) {
	case CMD_SUB:
		cost = cmd_sub(c, &cmd);
		break;
	case CMD_UNSUB:
		cmd_unsub(c, &cmd);
		break;
	case CMD_GET:
		cmd_get(c, &cmd);
		break;
	case CMD_PUB:
		cmd_pub(c, &cmd);
		cost = 0;
		break;
	case CMD_SYNC:
		cmd_sync(c);
		break;
	case CMD_PING:
		if (cmd.payload_len > 0) {
			client_reply(c, "PONG ", 5);
			client_reply(c, cmd.payload, cmd.payload_len);
			client_reply(c, "\n", 1);
		} else {
			client_reply(c, "PONG\n", 5);
		}
		break;
	case CMD_STATS:
		stats_reply(c);
		break;
	case CMD_QUIT:
		client_bye(c, "quit");
		break;
	case CMD_AUTH:
		authn_command(c, &cmd);
		break;
	case CMD_NONE:
		break;
	}
	return cost;
}

