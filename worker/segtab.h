/*
 * The children of a trie node, by segment: the subscription index
 * (index.c) and the retained topics (retained.c) both keep one per node.
 *
 * Children sit in an array in the order they were added, so a walk can
 * stop at one and go on from it later whatever was added meanwhile (new
 * children come after it); a removed child leaves a hole until holes
 * outnumber the rest, and then the array is closed up (order kept).
 * Past a few children a hash of segment -> index finds one in constant
 * time: a node with thousands of children (400 clients x 256 patterns
 * "zK_J/+" under the root) is as quick to match and to add to as one
 * with two.  Pure code: no I/O, so it can be unit-tested alone.
 */
#ifndef HERALD_SEGTAB_H
#define HERALD_SEGTAB_H

#include <stddef.h>
#include <stdint.h>

#define SEGTAB_LINEAR	8	/* children found by scanning, below a hash:
				 * most nodes have a few, and a scan of a
				 * few is quicker than hashing the segment */

/* The segment a child stands for (its key). */
typedef const char *(*segtab_key_fn)(const void *child, size_t *len);

struct segtab {
	void		**v;		/* children in order; NULL = removed */
	uint32_t	 *slot;		/* hash: index + 1, 0 = free; or NULL */
	uint32_t	  n;		/* entries of v used, holes included */
	uint32_t	  cap;
	uint32_t	  live;		/* children (n minus the holes) */
	uint32_t	  nslot;	/* size of slot, a power of two */
};

/* Free a table's memory (not the children). */
void	segtab_free(struct segtab *);

/* The index of the child whose segment is seg[0..len), or -1. */
long	segtab_find(const struct segtab *, const char *seg, size_t len,
	    segtab_key_fn);

/* Add a child whose segment is not there yet, after all the others.
 * Returns its index, or -1 when memory runs out (the table is unchanged). */
long	segtab_add(struct segtab *, void *child, segtab_key_fn);

/* Remove the child at index i.  May close up the array: the indexes of
 * the children after it change, their order does not. */
void	segtab_remove(struct segtab *, uint32_t i, segtab_key_fn);

/* The child at index i (0 <= i < t->n), or NULL for a hole. */
static inline void *
segtab_at(const struct segtab *t, uint32_t i)
{
	return t->v[i];
}

#endif /* HERALD_SEGTAB_H */
