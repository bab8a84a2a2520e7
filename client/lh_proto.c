/*
 * The server's side of the line protocol (herald-protocol(7)), as a
 * client reads it, and the back-off between reconnects.  Pure code: no
 * I/O, so it can be unit-tested alone.  Topic and pattern rules are the
 * daemon's own (common/topic.c).
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "lh.h"
#include "topic.h"

/* 1 if p[0..len) may be a payload: 1 or more bytes, no NUL, CR or LF. */
int
lh_payload_valid(const char *p, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '\0' || p[i] == '\r' || p[i] == '\n')
			return 0;
	return 1;
}

/*
 * Parse a seq: 1..20 decimal digits with a value below 2^64.  Returns 0
 * and the value in *out, or -1.
 */
int
lh_parse_seq(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = s[i] - '0';
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/*
 * Split off the next word of line[*i..len): NUL-terminate it in place
 * (at the separator) and move *i past it.  Returns the word, or NULL if
 * there is none.  Only one space separates words in what servers send.
 */
static char *
next_word(char *line, size_t len, size_t *i)
{
	size_t start = *i, j;

	if (start >= len)
		return NULL;
	for (j = start; j < len && line[j] != ' '; j++)
		;
	if (j == start)
		return NULL;
	line[j] = '\0';
	*i = j < len ? j + 1 : len;
	return line + start;
}

/* Parse a seq word into *out; -1 if missing or not a seq. */
static int
seq_word(char *line, size_t len, size_t *i, uint64_t *out)
{
	char *w = next_word(line, len, i);

	return w == NULL ? -1 : lh_parse_seq(w, strlen(w), out);
}

/* The rest of the line from i (may be empty), NUL-terminated. */
static void
take_rest(struct lh_line *l, char *line, size_t len, size_t i)
{
	l->rest = line + (i < len ? i : len);
	l->rest_len = i < len ? len - i : 0;
	l->rest[l->rest_len] = '\0';
}

/* MSG/VAL topic seq payload. */
static int
parse_msg(struct lh_line *l, char *line, size_t len, size_t i)
{
	if ((l->word = next_word(line, len, &i)) == NULL ||
	    !topic_valid(l->word, strlen(l->word)) ||
	    seq_word(line, len, &i, &l->seq) == -1 || i >= len)
		return -1;
	take_rest(l, line, len, i);
	return 0;
}

/* The verb of a line and the kind it makes (the verbs servers send). */
static const struct {
	const char		*verb;
	enum lh_line_kind	 kind;
} verbs[] = {
	{ "MSG", LH_L_MSG }, { "VAL", LH_L_VAL }, { "GAP", LH_L_GAP },
	{ "HB", LH_L_HB }, { "STAT", LH_L_STAT }, { "+OK", LH_L_OK },
	{ "-ERR", LH_L_ERR }, { "PONG", LH_L_PONG }, { "BYE", LH_L_BYE },
	{ "HELLO", LH_L_HELLO },
};

/* Parse what follows the verb; -1 if it is malformed. */
static int
parse_args(struct lh_line *l, char *line, size_t len, size_t i)
{
	switch (l->kind) {
	case LH_L_MSG:
	case LH_L_VAL:
		return parse_msg(l, line, len, i);
	case LH_L_GAP:
		if (seq_word(line, len, &i, &l->seq) == -1 ||
		    seq_word(line, len, &i, &l->seq2) == -1 ||
		    l->seq > l->seq2)
			return -1;
		break;
	case LH_L_HB:
		if (seq_word(line, len, &i, &l->seq) == -1)
			return -1;
		break;
	case LH_L_STAT:
		if ((l->word = next_word(line, len, &i)) == NULL ||
		    seq_word(line, len, &i, &l->seq) == -1)
			return -1;
		break;
	case LH_L_HELLO:	/* rest: "auth", or words to come */
		if ((l->word = next_word(line, len, &i)) == NULL ||
		    seq_word(line, len, &i, &l->seq) == -1)
			return -1;
		take_rest(l, line, len, i);
		return 0;
	case LH_L_OK:
	case LH_L_ERR:
	case LH_L_BYE:
		if ((l->word = next_word(line, len, &i)) == NULL)
			return -1;
		/* FALLTHROUGH */
	case LH_L_PONG:
		take_rest(l, line, len, i);
		return 0;
	case LH_L_BAD:
		return -1;
	}
	return i < len ? -1 : 0;	/* nothing may follow */
}

/*
 * Parse one line from the server (without its LF; line[len] must be
 * writable).  Fills l; l->kind is LH_L_BAD for anything not in
 * herald-protocol(7).  Words are NUL-terminated in place.
 */
void
lh_parse_line(char *line, size_t len, struct lh_line *l)
{
	size_t i = 0;
	char *verb;

	memset(l, 0, sizeof(*l));
	l->kind = LH_L_BAD;
	line[len] = '\0';
	if ((verb = next_word(line, len, &i)) == NULL)
		return;
	for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++) {
		if (strcasecmp(verb, verbs[k].verb) != 0)
			continue;
		l->kind = verbs[k].kind;
		if (parse_args(l, line, len, i) == -1)
			l->kind = LH_L_BAD;
		return;
	}
}

/* xorshift64*: the client's own generator, for jitter only. */
static uint64_t
rng_next(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/*
 * The delay before reconnect attempt number attempts (0 = the first after
 * a loss): a ceiling doubling from min_ms up to max_ms, and a random delay
 * between half the ceiling and all of it, so that many clients cut off at
 * once do not come back at once.
 */
uint64_t
lh_backoff_ms(int attempts, int min_ms, int max_ms, uint64_t *rng)
{
	uint64_t cap = min_ms > 0 ? (uint64_t)min_ms : 1;

	if (max_ms < min_ms)
		max_ms = min_ms;
	for (int i = 0; i < attempts && cap < (uint64_t)max_ms; i++)
		cap *= 2;
	if (cap > (uint64_t)max_ms)
		cap = max_ms;
	return cap - cap / 2 + rng_next(rng) % (cap / 2 + 1);
}

/*
 * Copy src into dst (dstlen >= 8) for a message: bytes outside 0x20..0x7e
 * as \xNN, a NUL (left by parsing) as a space, cut with "..." to fit.
 */
void
lh_escape(char *dst, size_t dstlen, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char b = src[i] == '\0' ? ' ' : src[i];
		int plain = b >= 0x20 && b <= 0x7e && b != '\\';
		if (o + (plain ? 1 : 4) + 4 > dstlen) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (plain) {
			dst[o++] = b;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[b >> 4];
			dst[o++] = hex[b & 15];
		}
	}
	dst[o] = '\0';
}

/* 1 if s is a valid topic. */
int
herald_valid_topic(const char *s)
{
	return s != NULL && topic_valid(s, strlen(s));
}

/* 1 if s is a valid pattern. */
int
herald_valid_pattern(const char *s)
{
	return s != NULL && pattern_valid(s, strlen(s));
}

/* 1 if p[0..len) is a valid payload. */
int
herald_valid_payload(const char *p, size_t len)
{
	return p != NULL && lh_payload_valid(p, len);
}
