/*
 * Unit tests of topics and patterns (herald-protocol(7), Names): validation
 * of every rule, pattern_is_exact, a table of matches, and containment
 * (pattern_within) by a table and against brute-force matching.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"
#include "universe.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
/* A string literal and its length, NULs included. */
#define S(s)		s, sizeof(s) - 1

struct name_case {
	const char	*s;
	size_t		 len;
	int		 topic;		/* topic_valid */
	int		 pattern;	/* pattern_valid */
};

static const struct name_case names[] = {
	/* Plain topics: valid as topics and as patterns. */
	{ S("a"), 1, 1 },
	{ S("a/b"), 1, 1 },
	{ S("a/b/c/d/e/f/g"), 1, 1 },
	{ S("plant/line3/pump7/temp"), 1, 1 },
	{ S("!"), 1, 1 },
	{ S("~"), 1, 1 },
	{ S("!/~"), 1, 1 },
	{ S("$SYS/x"), 1, 1 },
	{ S("a.b-c_d:e@f"), 1, 1 },
	{ S("\"'()*,;<=>?[]^`{|}"), 1, 1 },
	{ S("a\\b"), 1, 1 },
	/* Empty segments. */
	{ S(""), 0, 0 },
	{ S("/"), 0, 0 },
	{ S("//"), 0, 0 },
	{ S("/a"), 0, 0 },
	{ S("a/"), 0, 0 },
	{ S("a//b"), 0, 0 },
	{ S("a/b/"), 0, 0 },
	{ S("/+"), 0, 0 },
	{ S("+/"), 0, 0 },
	{ S("#/"), 0, 0 },
	{ S("/#"), 0, 0 },
	{ S("a//#"), 0, 0 },
	/* Bytes that are never allowed. */
	{ S("a b"), 0, 0 },
	{ S("a\tb"), 0, 0 },
	{ S("a\nb"), 0, 0 },
	{ S("a\rb"), 0, 0 },
	{ S("a\0b"), 0, 0 },
	{ S("a\x7f"), 0, 0 },
	{ S("a\x80"), 0, 0 },
	{ S("\xff"), 0, 0 },
	{ S("caf\xc3\xa9"), 0, 0 },
	/* Wildcards: patterns only, and only as whole segments. */
	{ S("+"), 0, 1 },
	{ S("#"), 0, 1 },
	{ S("a/#"), 0, 1 },
	{ S("a/+"), 0, 1 },
	{ S("+/a"), 0, 1 },
	{ S("a/+/b"), 0, 1 },
	{ S("+/+"), 0, 1 },
	{ S("+/+/+"), 0, 1 },
	{ S("+/#"), 0, 1 },
	{ S("a/+/#"), 0, 1 },
	{ S("#/a"), 0, 0 },
	{ S("#/#"), 0, 0 },
	{ S("#/+"), 0, 0 },
	{ S("a/#/b"), 0, 0 },
	{ S("a+"), 0, 0 },
	{ S("+a"), 0, 0 },
	{ S("a/b+"), 0, 0 },
	{ S("a/+b/c"), 0, 0 },
	{ S("x/+y"), 0, 0 },
	{ S("a#"), 0, 0 },
	{ S("#b"), 0, 0 },
	{ S("a/b#"), 0, 0 },
	{ S("a/#b"), 0, 0 },
	{ S("++"), 0, 0 },
	{ S("##"), 0, 0 },
	{ S("+#"), 0, 0 },
	{ S("a/+ "), 0, 0 },
	{ S("a/#\0"), 0, 0 },
	{ S("+\0"), 0, 0 },
};

START_TEST(name_table)
{
	const struct name_case *nc = &names[_i];

	ck_assert_msg(topic_valid(nc->s, nc->len) == nc->topic,
	    "topic_valid(\"%s\") != %d (row %d)", nc->s, nc->topic, _i);
	ck_assert_msg(pattern_valid(nc->s, nc->len) == nc->pattern,
	    "pattern_valid(\"%s\") != %d (row %d)", nc->s, nc->pattern, _i);
}
END_TEST

