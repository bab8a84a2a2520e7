/*
 * herald passwd FILE USER: add a user to a users file, or change its
 * password (yescrypt), writing the file anew and renaming it into place;
 * the password prompt is also the one of --user.
 * herald token --key FILE --sub USER ...: mint a token (HS256 with a
 * secret, ES256 or RS256 with a PEM private key).  Neither talks to a
 * server; both use the daemon's own modules (auth/), so what they write
 * is what heraldd reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "ident.h"
#include "jwt.h"
#include "jwt_sign.h"
#include "textfile.h"
#include "topic.h"
#include "users.h"

#define TOKEN_EXP_DEFAULT 3600	/* seconds a token lives unless --exp */

/*
 * Read one line (without LF, a CR before it dropped) from f into buf;
 * -1 at the end of the input or if it is longer than len - 1 bytes.
 */
static int
read_line(FILE *f, char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, f) == NULL)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(f))
		return -1;	/* longer than the buffer */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

/*
 * Ask for a line on the terminal in (the prompt on out), without echo.
 * Echo goes off (TCSAFLUSH: what was typed before is not the answer)
 * before the prompt shows, as getpass(3) does: the other way round, an
 * answer typed or pasted as soon as the prompt appears could be thrown
 * away by the flush, and the command would wait for ever.  Returns 0, or
 * -1 if in is not a terminal, at its end, or for a line longer than
 * len - 1 bytes.
 */
int
cli_ask(FILE *in, FILE *out, const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	int rc, fd = fileno(in);

	if (tcgetattr(fd, &old) == -1)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) == -1)
		return -1;
	fputs(prompt, out);
	fflush(out);
	rc = read_line(in, buf, len);
	tcsetattr(fd, TCSANOW, &old);
	return rc;
}

/*
 * The password of --user: $HERALD_PASSWORD, else asked on the process's
 * terminal (not the standard input: pub reads its messages there).
 * Returns 0, or EXIT_USAGE after saying why.
 */
int
cli_login_password(const char *user, char *buf, size_t len)
{
	const char *env = getenv("HERALD_PASSWORD");
	char prompt[IDENT_MAX + 32];
	FILE *tty;
	int rc;

	if (env != NULL && *env != '\0') {
		if (strlen(env) >= len) {
			cli_warn("$HERALD_PASSWORD is longer than %zu bytes",
			    len - 1);
			return EXIT_USAGE;
		}
		memcpy(buf, env, strlen(env) + 1);
		return 0;
	}
	if ((tty = fopen("/dev/tty", "r+")) == NULL) {
		cli_warn("--user %s: no $HERALD_PASSWORD and no terminal to "
		    "ask for the password on", user);
		return EXIT_USAGE;
	}
	snprintf(prompt, sizeof(prompt), "Password for %.*s: ", IDENT_MAX,
	    user);
	rc = cli_ask(tty, tty, prompt, buf, len);
	fclose(tty);
	if (rc == -1 || buf[0] == '\0') {
		cli_warn("--user %s: no password read, or one longer than %zu "
		    "bytes", user, len - 1);
		return EXIT_USAGE;
	}
	return 0;
}

/*
 * The new password: asked twice on a terminal, else the first line of
 * the standard input.  Returns 0, or EXIT_FAIL after saying why.
 */
static int
get_password(char *pw, size_t len)
{
	char again[USERS_PASSWORD_MAX + 2];
	int rc = 0;

	if (!isatty(STDIN_FILENO)) {
		if (read_line(stdin, pw, len) == -1)
			return cli_fail("no password on the standard input, "
			    "or one longer than %d bytes", USERS_PASSWORD_MAX);
	} else if (cli_ask(stdin, stderr, "Password: ", pw, len) == -1 ||
	    cli_ask(stdin, stderr, "Again: ", again, sizeof(again)) == -1) {
		rc = cli_fail("no password read, or one longer than %d bytes",
		    USERS_PASSWORD_MAX);
	} else if (strcmp(pw, again) != 0) {
		rc = cli_fail("the passwords differ");
	}
	OPENSSL_cleanse(again, sizeof(again));
	if (rc == 0 && pw[0] == '\0')
		rc = cli_fail("empty password");
	return rc;
}

