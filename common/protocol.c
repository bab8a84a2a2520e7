/*
 * The line protocol (herald-protocol(7): Framing, COMMANDS and
 * "Errors"): split one client line into a command, and format "-ERR"
 * lines.  Pure code: no I/O, no allocation.
 *
 * Error details, by convention of the callers: the topic or pattern for
 * name errors (bad-topic, bad-pattern, forbidden, not-found, ...) and
 * payload errors (bad-payload, payload-too-large); the verb as sent
 * (c->verb_str) for syntax and unknown-command.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol.h"
#include "topic.h"

#define SINCE_DIGITS	20	/* most digits in a since: 2^64 - 1 */
#define MAX_WORDS	2	/* most words after a verb (SUB) */

/* A cursor over the line being parsed. */
struct scan {
	const char	*s;
	size_t		 len;
	size_t		 pos;
};

struct word {
	const char	*s;
	size_t		 len;
};

static const struct {
	const char	*name;
	enum cmd_verb	 verb;
	int		 min, max;	/* words after the verb (not PUB) */
} verbs[] = {
	{ "SUB",	CMD_SUB,	1, 2 },
	{ "UNSUB",	CMD_UNSUB,	1, 1 },
	{ "GET",	CMD_GET,	1, 1 },
	{ "PUB",	CMD_PUB,	0, 0 },	/* has its own rule */
	{ "SYNC",	CMD_SYNC,	0, 0 },
	{ "PING",	CMD_PING,	0, 1 },
	{ "STATS",	CMD_STATS,	0, 0 },
	{ "QUIT",	CMD_QUIT,	0, 0 },
	{ "AUTH",	CMD_AUTH,	1, 2 },
};

/* Indexed by enum proto_err. */
static const char *const err_codes[] = {
	"", "syntax", "unknown-command", "line-too-long", "bad-topic",
	"bad-pattern", "bad-payload", "payload-too-large", "forbidden",
	"too-many-subs", "not-subscribed", "not-found", "busy",
	"auth-required", "auth-failed"
};

static int
is_sep(char c)
{
	return c == ' ' || c == '\t';
}

/* Skip spaces and tabs; returns 1 if a word follows. */
static int
skip_seps(struct scan *sc)
{
	while (sc->pos < sc->len && is_sep(sc->s[sc->pos]))
		sc->pos++;
	return sc->pos < sc->len;
}

/* Take the word at the cursor (the cursor is on its first byte). */
static struct word
take_word(struct scan *sc)
{
	struct word w = { sc->s + sc->pos, 0 };

	while (sc->pos < sc->len && !is_sep(sc->s[sc->pos]))
		sc->pos++;
	w.len = sc->s + sc->pos - w.s;
	return w;
}

/* ASCII-only upper case, independent of the locale. */
static char
ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* Index in verbs[] of the verb w (any case), or -1. */
static int
verb_lookup(struct word w)
{
	size_t i, k;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) != w.len)
			continue;
		for (k = 0; k < w.len; k++)
			if (ascii_upper(w.s[k]) != verbs[i].name[k])
				break;
		if (k == w.len)
			return (int)i;
	}
	return -1;
}

/*
 * Parse a since: 1..20 decimal digits with a value below 2^64.
 * Returns 0 and sets *v, or -1.
 */
int
proto_parse_seq(const char *s, size_t len, uint64_t *v)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0 || len > SINCE_DIGITS)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*v = n;
	return 0;
}

/* The payload's own fault, if any: bad-payload before payload-too-large. */
static enum proto_err
payload_fault(const char *p, size_t len, size_t max_payload)
{
	if (memchr(p, '\0', len) != NULL || memchr(p, '\r', len) != NULL)
		return PERR_BAD_PAYLOAD;
	if (len > max_payload)
		return PERR_PAYLOAD_TOO_LARGE;
	return PERR_NONE;
}

/*
 * PUB <topic> <payload>: exactly one space or tab ends the topic, and
 * the rest of the line, whatever it holds, is the payload.
 */
static enum proto_err
parse_pub(struct scan *sc, size_t max_payload, struct cmd *c)
{
	struct word t;

	if (!skip_seps(sc))
		return PERR_SYNTAX;
	t = take_word(sc);
	c->name = t.s;
	c->name_len = t.len;
	if (sc->pos + 1 >= sc->len)	/* no separator, or nothing after it */
		return PERR_SYNTAX;
	c->payload = sc->s + sc->pos + 1;
	c->payload_len = sc->len - sc->pos - 1;
	if (!topic_valid(t.s, t.len))
		return PERR_BAD_TOPIC;
	c->payload_err = payload_fault(c->payload, c->payload_len,
	    max_payload);
	return PERR_NONE;
}

