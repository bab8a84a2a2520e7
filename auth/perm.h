/*
 * Permissions: a list of valid patterns, read or publish, and the checks
 * herald-protocol(7) makes with them.  SUB is allowed when its pattern is
 * within a read pattern, GET when its topic matches one, PUB when its
 * topic matches a publish pattern.  An ACL (acl.h) or a token's claims
 * (jwt.h) fill them.
 */
#ifndef HERALD_PERM_H
#define HERALD_PERM_H

#include <stddef.h>

#define PERM_MAX	1024	/* patterns in one list: an ACL user block
				 * and "user *", or a token's claim, hold
				 * far fewer; a check walks them all */

struct perm_list {
	char	**v;		/* NUL-terminated valid patterns */
	size_t	  n;
	size_t	  cap;
};

/* An empty list (a zeroed struct is one too). */
void	perm_init(struct perm_list *);

/*
 * Add a copy of the valid pattern p[0..len), unless the list holds it
 * already.  Returns 0, or -1 when out of memory or the list holds
 * PERM_MAX patterns (the list is as it was).
 */
int	perm_add(struct perm_list *, const char *p, size_t len);

/* Free the patterns; the list is empty after. */
void	perm_free(struct perm_list *);

/* 1 if the valid pattern p[0..len) is within one of the list's. */
int	perm_allows_pattern(const struct perm_list *, const char *p,
	    size_t len);

/* 1 if the valid topic t[0..len) matches one of the list's patterns. */
int	perm_allows_topic(const struct perm_list *, const char *t, size_t len);

#endif /* HERALD_PERM_H */
