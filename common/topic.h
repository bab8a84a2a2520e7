/*
 * Topics and patterns, exactly as herald-protocol(7) defines them.  Pure code:
 * no I/O, no allocation, so it can be unit-tested and fuzzed alone.
 */
#ifndef HERALD_TOPIC_H
#define HERALD_TOPIC_H

#include <stddef.h>

#define TOPIC_MAX	255	/* longest topic or pattern, in bytes */

/* 1 if t[0..len) is a valid topic: 1..255 bytes of 0x21..0x7e except '+'
 * and '#', segments separated by '/', no empty segment. */
int	topic_valid(const char *t, size_t len);

/* 1 if p[0..len) is a valid pattern: a topic in which a whole segment may
 * be '+', and the last segment may be '#'. */
int	pattern_valid(const char *p, size_t len);

/* 1 if the valid pattern p has no '+' or '#' segment (an exact topic). */
int	pattern_is_exact(const char *p, size_t len);

/* 1 if the valid topic t matches the valid pattern p: '+' is exactly one
 * segment, a final '#' zero or more ("a/#" matches "a"). */
int	topic_match(const char *p, size_t plen, const char *t, size_t tlen);

/*
 * 1 if every topic the valid pattern p can match is matched by the valid
 * pattern q (p "within" q: "a/+/c" within "a/#", "a" within "a/#", "#"
 * within "+/#"; "a/#" not within "a/+", nor within "a/+/#", since it
 * matches "a"; '+' never within an exact segment).  Exact: a SUB may be
 * granted by a read pattern with it.
 */
int	pattern_within(const char *p, size_t plen, const char *q, size_t qlen);

#endif /* HERALD_TOPIC_H */
