/*
 * Unit tests of a worker's index of retained topics (worker/retained.c):
 * a walk returns exactly the topics a pattern matches, each once, in a
 * stable order; a walk stopped anywhere (by its node budget or by its
 * callback) and taken up again returns the same, also when topics are
 * added meanwhile; lost topics are skipped until noted again; the index
 * says when it should be built anew; a walk costs in proportion to the
 * part of the index its pattern reaches.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retained.h"
#include "topic.h"

/* A string of the n bytes at p (not strndup: p need not be a string). */
static char *
dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

#define MAXT	4096

/* Topics a walk returned, in order. */
struct seen {
	char	*t[MAXT];
	int	 n;
	int	 stop_every;	/* cb asks to stop after this many (0: never) */
};

static int
cb(void *arg, const char *t, size_t len)
{
	struct seen *s = arg;

	ck_assert_int_lt(s->n, MAXT);
	s->t[s->n++] = dup_bytes(t, len);
	return s->stop_every > 0 && s->n % s->stop_every == 0;
}

static void
seen_free(struct seen *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->t[i]);
	s->n = 0;
}

/* Walk pattern p in steps of `visits` nodes (0: in one go). */
static void
walk(struct retained *ri, const char *p, unsigned visits, struct seen *s)
{
	struct retained_walk w = { .cb = cb, .arg = s };
	int steps = 0;

	for (;;) {
		w.visits = visits ? visits : 1000000;
		if (retained_walk(ri, p, strlen(p), &w))
			break;
		ck_assert_int_lt(++steps, 100000);
	}
}

static const char *topics[] = {
	"a", "a/b", "a/c", "a/b/c", "a/b/d", "a/x/c", "b", "b/b", "c/d/e/f",
	"plant/line1/temp", "plant/line2/temp", "plant/line2/pres",
	"plant/line3/pump7/temp", "x/y", "x/y/z", "z"
};
#define NTOPICS	(int)(sizeof(topics) / sizeof(topics[0]))

static const char *pats[] = {
	"#", "a/#", "a/+", "+", "+/b", "a/+/c", "+/+/+", "plant/+/temp",
	"plant/#", "a", "a/b/c", "nope/#", "x/y/#", "+/+/+/+", "a/b/#"
};

static struct retained *
filled(void)
{
	struct retained *ri = retained_new();

	ck_assert_ptr_nonnull(ri);
	for (int i = 0; i < NTOPICS; i++)
		ck_assert_int_eq(retained_note(ri, topics[i],
		    strlen(topics[i])), 0);
	return ri;
}

/* The walk returns the topics that match, each once. */
START_TEST(matches)
{
	struct retained *ri = filled();
	const char *p = pats[_i];
	struct seen s = { 0 };

	walk(ri, p, 0, &s);
	for (int i = 0; i < NTOPICS; i++) {
		int m = topic_match(p, strlen(p), topics[i], strlen(topics[i]));
		int n = 0;
		for (int j = 0; j < s.n; j++)
			n += strcmp(s.t[j], topics[i]) == 0;
		ck_assert_msg(n == m, "%s: %s returned %d times, matches %d",
		    p, topics[i], n, m);
	}
	seen_free(&s);
	retained_free(ri);
}
END_TEST

/* Stopped after every node, or every topic, the walk returns the same
 * topics in the same order as in one go. */
START_TEST(steps)
{
	struct retained *ri = filled();
	const char *p = pats[_i];
	struct seen one = { 0 }, by = { 0 };

	walk(ri, p, 0, &one);
	for (unsigned v = 1; v <= 3; v++) {
		walk(ri, p, v, &by);
		ck_assert_int_eq(by.n, one.n);
		for (int j = 0; j < one.n; j++)
			ck_assert_str_eq(by.t[j], one.t[j]);
		seen_free(&by);
	}
	by.stop_every = 1;
	walk(ri, p, 0, &by);
	ck_assert_int_eq(by.n, one.n);
	for (int j = 0; j < one.n; j++)
		ck_assert_str_eq(by.t[j], one.t[j]);
	seen_free(&by);
	seen_free(&one);
	retained_free(ri);
}
END_TEST

/* Topics added while a walk is stopped do not make it repeat or skip
 * any topic that was there before. */
START_TEST(added_meanwhile)
{
	struct retained *ri = retained_new();
	struct seen s = { 0 };
	struct retained_walk w = { .cb = cb, .arg = &s };
	char t[64];
	int before = 300, added = 0;

	for (int k = 0; k < before; k++) {
		snprintf(t, sizeof(t), "r/%d/%d", k % 17, k);
		ck_assert_int_eq(retained_note(ri, t, strlen(t)), 0);
	}
	for (;;) {
		w.visits = 5;
		int done = retained_walk(ri, "r/#", 3, &w);
		/* new topics everywhere: before, at and after where it is */
		snprintf(t, sizeof(t), "r/%d/n%d", added % 19, added);
		ck_assert_int_eq(retained_note(ri, t, strlen(t)), 0);
		added++;
		if (done)
			break;
	}
	/* each old topic exactly once; new ones at most once */
	for (int k = 0; k < before; k++) {
		int n = 0;
		snprintf(t, sizeof(t), "r/%d/%d", k % 17, k);
		for (int j = 0; j < s.n; j++)
			n += strcmp(s.t[j], t) == 0;
		ck_assert_msg(n == 1, "%s returned %d times", t, n);
	}
	for (int j = 0; j < s.n; j++)
		for (int i = j + 1; i < s.n; i++)
			ck_assert_str_ne(s.t[i], s.t[j]);
	seen_free(&s);
	retained_free(ri);
}
END_TEST