/*
 * Write buf[0..len) to path through a temporary file in the same
 * directory, renamed over it: readers see the old file or the new one.
 * The new file has the old one's mode and owner, or mode 0600.
 */
static int
write_atomic(const char *path, const char *buf, size_t len)
{
	char tmp[4096];
	struct stat st;
	int fd, have = stat(path, &st) == 0;
	ssize_t w;
	size_t off = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return cli_fail("%s: name too long", path);
	/* mkstemp makes it 0600. */
	if ((fd = mkstemp(tmp)) == -1)
		return cli_fail("%s: %s", tmp, strerror(errno));
	if (have) {
		if (fchmod(fd, st.st_mode & 07777) == -1 ||
		    (fchown(fd, st.st_uid, st.st_gid) == -1 && errno != EPERM))
			goto fail;
	}
	while (off < len) {
		if ((w = write(fd, buf + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) == -1)
		goto fail;
	w = close(fd);
	fd = -1;
	if (w == -1 || rename(tmp, path) == -1)
		goto fail;
	return 0;
fail:
	{
		int e = errno;

		if (fd != -1)
			close(fd);
		unlink(tmp);
		return cli_fail("%s: %s", path, strerror(e));
	}
}

/*
 * The users file with user:hash set, checked as heraldd would read it.
 * Returns the new contents (free them), or NULL after saying why.
 */
static char *
new_contents(const char *path, const char *user, const char *hash,
    size_t *len)
{
	char err[TEXTFILE_ERR_MAX], *old = NULL, *out;
	struct users *us;
	size_t oldlen = 0;

	if (access(path, F_OK) == 0 &&
	    (old = textfile_read(path, &oldlen, err, sizeof(err))) == NULL) {
		cli_warn("%s", err);
		return NULL;
	}
	out = users_file_set(old != NULL ? old : "", oldlen, user, hash, len);
	if (old != NULL) {
		OPENSSL_cleanse(old, oldlen);
		free(old);
	}
	if (out == NULL) {
		cli_warn("out of memory");
		return NULL;
	}
	if ((us = users_parse(out, *len, path, err, sizeof(err))) == NULL) {
		cli_warn("%s (the file is left as it was)", err);
		free(out);
		return NULL;
	}
	users_free(us);
	return out;
}

/* herald passwd FILE USER */
int
cli_run_passwd(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONG };
	char pw[USERS_PASSWORD_MAX + 2], hash[USERS_HASH_MAX], *out;
	const char *path, *user;
	size_t len;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, CLI_SHORTOPTS(""), lo,
	    NULL)) != -1)
		cli_common_opt(cli, ch, optarg);
	if (argc - optind != 2)
		cli_usage_error(cli, "expected FILE and USER");
	path = argv[optind];
	user = argv[optind + 1];
	if (!ident_valid(user, strlen(user)))
		cli_usage_error(cli, "bad user name '%s': 1 to %d printable "
		    "bytes, no space or ':', not '*' nor starting '#'", user,
		    IDENT_MAX);
	if ((rc = get_password(pw, sizeof(pw))) != 0)
		goto done;
	if (users_hash_password(pw, hash, sizeof(hash)) == -1) {
		rc = cli_fail("cannot hash the password (yescrypt)");
		goto done;
	}
	if ((out = new_contents(path, user, hash, &len)) == NULL) {
		rc = EXIT_FAIL;
		goto done;
	}
	rc = write_atomic(path, out, len);
	free(out);
done:
	OPENSSL_cleanse(pw, sizeof(pw));
	return rc;
}

