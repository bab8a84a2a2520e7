/* Shared read and publish lists (grant.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grant.h"

#define GRANT_BUCKETS_MIN	64	/* a table's first size; it doubles as
					 * grants outnumber buckets twice */

static const struct perm_list none;	/* a grant without lists has these */

/* FNV-1a over the user and the patterns, each list ended by a byte no
 * pattern holds. */
static uint32_t
grant_hash(const char *user, int lists, const struct perm_list *read,
    const struct perm_list *publish)
{
	const struct perm_list *l[2] = { read, publish };
	uint32_t h = 2166136261u;

	for (const char *p = user; ; p++) {
		h = (h ^ (unsigned char)*p) * 16777619u;
		if (*p == '\0')
			break;
	}
	h = (h ^ (unsigned)lists) * 16777619u;
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < l[k]->n; i++)
			for (const char *p = l[k]->v[i]; ; p++) {
				h = (h ^ (unsigned char)*p) * 16777619u;
				if (*p == '\0')
					break;
			}
		h = (h ^ 0xff) * 16777619u;
	}
	return h;
}

static int
list_equal(const struct perm_list *a, const struct perm_list *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return 0;
	return 1;
}

/* Double the buckets (or make the first ones); -1 when out of memory,
 * the table as it was. */
static int
grow(struct grant_table *t)
{
	size_t n = t->nbuckets ? t->nbuckets * 2 : GRANT_BUCKETS_MIN;
	struct grant **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return -1;
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct grant *g = t->buckets[i], *next; g != NULL;
		    g = next) {
			next = g->next;
			g->next = b[g->hash & (n - 1)];
			b[g->hash & (n - 1)] = g;
		}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	return 0;
}

/* Free the lists given to grant_get (none: NULL). */
static void
lists_free(struct perm_list *read, struct perm_list *publish)
{
	if (read != NULL)
		perm_free(read);
	if (publish != NULL)
		perm_free(publish);
}

struct grant *
grant_get(struct grant_table *t, const char *user, struct perm_list *read,
    struct perm_list *publish)
{
	int lists = read != NULL;
	const struct perm_list *r = lists ? read : &none;
	const struct perm_list *p = lists ? publish : &none;
	uint32_t h = grant_hash(user, lists, r, p);
	struct grant *g;

	if (t->nbuckets == 0 && grow(t) == -1)
		goto fail;
	for (g = t->buckets[h & (t->nbuckets - 1)]; g != NULL; g = g->next)
		if (g->hash == h && g->lists == lists &&
		    strcmp(g->user, user) == 0 && list_equal(&g->read, r) &&
		    list_equal(&g->publish, p)) {
			g->refs++;
			lists_free(read, publish);
			return g;
		}
	if (t->n >= 2 * t->nbuckets)
		grow(t);	/* if it cannot, the chains are longer */
	if ((g = calloc(1, sizeof(*g))) == NULL)
		goto fail;
	g->refs = 1;
	g->hash = h;
	g->lists = lists;
	snprintf(g->user, sizeof(g->user), "%s", user);
	if (lists) {
		g->read = *read;
		g->publish = *publish;
		perm_init(read);
		perm_init(publish);
	}
	g->next = t->buckets[h & (t->nbuckets - 1)];
	t->buckets[h & (t->nbuckets - 1)] = g;
	t->n++;
	return g;
fail:
	lists_free(read, publish);
	return NULL;
}

void
grant_put(struct grant_table *t, struct grant *g)
{
	struct grant **pp;

	if (g == NULL || --g->refs > 0)
		return;
	for (pp = &t->buckets[g->hash & (t->nbuckets - 1)]; *pp != g;
	    pp = &(*pp)->next)
		;
	*pp = g->next;
	t->n--;
	perm_free(&g->read);
	perm_free(&g->publish);
	free(g);
}
