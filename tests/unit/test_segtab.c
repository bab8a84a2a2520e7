/*
 * Unit tests of a trie node's child table (worker/segtab.c): children
 * found by segment in constant time however many there are, kept in the
 * order they were added through removals and the closing up of holes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segtab.h"

struct child {
	size_t	len;
	char	seg[16];
};

static const char *
key(const void *c, size_t *len)
{
	const struct child *ch = c;

	*len = ch->len;
	return ch->seg;
}

static struct child *
mk(int k)
{
	struct child *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	c->len = snprintf(c->seg, sizeof(c->seg), "s%d", k);
	return c;
}

static long
find(struct segtab *t, int k)
{
	char s[16];
	int n = snprintf(s, sizeof(s), "s%d", k);

	return segtab_find(t, s, n, key);
}

/* The children left, in order, are exactly those of keep[0..n). */
static void
check_order(struct segtab *t, struct child **all, const int *keep, int n)
{
	int k = 0;

	for (uint32_t i = 0; i < t->n; i++) {
		struct child *c = segtab_at(t, i);
		if (c == NULL)
			continue;
		ck_assert_int_lt(k, n);
		ck_assert_ptr_eq(c, all[keep[k]]);
		ck_assert_int_eq(find(t, keep[k]), (long)i);
		k++;
	}
	ck_assert_int_eq(k, n);
	ck_assert_uint_eq(t->live, (unsigned)n);
}

START_TEST(few_and_many)
{
	/* _i children: below, at and far above the linear limit */
	int n = _i == 0 ? 3 : _i == 1 ? SEGTAB_LINEAR : 20000;
	struct segtab t = { 0 };
	struct child **all = calloc(n, sizeof(*all));
	int *keep = calloc(n, sizeof(*keep));

	for (int k = 0; k < n; k++) {
		all[k] = mk(k);
		ck_assert_int_eq(segtab_add(&t, all[k], key), k);
		keep[k] = k;
	}
	ck_assert(n > SEGTAB_LINEAR ? t.slot != NULL : t.slot == NULL);
	check_order(&t, all, keep, n);
	ck_assert_int_eq(find(&t, n), -1);
	ck_assert_int_eq(segtab_find(&t, "s1x", 3, key), -1);
	ck_assert_int_eq(segtab_find(&t, "s", 1, key), -1);
	for (int k = 0; k < n; k++)
		free(all[k]);
	segtab_free(&t);
	free(all);
	free(keep);
}
END_TEST

/* Removing keeps the others' order and finds them; holes are closed up
 * once they outnumber the children; a removed segment can come back (at
 * the end). */
START_TEST(remove_keeps_order)
{
	int n = 5000;
	struct segtab t = { 0 };
	struct child **all = calloc(n + 1, sizeof(*all));
	int *keep = calloc(n + 1, sizeof(*keep)), nk = 0;

	for (int k = 0; k < n; k++) {
		all[k] = mk(k);
		ck_assert_int_ge(segtab_add(&t, all[k], key), 0);
	}
	/* every third, from the front: holes, then a closing up */
	for (int k = 0; k < n; k += 3) {
		long i = find(&t, k);
		ck_assert_int_ge(i, 0);
		segtab_remove(&t, i, key);
		ck_assert_int_eq(find(&t, k), -1);
	}
	for (int k = 0; k < n; k++)
		if (k % 3 != 0)
			keep[nk++] = k;
	check_order(&t, all, keep, nk);
	/* most of the rest: the array must have been closed up */
	for (int k = 1; k < n - 10; k++)
		if (k % 3 != 0)
			segtab_remove(&t, find(&t, k), key);
	nk = 0;
	for (int k = n - 10; k < n; k++)
		if (k % 3 != 0)
			keep[nk++] = k;
	check_order(&t, all, keep, nk);
	ck_assert_uint_le(t.n, 2 * t.live + 1);
	/* s0 again: after the others */
	long at = segtab_add(&t, all[0], key);
	ck_assert_int_eq(at, (long)t.n - 1);
	keep[nk++] = 0;
	check_order(&t, all, keep, nk);
	/* all gone */
	for (int j = 0; j < nk; j++)
		segtab_remove(&t, find(&t, keep[j]), key);
	ck_assert_uint_eq(t.live, 0);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_ptr_null(t.v);
	ck_assert_int_eq(find(&t, 0), -1);
	for (int k = 0; k < n; k++)
		free(all[k]);
	segtab_free(&t);
	free(all);
	free(keep);
}
END_TEST

/* A subscription flood adds and removes the same child over and over:
 * the table never grows. */
START_TEST(churn)
{
	struct segtab t = { 0 };
	struct child *a = mk(1), *b = mk(2);

	ck_assert_int_eq(segtab_add(&t, a, key), 0);
	for (int k = 0; k < 100000; k++) {
		long i = segtab_add(&t, b, key);
		ck_assert_int_ge(i, 0);
		ck_assert_int_eq(find(&t, 2), i);
		segtab_remove(&t, i, key);
		ck_assert_int_eq(find(&t, 2), -1);
	}
	ck_assert_uint_le(t.cap, 4);
	ck_assert_int_eq(find(&t, 1), 0);
	segtab_free(&t);
	free(a);
	free(b);
}
END_TEST

static Suite *
segtab_suite(void)
{
	Suite *s = suite_create("segtab");
	TCase *tc = tcase_create("segtab");

	tcase_add_loop_test(tc, few_and_many, 0, 3);
	tcase_add_test(tc, remove_keeps_order);
	tcase_add_test(tc, churn);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(segtab_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