/* Length limits: 1 and 255 are fine, 0 and 256 are not. */
START_TEST(lengths)
{
	char buf[TOPIC_MAX + 2];
	size_t n;

	memset(buf, 'x', sizeof(buf));
	for (n = 1; n <= TOPIC_MAX; n++) {
		ck_assert_int_eq(topic_valid(buf, n), 1);
		ck_assert_int_eq(pattern_valid(buf, n), 1);
	}
	ck_assert_int_eq(topic_valid(buf, 0), 0);
	ck_assert_int_eq(topic_valid(buf, TOPIC_MAX + 1), 0);
	ck_assert_int_eq(pattern_valid(buf, 0), 0);
	ck_assert_int_eq(pattern_valid(buf, TOPIC_MAX + 1), 0);

	/* 255 bytes of "a/a/.../a": 128 segments. */
	for (n = 0; n < sizeof(buf); n++)
		buf[n] = n % 2 ? '/' : 'a';
	ck_assert_int_eq(topic_valid(buf, TOPIC_MAX), 1);
	ck_assert_int_eq(topic_valid(buf, TOPIC_MAX + 1), 0);	/* ends '/' */
	buf[TOPIC_MAX - 1] = '#';
	ck_assert_int_eq(pattern_valid(buf, TOPIC_MAX), 1);
	buf[TOPIC_MAX - 1] = '+';
	ck_assert_int_eq(pattern_valid(buf, TOPIC_MAX), 1);
	buf[TOPIC_MAX + 1] = 'b';
	ck_assert_int_eq(pattern_valid(buf, TOPIC_MAX + 2), 0);
}
END_TEST

/* Every byte value, alone, in the middle and at the end of a segment. */
START_TEST(every_byte)
{
	int b = _i;
	int ok = b >= 0x21 && b <= 0x7e && b != '+' && b != '#' && b != '/';
	char one[1] = { (char)b };
	char mid[5] = { 'a', '/', (char)b, 'c', '\0' };
	char end[3] = { 'a', (char)b, '\0' };

	ck_assert_msg(topic_valid(one, 1) == ok, "byte 0x%02x alone", b);
	ck_assert_msg(topic_valid(mid, 4) == ok, "byte 0x%02x inside", b);
	ck_assert_msg(topic_valid(end, 2) == ok, "byte 0x%02x at the end", b);
	ck_assert_msg(pattern_valid(mid, 4) == ok, "byte 0x%02x inside", b);
	ck_assert_msg(pattern_valid(end, 2) == ok, "byte 0x%02x at end", b);
	ck_assert_msg(pattern_valid(one, 1) ==
	    (ok || b == '+' || b == '#'), "byte 0x%02x as a pattern", b);
}
END_TEST

/* Reading stops at len: bytes after it do not matter. */
START_TEST(length_bounds)
{
	ck_assert_int_eq(topic_valid("a/b//", 3), 1);
	ck_assert_int_eq(topic_valid("a/b", 2), 0);
	ck_assert_int_eq(pattern_valid("a/#/b", 3), 1);
	ck_assert_int_eq(pattern_valid("a+", 1), 1);
	ck_assert_int_eq(topic_match("a/bc", 3, "a/bcd", 3), 1);
	ck_assert_int_eq(topic_match("a/b", 3, "a/bc", 3), 1);
	ck_assert_int_eq(topic_match("a/+x", 3, "a/b", 3), 1);
}
END_TEST

struct exact_case {
	const char	*p;
	int		 exact;
};

static const struct exact_case exacts[] = {
	{ "a", 1 },
	{ "a/b/c", 1 },
	{ "plant/line3/pump7/temp", 1 },
	{ "+", 0 },
	{ "#", 0 },
	{ "a/+", 0 },
	{ "+/a", 0 },
	{ "a/+/c", 0 },
	{ "a/#", 0 },
	{ "+/#", 0 },
};

START_TEST(exact_table)
{
	const struct exact_case *ec = &exacts[_i];

	ck_assert(pattern_valid(ec->p, strlen(ec->p)));
	ck_assert_msg(pattern_is_exact(ec->p, strlen(ec->p)) == ec->exact,
	    "pattern_is_exact(\"%s\") != %d", ec->p, ec->exact);
}
END_TEST

struct match_case {
	const char	*p;
	const char	*t;
	int		 match;
};

