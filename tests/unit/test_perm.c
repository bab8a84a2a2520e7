/*
 * Unit tests of user names (auth/ident.c) and permission lists
 * (auth/perm.c): which names are users and which may fill a segment; a
 * list's additions, limit and checks; SUB allowed by a union of read
 * patterns, by a table and against brute force.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ident.h"
#include "perm.h"
#include "topic.h"
#include "universe.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

struct ident_case {
	const char	*name;
	int		 valid;		/* ident_valid */
	int		 segment;	/* ident_is_segment, if valid */
};

static const struct ident_case idents[] = {
	{ "alice", 1, 1 },
	{ "a", 1, 1 },
	{ "alice@example.com", 1, 1 },
	{ "x.y-z_w", 1, 1 },
	{ "%u", 1, 1 },
	{ "*x", 1, 1 },
	{ "x*", 1, 1 },
	{ "x#", 1, 0 },
	{ "+", 1, 0 },
	{ "a+b", 1, 0 },
	{ "a/b", 1, 0 },
	{ "/", 1, 0 },
	{ "", 0, 0 },
	{ "*", 0, 0 },
	{ "#", 0, 0 },
	{ "#x", 0, 0 },
	{ "a:b", 0, 0 },
	{ ":", 0, 0 },
	{ "a b", 0, 0 },
	{ "a\tb", 0, 0 },
	{ "caf\xc3\xa9", 0, 0 },
	{ "a\x7f", 0, 0 },
	{ "a\n", 0, 0 },
};

START_TEST(ident_table)
{
	const struct ident_case *ic = &idents[_i];
	size_t len = strlen(ic->name);

	ck_assert_msg(ident_valid(ic->name, len) == ic->valid,
	    "ident_valid(\"%s\") != %d", ic->name, ic->valid);
	if (ic->valid)
		ck_assert_msg(ident_is_segment(ic->name, len) == ic->segment,
		    "ident_is_segment(\"%s\") != %d", ic->name, ic->segment);
}
END_TEST

/* IDENT_MAX bytes are a name; one more is not; a NUL ends nothing. */
START_TEST(ident_lengths)
{
	char buf[IDENT_MAX + 1];

	memset(buf, 'u', sizeof(buf));
	ck_assert(ident_valid(buf, IDENT_MAX));
	ck_assert(ident_is_segment(buf, IDENT_MAX));
	ck_assert(!ident_valid(buf, IDENT_MAX + 1));
	ck_assert(!ident_valid("ab\0c", 4));
}
END_TEST

/* Adding: copies, no duplicates, PERM_MAX patterns at most. */
START_TEST(perm_adding)
{
	struct perm_list pl;
	char p[32];
	int i;

	perm_init(&pl);
	ck_assert_int_eq(perm_add(&pl, "a/#xyz", 3), 0);
	ck_assert_int_eq(perm_add(&pl, "a/#", 3), 0);
	ck_assert_uint_eq(pl.n, 1);
	ck_assert_str_eq(pl.v[0], "a/#");
	ck_assert_int_eq(perm_add(&pl, "a", 1), 0);
	ck_assert_uint_eq(pl.n, 2);
	for (i = 2; i < PERM_MAX; i++) {
		snprintf(p, sizeof(p), "t/%d", i);
		ck_assert_int_eq(perm_add(&pl, p, strlen(p)), 0);
	}
	ck_assert_uint_eq(pl.n, PERM_MAX);
	ck_assert_int_eq(perm_add(&pl, "one/more", 8), -1);
	ck_assert_int_eq(perm_add(&pl, "t/5", 3), 0);	/* already there */
	ck_assert_uint_eq(pl.n, PERM_MAX);
	ck_assert(perm_allows_topic(&pl, "t/1023", 6));
	ck_assert(!perm_allows_topic(&pl, "one/more", 8));
	perm_free(&pl);
	ck_assert_uint_eq(pl.n, 0);
	ck_assert(!perm_allows_topic(&pl, "a", 1));
	ck_assert(!perm_allows_pattern(&pl, "a", 1));
}
END_TEST

struct allow_case {
	const char	*list[4];	/* NULL-terminated */
	const char	*p;		/* a topic or a pattern */
	int		 topic;		/* perm_allows_topic, if p is one */
	int		 pattern;	/* perm_allows_pattern */
};

