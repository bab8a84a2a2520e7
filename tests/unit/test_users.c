/*
 * Unit tests of the users file and password checks (auth/users.c): the
 * syntax, every error (never quoting a hash), checks against yescrypt
 * hashes made here and fixed sha512crypt vectors, hashing, editing a file
 * for herald passwd, and the cache of successful checks.
 */
#include <check.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ident.h"
#include "textfile.h"
#include "users.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * sha512crypt vectors of its specification (Drepper, "Unix crypt using
 * SHA-256 and SHA-512"), for the password "Hello world!".
 */
#define SHA512_HELLO \
	"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJ" \
	"uesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
#define SHA512_HELLO_ROUNDS \
	"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0s" \
	"bHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
#define HELLO		"Hello world!"

/* A yescrypt hash of pw made with libxcrypt, independently of users.c. */
static void
yescrypt(const char *pw, char *out, size_t len)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	memset(&cd, 0, sizeof(cd));
	ck_assert_ptr_nonnull(crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    sizeof(setting)));
	ck_assert_ptr_nonnull(crypt_rn(pw, setting, &cd, sizeof(cd)));
	ck_assert_uint_lt(strlen(cd.output), len);
	strcpy(out, cd.output);
}

static struct users *
parse_ok(const char *s)
{
	char err[TEXTFILE_ERR_MAX];
	struct users *us = users_parse(s, strlen(s), "users", err,
	    sizeof(err));

	ck_assert_msg(us != NULL, "parse failed: %s", err);
	return us;
}

static enum users_result
verify(const struct users *us, const char *user, const char *pw)
{
	return users_verify(us, user, pw, strlen(pw));
}

/* Both kinds of hash, comments, blanks, CRLF, a last line without LF. */
START_TEST(parse_and_verify)
{
	char y[USERS_HASH_MAX], file[1024];
	struct users *us;

	yescrypt("s3cret pass", y, sizeof(y));
	snprintf(file, sizeof(file),
	    "# herald users\n"
	    "\n"
	    "alice:%s\r\n"
	    "  bob:" SHA512_HELLO "  \n"
	    "carol@example.com:" SHA512_HELLO_ROUNDS, y);
	us = parse_ok(file);
	ck_assert_uint_eq(users_count(us), 3);
	ck_assert_int_eq(verify(us, "alice", "s3cret pass"), USERS_OK);
	ck_assert_int_eq(verify(us, "alice", "s3cret pas"), USERS_MISMATCH);
	ck_assert_int_eq(verify(us, "alice", "s3cret pass "), USERS_MISMATCH);
	ck_assert_int_eq(verify(us, "alice", ""), USERS_MISMATCH);
	ck_assert_int_eq(verify(us, "bob", HELLO), USERS_OK);
	ck_assert_int_eq(verify(us, "bob", "hello world!"), USERS_MISMATCH);
	ck_assert_int_eq(verify(us, "carol@example.com", HELLO), USERS_OK);
	ck_assert_int_eq(verify(us, "carol", HELLO), USERS_UNKNOWN);
	ck_assert_int_eq(verify(us, "Alice", "s3cret pass"), USERS_UNKNOWN);
	ck_assert_int_eq(verify(us, "", ""), USERS_UNKNOWN);
	users_free(us);
}
END_TEST

/* Passwords the check refuses before hashing. */
START_TEST(refused)
{
	char pw[USERS_PASSWORD_MAX + 2], file[256];
	struct users *us;

	memset(pw, 'p', sizeof(pw));
	pw[USERS_PASSWORD_MAX] = '\0';
	snprintf(file, sizeof(file), "bob:%s\n", SHA512_HELLO);
	us = parse_ok(file);
	ck_assert_int_eq(users_verify(us, "bob", pw, USERS_PASSWORD_MAX),
	    USERS_MISMATCH);
	ck_assert_int_eq(users_verify(us, "bob", pw, USERS_PASSWORD_MAX + 1),
	    USERS_REFUSED);
	ck_assert_int_eq(users_verify(us, "bob", "Hello\0world!", 12),
	    USERS_REFUSED);
	/* The length given counts, not a NUL after it. */
	ck_assert_int_eq(users_verify(us, "bob", HELLO "xyz", 12), USERS_OK);
	ck_assert_str_eq(users_result_str(USERS_REFUSED),
	    "password too long or with a NUL byte");
	ck_assert_str_eq(users_result_str(USERS_MISMATCH), "wrong password");
	ck_assert_str_eq(users_result_str(USERS_UNKNOWN), "unknown user");
	users_free(us);
}
END_TEST

