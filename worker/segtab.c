/*
 * A trie node's children by segment: an array in insertion order plus,
 * past SEGTAB_LINEAR children, an open-addressing hash of segment ->
 * index (see segtab.h).
 */
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "segtab.h"

void
segtab_free(struct segtab *t)
{
	free(t->v);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static int
key_is(const void *child, const char *seg, size_t len, segtab_key_fn key)
{
	size_t klen;
	const char *k = key(child, &klen);

	return klen == len && memcmp(k, seg, len) == 0;
}

/* Put index i in the hash (its key is not there). */
static void
slot_put(struct segtab *t, uint32_t i, segtab_key_fn key)
{
	size_t len;
	const char *k = key(t->v[i], &len);
	uint32_t mask = t->nslot - 1, j = hash_bytes(k, len) & mask;

	while (t->slot[j] != 0)
		j = (j + 1) & mask;
	t->slot[j] = i + 1;
}

/* (Re)build the hash for the children there are, with room to grow; a
 * table that needs none has none.  -1 when memory runs out. */
static int
rehash(struct segtab *t, segtab_key_fn key)
{
	uint32_t n = 16;

	if (t->n <= SEGTAB_LINEAR) {
		free(t->slot);
		t->slot = NULL;
		t->nslot = 0;
		return 0;
	}
	while (n < t->n * 2)
		n *= 2;
	uint32_t *s = calloc(n, sizeof(*s));
	if (s == NULL)
		return -1;
	free(t->slot);
	t->slot = s;
	t->nslot = n;
	for (uint32_t i = 0; i < t->n; i++)
		if (t->v[i] != NULL)
			slot_put(t, i, key);
	return 0;
}

long
segtab_find(const struct segtab *t, const char *seg, size_t len,
    segtab_key_fn key)
{
	if (t->slot == NULL) {
		for (uint32_t i = 0; i < t->n; i++)
			if (t->v[i] != NULL && key_is(t->v[i], seg, len, key))
				return i;
		return -1;
	}
	uint32_t mask = t->nslot - 1, j = hash_bytes(seg, len) & mask;
	for (; t->slot[j] != 0; j = (j + 1) & mask) {
		void *c = t->v[t->slot[j] - 1];
		/* a hole's slot stays until the next rehash: probe past it */
		if (c != NULL && key_is(c, seg, len, key))
			return t->slot[j] - 1;
	}
	return -1;
}

long
segtab_add(struct segtab *t, void *child, segtab_key_fn key)
{
	if (t->n == UINT32_MAX - 1)
		return -1;
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 2;
		void **v = realloc(t->v, (size_t)cap * sizeof(*v));
		if (v == NULL)
			return -1;
		t->v = v;
		t->cap = cap;
	}
	uint32_t i = t->n++;
	t->v[i] = child;
	/* the hash is kept at most half full, holes' slots included */
	if ((t->slot == NULL && t->n > SEGTAB_LINEAR) ||
	    (t->slot != NULL && t->n * 2 > t->nslot)) {
		if (rehash(t, key) == -1) {
			t->n--;
			return -1;
		}
	} else if (t->slot != NULL) {
		slot_put(t, i, key);
	}
	t->live++;
	return i;
}

/* Close up the holes, keeping the children's order. */
static void
compact(struct segtab *t, segtab_key_fn key)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < t->n; i++)
		if (t->v[i] != NULL)
			t->v[k++] = t->v[i];
	t->n = k;
	if (rehash(t, key) == -1) {
		/* no memory for a new hash: scanning still finds them all */
		free(t->slot);
		t->slot = NULL;
		t->nslot = 0;
	}
	if (t->n == 0) {
		free(t->v);
		t->v = NULL;
		t->cap = 0;
	}
}

void
segtab_remove(struct segtab *t, uint32_t i, segtab_key_fn key)
{
	t->v[i] = NULL;
	t->live--;
	/* the last child: nothing after it to keep in place */
	while (t->n > 0 && t->v[t->n - 1] == NULL && t->slot == NULL)
		t->n--;
	if (t->live * 2 < t->n || t->live == 0)
		compact(t, key);
}
