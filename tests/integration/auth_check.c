/*
 * auth_check: the daemon's own checks of passwords and tokens (auth/),
 * for test_auth_cli.py to check what herald passwd and herald token wrote.
 *
 *   auth_check users FILE USER      the password on the standard input
 *   auth_check jwt KEYFILE [AUD]    the token on the standard input
 *
 * Prints "ok" (for a token: "ok SUB EXP", then "read P" and "publish P"
 * lines when it carries permissions) and exits 0, or prints the cause and
 * exits 1; 2 for a usage or file error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt.h"
#include "textfile.h"
#include "users.h"

/* The first line of the standard input, without its LF. */
static char *
stdin_line(void)
{
	static char buf[JWT_TOKEN_MAX + 2];
	size_t n;

	if (fgets(buf, sizeof(buf), stdin) == NULL)
		buf[0] = '\0';
	n = strcspn(buf, "\n");
	buf[n] = '\0';
	return buf;
}

static int
check_users(const char *path, const char *user)
{
	char err[TEXTFILE_ERR_MAX], *pw;
	enum users_result r;
	struct users *us;

	if ((us = users_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	pw = stdin_line();
	r = users_verify(us, user, pw, strlen(pw));
	printf("%s\n", users_result_str(r));
	users_free(us);
	return r == USERS_OK ? 0 : 1;
}

static int
check_jwt(const char *path, const char *aud)
{
	const struct jwt_opts o = { 0, aud };
	struct jwt_keys *ks = jwt_keys_new();
	char err[TEXTFILE_ERR_MAX], *tok;
	struct jwt_claims c;
	enum jwt_result r;
	size_t i;

	if (ks == NULL || jwt_keys_add_file(ks, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", ks == NULL ? "out of memory" : err);
		jwt_keys_free(ks);
		return 2;
	}
	tok = stdin_line();
	r = jwt_check(ks, &o, tok, strlen(tok), (int64_t)time(NULL), &c);
	if (r != JWT_OK) {
		printf("%s\n", jwt_result_str(r));
		jwt_keys_free(ks);
		return 1;
	}
	printf("ok %s %lld\n", c.sub, (long long)c.exp);
	for (i = 0; c.has_perms && i < c.read.n; i++)
		printf("read %s\n", c.read.v[i]);
	for (i = 0; c.has_perms && i < c.publish.n; i++)
		printf("publish %s\n", c.publish.v[i]);
	jwt_claims_free(&c);
	jwt_keys_free(ks);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "users") == 0)
		return check_users(argv[2], argv[3]);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "jwt") == 0)
		return check_jwt(argv[2], argc == 4 ? argv[3] : NULL);
	fprintf(stderr, "usage: auth_check users FILE USER | "
	    "jwt KEYFILE [AUDIENCE]\n");
	return 2;
}
