/*
 * The topic index: exact patterns in a hash table, wildcard patterns in a
 * trie whose edges are topic segments, a node's literal children in a
 * segtab (found by hash: thousands of clients' "zK_J/+" under one node
 * cost a probe, not a scan).  An entry or node left empty is freed at
 * once (as Redis does with its pub/sub dictionaries).
 */
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "segtab.h"

/* The subscriptions of one exact pattern. */
struct exact_entry {
	struct exact_entry	*next;	/* hash chain */
	struct sub		*subs;
	uint64_t		 hash;
	uint16_t		 len;
	char			 topic[];
};

/* A trie node: one segment below its parent. */
struct trie_node {
	struct trie_node	*parent;
	struct segtab		 children;	/* literal segments */
	struct trie_node	*plus;		/* the '+' child */
	struct sub		*here;		/* patterns ending here */
	struct sub		*hash;		/* patterns ending "/#" here */
	uint16_t		 seglen;
	char			 seg[];
};

/* FNV-1a: topics here, snapshots and sweeps in fanout.c, addresses in
 * worker.c. */
uint64_t
hash_bytes(const void *p, size_t len)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Prepare an empty index. */
void
index_init(struct index *idx)
{
	memset(idx, 0, sizeof(*idx));
}

/* Free what an index holds once every subscription is removed: the
 * exact table and the trie's root. */
void
index_free(struct index *idx)
{
	free(idx->buckets);
	if (idx->root != NULL)
		segtab_free(&idx->root->children);
	free(idx->root);
	index_init(idx);
}

static void
list_push(struct sub **head, struct sub *s)
{
	s->iprev = NULL;
	s->inext = *head;
	if (*head != NULL)
		(*head)->iprev = s;
	*head = s;
}

static void
list_unlink(struct sub **head, struct sub *s)
{
	if (s->iprev != NULL)
		s->iprev->inext = s->inext;
	else
		*head = s->inext;
	if (s->inext != NULL)
		s->inext->iprev = s->iprev;
}

