/*
 * A small universe of patterns and topics over which containment can be
 * worked out by brute force (tests of pattern_within and of permission
 * lists).  Patterns: every sequence of 1..WP_SEGS segments from {a, b, +},
 * with or without a final '#', and "#" alone.  Topics: every sequence of
 * 1..WT_SEGS segments from {a, b, c}; "c" is named by no pattern.  Over
 * these, "every topic p matches, q matches" is exactly p within q: where
 * q names a segment and p has '+' or '#', "c" (or the other name) tells
 * them apart; where q allows fewer segments than p, a topic of WP_SEGS + 1
 * segments does.
 */
#ifndef HERALD_TEST_UNIVERSE_H
#define HERALD_TEST_UNIVERSE_H

#include <stdint.h>

#define WP_SEGS		4
#define WT_SEGS		(WP_SEGS + 1)
#define WP_MAX		(2 * (3 + 9 + 27 + 81) + 1)
#define WT_MAX		(3 + 9 + 27 + 81 + 243)

struct universe {
	char	 pat[WP_MAX][2 * WP_SEGS + 2];
	char	 top[WT_MAX][2 * WT_SEGS];
	uint8_t	 hit[WP_MAX][WT_MAX];	/* topic_match(pat, top) */
	int	 npat, ntop;
};

/* The universe, with every topic_match(pattern, topic) worked out; free
 * it.  Fails the running Check test if something is off. */
struct universe *universe_make(void);

#endif /* HERALD_TEST_UNIVERSE_H */
