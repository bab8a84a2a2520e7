/*
 * Unit tests of the ACL file (auth/acl.c) and the line reader under it
 * (auth/textfile.c): the syntax, every error with its line, the limits,
 * a user's permissions ("user *", "%u" and the names it must not serve),
 * and loading from a file.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "ident.h"
#include "textfile.h"
#include "topic.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* Parse s; fails the test on an error. */
static struct acl *
parse_ok(const char *s)
{
	char err[TEXTFILE_ERR_MAX];
	struct acl *acl = acl_parse(s, strlen(s), "acl", err, sizeof(err));

	ck_assert_msg(acl != NULL, "parse failed: %s", err);
	return acl;
}

/*
 * The user's patterns, as "r:PAT r:PAT p:PAT" in the order added, into
 * out.
 */
static void
perms_str(const struct acl *acl, const char *user, char *out, size_t len)
{
	struct perm_list rd = { 0 }, pb = { 0 };
	size_t i, n = 0;

	ck_assert_int_eq(acl_permissions(acl, user, &rd, &pb), 0);
	out[0] = '\0';
	for (i = 0; i < rd.n; i++)
		n += snprintf(out + n, len - n, "%sr:%s", n ? " " : "",
		    rd.v[i]);
	for (i = 0; i < pb.n; i++)
		n += snprintf(out + n, len - n, "%sp:%s", n ? " " : "",
		    pb.v[i]);
	ck_assert_uint_lt(n, len);
	perm_free(&rd);
	perm_free(&pb);
}

#define ck_perms(acl, user, want) do {					\
	char buf_[4096];						\
	perms_str((acl), (user), buf_, sizeof(buf_));			\
	ck_assert_msg(strcmp(buf_, (want)) == 0, "%s: \"%s\", not \"%s\"", \
	    (user), buf_, (want));					\
} while (0)

/* The example of acl.h, with comments, blanks, CRs and indentation. */
START_TEST(example)
{
	struct acl *acl = parse_ok(
	    "# herald ACL\n"
	    "\n"
	    "user *\n"
	    "read status/#\n"
	    "   \t\n"
	    "user alice\r\n"
	    "\tread plant/+/temp  \n"
	    "  # a comment, indented\n"
	    "publish devices/%u/#\n"
	    "read   a/%u\n"
	    "user bob\n");

	ck_assert_uint_eq(acl_users(acl), 3);
	ck_perms(acl, "alice",
	    "r:status/# r:plant/+/temp r:a/alice p:devices/alice/#");
	ck_perms(acl, "bob", "r:status/#");
	ck_perms(acl, "carol", "r:status/#");
	acl_free(acl);
}
END_TEST

/* Without "user *", a user with no block gets nothing. */
START_TEST(no_star)
{
	struct acl *acl = parse_ok("user alice\nread a\n");

	ck_perms(acl, "alice", "r:a");
	ck_perms(acl, "bob", "");
	ck_perms(acl, "*", "");		/* not a user name */
	acl_free(acl);
	acl = parse_ok("");
	ck_assert_uint_eq(acl_users(acl), 0);
	ck_perms(acl, "alice", "");
	acl_free(acl);
	acl = parse_ok("# nothing\n\n   \n");
	ck_perms(acl, "alice", "");
	acl_free(acl);
}
END_TEST

/* "%u" in "user *": every user gets its own; duplicates are dropped. */
START_TEST(percent_u)
{
	struct acl *acl = parse_ok(
	    "user *\n"
	    "read users/%u/#\n"
	    "publish users/%u/out\n"
	    "read %u\n"
	    "read %u/%u/x\n"
	    "user alice\n"
	    "read users/alice/#\n"
	    "publish x/+\n");

	ck_perms(acl, "alice", "r:users/alice/# r:alice r:alice/alice/x "
	    "p:users/alice/out p:x/+");
	ck_perms(acl, "bob.b", "r:users/bob.b/# r:bob.b r:bob.b/bob.b/x "
	    "p:users/bob.b/out");
	ck_perms(acl, "%u", "r:users/%u/# r:%u r:%u/%u/x p:users/%u/out");
	acl_free(acl);
}
END_TEST

