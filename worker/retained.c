/*
 * The retained topics a worker knows of (see retained.h): a trie of
 * segments whose nodes' children are segtabs, and a hash of the topic
 * nodes by topic, so that noting a topic already known is one probe.
 */
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "retained.h"
#include "segtab.h"

struct rnode {
	struct rnode	*parent;
	struct segtab	 kids;
	uint32_t	 hash;		/* of the whole topic (topic nodes) */
	uint16_t	 len;		/* of the whole path from the root */
	uint16_t	 seglen;
	uint8_t		 topic;		/* a topic ends here */
	uint8_t		 lost;		/* ... which the table no longer has */
	char		 seg[];
};

static const char *
rnode_seg(const void *child, size_t *len)
{
	const struct rnode *n = child;

	*len = n->seglen;
	return n->seg;
}

static struct rnode *
rnode_new(struct retained *ri, struct rnode *parent, const char *seg,
    size_t len)
{
	struct rnode *n = calloc(1, sizeof(*n) + len);

	if (n == NULL)
		return NULL;
	n->parent = parent;
	n->seglen = len;
	n->len = parent == NULL ? 0 : parent->len + (parent->len > 0) + len;
	memcpy(n->seg, seg, len);
	/* the node, and its entry in its parent's array and hash */
	ri->bytes += sizeof(*n) + len + 3 * sizeof(void *);
	return n;
}

struct retained *
retained_new(void)
{
	struct retained *ri = calloc(1, sizeof(*ri));

	if (ri == NULL)
		return NULL;
	if ((ri->root = rnode_new(ri, NULL, "", 0)) == NULL) {
		free(ri);
		return NULL;
	}
	ri->limit = SIZE_MAX;
	return ri;
}

static void
rnode_free(struct rnode *n)
{
	for (uint32_t i = 0; i < n->kids.n; i++)
		rnode_free(segtab_at(&n->kids, i));
	segtab_free(&n->kids);
	free(n);
}

void
retained_free(struct retained *ri)
{
	if (ri == NULL)
		return;
	rnode_free(ri->root);
	free(ri->tab);
	free(ri);
}

/* 1 if node n's path is t[0..len). */
static int
rnode_is(const struct rnode *n, const char *t, size_t len)
{
	if (n->len != len)
		return 0;
	for (; n->parent != NULL; n = n->parent) {
		len -= n->seglen;
		if (memcmp(t + len, n->seg, n->seglen) != 0)
			return 0;
		len -= len > 0;		/* the '/' before it */
	}
	return 1;
}

/* The topic node for t, or NULL. */
static struct rnode *
tab_find(const struct retained *ri, const char *t, size_t len, uint32_t h)
{
	if (ri->nslots == 0)
		return NULL;
	size_t mask = ri->nslots - 1;
	for (size_t j = h & mask; ri->tab[j] != NULL; j = (j + 1) & mask)
		if (ri->tab[j]->hash == h && rnode_is(ri->tab[j], t, len))
			return ri->tab[j];
	return NULL;
}

static void
tab_put(struct rnode **tab, size_t nslots, struct rnode *n)
{
	size_t j = n->hash & (nslots - 1);

	while (tab[j] != NULL)
		j = (j + 1) & (nslots - 1);
	tab[j] = n;
}

/* Room for one more topic node in the hash (kept at most half full). */
static int
tab_reserve(struct retained *ri)
{
	if ((ri->ntopics + 1) * 2 <= ri->nslots)
		return 0;
	size_t n = ri->nslots ? ri->nslots * 2 : 64;
	struct rnode **tab = calloc(n, sizeof(*tab));
	if (tab == NULL)
		return -1;
	for (size_t i = 0; i < ri->nslots; i++)
		if (ri->tab[i] != NULL)
			tab_put(tab, n, ri->tab[i]);
	free(ri->tab);
	ri->bytes += (n - ri->nslots) * sizeof(*tab);
	ri->tab = tab;
	ri->nslots = n;
	return 0;
}

/* The node for t, with every node on its way, created as needed. */
static struct rnode *
rnode_get(struct retained *ri, const char *t, size_t len)
{
	struct rnode *n = ri->root;
	const char *p = t, *end = t + len;

	while (p < end) {
		const char *slash = memchr(p, '/', end - p);
		size_t seglen = (slash ? slash : end) - p;
		long i = segtab_find(&n->kids, p, seglen, rnode_seg);
		struct rnode *c;
		if (i >= 0) {
			c = segtab_at(&n->kids, i);
		} else {
			if ((c = rnode_new(ri, n, p, seglen)) == NULL)
				return NULL;
			if (segtab_add(&n->kids, c, rnode_seg) == -1) {
				free(c);
				return NULL;
			}
		}
		n = c;
		p += seglen + (slash != NULL);
	}
	return n;
}

