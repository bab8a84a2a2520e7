/*
 * Grants: who a connection is and what it may read and publish, shared.
 * Every connection of a user gets the same lists from the ACL, and its
 * tokens carry the same claims, so a worker keeps each distinct user and
 * pair of lists once and counts its holders: a hundred thousand
 * authenticated connections cost a pointer each, not a copy each.
 */
#ifndef HERALD_GRANT_H
#define HERALD_GRANT_H

#include <stddef.h>
#include <stdint.h>

#include "ident.h"
#include "perm.h"

struct grant {
	struct grant	*next;		/* its bucket of the table */
	uint32_t	 refs;
	uint32_t	 hash;
	int		 lists;		/* read and publish say what it may;
					 * else it reads every topic and
					 * publishes as anyone on its
					 * listener may (no ACL, no claim) */
	struct perm_list read, publish;
	char		 user[IDENT_MAX + 1];
};

struct grant_table {
	struct grant	**buckets;
	size_t		  nbuckets;
	size_t		  n;
};

/*
 * The grant of the valid user (ident.h) with these lists (taken: read and
 * publish are empty after; both NULL: no lists), shared with its other
 * holders; NULL when out of memory (the lists are freed).  Release it
 * with grant_put.
 */
struct grant *grant_get(struct grant_table *, const char *user,
	    struct perm_list *read, struct perm_list *publish);

/* Drop one hold on g (NULL is fine); the last frees it. */
void	grant_put(struct grant_table *, struct grant *g);

#endif /* HERALD_GRANT_H */