START_TEST(lost_and_back)
{
	struct retained *ri = filled();
	struct seen s = { 0 };

	retained_forget(ri, "a/b", 3);
	retained_forget(ri, "a/b", 3);		/* once is enough */
	retained_forget(ri, "never", 5);	/* not there: nothing */
	ck_assert_uint_eq(ri->dead, 1);
	walk(ri, "a/+", 0, &s);
	ck_assert_int_eq(s.n, 1);
	ck_assert_str_eq(s.t[0], "a/c");
	seen_free(&s);
	/* a/b's children are still found */
	walk(ri, "a/b/+", 0, &s);
	ck_assert_int_eq(s.n, 2);
	seen_free(&s);
	ck_assert_int_eq(retained_note(ri, "a/b", 3), 0);
	ck_assert_uint_eq(ri->dead, 0);
	walk(ri, "a/+", 0, &s);
	ck_assert_int_eq(s.n, 2);
	seen_free(&s);
	/* noting a known topic adds nothing */
	size_t bytes = ri->bytes;
	ck_assert_int_eq(retained_note(ri, "a/b/c", 5), 0);
	ck_assert_uint_eq(ri->bytes, bytes);
	ck_assert_uint_eq(ri->ntopics, NTOPICS);
	retained_free(ri);
}
END_TEST

/* Built anew when lost topics outnumber the rest (and are many), or when
 * it has grown far past its size when built. */
START_TEST(stale)
{
	struct retained *ri = retained_new();
	char t[64];
	int n = 3000;

	for (int k = 0; k < n; k++) {
		snprintf(t, sizeof(t), "s/%d", k);
		ck_assert_int_eq(retained_note(ri, t, strlen(t)), 0);
	}
	retained_built(ri);
	ck_assert(!retained_stale(ri));
	for (int k = 0; k < n / 2 + 1; k++) {
		snprintf(t, sizeof(t), "s/%d", k);
		retained_forget(ri, t, strlen(t));
	}
	ck_assert(retained_stale(ri));
	for (int k = 0; k < n / 2 + 1; k++) {
		snprintf(t, sizeof(t), "s/%d", k);
		retained_note(ri, t, strlen(t));
	}
	ck_assert(!retained_stale(ri));
	/* a stream of new topics: stale before it has doubled and more */
	size_t built = ri->bytes;
	for (int k = 0; !retained_stale(ri); k++) {
		ck_assert_uint_le(ri->bytes, 2 * built + RETAINED_SLACK);
		snprintf(t, sizeof(t), "new/%d", k);
		ck_assert_int_eq(retained_note(ri, t, strlen(t)), 0);
	}
	retained_free(ri);
}
END_TEST

/* A walk visits the nodes its pattern can reach, not the whole index:
 * a snapshot costs in proportion to what it returns (issue #13 item 12;
 * the retained table's 65,536 slots were walked for every SUB). */
START_TEST(cost_in_proportion)
{
	struct retained *ri = retained_new();
	struct seen s = { 0 };
	struct retained_walk w = { .cb = cb, .arg = &s, .visits = 12 };
	char t[64];

	for (int k = 0; k < 20000; k++) {
		snprintf(t, sizeof(t), "other/%d/x", k);
		ck_assert_int_eq(retained_note(ri, t, strlen(t)), 0);
	}
	for (int k = 0; k < 5; k++) {
		snprintf(t, sizeof(t), "a/%d", k);
		ck_assert_int_eq(retained_note(ri, t, strlen(t)), 0);
	}
	/* a, its 5 children: 6 nodes */
	ck_assert_int_eq(retained_walk(ri, "a/+", 3, &w), 1);
	ck_assert_int_eq(s.n, 5);
	ck_assert_uint_eq(w.visits, 12 - 6);
	seen_free(&s);
	/* one topic among 20,000 siblings: the nodes on its way */
	w.visits = 4;
	ck_assert_int_eq(retained_walk(ri, "other/12345/x", 13, &w), 1);
	ck_assert_int_eq(s.n, 1);
	ck_assert_uint_eq(w.visits, 1);
	seen_free(&s);
	/* no match under a literal: nothing below it is visited */
	w.visits = 2;
	ck_assert_int_eq(retained_walk(ri, "nope/#", 6, &w), 1);
	ck_assert_uint_eq(w.visits, 2);
	retained_free(ri);
}
END_TEST

static Suite *
retained_suite(void)
{
	Suite *s = suite_create("retained");
	TCase *tc = tcase_create("retained");

	tcase_add_loop_test(tc, matches, 0, sizeof(pats) / sizeof(pats[0]));
	tcase_add_loop_test(tc, steps, 0, sizeof(pats) / sizeof(pats[0]));
	tcase_add_test(tc, added_meanwhile);
	tcase_add_test(tc, lost_and_back);
	tcase_add_test(tc, stale);
	tcase_add_test(tc, cost_in_proportion);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(retained_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
