/*
 * Unit tests of the grants (worker/grant.c): one user with equal lists
 * is one grant, held by count; another user, other lists or no lists are
 * not; the last put frees; the table grows past its first buckets and
 * still finds every grant.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grant.h"

/* Lists from "a,b|c" (read a and b, publish c). */
static void
lists(const char *spec, struct perm_list *read, struct perm_list *publish)
{
	struct perm_list *l = read;
	const char *p = spec;

	perm_init(read);
	perm_init(publish);
	while (*p != '\0') {
		size_t n = strcspn(p, ",|");
		if (n > 0)
			ck_assert_int_eq(perm_add(l, p, n), 0);
		p += n;
		if (*p == '|')
			l = publish;
		if (*p != '\0')
			p++;
	}
}

static struct grant *
get_as(struct grant_table *t, const char *user, const char *spec)
{
	struct perm_list r, w;
	struct grant *g;

	lists(spec, &r, &w);
	g = grant_get(t, user, &r, &w);
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_eq(r.n + w.n, 0);	/* taken */
	ck_assert_int_eq(g->lists, 1);
	ck_assert_str_eq(g->user, user);
	return g;
}

static struct grant *
get(struct grant_table *t, const char *spec)
{
	return get_as(t, "alice", spec);
}

START_TEST(shared_by_content)
{
	struct grant_table t = { 0 };
	struct grant *a = get(&t, "plant/#,status/#|devices/alice/#");
	struct grant *b = get(&t, "plant/#,status/#|devices/alice/#");
	struct grant *c = get(&t, "plant/#|status/#,devices/alice/#");
	struct grant *d = get(&t, "plant/#,status/#|");
	struct grant *e = get(&t, "|");

	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(a->refs, 2);
	ck_assert_ptr_ne(a, c);		/* the same patterns, other lists */
	ck_assert_ptr_ne(a, d);
	ck_assert_ptr_ne(d, e);
	ck_assert_uint_eq(t.n, 4);
	ck_assert_uint_eq(a->read.n, 2);
	ck_assert_str_eq(a->publish.v[0], "devices/alice/#");
	/* another user with the same lists; a user without lists */
	struct grant *f = get_as(&t, "bob", "plant/#,status/#|devices/alice/#");
	struct grant *n1 = grant_get(&t, "bob", NULL, NULL);
	struct grant *n2 = grant_get(&t, "bob", NULL, NULL);
	ck_assert_ptr_ne(f, a);
	ck_assert_ptr_eq(n1, n2);
	ck_assert_ptr_ne(n1, f);
	ck_assert_int_eq(n1->lists, 0);
	ck_assert_uint_eq(t.n, 6);
	grant_put(&t, n1);
	grant_put(&t, n2);
	grant_put(&t, f);
	grant_put(&t, b);
	ck_assert_uint_eq(t.n, 4);
	grant_put(&t, a);
	ck_assert_uint_eq(t.n, 3);
	/* gone: the same lists make a new one */
	a = get(&t, "plant/#,status/#|devices/alice/#");
	ck_assert_uint_eq(a->refs, 1);
	grant_put(&t, a);
	grant_put(&t, c);
	grant_put(&t, d);
	grant_put(&t, e);
	grant_put(&t, NULL);
	ck_assert_uint_eq(t.n, 0);
	free(t.buckets);
}
END_TEST

START_TEST(table_grows)
{
	struct grant_table t = { 0 };
	struct grant *g[1000];
	char spec[64];

	for (int i = 0; i < 1000; i++) {
		snprintf(spec, sizeof(spec), "users/u%d/#|devices/u%d/#", i, i);
		g[i] = get(&t, spec);
	}
	ck_assert_uint_gt(t.nbuckets, 64);
	for (int i = 0; i < 1000; i++) {
		snprintf(spec, sizeof(spec), "users/u%d/#|devices/u%d/#", i, i);
		struct grant *again = get(&t, spec);
		ck_assert_ptr_eq(again, g[i]);
		grant_put(&t, again);
	}
	for (int i = 999; i >= 0; i--)
		grant_put(&t, g[i]);
	ck_assert_uint_eq(t.n, 0);
	free(t.buckets);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("grant");
	TCase *tc = tcase_create("grant");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, shared_by_content);
	tcase_add_test(tc, table_grows);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