/* Append the pattern arg to the JSON array *a (made on first use). */
static void
add_pattern(struct cli *cli, json_t **a, const char *arg)
{
	if (!pattern_valid(arg, strlen(arg)))
		cli_usage_error(cli, "bad pattern '%s'", arg);
	if (*a == NULL && (*a = json_array()) == NULL)
		exit(cli_fail("out of memory"));
	if (json_array_append_new(*a, json_string(arg)) == -1)
		exit(cli_fail("out of memory"));
}

/* The claims as compact JSON, or NULL when out of memory. */
static char *
claims_json(const char *sub, long exp, const char *aud, json_t *rd,
    json_t *pb)
{
	json_t *c = json_object(), *h = NULL;
	long now = (long)time(NULL);
	char *s = NULL;
	int bad = c == NULL;

	bad |= json_object_set_new(c, "sub", json_string(sub));
	bad |= json_object_set_new(c, "iat", json_integer(now));
	if (exp > 0)
		bad |= json_object_set_new(c, "exp", json_integer(now + exp));
	if (aud != NULL)
		bad |= json_object_set_new(c, "aud", json_string(aud));
	if (rd != NULL || pb != NULL) {
		bad |= (h = json_object()) == NULL;
		if (rd != NULL)
			bad |= json_object_set(h, "read", rd);
		if (pb != NULL)
			bad |= json_object_set(h, "publish", pb);
		bad |= json_object_set_new(c, "herald", h);
	}
	if (!bad)
		s = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	return s;
}

/* herald token --key FILE --sub USER [...] */
int
cli_run_token(struct cli *cli, int argc, char **argv)
{
	enum { O_KEY = 256, O_SUB, O_EXP, O_AUD, O_READ, O_PUBLISH };
	static const struct option lo[] = {
		{ "key", required_argument, NULL, O_KEY },
		{ "sub", required_argument, NULL, O_SUB },
		{ "exp", required_argument, NULL, O_EXP },
		{ "aud", required_argument, NULL, O_AUD },
		{ "read", required_argument, NULL, O_READ },
		{ "publish", required_argument, NULL, O_PUBLISH },
		CLI_COMMON_LONG };
	const char *key = NULL, *sub = NULL, *aud = NULL;
	json_t *rd = NULL, *pb = NULL;
	struct jwt_signer *s;
	char err[TEXTFILE_ERR_MAX], *claims, *tok;
	uint64_t exp = TOKEN_EXP_DEFAULT;
	int ch;

	while ((ch = getopt_long(argc, argv, CLI_SHORTOPTS(""), lo,
	    NULL)) != -1) {
		switch (ch) {
		case O_KEY:
			key = optarg;
			break;
		case O_SUB:
			if (!ident_valid(optarg, strlen(optarg)))
				cli_usage_error(cli, "bad user name '%s'",
				    optarg);
			sub = optarg;
			break;
		case O_EXP:
			if (fmt_parse_u64(optarg, &exp) == -1 ||
			    exp > 100ull * 366 * 86400)
				cli_usage_error(cli, "bad --exp '%s': seconds "
				    "(0: no expiry)", optarg);
			break;
		case O_AUD:
			aud = optarg;
			break;
		case O_READ:
			add_pattern(cli, &rd, optarg);
			break;
		case O_PUBLISH:
			add_pattern(cli, &pb, optarg);
			break;
		default:
			cli_common_opt(cli, ch, optarg);
		}
	}
	if (argc != optind)
		cli_usage_error(cli, "unexpected '%s'", argv[optind]);
	if (key == NULL || sub == NULL)
		cli_usage_error(cli, "--key and --sub are needed");
	if ((s = jwt_signer_load(key, err, sizeof(err))) == NULL)
		return cli_fail("%s", err);
	claims = claims_json(sub, (long)exp, aud, rd, pb);
	tok = claims != NULL ? jwt_sign(s, NULL, claims) : NULL;
	jwt_signer_free(s);
	json_decref(rd);
	json_decref(pb);
	free(claims);
	if (tok == NULL)
		return cli_fail("cannot make the token");
	printf("%s\n", tok);
	free(tok);
	cli_flush_stdout();
	return 0;
}
