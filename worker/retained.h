/*
 * A worker's index of the retained topics: a trie of the topics it has
 * seen, so that a snapshot costs in proportion to the topics it returns
 * rather than to the bus's whole retained table.  The worker builds one
 * from a walk of the table and adds the topic of every record its
 * fan-out reads (a topic already known costs one hash probe).  It may
 * hold topics the table no longer has: whoever reads one and finds it
 * gone says so (retained_forget), and the worker builds a new index when
 * those outnumber the rest or the index has grown far past what it held
 * when built.
 *
 * Nothing is ever taken out of a trie, and children keep the order they
 * were added in, so a walk can stop at a node and go on from it later
 * (retained_walk): that is how a snapshot is streamed to a client in
 * bounded steps.  Pure code: no I/O, so it can be unit-tested alone.
 */
#ifndef HERALD_RETAINED_H
#define HERALD_RETAINED_H

#include <stddef.h>
#include <stdint.h>

#include "topic.h"

#define RETAINED_SLACK	(1024 * 1024) /* bytes an index may grow past
				 * twice its size when built before it asks
				 * for a new one: topics come and go, and a
				 * rebuild walks the whole table */
#define RETAINED_LOST_MIN 1024	/* lost topics before they may ask for a
				 * new index: it costs a walk of the whole
				 * table, worth it only for many */

struct rnode;

struct retained {
	struct rnode	 *root;
	struct rnode	**tab;		/* topic nodes by topic; NULL = free */
	size_t		  nslots;	/* size of tab, a power of two */
	size_t		  ntopics;	/* topic nodes in tab */
	size_t		  dead;		/* ... of which the table has lost */
	size_t		  bytes;	/* memory held, roughly */
	size_t		  limit;	/* bytes past which it is too big */
	int		  refs;		/* snapshots walking it */
};

/*
 * Where a walk stands, and what it may still do.  A walk visits the
 * trie's nodes that the pattern can reach, in order (a node before its
 * children, children in the order they were added), and calls cb for
 * each topic the pattern matches.  It stops before a node once it has
 * visited `visits` nodes or cb has returned non-zero; `at` then names
 * that node, and a walk given the same `at` goes on from there.
 */
struct retained_walk {
	int		(*cb)(void *arg, const char *topic, size_t len);
	void		 *arg;
	unsigned	  visits;	/* nodes it may still visit */
	int		  full;		/* cb asked it to stop */
	char		  at[TOPIC_MAX];	/* the node to go on from */
	size_t		  atlen;	/* 0: from the start */
	char		  path[TOPIC_MAX + 1];	/* the node being visited */
};

/* A new empty index; NULL when memory runs out. */
struct retained *retained_new(void);

/* Free an index. */
void	retained_free(struct retained *);

/* The topic t[0..len) (a valid topic) is retained: add it if it is not
 * there, or no longer marked lost.  Returns 0, or -1 when memory runs
 * out (the index then lacks it). */
int	retained_note(struct retained *, const char *t, size_t len);

/* The table has lost topic t: walks skip it until it is noted again. */
void	retained_forget(struct retained *, const char *t, size_t len);

/* 1 when the index should be built anew: lost topics outnumber the
 * others, or it has grown past its limit. */
int	retained_stale(const struct retained *);

/* Once built: the size it may grow to before retained_stale says so. */
void	retained_built(struct retained *);

/*
 * Walk the topics matching pattern p[0..plen) (a valid pattern), from
 * w->at on (from the start when w->atlen is 0).  Returns 1 when every
 * node was visited, 0 when it stopped (w->at says where to go on).
 */
int	retained_walk(struct retained *, const char *p, size_t plen,
	    struct retained_walk *w);

#endif /* HERALD_RETAINED_H */
