/*
 * Topics and patterns (herald-protocol(7), Names).  A topic is 1..255 bytes of
 * 0x21..0x7e except '+' and '#', in non-empty segments separated by '/'.
 * A pattern may also have a whole segment '+' (exactly one segment) and,
 * as its last segment, '#' (zero or more segments).
 */
#include <stddef.h>
#include <string.h>

#include "topic.h"

/* 1 if c may appear inside a topic segment. */
static int
seg_byte_ok(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '+' && c != '#' && c != '/';
}

/*
 * Length of the segment starting at s[i] (up to the next '/' or the end),
 * or 0 if it is empty or holds a byte not allowed in a topic segment.
 */
static size_t
plain_seg_len(const char *s, size_t len, size_t i)
{
	size_t j;

	for (j = i; j < len && s[j] != '/'; j++)
		if (!seg_byte_ok((unsigned char)s[j]))
			return 0;
	return j - i;
}

/* 1 if t[0..len) is a valid topic. */
int
topic_valid(const char *t, size_t len)
{
	size_t i = 0, n;

	if (len == 0 || len > TOPIC_MAX)
		return 0;
	for (;;) {
		if ((n = plain_seg_len(t, len, i)) == 0)
			return 0;
		i += n;
		if (i == len)
			return 1;
		i++;		/* the '/' */
		if (i == len)
			return 0;	/* trailing '/' */
	}
}

/*
 * 1 if the segment at p[i] is the wildcard w ('+' or '#') standing alone,
 * that is followed by '/' or the end of the pattern.
 */
static int
is_wild_seg(const char *p, size_t len, size_t i, char w)
{
	return p[i] == w && (i + 1 == len || p[i + 1] == '/');
}

/* 1 if p[0..len) is a valid pattern. */
int
pattern_valid(const char *p, size_t len)
{
	size_t i = 0, n;

	if (len == 0 || len > TOPIC_MAX)
		return 0;
	for (;;) {
		if (is_wild_seg(p, len, i, '#'))
			return i + 1 == len;	/* '#' only as the last */
		if (is_wild_seg(p, len, i, '+'))
			n = 1;
		else if ((n = plain_seg_len(p, len, i)) == 0)
			return 0;
		i += n;
		if (i == len)
			return 1;
		i++;		/* the '/' */
		if (i == len)
			return 0;
	}
}

/* 1 if the valid pattern p has no wildcard segment. */
int
pattern_is_exact(const char *p, size_t len)
{
	/* In a valid pattern '+' and '#' only occur as whole segments. */
	return memchr(p, '+', len) == NULL && memchr(p, '#', len) == NULL;
}

/*
 * 1 if the valid topic t matches the valid pattern p.  One pass over
 * both, segment by segment; never reads outside either string, even
 * for invalid input.
 */
int
topic_match(const char *p, size_t plen, const char *t, size_t tlen)
{
	size_t i = 0, j = 0;

	for (;;) {
		/* Here i and j are at the start of a segment. */
		if (i < plen && p[i] == '#')
			return 1;
		if (i == plen || j == tlen)
			return 0;
		if (p[i] == '+') {
			i++;
			while (j < tlen && t[j] != '/')
				j++;
		} else {
			for (; i < plen && p[i] != '/'; i++, j++)
				if (j == tlen || t[j] != p[i])
					return 0;
			if (j < tlen && t[j] != '/')
				return 0;	/* "a" is no match for "ab" */
		}
		if (i == plen)
			return j == tlen;
		if (j == tlen)		/* "a/#" matches "a" */
			return plen - i == 2 && p[i + 1] == '#';
		i++;
		j++;
	}
}

/* The end of the segment that starts at s[i]: the next '/' or len. */
static size_t
seg_end(const char *s, size_t len, size_t i)
{
	const char *slash = memchr(s + i, '/', len - i);

	return slash != NULL ? (size_t)(slash - s) : len;
}

/*
 * 1 if the valid pattern p is within the valid pattern q.  A pattern is a
 * set of topics: for each number of segments, a product of one set per
 * position (a name, or any segment for '+' and for what '#' covers).
 * None of those sets is empty, so p is within q exactly when every number
 * of segments p allows q allows too, and at each position q's set holds
 * p's.  TOPIC_MAX does not change that: a '+' still has many one-byte
 * segments to match, and a '#' of a valid pattern one more segment at
 * least.  Walked segment by segment over both.
 */
int
pattern_within(const char *p, size_t plen, const char *q, size_t qlen)
{
	size_t i = 0, j = 0, pe, qe;

	for (;;) {
		/* Here i and j are at the start of a segment, or at the end. */
		if (j < qlen && q[j] == '#')
			return 1;	/* the rest of p, even none of it */
		if (i == plen)
			return j == qlen;
		if (j == qlen)
			return 0;	/* p has more segments than q */
		if (p[i] == '#') {
			/*
			 * p has topics of several lengths from here on; q, with
			 * a segment and no '#' here, allows one more at least.
			 * Only a lone "#" (topics of one segment or more, any)
			 * fits in q, and only in "+/#".
			 */
			return i == 0 && qlen == 3 && memcmp(q, "+/#", 3) == 0;
		}
		pe = seg_end(p, plen, i);
		qe = seg_end(q, qlen, j);
		if (!(qe - j == 1 && q[j] == '+') &&
		    (pe - i != qe - j || memcmp(p + i, q + j, pe - i) != 0))
			return 0;	/* q names a segment: p must name it */
		i = pe < plen ? pe + 1 : pe;
		j = qe < qlen ? qe + 1 : qe;
	}
}
