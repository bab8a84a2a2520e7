/*
 * Bytes in and out: the output queue (whole lines), writing what the
 * socket takes, reading and splitting lines, and what of the output
 * survives a lost connection.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh.h"

/* Bytes queued and not yet written. */
size_t
lh_out_pending(const struct herald_client *c)
{
	return c->out_len - c->out_off;
}

/* Start of the line that holds offset off of the output queue. */
static size_t
line_start(const struct herald_client *c, size_t off)
{
	while (off > 0 && c->out[off - 1] != '\n')
		off--;
	return off;
}

/*
 * Room for n more bytes at the end of the output queue: returns where to
 * write them (they count as queued at once), or NULL when memory is short.
 * The queue always starts at the start of a line.
 */
char *
lh_out_reserve(struct herald_client *c, size_t n)
{
	if (c->out_len + n > c->out_cap && c->out_off > 0) {
		size_t ls = line_start(c, c->out_off);
		memmove(c->out, c->out + ls, c->out_len - ls);
		c->out_len -= ls;
		c->out_off -= ls;
	}
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + n)
			cap *= 2;
		char *out = realloc(c->out, cap);
		if (out == NULL)
			return NULL;
		c->out = out;
		c->out_cap = cap;
	}
	char *p = c->out + c->out_len;
	c->out_len += n;
	return p;
}

/*
 * Put line[0..n) at the head of the output queue, before what waits
 * there (nothing of it written yet).  Returns 0, or -1 if memory is
 * short.
 */
int
lh_out_prepend(struct herald_client *c, const char *line, size_t n)
{
	size_t queued = lh_out_pending(c);

	if (lh_out_reserve(c, n) == NULL)
		return -1;
	memmove(c->out + c->out_off + n, c->out + c->out_off, queued);
	memcpy(c->out + c->out_off, line, n);
	return 0;
}

/*
 * Write what the socket takes now: everything once the connection is
 * ready, only the AUTH line before.  A failure marks the client broken.
 */
