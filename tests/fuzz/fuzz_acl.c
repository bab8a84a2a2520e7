/*
 * Fuzz target for the ACL file parser (auth/acl.c): any bytes are parsed;
 * an error must be one "NAME:LINE: message" line, and a parsed ACL must
 * give every user it names, and a few others, only valid patterns.
 *
 * libFuzzer: tests/fuzz/run-libfuzzer acl SECONDS
 * Replay without libFuzzer: link with standalone.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "ident.h"
#include "textfile.h"
#include "topic.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/*
 * The permissions of user hold only valid patterns, each written in the
 * file as it is, or holding the user's name in place of "%u": never for
 * a name that is no segment.
 */
static void
check_user(const struct acl *acl, const char *user, const char *s,
    size_t size)
{
	struct perm_list rd = { 0 }, pb = { 0 };
	size_t i;

	if (acl_permissions(acl, user, &rd, &pb) == -1)
		abort();
	for (i = 0; i < rd.n + pb.n; i++) {
		const char *p = i < rd.n ? rd.v[i] : pb.v[i - rd.n];

		if (!pattern_valid(p, strlen(p)))
			abort();
		if (memmem(s, size, p, strlen(p)) == NULL &&
		    (!ident_is_segment(user, strlen(user)) ||
		    strstr(p, user) == NULL))
			abort();
	}
	perm_free(&rd);
	perm_free(&pb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *others[] = { "nobody", "+", "#x", "a/b", "%u" };
	char err[TEXTFILE_ERR_MAX], user[IDENT_MAX + 1];
	const char *s = (const char *)data, *p, *e = s + size;
	struct acl *acl;
	size_t i, n;

	memset(err, 'z', sizeof(err));
	acl = acl_parse(s, size, "fuzz", err, sizeof(err));
	if (acl == NULL) {
		if (strncmp(err, "fuzz:", 5) != 0 || strchr(err, '\n'))
			abort();
		return 0;
	}
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		check_user(acl, others[i], s, size);
	/* Every "user NAME" line's name. */
	for (p = s; p < e && (p = memmem(p, e - p, "user ", 5)) != NULL;
	    p += 5) {
		for (n = 0; p + 5 + n < e && n < IDENT_MAX &&
		    p[5 + n] > ' ' && p[5 + n] < 0x7f; n++)
			user[n] = p[5 + n];
		user[n] = '\0';
		if (ident_valid(user, n))
			check_user(acl, user, s, size);
	}
	acl_free(acl);
	return 0;
}