static const struct match_case matches[] = {
	/* Exact. */
	{ "a", "a", 1 },
	{ "a/b", "a/b", 1 },
	{ "a/b/c", "a/b/c", 1 },
	{ "a", "b", 0 },
	{ "a/b", "a/c", 0 },
	{ "a/b", "b/b", 0 },
	{ "a/b/c", "a/b/d", 0 },
	{ "A", "a", 0 },
	/* Prefix traps. */
	{ "a", "ab", 0 },
	{ "ab", "a", 0 },
	{ "a/b", "a/bc", 0 },
	{ "a/bc", "a/b", 0 },
	{ "a/b", "a/b/c", 0 },
	{ "a/b/c", "a/b", 0 },
	{ "a/b", "a", 0 },
	{ "a", "a/b", 0 },
	{ "ab/c", "a/bc", 0 },
	{ "a/bc", "ab/c", 0 },
	/* '+' at each position. */
	{ "+", "a", 1 },
	{ "+", "abc", 1 },
	{ "+/b/c", "a/b/c", 1 },
	{ "a/+/c", "a/b/c", 1 },
	{ "a/b/+", "a/b/c", 1 },
	{ "a/+/c", "a/xyz/c", 1 },
	{ "+/b/c", "x/b/c", 1 },
	{ "+/b/c", "a/x/c", 0 },
	{ "a/+/c", "a/b/d", 0 },
	{ "a/b/+", "a/c/c", 0 },
	{ "+/+", "a/b", 1 },
	{ "+/+/+", "a/b/c", 1 },
	{ "+/b/+", "a/b/c", 1 },
	{ "+/b/+", "a/c/c", 0 },
	/* '+' is exactly one non-empty segment. */
	{ "+", "a/b", 0 },
	{ "a/+", "a", 0 },
	{ "a/+", "a/b/c", 0 },
	{ "+/b", "b", 0 },
	{ "a/+/c", "a/c", 0 },
	{ "a/+/c", "a/b/b/c", 0 },
	{ "+/+", "a", 0 },
	{ "+/+", "a/b/c", 0 },
	{ "a/+/+", "a/b", 0 },
	/* '#': zero or more segments. */
	{ "#", "a", 1 },
	{ "#", "a/b", 1 },
	{ "#", "a/b/c/d/e", 1 },
	{ "a/#", "a", 1 },
	{ "a/#", "a/b", 1 },
	{ "a/#", "a/b/c", 1 },
	{ "a/#", "b", 0 },
	{ "a/#", "b/a", 0 },
	{ "a/#", "ab", 0 },
	{ "a/#", "ab/c", 0 },
	{ "a/b/#", "a/b", 1 },
	{ "a/b/#", "a/b/c/d", 1 },
	{ "a/b/#", "a", 0 },
	{ "a/b/#", "a/c", 0 },
	{ "a/b/#", "a/bc", 0 },
	{ "a/b/#", "a/bc/d", 0 },
	/* '+' and '#' together. */
	{ "+/#", "a", 1 },
	{ "+/#", "a/b", 1 },
	{ "+/#", "a/b/c", 1 },
	{ "a/+/#", "a", 0 },
	{ "a/+/#", "a/b", 1 },
	{ "a/+/#", "a/b/c/d", 1 },
	{ "a/+/#", "b/b/c", 0 },
	{ "+/b/#", "a/b", 1 },
	{ "+/b/#", "a/b/c", 1 },
	{ "+/b/#", "a/c/b", 0 },
	{ "+/+/#", "a", 0 },
	{ "+/+/#", "a/b", 1 },
	/* Bytes are compared exactly. */
	{ "a\\b/+", "a\\b/c", 1 },
	{ "$SYS/#", "$SYS/x", 1 },
	{ "$SYS/#", "SYS/x", 0 },
};

START_TEST(match_table)
{
	const struct match_case *mc = &matches[_i];
	size_t pl = strlen(mc->p), tl = strlen(mc->t);

	ck_assert_msg(topic_valid(mc->t, tl), "bad topic %s", mc->t);
	ck_assert_msg(pattern_valid(mc->p, pl), "bad pattern %s", mc->p);
	ck_assert_msg(topic_match(mc->p, pl, mc->t, tl) == mc->match,
	    "topic_match(\"%s\", \"%s\") != %d", mc->p, mc->t, mc->match);
}
END_TEST

