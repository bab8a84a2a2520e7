/* The brute-force universe of universe.h. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"
#include "universe.h"

/*
 * Append every name of n segments over the letters to the table at base
 * (rows of width bytes, *count used so far).
 */
static void
gen_names(const char *letters, int n, char *base, size_t width, int *count)
{
	int nl = (int)strlen(letters), total = 1, k, x, d;

	for (k = 0; k < n; k++)
		total *= nl;
	for (x = 0; x < total; x++) {
		char *s = base + (size_t)(*count)++ * width;

		for (k = 0, d = x; k < n; k++, d /= nl) {
			s[2 * k] = letters[d % nl];
			s[2 * k + 1] = '/';
		}
		s[2 * n - 1] = '\0';
	}
}

/* The universe, with every topic_match(pattern, topic) worked out. */
struct universe *
universe_make(void)
{
	struct universe *u = calloc(1, sizeof(*u));
	int n, x, y, first;

	ck_assert_ptr_nonnull(u);
	for (n = 1; n <= WP_SEGS; n++) {
		first = u->npat;
		gen_names("ab+", n, u->pat[0], sizeof(u->pat[0]), &u->npat);
		/* The same again, each with a final "/#". */
		for (x = first, y = u->npat; x < y; x++)
			snprintf(u->pat[u->npat++], sizeof(u->pat[0]), "%s/#",
			    u->pat[x]);
	}
	strcpy(u->pat[u->npat++], "#");
	for (n = 1; n <= WT_SEGS; n++)
		gen_names("abc", n, u->top[0], sizeof(u->top[0]), &u->ntop);
	ck_assert_int_eq(u->npat, WP_MAX);
	ck_assert_int_eq(u->ntop, WT_MAX);
	for (x = 0; x < u->npat; x++) {
		ck_assert(pattern_valid(u->pat[x], strlen(u->pat[x])));
		for (y = 0; y < u->ntop; y++) {
			ck_assert(topic_valid(u->top[y], strlen(u->top[y])));
			u->hit[x][y] = topic_match(u->pat[x],
			    strlen(u->pat[x]), u->top[y], strlen(u->top[y]));
		}
	}
	return u;
}