/*
 * A name that is no segment gets no "%u" rule at all (CVE-2017-7650):
 * "+" or "#" would widen the rule, "a/b" would move it.
 */
START_TEST(percent_u_bad_names)
{
	static const char *names[] = { "+", "x#", "a/b", "/", "a+" };
	struct acl *acl = parse_ok(
	    "user *\n"
	    "read users/%u/#\n"
	    "read open/#\n"
	    "publish %u\n");
	size_t i;

	for (i = 0; i < NELEM(names); i++) {
		ck_assert(ident_valid(names[i], strlen(names[i])));
		ck_perms(acl, names[i], "r:open/#");
	}
	acl_free(acl);
	/* Their own block: plain rules apply, "%u" ones do not. */
	acl = parse_ok("user +\nread %u/x\nread plain\n");
	ck_perms(acl, "+", "r:plain");
	acl_free(acl);
}
END_TEST

/* "%u" that would make a pattern longer than TOPIC_MAX: left out. */
START_TEST(percent_u_too_long)
{
	char file[TEXTFILE_LINE_MAX], user[IDENT_MAX + 1], want[512];
	size_t xs = TOPIC_MAX - 4;	/* "xxx.../%u" fits a 3-byte name */
	struct acl *acl;

	memset(file, 0, sizeof(file));
	strcpy(file, "user *\nread ");
	memset(file + strlen(file), 'x', xs);
	strcat(file, "/%u\n");
	acl = parse_ok(file);
	memset(user, 'u', sizeof(user));
	user[3] = '\0';
	memset(want, 0, sizeof(want));
	strcpy(want, "r:");
	memset(want + 2, 'x', xs);
	strcat(want, "/uuu");
	ck_assert_uint_eq(strlen(want) - 2, TOPIC_MAX);
	ck_perms(acl, user, want);
	user[3] = 'u';
	user[4] = '\0';
	ck_perms(acl, user, "");
	acl_free(acl);
}
END_TEST

/* Duplicates between "user *" and a block, and within a block. */
START_TEST(dedup)
{
	struct acl *acl = parse_ok(
	    "user alice\nread a\nread a\npublish a\n"
	    "user *\nread a\nread b\n");

	ck_perms(acl, "alice", "r:a r:b p:a");
	acl_free(acl);
}
END_TEST

struct err_case {
	const char	*text;
	const char	*err;		/* the exact message */
};

static const struct err_case errs[] = {
	{ "read a\n", "acl:1: a rule before any 'user' line" },
	{ "\n# c\npublish a\n", "acl:3: a rule before any 'user' line" },
	{ "user\n", "acl:1: 'user' needs a name (or *)" },
	{ "user a\nread\n", "acl:2: 'read' needs a pattern" },
	{ "user a\npublish   \n", "acl:2: 'publish' needs a pattern" },
	{ "user a b\n", "acl:1: extra words after 'a'" },
	{ "user a\nread x y\n", "acl:2: extra words after 'x'" },
	{ "user a\nwrite x\n",
	  "acl:2: unknown keyword 'write' (expected user, read or publish)" },
	{ "USER a\n",
	  "acl:1: unknown keyword 'USER' (expected user, read or publish)" },
	{ "topic read a\n",
	  "acl:1: unknown keyword 'topic' (expected user, read or publish)" },
	{ "user a:b\n", "acl:1: bad user name 'a:b'" },
	{ "user #x\n", "acl:1: bad user name '#x'" },
	{ "user caf\xc3\xa9\n", "acl:1: bad user name 'caf\\xc3\\xa9'" },
	{ "user a\nread a//b\n", "acl:2: bad pattern 'a//b'" },
	{ "user a\nread a/#/b\n", "acl:2: bad pattern 'a/#/b'" },
	{ "user a\nread a+\n", "acl:2: bad pattern 'a+'" },
	{ "user a\nread /\n", "acl:2: bad pattern '/'" },
	{ "user a\nread a/\n", "acl:2: bad pattern 'a/'" },
	{ "user a\nread x%u\n",
	  "acl:2: '%u' must be a whole segment: 'x%u'" },
	{ "user a\nread a/%u%u\n",
	  "acl:2: '%u' must be a whole segment: 'a/%u%u'" },
	{ "user a\npublish a/%us/b\n",
	  "acl:2: '%u' must be a whole segment: 'a/%us/b'" },
	{ "user a\nread a\nuser b\nuser a\n",
	  "acl:4: a second block for user a (the first is at line 1)" },
	{ "user *\nuser x\nuser *\n",
	  "acl:3: a second block for user * (the first is at line 1)" },
	{ "user a\nread a\0b\n", "acl:2: a NUL byte" },
};