static int
exact_grow(struct index *idx)
{
	size_t n = idx->nbuckets ? idx->nbuckets * 2 : 64;
	struct exact_entry **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return -1;
	for (size_t i = 0; i < idx->nbuckets; i++) {
		struct exact_entry *e = idx->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(idx->buckets);
	idx->buckets = b;
	idx->nbuckets = n;
	return 0;
}

static struct exact_entry *
exact_find(struct index *idx, const char *t, size_t len, uint64_t h)
{
	if (idx->nbuckets == 0)
		return NULL;
	for (struct exact_entry *e = idx->buckets[h & (idx->nbuckets - 1)];
	    e != NULL; e = e->next)
		if (e->hash == h && e->len == len && memcmp(e->topic, t, len) == 0)
			return e;
	return NULL;
}

static struct exact_entry *
exact_get(struct index *idx, const char *t, size_t len)
{
	uint64_t h = hash_bytes(t, len);
	struct exact_entry *e = exact_find(idx, t, len, h);

	if (e != NULL)
		return e;
	if (idx->nexact >= idx->nbuckets && exact_grow(idx) == -1)
		return NULL;
	if ((e = calloc(1, sizeof(*e) + len)) == NULL)
		return NULL;
	e->hash = h;
	e->len = len;
	memcpy(e->topic, t, len);
	e->next = idx->buckets[h & (idx->nbuckets - 1)];
	idx->buckets[h & (idx->nbuckets - 1)] = e;
	idx->nexact++;
	return e;
}

static void
exact_drop(struct index *idx, struct exact_entry *e)
{
	struct exact_entry **pp = &idx->buckets[e->hash & (idx->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	idx->nexact--;
	free(e);
}

static struct trie_node *
node_new(struct trie_node *parent, const char *seg, size_t len)
{
	struct trie_node *n = calloc(1, sizeof(*n) + len);

	if (n == NULL)
		return NULL;
	n->parent = parent;
	n->seglen = len;
	memcpy(n->seg, seg, len);
	return n;
}

/* A node's segment: the key of its parent's child table. */
static const char *
node_seg(const void *child, size_t *len)
{
	const struct trie_node *n = child;

	*len = n->seglen;
	return n->seg;
}

/* The child of n for one pattern segment, created if missing. */
static struct trie_node *
node_child(struct trie_node *n, const char *seg, size_t len)
{
	struct trie_node *c;

	if (len == 1 && seg[0] == '+') {
		if (n->plus == NULL)
			n->plus = node_new(n, seg, len);
		return n->plus;
	}
	long i = segtab_find(&n->children, seg, len, node_seg);
	if (i >= 0)
		return segtab_at(&n->children, i);
	if ((c = node_new(n, seg, len)) == NULL)
		return NULL;
	if (segtab_add(&n->children, c, node_seg) == -1) {
		free(c);
		return NULL;
	}
	return c;
}

static int
node_empty(const struct trie_node *n)
{
	return n->children.live == 0 && n->plus == NULL && n->here == NULL &&
	    n->hash == NULL;
}

/* Free empty nodes from n up to (not including) the root. */
static void
node_prune(struct trie_node *n)
{
	while (n->parent != NULL && node_empty(n)) {
		struct trie_node *p = n->parent;
		if (p->plus == n)
			p->plus = NULL;
		else
			segtab_remove(&p->children, segtab_find(&p->children,
			    n->seg, n->seglen, node_seg), node_seg);
		segtab_free(&n->children);
		free(n);
		n = p;
	}
}

/* Place a wildcard subscription in the trie. */
static int
trie_add(struct index *idx, struct sub *s)
{
	const char *p = s->pattern, *end = p + s->len;
	struct trie_node *n;

	if (idx->root == NULL && (idx->root = node_new(NULL, "", 0)) == NULL)
		return -1;
	n = idx->root;
	while (p < end) {
		const char *slash = memchr(p, '/', end - p);
		size_t seglen = (slash ? slash : end) - p;
		if (seglen == 1 && p[0] == '#') {
			s->is_hash = 1;
			break;
		}
		if ((n = node_child(n, p, seglen)) == NULL)
			return -1;
		p += seglen + (slash != NULL);
	}
	s->home = n;
	list_push(s->is_hash ? &n->hash : &n->here, s);
	return 0;
}

/* Create a subscription and index it. */
struct sub *
index_add(struct index *idx, struct client *c, const char *pattern,
    size_t len, uint64_t start_seq)
{
	struct sub *s = calloc(1, sizeof(*s) + len);

	if (s == NULL)
		return NULL;
	s->client = c;
	s->start_seq = start_seq;
	s->len = len;
	memcpy(s->pattern, pattern, len);
	s->is_exact = memchr(pattern, '+', len) == NULL &&
	    memchr(pattern, '#', len) == NULL;
	if (s->is_exact) {
		struct exact_entry *e = exact_get(idx, pattern, len);
		if (e == NULL) {
			free(s);
			return NULL;
		}
		s->home = e;
		list_push(&e->subs, s);
	} else if (trie_add(idx, s) == -1) {
		free(s);
		return NULL;
	}
	idx->nsubs++;
	return s;
}

/* Remove a subscription and free it (and its entry or nodes if empty). */
void
index_remove(struct index *idx, struct sub *s)
{
	if (s->is_exact) {
		struct exact_entry *e = s->home;
		list_unlink(&e->subs, s);
		if (e->subs == NULL)
			exact_drop(idx, e);
	} else {
		struct trie_node *n = s->home;
		list_unlink(s->is_hash ? &n->hash : &n->here, s);
		node_prune(n);
	}
	idx->nsubs--;
	free(s);
}

static void
emit(struct sub *s, index_match_cb cb, void *arg)
{
	struct sub *next;

	for (; s != NULL; s = next) {
		next = s->inext;
		cb(arg, s);
	}
}

/* Walk the trie for the segments of t[0..len) from node n. */
static void
trie_match(struct trie_node *n, const char *t, const char *end,
    index_match_cb cb, void *arg)
{
	/* "x/#" also matches "x" itself: emit hash here before descending. */
	emit(n->hash, cb, arg);
	if (t > end) {		/* all segments consumed */
		emit(n->here, cb, arg);
		return;
	}
	const char *slash = memchr(t, '/', end - t);
	const char *segend = slash ? slash : end;
	size_t seglen = segend - t;
	const char *rest = slash ? slash + 1 : end + 1;

	long i = segtab_find(&n->children, t, seglen, node_seg);
	if (i >= 0)
		trie_match(segtab_at(&n->children, i), rest, end, cb, arg);
	if (n->plus != NULL)
		trie_match(n->plus, rest, end, cb, arg);
}

/* Call cb for every subscription whose pattern matches the topic. */
void
index_match(struct index *idx, const char *topic, size_t len,
    index_match_cb cb, void *arg)
{
	struct exact_entry *e = exact_find(idx, topic, len,
	    idx->nbuckets ? hash_bytes(topic, len) : 0);

	if (e != NULL)
		emit(e->subs, cb, arg);
	if (idx->root != NULL)
		trie_match(idx->root, topic, topic + len, cb, arg);
}