static const struct allow_case allows[] = {
	{ { NULL }, "a", 0, 0 },
	{ { NULL }, "#", 0, 0 },
	{ { "#" }, "a/b", 1, 1 },
	{ { "#" }, "#", 0, 1 },
	{ { "a/#" }, "a", 1, 1 },
	{ { "a/#" }, "a/+/c", 0, 1 },
	{ { "a/#" }, "b", 0, 0 },
	{ { "a/+" }, "a/#", 0, 0 },
	{ { "a/+", "b/#" }, "b/x/y", 1, 1 },
	{ { "a/+", "b/#" }, "a/x/y", 0, 0 },
	/* One pattern for some topics, another for the others. */
	{ { "a", "a/+/#" }, "a/#", 0, 1 },
	{ { "a", "a/+", "a/+/+/#" }, "a/#", 0, 1 },
	{ { "a", "a/+", "a/+/+" }, "a/#", 0, 0 },
	{ { "a", "a/+/+/#" }, "a/#", 0, 0 },	/* not "a/x" */
	{ { "a/+/#" }, "a/#", 0, 0 },		/* not "a" */
	{ { "+", "+/+/#" }, "#", 0, 1 },
	{ { "+/#" }, "#", 0, 1 },
	{ { "a/#", "+" }, "#", 0, 0 },		/* not "b/c" */
	{ { "a/b", "a/c" }, "a/+", 0, 0 },	/* not "a/d" */
	{ { "a/b/#", "a/+/c/#" }, "a/b/c/#", 0, 1 },
	{ { "x/a", "x/a/+/#" }, "x/a/#", 0, 1 },
	{ { "x/a", "x/a/+/#" }, "x/+/#", 0, 0 },
};

START_TEST(allow_table)
{
	const struct allow_case *ac = &allows[_i];
	size_t len = strlen(ac->p);
	struct perm_list pl = { 0 };
	int i;

	for (i = 0; ac->list[i] != NULL; i++)
		ck_assert_int_eq(perm_add(&pl, ac->list[i],
		    strlen(ac->list[i])), 0);
	ck_assert_msg(perm_allows_pattern(&pl, ac->p, len) == ac->pattern,
	    "row %d: pattern %s", _i, ac->p);
	if (topic_valid(ac->p, len))
		ck_assert_msg(perm_allows_topic(&pl, ac->p, len) == ac->topic,
		    "row %d: topic %s", _i, ac->p);
	perm_free(&pl);
}
END_TEST

/* A long pattern ending in '#': the rounds stop at TOPIC_MAX. */
START_TEST(allow_long)
{
	struct perm_list pl = { 0 };
	char p[TOPIC_MAX + 1];
	size_t n;

	/* "a/a/.../a/#": 127 "a/" pairs then "#", 255 bytes. */
	for (n = 0; n < TOPIC_MAX - 1; n++)
		p[n] = n % 2 ? '/' : 'a';
	p[n++] = '#';
	ck_assert(pattern_valid(p, n));
	/* Its topics have 127 or 128 segments. */
	ck_assert_int_eq(perm_add(&pl, p, n - 2), 0);		/* 127 */
	ck_assert(!perm_allows_pattern(&pl, p, n));
	p[n - 1] = '+';
	ck_assert_int_eq(perm_add(&pl, p, n), 0);		/* 128 */
	p[n - 1] = '#';
	ck_assert(perm_allows_pattern(&pl, p, n));
	perm_free(&pl);
}
END_TEST

/* A small deterministic generator (the same pairs every run). */
static uint32_t
next_rand(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/*
 * perm_allows_pattern with lists of one to three patterns of the universe
 * agrees with brute force: every topic of p matched by one of the list.
 */
START_TEST(allow_brute_force)
{
	struct universe *u = universe_make();
	uint32_t seed = 15;
	int x, k, t, i, yes = 0, no = 0, only_union = 0;

	for (x = 0; x < u->npat; x++) {
		for (k = 0; k < 300; k++) {
			struct perm_list pl = { 0 };
			int r[3], nr = 1 + (int)(next_rand(&seed) % 3);
			int want = 1, single = 0;

			for (i = 0; i < nr; i++) {
				r[i] = (int)(next_rand(&seed) % u->npat);
				ck_assert_int_eq(perm_add(&pl, u->pat[r[i]],
				    strlen(u->pat[r[i]])), 0);
				single |= pattern_within(u->pat[x],
				    strlen(u->pat[x]), u->pat[r[i]],
				    strlen(u->pat[r[i]]));
			}
			for (t = 0; t < u->ntop && want; t++) {
				int any = 0;

				for (i = 0; i < nr; i++)
					any |= u->hit[r[i]][t];
				if (u->hit[x][t] && !any)
					want = 0;
			}
			ck_assert_msg(perm_allows_pattern(&pl, u->pat[x],
			    strlen(u->pat[x])) == want, "%s in %s %s %s: %d",
			    u->pat[x], u->pat[r[0]], nr > 1 ? u->pat[r[1]] :
			    "", nr > 2 ? u->pat[r[2]] : "", want);
			want ? yes++ : no++;
			only_union += want && !single;
			perm_free(&pl);
		}
	}
	/* Both answers, and the case one pattern alone does not settle. */
	ck_assert_int_gt(yes, 1000);
	ck_assert_int_gt(no, 1000);
	ck_assert_int_gt(only_union, 10);
	free(u);
}
END_TEST

static Suite *
perm_suite(void)
{
	Suite *s = suite_create("perm");
	TCase *tc;

	tc = tcase_create("ident");
	tcase_add_loop_test(tc, ident_table, 0, NELEM(idents));
	tcase_add_test(tc, ident_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("perm");
	tcase_add_test(tc, perm_adding);
	tcase_add_loop_test(tc, allow_table, 0, NELEM(allows));
	tcase_add_test(tc, allow_long);
	tcase_add_test(tc, allow_brute_force);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(perm_suite());
	int failed;

	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
