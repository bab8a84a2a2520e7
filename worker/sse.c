/*
 * Server-sent events (herald-protocol(7), "Other framings"): every
 * server line is one event, "event:" its verb in lowercase, "data:" the
 * rest of the line, and "id:" where the stream stands (a MSG's seq, a
 * GAP's last, the head on the +OK of a SUB answered with a snapshot).
 *
 * Replies are queued as lines, as for any client, and made events as
 * soon as a line is whole; records from the bus are rendered once per
 * batch for all SSE clients that get them (framing.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

/* The n-th word of s (0: the first), or NULL. */
static const char *
word(const char *s, size_t len, int n, size_t *wlen)
{
	const char *end = s + len;

	for (;;) {
		const char *sp = memchr(s, ' ', end - s);
		if (n-- == 0) {
			*wlen = (sp != NULL ? sp : end) - s;
			return s;
		}
		if (sp == NULL)
			return NULL;
		s = sp + 1;
	}
}

/*
 * Render the line (without its LF) as an event into dst, which has room
 * for len + FRAME_OVERHEAD bytes.  A MSG's seq or a GAP's last is its
 * "id:"; with_id gives one to another line too, from its data's third
 * word (the head of "+OK SUB pattern h").  Returns the bytes.
 */
int
sse_line(char *dst, const char *line, size_t len, int with_id)
{
	size_t vlen, dlen = 0, ilen = 0;
	const char *v = word(line, len, 0, &vlen), *data = "", *id = NULL;
	int n = 0;

	if (vlen < len) {
		data = line + vlen + 1;
		dlen = len - vlen - 1;
	}
	if (vlen > 0 && (*v == '+' || *v == '-')) {	/* +OK, -ERR */
		v++;
		vlen--;
	}
	if (vlen == 3 && (memcmp(v, "MSG", 3) == 0 ||
	    memcmp(v, "GAP", 3) == 0))
		id = word(data, dlen, 1, &ilen);
	else if (with_id)
		id = word(data, dlen, 2, &ilen);
	memcpy(dst, "event: ", 7);
	n = 7;
	for (size_t i = 0; i < vlen; i++)
		dst[n++] = v[i] >= 'A' && v[i] <= 'Z' ? v[i] | 0x20 : v[i];
	memcpy(dst + n, "\ndata: ", 7);
	n += 7;
	memcpy(dst + n, data, dlen);
	n += dlen;
	dst[n++] = '\n';
	if (id != NULL && ilen <= 20) {
		memcpy(dst + n, "id: ", 4);
		memcpy(dst + n + 4, id, ilen);
		n += 4 + ilen;
		dst[n++] = '\n';
	}
	dst[n++] = '\n';
	return n;
}

/* The +OK of a SUB answered with a snapshot, with the head as its id. */
void
sse_ok(struct client *c, const char *pattern, size_t plen, uint64_t h)
{
	char line[TOPIC_MAX + 64], ev[TOPIC_MAX + 64 + FRAME_OVERHEAD];
	int n = snprintf(line, sizeof(line), "+OK SUB %.*s %llu", (int)plen,
	    pattern, (unsigned long long)h);

	client_reply_framed(c, ev, sse_line(ev, line, n, 1));
}