/* The commands made of words only: check the count, then the name. */
static enum proto_err
parse_words(struct scan *sc, int min, int max, struct cmd *c)
{
	struct word w[MAX_WORDS];
	int n = 0;

	while (skip_seps(sc)) {
		if (n == max)
			return PERR_SYNTAX;	/* an extra word */
		w[n++] = take_word(sc);
	}
	if (n < min)
		return PERR_SYNTAX;
	switch (c->verb) {
	case CMD_SUB:
		c->name = w[0].s;
		c->name_len = w[0].len;
		if (n == 2) {
			/* A bad since is a words fault: before the pattern. */
			if (proto_parse_seq(w[1].s, w[1].len, &c->since) == -1)
				return PERR_SYNTAX;
			c->has_since = 1;
		}
		return pattern_valid(c->name, c->name_len) ? PERR_NONE :
		    PERR_BAD_PATTERN;
	case CMD_UNSUB:
		c->name = w[0].s;
		c->name_len = w[0].len;
		return pattern_valid(c->name, c->name_len) ? PERR_NONE :
		    PERR_BAD_PATTERN;
	case CMD_GET:
		c->name = w[0].s;
		c->name_len = w[0].len;
		return topic_valid(c->name, c->name_len) ? PERR_NONE :
		    PERR_BAD_TOPIC;
	case CMD_AUTH:
		/* Whatever the words hold, a bad one is an auth-failed
		 * (the same line for every cause), never a syntax error. */
		c->name = w[0].s;
		c->name_len = w[0].len;
		if (n == 2) {
			c->payload = w[1].s;
			c->payload_len = w[1].len;
		}
		return PERR_NONE;
	case CMD_PING:
		/* No token: an empty one at the end of the line. */
		c->payload = n == 1 ? w[0].s : sc->s + sc->len;
		c->payload_len = n == 1 ? w[0].len : 0;
		return PERR_NONE;
	default:
		return PERR_NONE;
	}
}

/*
 * Parse one line (no LF, no CR before it) into c; every pointer in c
 * points into line.  Returns the first fault (verb, words, name) or
 * PERR_NONE; a blank line gives CMD_NONE.  For the error detail,
 * c->verb_str is set on every line that is not blank, and c->name on
 * every bad-topic or bad-pattern.
 */
enum proto_err
proto_parse(const char *line, size_t len, size_t max_payload, struct cmd *c)
{
	struct scan sc = { line, len, 0 };
	struct word w;
	int v;

	memset(c, 0, sizeof(*c));
	c->verb = CMD_NONE;
	c->payload_err = PERR_NONE;
	if (!skip_seps(&sc))
		return PERR_NONE;
	w = take_word(&sc);
	c->verb_str = w.s;
	c->verb_len = w.len;
	if ((v = verb_lookup(w)) == -1)
		return PERR_UNKNOWN_COMMAND;
	c->verb = verbs[v].verb;
	if (c->verb == CMD_PUB)
		return parse_pub(&sc, max_payload, c);
	return parse_words(&sc, verbs[v].min, verbs[v].max, c);
}

/* The code word of e ("" for PERR_NONE or a value out of range). */
const char *
proto_err_code(enum proto_err e)
{
	if ((size_t)e >= sizeof(err_codes) / sizeof(err_codes[0]))
		return "";
	return err_codes[e];
}

/* 1 if a line answered with e counts toward max_errors. */
int
proto_err_is_bad(enum proto_err e)
{
	switch (e) {
	case PERR_SYNTAX:
	case PERR_UNKNOWN_COMMAND:
	case PERR_LINE_TOO_LONG:
	case PERR_BAD_TOPIC:
	case PERR_BAD_PATTERN:
	case PERR_BAD_PAYLOAD:
	case PERR_AUTH_REQUIRED:
		return 1;
	default:
		return 0;
	}
}

/*
 * Escape src into dst: bytes outside 0x20..0x7e and '\' as \xNN.
 * Returns the length written (<= dstlen); stops before a byte whose
 * escape would not fit whole.  dst is not NUL-terminated.
 */
size_t
proto_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = 0;

	for (i = 0; i < srclen; i++) {
		unsigned char b = (unsigned char)src[i];

		if (b >= 0x20 && b <= 0x7e && b != '\\') {
			if (dstlen - n < 1)
				break;
			dst[n++] = (char)b;
		} else {
			if (dstlen - n < 4)
				break;
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[b >> 4];
			dst[n++] = hex[b & 0xf];
		}
	}
	return n;
}

/* Append what of s[0..len) fits in the first room bytes of dst. */
static size_t
put_str(char *dst, size_t room, const char *s, size_t len)
{
	if (len > room)
		len = room;
	memcpy(dst, s, len);
	return len;
}

/*
 * Write "-ERR <code> <detail>\n" into buf, then a NUL that the returned
 * length does not count, so the line is at most buflen - 1 bytes.  The
 * detail is escaped and cut at a whole character when it does not fit
 * (a detail cut to nothing loses its space too).  Returns 0 only if
 * buflen < 2.
 */
size_t
proto_format_err(char *buf, size_t buflen, enum proto_err e,
    const char *detail, size_t detail_len)
{
	const char *code = proto_err_code(e);
	size_t n, room, d;

	if (buflen < 2) {
		if (buflen == 1)
			buf[0] = '\0';
		return 0;
	}
	room = buflen - 2;		/* keep the LF and the NUL */
	n = put_str(buf, room, "-ERR", 4);
	if (code[0] != '\0' && n < room) {
		buf[n++] = ' ';
		n += put_str(buf + n, room - n, code, strlen(code));
	}
	if (detail_len > 0 && room - n >= 2) {
		d = proto_escape(buf + n + 1, room - n - 1, detail,
		    detail_len);
		if (d > 0) {
			buf[n] = ' ';
			n += 1 + d;
		}
	}
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}
