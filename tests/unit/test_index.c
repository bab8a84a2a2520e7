/*
 * Unit tests of a worker's subscription index (worker/index.c): every
 * subscription whose pattern matches a topic is found, once, and no
 * other, with exact and wildcard patterns, many siblings under one node
 * (thousands of clients' "zK_J/+"), and subscriptions removed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "topic.h"

/* The subscriptions one index_match found. */
struct found {
	struct sub	**v;
	int		  n, cap;
};

static void
collect(void *arg, struct sub *s)
{
	struct found *f = arg;

	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->v = realloc(f->v, f->cap * sizeof(*f->v));
		ck_assert_ptr_nonnull(f->v);
	}
	f->v[f->n++] = s;
}

static int
found_has(const struct found *f, const struct sub *s)
{
	int n = 0;

	for (int i = 0; i < f->n; i++)
		n += f->v[i] == s;
	return n;
}

/* index_match(topic) finds exactly the subs of all[0..n) whose pattern
 * matches, each once. */
static void
check_topic(struct index *idx, struct sub **all, int n, const char *topic)
{
	struct found f = { 0 };
	int want = 0;

	index_match(idx, topic, strlen(topic), collect, &f);
	for (int i = 0; i < n; i++) {
		if (all[i] == NULL)
			continue;
		int m = topic_match(all[i]->pattern, all[i]->len, topic,
		    strlen(topic));
		ck_assert_msg(found_has(&f, all[i]) == m, "%s against %.*s: "
		    "found %d times, matches %d", topic, all[i]->len,
		    all[i]->pattern, found_has(&f, all[i]), m);
		want += m;
	}
	ck_assert_int_eq(f.n, want);
	free(f.v);
}

static struct sub *
add(struct index *idx, const char *p)
{
	struct sub *s = index_add(idx, NULL, p, strlen(p), 1);

	ck_assert_ptr_nonnull(s);
	return s;
}

START_TEST(patterns)
{
	static const char *pats[] = { "a", "a/b", "a/+", "a/#", "+/b", "#",
	    "+", "a/b/c", "a/+/c", "+/+/+", "a/b/#", "b/#", "a/b" };
	static const char *topics[] = { "a", "b", "a/b", "a/c", "b/b",
	    "a/b/c", "a/x/c", "a/b/d", "x/y/z", "b", "c/d/e/f" };
	int n = sizeof(pats) / sizeof(pats[0]);
	struct sub *all[sizeof(pats) / sizeof(pats[0])];
	struct index idx;

	index_init(&idx);
	for (int i = 0; i < n; i++)
		all[i] = add(&idx, pats[i]);
	for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++)
		check_topic(&idx, all, n, topics[t]);
	/* remove them one by one, from the middle out */
	for (int k = 0; k < n; k++) {
		int i = (k * 5) % n;
		index_remove(&idx, all[i]);
		all[i] = NULL;
		for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++)
			check_topic(&idx, all, n, topics[t]);
	}
	ck_assert_uint_eq(idx.nsubs, 0);
	index_free(&idx);
}
END_TEST

/* 400 clients x 256 patterns "zK_J/+": 102,400 children of the root. */
START_TEST(many_siblings)
{
	int nk = 400, nj = 256, n = nk * nj;
	struct sub **all = calloc(n, sizeof(*all));
	struct index idx;
	char p[64];

	index_init(&idx);
	for (int k = 0; k < nk; k++)
		for (int j = 0; j < nj; j++) {
			snprintf(p, sizeof(p), "z%d_%d/+", k, j);
			all[k * nj + j] = add(&idx, p);
		}
	for (int q = 0; q < 2000; q++) {
		int k = (q * 7919) % nk, j = (q * 104729) % nj;
		struct found f = { 0 };
		snprintf(p, sizeof(p), "z%d_%d/x", k, j);
		index_match(&idx, p, strlen(p), collect, &f);
		ck_assert_int_eq(f.n, 1);
		ck_assert_ptr_eq(f.v[0], all[k * nj + j]);
		free(f.v);
		f = (struct found){ 0 };
		snprintf(p, sizeof(p), "z%d_%d", k, j);
		index_match(&idx, p, strlen(p), collect, &f);
		ck_assert_int_eq(f.n, 0);
	}
	/* one client leaves: its patterns are gone, the others stay */
	for (int j = 0; j < nj; j++) {
		index_remove(&idx, all[7 * nj + j]);
		all[7 * nj + j] = NULL;
	}
	check_topic(&idx, all, n, "z7_3/x");
	check_topic(&idx, all, n, "z8_3/x");
	for (int i = 0; i < n; i++)
		if (all[i] != NULL)
			index_remove(&idx, all[i]);
	ck_assert_uint_eq(idx.nsubs, 0);
	index_free(&idx);
	free(all);
}
END_TEST

/* SUB / UNSUB of the same pattern, over and over. */
START_TEST(churn)
{
	struct index idx;
	struct sub *keep, *s;

	index_init(&idx);
	keep = add(&idx, "a/x");
	for (int k = 0; k < 50000; k++) {
		s = add(&idx, k % 2 ? "a/+" : "a/#");
		check_topic(&idx, (struct sub *[]){ keep, s }, 2, "a/x");
		index_remove(&idx, s);
	}
	check_topic(&idx, &keep, 1, "a/x");
	index_remove(&idx, keep);
	index_free(&idx);
}
END_TEST

static Suite *
index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tcase_create("index");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, patterns);
	tcase_add_test(tc, many_siblings);
	tcase_add_test(tc, churn);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(index_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