/* users_hash_password: yescrypt, a new salt each time, verifies. */
START_TEST(hashing)
{
	char h1[USERS_HASH_MAX], h2[USERS_HASH_MAX], file[512];
	struct users *us;

	ck_assert_int_eq(users_hash_password("pw", h1, sizeof(h1)), 0);
	ck_assert_int_eq(users_hash_password("pw", h2, sizeof(h2)), 0);
	ck_assert_int_eq(strncmp(h1, "$y$", 3), 0);
	ck_assert_str_ne(h1, h2);
	ck_assert_int_eq(users_hash_password("pw", h2, 20), -1);
	snprintf(file, sizeof(file), "u:%s\n", h1);
	us = parse_ok(file);
	ck_assert_int_eq(verify(us, "u", "pw"), USERS_OK);
	ck_assert_int_eq(verify(us, "u", "pW"), USERS_MISMATCH);
	users_free(us);
}
END_TEST

struct err_case {
	const char	*text;
	const char	*err;
};

static const struct err_case errs[] = {
	{ "alice\n", "users:1: expected user:hash" },
	{ "\n# x\nalice " SHA512_HELLO "\n", "users:3: expected user:hash" },
	{ ":" SHA512_HELLO "\n", "users:1: bad user name ''" },
	{ "a b:" SHA512_HELLO "\n", "users:1: bad user name 'a b'" },
	{ "*:" SHA512_HELLO "\n", "users:1: bad user name '*'" },
	{ "alice:\n", "users:1: user alice: the hash is not yescrypt ($y$) "
	  "nor sha512crypt ($6$)" },
	{ "alice:ab01FAX.bQRSU\n", "users:1: user alice: the hash is not "
	  "yescrypt ($y$) nor sha512crypt ($6$)" },
	{ "alice:$1$saltsalt$qjXMvbEw8oaL.CzflDugX/\n", "users:1: user "
	  "alice: the hash is not yescrypt ($y$) nor sha512crypt ($6$)" },
	{ "alice:$2b$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"
	  "\n", "users:1: user alice: the hash is not yescrypt ($y$) nor "
	  "sha512crypt ($6$)" },
	{ "alice:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZF0b9b1Y4"
	  "\n", "users:1: user alice: the hash is not yescrypt ($y$) nor "
	  "sha512crypt ($6$)" },
	{ "alice:!" SHA512_HELLO "\n", "users:1: user alice: the hash is not "
	  "yescrypt ($y$) nor sha512crypt ($6$)" },
	{ "alice:$6$saltstring\n",
	  "users:1: user alice: malformed hash (no checksum)" },
	{ "alice:$6$saltstring$\n",
	  "users:1: user alice: malformed hash (no checksum)" },
	{ "alice:" SHA512_HELLO "x\n",
	  "users:1: user alice: malformed hash (no checksum)" },
	{ "alice:$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBn"
	  "IFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz!\n",
	  "users:1: user alice: malformed hash" },
	{ "alice:$y$j9T$Rl8ZmIiD5SAaIqhFqsUWN/\n",
	  "users:1: user alice: malformed hash (no checksum)" },
	{ "alice:$y$j9T$Rl8ZmIiD5SAaIqhFqsUWN/$DvlKa6F5s72CyrpUh8yAzlKUHQbN"
	  "Zo4BndEeIEwoLI8:0:0::\n",
	  "users:1: user alice: malformed hash" },
	{ "alice:" SHA512_HELLO "\nbob:" SHA512_HELLO "\nalice:"
	  SHA512_HELLO_ROUNDS "\n",
	  "users:3: a second line for user alice (the first is line 1)" },
	{ "alice:" SHA512_HELLO "\nbob:\0\n", "users:2: a NUL byte" },
};

START_TEST(err_table)
{
	const struct err_case *ec = &errs[_i];
	size_t len = strlen(ec->text);
	char err[TEXTFILE_ERR_MAX];

	if (strstr(ec->err, "NUL") != NULL)
		len += 1 + strlen(ec->text + len + 1);
	memset(err, 0, sizeof(err));
	ck_assert_ptr_null(users_parse(ec->text, len, "users", err,
	    sizeof(err)));
	ck_assert_str_eq(err, ec->err);
	/* No error quotes a hash's checksum, or a salt. */
	ck_assert_ptr_null(strstr(err, "saltstring"));
	ck_assert_ptr_null(strstr(err, "svn8Uo"));
	ck_assert_ptr_null(strstr(err, "Rl8Zm"));
}
END_TEST