struct within_case {
	const char	*p;
	const char	*q;
	int		 within;
};

static const struct within_case withins[] = {
	/* Exact patterns: equal, or not. */
	{ "a", "a", 1 },
	{ "a/b/c", "a/b/c", 1 },
	{ "a", "b", 0 },
	{ "a", "ab", 0 },
	{ "ab", "a", 0 },
	{ "a/b", "a", 0 },
	{ "a", "a/b", 0 },
	{ "a/b", "a/bc", 0 },
	/* '+' in q holds any one segment; in p, only '+' or '#' hold it. */
	{ "a/b/c", "a/+/c", 1 },
	{ "a/+/c", "a/+/c", 1 },
	{ "a/+/c", "a/b/c", 0 },
	{ "a/+/c", "+/+/+", 1 },
	{ "+/+/+", "a/+/c", 0 },
	{ "a", "+", 1 },
	{ "+", "a", 0 },
	{ "+", "+", 1 },
	{ "a/b", "+", 0 },
	{ "+", "+/+", 0 },
	{ "+/+", "+", 0 },
	{ "a/+", "+/b", 0 },
	{ "+/b", "a/+", 0 },
	/* '#' in q: zero or more segments. */
	{ "a/+/c", "a/#", 1 },
	{ "a", "a/#", 1 },
	{ "a/b", "a/#", 1 },
	{ "a/b/c/d", "a/#", 1 },
	{ "a/#", "a/#", 1 },
	{ "a/b/#", "a/#", 1 },
	{ "a/+/#", "a/#", 1 },
	{ "a/#", "a/b/#", 0 },
	{ "ab", "a/#", 0 },
	{ "b/a", "a/#", 0 },
	{ "+", "a/#", 0 },
	{ "anything/at/all", "#", 1 },
	{ "+/+", "#", 1 },
	{ "+/#", "#", 1 },
	{ "#", "#", 1 },
	/* '#' in p: topics of many lengths, which q must all allow. */
	{ "a/#", "a/+", 0 },
	{ "a/#", "a", 0 },
	{ "a/#", "a/+/#", 0 },		/* "a" itself */
	{ "a/+/#", "a/+/#", 1 },
	{ "a/+/#", "+/+/#", 1 },
	{ "+/+/#", "a/+/#", 0 },
	{ "a/b/#", "a/+/#", 1 },
	{ "a/b/#", "+/#", 1 },
	{ "#", "a/#", 0 },
	{ "#", "+", 0 },
	{ "#", "+/+/#", 0 },
	{ "#", "+/#", 1 },		/* both: every topic */
	{ "#", "a", 0 },
	{ "a/#", "#", 1 },
	{ "+/#", "a/#", 0 },
	{ "+/#", "+/+/#", 0 },
	/* Prefix traps and lengths. */
	{ "a/b", "a/b/#", 1 },
	{ "a", "a/b/#", 0 },
	{ "a/b/c", "a/b/+/#", 1 },
	{ "a/b", "a/b/+/#", 0 },
	{ "a/bc/#", "a/b/#", 0 },
	{ "a/b/#", "a/bc/#", 0 },
	{ "$SYS/#", "+/#", 1 },
	{ "$SYS/x", "SYS/#", 0 },
};

START_TEST(within_table)
{
	const struct within_case *wc = &withins[_i];
	size_t pl = strlen(wc->p), ql = strlen(wc->q);

	ck_assert_msg(pattern_valid(wc->p, pl), "bad pattern %s", wc->p);
	ck_assert_msg(pattern_valid(wc->q, ql), "bad pattern %s", wc->q);
	ck_assert_msg(pattern_within(wc->p, pl, wc->q, ql) == wc->within,
	    "pattern_within(\"%s\", \"%s\") != %d", wc->p, wc->q, wc->within);
}
END_TEST

/*
 * pattern_within agrees with brute force on every pair of the universe,
 * and says yes as often as no (so neither answer is hard-wired).
 */
