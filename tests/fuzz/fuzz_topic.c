/*
 * Fuzz target for topics and patterns.  The input is "<pattern>\n<topic>"
 * (or one name used as both).  topic_valid, pattern_valid, topic_match and
 * pattern_within (both names taken as patterns) must agree with a slow
 * reference written from herald-protocol(7) that splits names into
 * segments.
 *
 * libFuzzer: clang -fsanitize=fuzzer,address,undefined -Icommon \
 *     common/topic.c tests/fuzz/fuzz_topic.c
 * Replay without libFuzzer: link with standalone.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

struct seg {
	const char	*s;
	size_t		 len;
};

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Split s on '/' into v; returns the number of segments (empty ones too). */
static size_t
ref_split(const char *s, size_t len, struct seg *v)
{
	size_t n = 0, start = 0, i;

	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			v[n].s = s + start;
			v[n].len = i - start;
			n++;
			start = i + 1;
		}
	}
	return n;
}

static int
ref_seg_is(const struct seg *g, const char *w)
{
	return g->len == strlen(w) && memcmp(g->s, w, g->len) == 0;
}

/* A segment of a topic: non-empty, every byte 0x21..0x7e but '+', '#'. */
static int
ref_plain_seg(const struct seg *g)
{
	size_t i;

	if (g->len == 0)
		return 0;
	for (i = 0; i < g->len; i++) {
		unsigned char c = (unsigned char)g->s[i];

		if (c < 0x21 || c > 0x7e || c == '+' || c == '#')
			return 0;
	}
	return 1;
}

static int
ref_topic_valid(const char *s, size_t len)
{
	struct seg v[TOPIC_MAX + 1];
	size_t n, i;

	if (len < 1 || len > TOPIC_MAX)
		return 0;
	n = ref_split(s, len, v);
	for (i = 0; i < n; i++)
		if (!ref_plain_seg(&v[i]))
			return 0;
	return 1;
}

static int
ref_pattern_valid(const char *s, size_t len)
{
	struct seg v[TOPIC_MAX + 1];
	size_t n, i;

	if (len < 1 || len > TOPIC_MAX)
		return 0;
	n = ref_split(s, len, v);
	for (i = 0; i < n; i++) {
		if (ref_seg_is(&v[i], "+"))
			continue;
		if (ref_seg_is(&v[i], "#") && i == n - 1)
			continue;
		if (!ref_plain_seg(&v[i]))
			return 0;
	}
	return 1;
}

/* '+' is one segment, a final '#' is the rest (zero or more). */
static int
ref_match(const char *p, size_t plen, const char *t, size_t tlen)
{
	struct seg pv[TOPIC_MAX + 1], tv[TOPIC_MAX + 1];
	size_t np, nt, i;

	np = ref_split(p, plen, pv);
	nt = ref_split(t, tlen, tv);
	for (i = 0; i < np; i++) {
		if (ref_seg_is(&pv[i], "#"))
			return 1;
		if (i == nt)
			return 0;
		if (ref_seg_is(&pv[i], "+"))
			continue;
		if (pv[i].len != tv[i].len ||
		    memcmp(pv[i].s, tv[i].s, pv[i].len) != 0)
			return 0;
	}
	return np == nt;
}

/*
 * Every sequence of segments (the empty one too) that P matches, Q
 * matches: '#' matches any sequence, '+' one segment, a name itself.
 */
static int
ref_within_seq(const struct seg *pv, size_t np, const struct seg *qv,
    size_t nq)
{
	for (;; pv++, qv++, np--, nq--) {
		if (nq == 1 && ref_seg_is(qv, "#"))
			return 1;
		if (np == 0 || nq == 0)
			return np == 0 && nq == 0;
		if (ref_seg_is(pv, "#"))
			return 0;	/* q has no '#' here to hold p's */
		if (ref_seg_is(qv, "+"))
			continue;
		if (pv->len != qv->len || memcmp(pv->s, qv->s, pv->len) != 0)
			return 0;	/* a name, or '+', against a name */
	}
}

/* Every topic the valid pattern p matches, the valid pattern q matches. */
static int
ref_within(const char *p, size_t plen, const char *q, size_t qlen)
{
	struct seg pv[TOPIC_MAX + 1], qv[TOPIC_MAX + 1];
	size_t np, nq;

	np = ref_split(p, plen, pv);
	nq = ref_split(q, qlen, qv);
	/* A topic has a segment at least: "#" alone matches what "+/#"
	 * matches, not the empty sequence. */
	if (np == 1 && ref_seg_is(&pv[0], "#")) {
		pv[0].s = "+";
		pv[0].len = 1;
		pv[1].s = "#";
		pv[1].len = 1;
		np = 2;
	}
	return ref_within_seq(pv, np, qv, nq);
}

/* Compare topic_valid/pattern_valid with the reference for one name. */
static void
check_name(const char *s, size_t len)
{
	int tv = topic_valid(s, len), pv = pattern_valid(s, len);

	if (tv != ref_topic_valid(s, len) || pv != ref_pattern_valid(s, len))
		abort();
	if (tv && (!pv || !pattern_is_exact(s, len) ||
	    !topic_match(s, len, s, len)))
		abort();
	if (pv && pattern_is_exact(s, len) != tv)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *nl;
	const char *p = in, *t = in;
	size_t plen = size, tlen = size;

	if ((nl = memchr(in, '\n', size)) != NULL) {
		plen = nl - in;
		t = nl + 1;
		tlen = size - plen - 1;
	}
	check_name(p, plen);
	if (t != p)
		check_name(t, tlen);
	if (pattern_valid(p, plen) && topic_valid(t, tlen)) {
		int m = topic_match(p, plen, t, tlen);

		if (m != ref_match(p, plen, t, tlen))
			abort();
		if (pattern_is_exact(p, plen) &&
		    m != (plen == tlen && memcmp(p, t, plen) == 0))
			abort();
		if (!topic_match("#", 1, t, tlen))
			abort();
		/* A topic is within a pattern when it matches it. */
		if (pattern_within(t, tlen, p, plen) != m)
			abort();
	}
	if (pattern_valid(p, plen) && pattern_valid(t, tlen)) {
		if (pattern_within(p, plen, t, tlen) !=
		    ref_within(p, plen, t, tlen) ||
		    !pattern_within(p, plen, p, plen) ||
		    !pattern_within(p, plen, "+/#", 3))
			abort();
	}
	return 0;
}