/* USERS_MAX users; one more is an error. */
START_TEST(users_limit)
{
	size_t cap = (size_t)(USERS_MAX + 1) * 128, n = 0;
	char *buf = malloc(cap), err[TEXTFILE_ERR_MAX];
	struct users *us;
	int i;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < USERS_MAX; i++)
		n += (size_t)snprintf(buf + n, cap - n, "u%d:%s\n", i,
		    SHA512_HELLO);
	us = users_parse(buf, n, "f", err, sizeof(err));
	ck_assert_msg(us != NULL, "%s", err);
	ck_assert_uint_eq(users_count(us), USERS_MAX);
	ck_assert_int_eq(verify(us, "u65535", HELLO), USERS_OK);
	users_free(us);
	n += (size_t)snprintf(buf + n, cap - n, "x:%s\n", SHA512_HELLO);
	ck_assert_ptr_null(users_parse(buf, n, "f", err, sizeof(err)));
	ck_assert_str_eq(err, "f:65537: more than 65536 users");
	free(buf);
}
END_TEST

struct set_case {
	const char	*in;
	const char	*user;
	const char	*out;
};

static const struct set_case sets[] = {
	{ "", "a", "a:H\n" },
	{ "b:x\n", "a", "b:x\na:H\n" },
	{ "b:x", "a", "b:x\na:H\n" },			/* no final LF */
	{ "a:x\n", "a", "a:H\n" },
	{ "a:x", "a", "a:H\n" },
	{ "# c\na:x\nb:y\n", "a", "# c\na:H\nb:y\n" },
	{ "  a:x\r\n", "a", "a:H\n" },
	{ "ab:x\nba:y\n", "a", "ab:x\nba:y\na:H\n" },	/* other names */
	{ "#a:x\n", "a", "#a:x\na:H\n" },		/* a comment */
	{ "a:x\nb:y\na:z\n", "a", "a:H\nb:y\n" },	/* one line left */
	{ "\n\nb:y\n\n", "a", "\n\nb:y\n\na:H\n" },
	{ "junk\n", "a", "junk\na:H\n" },
	{ "# c", "a", "# c\na:H\n" },		/* found by fuzz_users */
};

START_TEST(file_set)
{
	const struct set_case *sc = &sets[_i];
	size_t len;
	char *out = users_file_set(sc->in, strlen(sc->in), sc->user, "H",
	    &len);

	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, sc->out);
	ck_assert_uint_eq(len, strlen(sc->out));
	free(out);
}
END_TEST

/* The cache: hits only for the same user and password, until cleared. */
START_TEST(cache)
{
	struct users_cache *c = users_cache_new();
	char y[USERS_HASH_MAX], file[512];
	struct users *us, *other;

	ck_assert_ptr_nonnull(c);
	ck_assert(!users_cache_hit(c, "alice", "pw", 2));
	users_cache_add(c, "alice", "pw", 2);
	ck_assert(users_cache_hit(c, "alice", "pw", 2));
	ck_assert(!users_cache_hit(c, "alice", "pW", 2));
	ck_assert(!users_cache_hit(c, "alice", "pw", 1));
	ck_assert(!users_cache_hit(c, "alice", "pwx", 3));
	ck_assert(!users_cache_hit(c, "bob", "pw", 2));
	ck_assert(!users_cache_hit(c, "", "", 0));
	users_cache_clear(c);
	ck_assert(!users_cache_hit(c, "alice", "pw", 2));

	/* users_check remembers successes, not failures. */
	yescrypt("pw", y, sizeof(y));
	snprintf(file, sizeof(file), "alice:%s\n", y);
	us = parse_ok(file);
	ck_assert_int_eq(users_check(us, c, "alice", "no", 2),
	    USERS_MISMATCH);
	ck_assert(!users_cache_hit(c, "alice", "no", 2));
	ck_assert_int_eq(users_check(us, c, "alice", "pw", 2), USERS_OK);
	ck_assert(users_cache_hit(c, "alice", "pw", 2));
	/* A hit is answered without a hash: the same check against a file
	 * where alice has another password still passes... */
	yescrypt("other", y, sizeof(y));
	snprintf(file, sizeof(file), "alice:%s\n", y);
	other = parse_ok(file);
	ck_assert_int_eq(users_check(other, c, "alice", "pw", 2), USERS_OK);
	/* ...which is why a reload clears it. */
	users_cache_clear(c);
	ck_assert_int_eq(users_check(other, c, "alice", "pw", 2),
	    USERS_MISMATCH);
	ck_assert_int_eq(users_check(other, c, "alice", "other", 5),
	    USERS_OK);
	users_free(us);
	users_free(other);
	users_cache_free(c);
}
END_TEST

