/* Permission lists (perm.h). */
#include <stdlib.h>
#include <string.h>

#include "perm.h"
#include "textfile.h"
#include "topic.h"

/* An empty list. */
void
perm_init(struct perm_list *pl)
{
	pl->v = NULL;
	pl->n = pl->cap = 0;
}

/* Add a copy of p[0..len) unless it is there. */
int
perm_add(struct perm_list *pl, const char *p, size_t len)
{
	size_t i;
	char *s;

	for (i = 0; i < pl->n; i++)
		if (strlen(pl->v[i]) == len && memcmp(pl->v[i], p, len) == 0)
			return 0;
	if (pl->n == PERM_MAX)
		return -1;
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 8;
		char **v = reallocarray(pl->v, cap, sizeof(*v));

		if (v == NULL)
			return -1;
		pl->v = v;
		pl->cap = cap;
	}
	if ((s = textfile_dup(p, len)) == NULL)
		return -1;
	pl->v[pl->n++] = s;
	return 0;
}

/* Free the patterns. */
void
perm_free(struct perm_list *pl)
{
	size_t i;

	for (i = 0; i < pl->n; i++)
		free(pl->v[i]);
	free(pl->v);
	perm_init(pl);
}

/* 1 if p[0..len) is within one of the list's patterns. */
static int
within_one(const struct perm_list *pl, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < pl->n; i++)
		if (pattern_within(p, len, pl->v[i], strlen(pl->v[i])))
			return 1;
	return 0;
}

/*
 * 1 if every topic p matches is matched by one of the list's patterns
 * (herald-protocol(7)), perhaps a different one for each topic.  For the
 * topics of one number of segments, that is p within one pattern: a topic
 * of p with a segment no pattern names where p has '+' must be matched by
 * one of them, which then holds them all.  A p without '#' has one number
 * of segments.  A p with '#' is taken one number at a time, from the
 * fewest: its topics of that many segments or more ("cur/#") within one
 * pattern settle it; its topics of exactly that many ("cur") within none
 * refuse it; else one more '+' segment.  At most TOPIC_MAX / 2 rounds.
 */
int
perm_allows_pattern(const struct perm_list *pl, const char *p, size_t len)
{
	char cur[TOPIC_MAX + 3];
	size_t n;

	if (within_one(pl, p, len))
		return 1;
	if (p[len - 1] != '#')
		return 0;
	/* "a/#": first the topics "a"; a lone "#": first those "+". */
	if (len > 1) {
		n = len - 2;
		memcpy(cur, p, n);
	} else {
		cur[0] = '+';
		n = 1;
	}
	for (;;) {
		if (n + 2 > TOPIC_MAX)	/* no topic has more segments */
			return within_one(pl, cur, n);
		memcpy(cur + n, "/#", 2);
		if (within_one(pl, cur, n + 2))
			return 1;
		if (!within_one(pl, cur, n))
			return 0;
		cur[n + 1] = '+';
		n += 2;
	}
}

/* 1 if t matches one of the list's patterns. */
int
perm_allows_topic(const struct perm_list *pl, const char *t, size_t len)
{
	size_t i;

	for (i = 0; i < pl->n; i++)
		if (topic_match(pl->v[i], strlen(pl->v[i]), t, len))
			return 1;
	return 0;
}