void
lh_write(struct herald_client *c)
{
	int authing = c->state == LH_AUTH;

	if ((c->state != LH_READY && !authing) || c->fd < 0 || c->broken)
		return;
	while (c->out_off < c->out_len && (!authing || c->out_auth > 0)) {
		size_t len = c->out_len - c->out_off;
		if (authing && len > c->out_auth)
			len = c->out_auth;
		long n = lh_sock_send(c, c->out + c->out_off, len);
		if (n > 0) {
			c->out_off += n;
			if (authing)
				c->out_auth -= n;
			continue;
		}
		if (c->broken)
			return;		/* TLS failed: said already */
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		c->broken = lh_fail(c, HERALD_ECLOSED, "write to %s: %s",
		    c->addr_str, strerror(errno));
		return;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
}

/*
 * After a lost connection: keep the PUB lines not completely written (a
 * line cut short never reached the server: it drops an unfinished line),
 * drop the rest (commands fail; SUBs are sent again).
 */
void
lh_keep_pubs(struct herald_client *c)
{
	size_t from = c->out_len > 0 ? line_start(c, c->out_off) : 0;
	size_t to = 0;

	while (from < c->out_len) {
		char *lf = memchr(c->out + from, '\n', c->out_len - from);
		size_t end = lf ? (size_t)(lf - c->out) + 1 : c->out_len;
		if (end - from > 4 && memcmp(c->out + from, "PUB ", 4) == 0) {
			memmove(c->out + to, c->out + from, end - from);
			to += end - from;
		}
		from = end;
	}
	c->out_off = 0;
	c->out_len = to;
}

/* Make room to read LH_READ_CHUNK more bytes; -1 if memory is short. */
static int
in_room(struct herald_client *c)
{
	if (c->in_cap - c->in_len >= LH_READ_CHUNK + 1)
		return 0;
	size_t cap = c->in_cap ? c->in_cap : 2 * LH_READ_CHUNK;
	while (cap - c->in_len < LH_READ_CHUNK + 1)
		cap *= 2;
	char *in = realloc(c->in, cap);
	if (in == NULL)
		return -1;
	c->in = in;
	c->in_cap = cap;
	return 0;
}

/* 1 while lines read should still be handled. */
static int
keep_handling(const struct herald_client *c)
{
	return !c->broken && !c->close_asked &&
	    (c->state == LH_HELLO || c->state == LH_AUTH ||
	    c->state == LH_READY);
}

/* Handle every complete line in the input; keep the unfinished one. */
static void
split_lines(struct herald_client *c)
{
	size_t start = 0;

	while (keep_handling(c)) {
		size_t from = c->in_scan > start ? c->in_scan : start;
		char *lf = memchr(c->in + from, '\n', c->in_len - from);
		if (lf == NULL) {
			c->in_scan = c->in_len;
			break;
		}
		size_t end = lf - c->in, len = end - start;
		if (len > 0 && c->in[start + len - 1] == '\r')
			len--;
		lh_handle_line(c, c->in + start, len);
		start = end + 1;
	}
	if (!keep_handling(c))
		return;		/* the connection is over: input is dropped */
	if (start > 0) {
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
		c->in_scan = c->in_scan > start ? c->in_scan - start : 0;
	}
	if (c->in_len > c->opt.max_line)
		c->broken = lh_fail(c, HERALD_EPROTO, "%s sent a line longer "
		    "than %zu bytes", c->addr_str, c->opt.max_line);
	if (c->in_len == 0 && c->in_cap > LH_IN_KEEP) {
		free(c->in);	/* a big line was read: give its room back */
		c->in = NULL;
		c->in_cap = 0;
	}
}

/*
 * The server ended the connection after BYE reason: an authentication
 * ending is an error of its own, not retried (auth-expired is, when a
 * new token can be asked for); any other reason is a closed connection.
 */
static int
bye_error(struct herald_client *c, const char *detail)
{
	if (strcmp(c->bye, "auth-failed") == 0) {
		c->no_retry = 1;
		return lh_fail(c, HERALD_EAUTH, "%s refused the credentials "
		    "(BYE auth-failed)", c->addr_str);
	}
	if (strcmp(c->bye, "auth-expired") == 0) {
		c->no_retry = c->auth.refresh == NULL;
		return lh_fail(c, HERALD_EEXPIRED, "%s ended the connection: "
		    "the token expired (BYE auth-expired)", c->addr_str);
	}
	return lh_fail(c, HERALD_ECLOSED, "%s closed the connection (BYE "
	    "%s)%s", c->addr_str, c->bye, detail);
}

/* The server closed the connection: say how. */
static void
read_eof(struct herald_client *c)
{
	if (c->in_len > 0)
		c->broken = lh_fail(c, HERALD_EPROTO, "%s closed the "
		    "connection in the middle of a line", c->addr_str);
	else if (c->bye[0] != '\0')
		c->broken = bye_error(c, "");
	else if (c->state == LH_HELLO)
		c->broken = lh_fail(c, HERALD_ECLOSED, "%s closed the "
		    "connection before HELLO", c->addr_str);
	else
		c->broken = lh_fail(c, HERALD_ECLOSED, "%s closed the "
		    "connection", c->addr_str);
}

/* Reading failed (a reset, most likely): say how. */
static void
read_error(struct herald_client *c, int err)
{
	char detail[128];

	if (c->in_len > 0) {
		c->broken = lh_fail(c, HERALD_EPROTO, "%s closed the "
		    "connection in the middle of a line (%s)", c->addr_str,
		    strerror(err));
	} else if (c->bye[0] != '\0') {
		snprintf(detail, sizeof(detail), " (%s)", strerror(err));
		c->broken = bye_error(c, detail);
	} else {
		c->broken = lh_fail(c, HERALD_ECLOSED, "read from %s: %s",
		    c->addr_str, strerror(err));
	}
}

/* Read what is there (a bounded amount) and handle the lines. */
void
lh_read(struct herald_client *c)
{
	for (int i = 0; i < LH_READS_PER_CALL && keep_handling(c); i++) {
		if (in_room(c) == -1) {
			c->broken = lh_fail(c, HERALD_ENOMEM, "out of memory "
			    "for a line from %s", c->addr_str);
			return;
		}
		long n = lh_sock_recv(c, c->in + c->in_len,
		    c->in_cap - c->in_len - 1);
		if (n == 0) {
			read_eof(c);
			return;
		}
		if (n == -1) {
			if (c->broken)
				return;		/* TLS failed: said already */
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				read_error(c, errno);
			return;
		}
		c->in_len += n;
		c->last_in = lh_now_ms();
		split_lines(c);
		/* Drained, most likely; TLS reads a record at a time. */
		if ((size_t)n < LH_READ_CHUNK && c->ssl == NULL)
			return;
	}
}