START_TEST(err_table)
{
	const struct err_case *ec = &errs[_i];
	/* The NUL case: the text runs to its last LF. */
	size_t len = strlen(ec->text);
	char err[TEXTFILE_ERR_MAX];

	if (strstr(ec->err, "NUL") != NULL)
		len += 1 + strlen(ec->text + len + 1);
	memset(err, 0, sizeof(err));
	ck_assert_ptr_null(acl_parse(ec->text, len, "acl", err,
	    sizeof(err)));
	ck_assert_str_eq(err, ec->err);
}
END_TEST

/* TEXTFILE_LINE_MAX bytes make a line; one more is an error. */
START_TEST(line_limit)
{
	char buf[TEXTFILE_LINE_MAX + 32], err[TEXTFILE_ERR_MAX];
	struct acl *acl;
	size_t n;

	strcpy(buf, "user a\n# ");
	n = strlen(buf);
	memset(buf + n, 'c', TEXTFILE_LINE_MAX - 2);
	n += TEXTFILE_LINE_MAX - 2;
	buf[n++] = '\n';
	acl = acl_parse(buf, n, "f", err, sizeof(err));
	ck_assert_ptr_nonnull(acl);
	acl_free(acl);
	buf[n - 1] = 'c';
	buf[n++] = '\n';
	ck_assert_ptr_null(acl_parse(buf, n, "f", err, sizeof(err)));
	ck_assert_str_eq(err, "f:2: line longer than 1024 bytes");
	/* The last line needs no LF. */
	acl = acl_parse("user a\nread b", 13, "f", err, sizeof(err));
	ck_assert_ptr_nonnull(acl);
	ck_perms(acl, "a", "r:b");
	acl_free(acl);
}
END_TEST

/* ACL_RULES_MAX rules in a block; one more is an error. */
START_TEST(rules_limit)
{
	size_t cap = 32 + ACL_RULES_MAX * 16, n;
	char *buf = malloc(cap), err[TEXTFILE_ERR_MAX];
	struct acl *acl;
	int i;

	ck_assert_ptr_nonnull(buf);
	n = (size_t)snprintf(buf, cap, "user a\n");
	for (i = 0; i < ACL_RULES_MAX; i++)
		n += (size_t)snprintf(buf + n, cap - n, "read r/%d\n", i);
	acl = acl_parse(buf, n, "f", err, sizeof(err));
	ck_assert_ptr_nonnull(acl);
	acl_free(acl);
	n += (size_t)snprintf(buf + n, cap - n, "publish x\n");
	ck_assert_ptr_null(acl_parse(buf, n, "f", err, sizeof(err)));
	ck_assert_str_eq(err, "f:258: more than 256 rules for user a");
	free(buf);
}
END_TEST