/* The cache holds many checks at once (two may share a slot: then the
 * newer stays). */
START_TEST(cache_many)
{
	struct users_cache *c = users_cache_new();
	char user[16];
	int i, hits = 0;

	ck_assert_ptr_nonnull(c);
	for (i = 0; i < 64; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		users_cache_add(c, user, "pw", 2);
	}
	for (i = 0; i < 64; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		hits += users_cache_hit(c, user, "pw", 2);
		ck_assert(!users_cache_hit(c, user, "px", 2));
	}
	ck_assert_int_ge(hits, 60);
	ck_assert(users_cache_hit(c, "u63", "pw", 2));	/* the newest */
	users_cache_free(c);
}
END_TEST

/* Tens of thousands of users (a reconnect storm's) stay cached. */
START_TEST(cache_full_storm)
{
	struct users_cache *c = users_cache_new();
	char user[16];
	int i, hits = 0, n = 50000;

	ck_assert_ptr_nonnull(c);
	for (i = 0; i < n; i++) {
		snprintf(user, sizeof(user), "d%d", i);
		users_cache_add(c, user, "pw", 2);
	}
	for (i = 0; i < n; i++) {
		snprintf(user, sizeof(user), "d%d", i);
		hits += users_cache_hit(c, user, "pw", 2);
	}
	ck_assert_int_ge(hits, n * 99 / 100);
	users_cache_free(c);
}
END_TEST

/* One cache for the processes forked after it: what a child remembers
 * the parent finds, and a child's clear is every process's. */
START_TEST(cache_shared_across_fork)
{
	struct users_cache *c = users_cache_new();
	pid_t pid;
	int status;

	ck_assert_ptr_nonnull(c);
	users_cache_add(c, "parent", "pw", 2);
	if ((pid = fork()) == 0) {
		int ok = users_cache_hit(c, "parent", "pw", 2);
		users_cache_add(c, "child", "pw", 2);
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert(users_cache_hit(c, "child", "pw", 2));
	if ((pid = fork()) == 0) {
		users_cache_clear(c);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(!users_cache_hit(c, "child", "pw", 2));
	ck_assert(!users_cache_hit(c, "parent", "pw", 2));
	users_cache_add(c, "parent", "pw", 2);
	ck_assert(users_cache_hit(c, "parent", "pw", 2));
	users_cache_free(c);
}
END_TEST

/* users_load: a file, and a missing one. */
START_TEST(load)
{
	char path[] = "/tmp/test_users.XXXXXX", err[TEXTFILE_ERR_MAX];
	struct users *us;
	FILE *f;
	int fd;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_ptr_nonnull(f = fdopen(fd, "w"));
	fputs("bob:" SHA512_HELLO "\n", f);
	fclose(f);
	ck_assert_ptr_nonnull(us = users_load(path, err, sizeof(err)));
	ck_assert_int_eq(verify(us, "bob", HELLO), USERS_OK);
	users_free(us);
	unlink(path);
	ck_assert_ptr_null(users_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

static Suite *
users_suite(void)
{
	Suite *s = suite_create("users");
	TCase *tc;

	tc = tcase_create("file");
	tcase_add_test(tc, parse_and_verify);
	tcase_add_test(tc, refused);
	tcase_add_test(tc, hashing);
	tcase_add_loop_test(tc, err_table, 0, NELEM(errs));
	tcase_add_test(tc, users_limit);
	tcase_add_loop_test(tc, file_set, 0, NELEM(sets));
	tcase_add_test(tc, load);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_test(tc, cache);
	tcase_add_test(tc, cache_many);
	tcase_add_test(tc, cache_full_storm);
	tcase_add_test(tc, cache_shared_across_fork);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(users_suite());
	int failed;

	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