START_TEST(within_brute_force)
{
	struct universe *u = universe_make();
	int x, y, t, yes = 0, no = 0;

	for (x = 0; x < u->npat; x++) {
		for (y = 0; y < u->npat; y++) {
			int want = 1;

			for (t = 0; t < u->ntop && want; t++)
				if (u->hit[x][t] && !u->hit[y][t])
					want = 0;
			ck_assert_msg(pattern_within(u->pat[x],
			    strlen(u->pat[x]), u->pat[y], strlen(u->pat[y])) ==
			    want, "pattern_within(\"%s\", \"%s\") != %d",
			    u->pat[x], u->pat[y], want);
			want ? yes++ : no++;
		}
	}
	ck_assert_int_gt(yes, 1000);
	ck_assert_int_gt(no, 1000);
	free(u);
}
END_TEST

/* Every pattern is within itself, "#" and "+/#"; a topic within a
 * pattern exactly when it matches it. */
START_TEST(within_laws)
{
	size_t i;

	for (i = 0; i < NELEM(withins); i++) {
		const char *p = withins[i].p;
		size_t pl = strlen(p);

		ck_assert(pattern_within(p, pl, p, pl));
		ck_assert(pattern_within(p, pl, "#", 1));
		ck_assert(pattern_within(p, pl, "+/#", 3));
	}
	for (i = 0; i < NELEM(matches); i++) {
		const struct match_case *mc = &matches[i];
		size_t pl = strlen(mc->p), tl = strlen(mc->t);

		ck_assert_msg(pattern_within(mc->t, tl, mc->p, pl) ==
		    mc->match, "topic %s within %s", mc->t, mc->p);
	}
}
END_TEST

/* Every valid topic of the tables matches itself, '#' and '+/#'. */
START_TEST(self_match)
{
	size_t i;

	for (i = 0; i < NELEM(names); i++) {
		const struct name_case *nc = &names[i];

		if (!nc->topic)
			continue;
		ck_assert(pattern_valid(nc->s, nc->len));
		ck_assert(pattern_is_exact(nc->s, nc->len));
		ck_assert(topic_match(nc->s, nc->len, nc->s, nc->len));
		ck_assert(topic_match("#", 1, nc->s, nc->len));
		ck_assert(topic_match("+/#", 3, nc->s, nc->len));
	}
}
END_TEST

/* Long names: 128 one-byte segments, the longest a topic can have. */
START_TEST(long_match)
{
	char t[TOPIC_MAX], p[TOPIC_MAX];
	size_t n;

	for (n = 0; n < TOPIC_MAX; n++)
		t[n] = p[n] = n % 2 ? '/' : 'a';
	ck_assert(topic_valid(t, TOPIC_MAX));
	ck_assert(topic_match(p, TOPIC_MAX, t, TOPIC_MAX));
	for (n = 0; n < TOPIC_MAX; n += 2) {
		p[n] = '+';
		ck_assert(topic_match(p, TOPIC_MAX, t, TOPIC_MAX));
	}
	ck_assert(!topic_match(p, TOPIC_MAX - 2, t, TOPIC_MAX));
	p[TOPIC_MAX - 1] = '#';
	ck_assert(topic_match(p, TOPIC_MAX, t, TOPIC_MAX));
	ck_assert(topic_match(p, TOPIC_MAX, t, TOPIC_MAX - 2));
	ck_assert(!topic_match(p, TOPIC_MAX, t, TOPIC_MAX - 4));
	t[TOPIC_MAX - 1] = 'b';
	p[TOPIC_MAX - 1] = 'a';
	ck_assert(!topic_match(p, TOPIC_MAX, t, TOPIC_MAX));
}
END_TEST

static Suite *
topic_suite(void)
{
	Suite *s = suite_create("topic");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_loop_test(tc, name_table, 0, NELEM(names));
	tcase_add_test(tc, lengths);
	tcase_add_loop_test(tc, every_byte, 0, 256);
	tcase_add_test(tc, length_bounds);
	suite_add_tcase(s, tc);

	tc = tcase_create("exact");
	tcase_add_loop_test(tc, exact_table, 0, NELEM(exacts));
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_loop_test(tc, match_table, 0, NELEM(matches));
	tcase_add_test(tc, self_match);
	tcase_add_test(tc, long_match);
	suite_add_tcase(s, tc);

	tc = tcase_create("within");
	tcase_add_loop_test(tc, within_table, 0, NELEM(withins));
	tcase_add_test(tc, within_brute_force);
	tcase_add_test(tc, within_laws);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(topic_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