/* ACL_USERS_MAX blocks; one more is an error.  Lookups find each. */
START_TEST(users_limit)
{
	size_t cap = (size_t)ACL_USERS_MAX * 24 + 64, n = 0;
	char *buf = malloc(cap), err[TEXTFILE_ERR_MAX], name[32];
	struct acl *acl;
	int i;

	ck_assert_ptr_nonnull(buf);
	/* In no order, so the lookup depends on the sort. */
	for (i = 0; i < ACL_USERS_MAX; i++)
		n += (size_t)snprintf(buf + n, cap - n, "user u%d\nread %d\n",
		    (i * 7919) % ACL_USERS_MAX, (i * 7919) % ACL_USERS_MAX);
	acl = acl_parse(buf, n, "f", err, sizeof(err));
	ck_assert_msg(acl != NULL, "%s", err);
	ck_assert_uint_eq(acl_users(acl), ACL_USERS_MAX);
	for (i = 0; i < ACL_USERS_MAX; i += 997) {
		char want[32];

		snprintf(name, sizeof(name), "u%d", i);
		snprintf(want, sizeof(want), "r:%d", i);
		ck_perms(acl, name, want);
	}
	acl_free(acl);
	n += (size_t)snprintf(buf + n, cap - n, "user one-more\n");
	ck_assert_ptr_null(acl_parse(buf, n, "f", err, sizeof(err)));
	ck_assert_str_eq(err, "f:131073: more than 65536 users");
	free(buf);
}
END_TEST

/* Words: blanks are spaces and tabs; a lone CR is a byte of a word. */
START_TEST(words)
{
	struct acl *acl = parse_ok("user\ta\n read\t \tx/y \t\r\n");
	char err[TEXTFILE_ERR_MAX];

	ck_perms(acl, "a", "r:x/y");
	acl_free(acl);
	ck_assert_ptr_null(acl_parse("user a\rread b\n", 14, "f", err,
	    sizeof(err)));
	ck_assert_str_eq(err, "f:1: extra words after 'a\\x0dread'");
}
END_TEST

/* An error quotes at most 64 bytes of a word. */
START_TEST(long_word)
{
	char buf[512], err[TEXTFILE_ERR_MAX], want[128];

	memset(buf, 0, sizeof(buf));
	strcpy(buf, "user a\nread ");
	memset(buf + strlen(buf), '/', 300);
	ck_assert_ptr_null(acl_parse(buf, strlen(buf), "f", err,
	    sizeof(err)));
	memset(want, 0, sizeof(want));
	strcpy(want, "f:2: bad pattern '");
	memset(want + strlen(want), '/', 64);
	strcat(want, "...'");
	ck_assert_str_eq(err, want);
}
END_TEST

/* acl_load: a file, a missing one, a directory. */
START_TEST(load)
{
	char path[] = "/tmp/test_acl.XXXXXX", err[TEXTFILE_ERR_MAX];
	char want[TEXTFILE_ERR_MAX + 64];
	struct acl *acl;
	FILE *f;
	int fd;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_ptr_nonnull(f = fdopen(fd, "w"));
	fputs("user a\nread x\nbogus\n", f);
	fclose(f);
	ck_assert_ptr_null(acl_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:3: unknown keyword 'bogus' "
	    "(expected user, read or publish)", path);
	ck_assert_str_eq(err, want);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("user a\nread x\n", f);
	fclose(f);
	ck_assert_ptr_nonnull(acl = acl_load(path, err, sizeof(err)));
	ck_perms(acl, "a", "r:x");
	acl_free(acl);
	unlink(path);
	ck_assert_ptr_null(acl_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	ck_assert_str_eq(err, want);
	ck_assert_ptr_null(acl_load("/tmp", err, sizeof(err)));
	ck_assert_str_eq(err, "/tmp: not a regular file");
}
END_TEST

static Suite *
acl_suite(void)
{
	Suite *s = suite_create("acl");
	TCase *tc;

	tc = tcase_create("rules");
	tcase_add_test(tc, example);
	tcase_add_test(tc, no_star);
	tcase_add_test(tc, percent_u);
	tcase_add_test(tc, percent_u_bad_names);
	tcase_add_test(tc, percent_u_too_long);
	tcase_add_test(tc, dedup);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, err_table, 0, NELEM(errs));
	tcase_add_test(tc, line_limit);
	tcase_add_test(tc, rules_limit);
	tcase_add_test(tc, users_limit);
	tcase_add_test(tc, words);
	tcase_add_test(tc, long_word);
	tcase_add_test(tc, load);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(acl_suite());
	int failed;

	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