int
retained_note(struct retained *ri, const char *t, size_t len)
{
	uint32_t h = (uint32_t)hash_bytes(t, len);
	struct rnode *n = tab_find(ri, t, len, h);

	if (n != NULL) {
		if (n->lost) {
			n->lost = 0;
			ri->dead--;
		}
		return 0;
	}
	if (tab_reserve(ri) == -1 || (n = rnode_get(ri, t, len)) == NULL)
		return -1;
	n->topic = 1;
	n->hash = h;
	tab_put(ri->tab, ri->nslots, n);
	ri->ntopics++;
	return 0;
}

void
retained_forget(struct retained *ri, const char *t, size_t len)
{
	struct rnode *n = tab_find(ri, t, len, (uint32_t)hash_bytes(t, len));

	if (n != NULL && !n->lost) {
		n->lost = 1;
		ri->dead++;
	}
}

int
retained_stale(const struct retained *ri)
{
	return ri->bytes > ri->limit || (ri->dead >= RETAINED_LOST_MIN &&
	    ri->dead * 2 > ri->ntopics);
}

void
retained_built(struct retained *ri)
{
	ri->limit = 2 * ri->bytes + RETAINED_SLACK;
}

/* cb for node n, if a topic the table still has ends there. */
static void
walk_emit(struct retained_walk *w, const struct rnode *n, size_t pl)
{
	if (n->topic && !n->lost && w->cb(w->arg, w->path, pl) != 0)
		w->full = 1;
}

/*
 * Visit node n (path w->path[0..pl)), whose children are matched against
 * the pattern's segments [p, pe).  While r is not NULL, n is on the way
 * to the node the walk goes on from, whose path below n is [r, re): the
 * nodes before it were visited by an earlier walk.  Returns 0 when the
 * walk stopped.
 */
static int
walk_node(struct retained_walk *w, const struct rnode *n, size_t pl,
    const char *p, const char *pe, const char *r, const char *re)
{
	if (r != NULL && r >= re)
		r = NULL;		/* n is where it goes on: visit it */
	if (r == NULL && n->parent != NULL) {
		if (w->full || w->visits == 0) {
			memcpy(w->at, w->path, pl);
			w->atlen = pl;
			return 0;
		}
		w->visits--;
	}
	if (p >= pe) {			/* the pattern ends at n */
		if (r == NULL)
			walk_emit(w, n, pl);
		return 1;
	}
	const char *slash = memchr(p, '/', pe - p);
	size_t slen = (slash ? slash : pe) - p;
	const char *pn = slash ? slash + 1 : pe;
	int hash = slen == 1 && *p == '#';
	if (hash) {
		if (r == NULL)		/* "a/#" matches "a" (the root: no) */
			walk_emit(w, n, pl);
		pn = p;			/* and everything below */
	}

	/* Which children: from the one on the way on, or all. */
	uint32_t from = 0;
	const char *rn = NULL;
	if (r != NULL) {
		const char *rs = memchr(r, '/', re - r);
		long i = segtab_find(&n->kids, r, (rs ? rs : re) - r,
		    rnode_seg);
		if (i < 0)	/* cannot be: nothing is ever taken out */
			return 1;
		from = i;
		rn = rs ? rs + 1 : re;
	}
	uint32_t to = n->kids.n;
	if (!hash && !(slen == 1 && *p == '+')) {	/* a literal segment */
		long i = segtab_find(&n->kids, p, slen, rnode_seg);
		if (i < 0 || (r != NULL && (uint32_t)i != from))
			return 1;
		from = i;
		to = i + 1;
	}
	for (uint32_t i = from; i < to; i++) {
		const struct rnode *c = segtab_at(&n->kids, i);
		size_t cl = pl + (pl > 0) + c->seglen;
		if (pl > 0)
			w->path[pl] = '/';
		memcpy(w->path + cl - c->seglen, c->seg, c->seglen);
		if (!walk_node(w, c, cl, pn, pe, i == from ? rn : NULL, re))
			return 0;
	}
	return 1;
}

int
retained_walk(struct retained *ri, const char *p, size_t plen,
    struct retained_walk *w)
{
	w->full = 0;
	return walk_node(w, ri->root, 0, p, p + plen,
	    w->atlen > 0 ? w->at : NULL, w->at + w->atlen);
}
