/*
 * The topic index of a worker: which subscriptions a topic matches.
 * Exact patterns sit in a hash table, wildcard patterns in a trie of
 * segments, so a record is matched once per worker, not once per client.
 */
#ifndef HERALD_INDEX_H
#define HERALD_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct client;
struct trie_node;
struct exact_entry;

/* One subscription of one client. */
struct sub {
	struct sub	*cnext;		/* the client's list */
	struct sub	*inext, *iprev;	/* the index list it sits in */
	void		*home;		/* its exact entry or trie node */
	uint8_t		 is_exact;
	uint8_t		 is_hash;	/* pattern ends with '#' */
	struct client	*client;
	uint64_t	 start_seq;	/* first seq it may deliver */
	uint16_t	 len;
	char		 pattern[];
};

struct index {
	struct exact_entry	**buckets;
	size_t			  nbuckets;
	size_t			  nexact;
	struct trie_node	 *root;
	size_t			  nsubs;
};

typedef void	(*index_match_cb)(void *arg, struct sub *);

/* The hash of len bytes (FNV-1a). */
uint64_t hash_bytes(const void *, size_t len);

/* Prepare an empty index. */
void	index_init(struct index *);

/* Free what an index holds once every subscription is removed. */
void	index_free(struct index *);

/* Create a subscription for client c to a valid pattern, and index it.
 * Returns NULL when memory runs out. */
struct sub *index_add(struct index *, struct client *c, const char *pattern,
	    size_t len, uint64_t start_seq);

/* Remove a subscription from the index and free it. */
void	index_remove(struct index *, struct sub *);

/* Call cb for every subscription whose pattern matches the topic. */
void	index_match(struct index *, const char *topic, size_t len,
	    index_match_cb cb, void *arg);

#endif /* HERALD_INDEX_H */
