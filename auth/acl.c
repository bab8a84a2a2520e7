/*
 * The ACL file (acl.h): parsed into one block of rules per user, sorted by
 * name; a user's permissions are worked out from its block and "user *".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "ident.h"
#include "textfile.h"
#include "topic.h"

struct acl_rule {
	char		*pat;		/* as written, "%u" and all */
	size_t		 len;
	int		 publish;	/* else read */
	int		 has_u;		/* a segment is "%u" */
};

struct acl_block {
	char		*user;		/* a valid user, or "*" */
	unsigned	 line;		/* of its "user" line */
	struct acl_rule	*rules;
	size_t		 n;
};

struct acl {
	struct acl_block *blocks;	/* sorted by user */
	size_t		  n;
	size_t		  cap;
	const struct acl_block *all;	/* "user *", or NULL */
};

static int
word_is(const char *w, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(w, s, len) == 0;
}

/* Start a block for the user named by the "user" line being read. */
static int
add_block(struct acl *acl, struct textfile *tf, const char *u, size_t ulen)
{
	char q[TEXTFILE_QUOTE_MAX];
	struct acl_block *b;

	if (!word_is(u, ulen, "*") && !ident_valid(u, ulen))
		return textfile_error(tf, "bad user name '%s'",
		    textfile_quote(q, sizeof(q), u, ulen));
	if (acl->n == ACL_USERS_MAX)
		return textfile_error(tf, "more than %d users",
		    ACL_USERS_MAX);
	if (acl->n == acl->cap) {
		size_t cap = acl->cap ? acl->cap * 2 : 16;

		if ((b = reallocarray(acl->blocks, cap, sizeof(*b))) == NULL)
			return textfile_error(tf, "out of memory");
		acl->blocks = b;
		acl->cap = cap;
	}
	b = &acl->blocks[acl->n];
	memset(b, 0, sizeof(*b));
	if ((b->user = textfile_dup(u, ulen)) == NULL)
		return textfile_error(tf, "out of memory");
	b->line = tf->lineno;
	acl->n++;
	return 0;
}

/*
 * Write the pattern p[0..len) with each "%u" segment user[0..ulen) into
 * buf (TOPIC_MAX + 1 bytes); returns its length, or 0 if it would be
 * longer than TOPIC_MAX.
 */
static size_t
fill_user(const char *p, size_t len, const char *user, size_t ulen,
    char *buf)
{
	size_t i = 0, n = 0, e, w;

	while (i <= len) {
		const char *slash = memchr(p + i, '/', len - i);
		const char *src = p + i;

		e = slash != NULL ? (size_t)(slash - p) : len;
		w = e - i;
		if (w == 2 && memcmp(src, "%u", 2) == 0) {
			src = user;
			w = ulen;
		}
		if (n + w + (e < len) > TOPIC_MAX)
			return 0;
		memcpy(buf + n, src, w);
		n += w;
		if (e < len)
			buf[n++] = '/';
		i = e + 1;
	}
	return n;
}

/*
 * Check a rule's pattern: "%u" only as a whole segment, and valid with
 * "%u" standing for a one-byte name.  Sets *has_u.  Returns 0 or -1 after
 * writing the error.
 */
static int
check_template(struct textfile *tf, const char *p, size_t len, int *has_u)
{
	char q[TEXTFILE_QUOTE_MAX], buf[TOPIC_MAX + 1];
	const char *u = p, *end = p + len;
	size_t n;

	*has_u = 0;
	while ((u = memmem(u, (size_t)(end - u), "%u", 2)) != NULL) {
		if ((u > p && u[-1] != '/') || (u + 2 < end && u[2] != '/'))
			return textfile_error(tf, "'%%u' must be a whole "
			    "segment: '%s'", textfile_quote(q, sizeof(q), p,
			    len));
		*has_u = 1;
		u += 2;
	}
	if ((n = fill_user(p, len, "x", 1, buf)) == 0 ||
	    !pattern_valid(buf, n))
		return textfile_error(tf, "bad pattern '%s'",
		    textfile_quote(q, sizeof(q), p, len));
	return 0;
}

/* Add a read or publish rule to the block being read. */
static int
add_rule(struct acl *acl, struct textfile *tf, int publish, const char *p,
    size_t len)
{
	struct acl_block *b = &acl->blocks[acl->n - 1];
	struct acl_rule *r;
	int has_u;

	if (check_template(tf, p, len, &has_u) == -1)
		return -1;
	if (b->n == ACL_RULES_MAX)
		return textfile_error(tf, "more than %d rules for user %s",
		    ACL_RULES_MAX, b->user);
	/* Blocks are short: grow one rule at a time. */
	if ((r = reallocarray(b->rules, b->n + 1, sizeof(*r))) == NULL)
		return textfile_error(tf, "out of memory");
	b->rules = r;
	r = &b->rules[b->n];
	if ((r->pat = textfile_dup(p, len)) == NULL)
		return textfile_error(tf, "out of memory");
	r->len = len;
	r->publish = publish;
	r->has_u = has_u;
	b->n++;
	return 0;
}

/* One line: "user NAME", "read PATTERN" or "publish PATTERN". */
static int
parse_line(struct acl *acl, struct textfile *tf, const char *s, size_t len)
{
	char q[TEXTFILE_QUOTE_MAX];
	const char *kw, *arg;
	size_t kwlen, arglen;
	int publish = 0;

	textfile_word(&s, &len, &kw, &kwlen);
	textfile_word(&s, &len, &arg, &arglen);
	if (word_is(kw, kwlen, "user")) {
		if (arglen == 0)
			return textfile_error(tf, "'user' needs a name "
			    "(or *)");
	} else if ((publish = word_is(kw, kwlen, "publish")) ||
	    word_is(kw, kwlen, "read")) {
		if (arglen == 0)
			return textfile_error(tf, "'%s' needs a pattern",
			    publish ? "publish" : "read");
		if (acl->n == 0)
			return textfile_error(tf, "a rule before any 'user' "
			    "line");
	} else {
		return textfile_error(tf, "unknown keyword '%s' (expected "
		    "user, read or publish)",
		    textfile_quote(q, sizeof(q), kw, kwlen));
	}
	if (len > 0)
		return textfile_error(tf, "extra words after '%s'",
		    textfile_quote(q, sizeof(q), arg, arglen));
	if (kw[0] == 'u')
		return add_block(acl, tf, arg, arglen);
	return add_rule(acl, tf, publish, arg, arglen);
}

/* Blocks in order of user, then of line. */
static int
block_cmp(const void *a, const void *b)
{
	const struct acl_block *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

/* For bsearch: a user name against a block. */
static int
block_cmp_user(const void *key, const void *b)
{
	return strcmp(key, ((const struct acl_block *)b)->user);
}

/* Sort the blocks for lookups; a user with two blocks is an error. */
static int
index_blocks(struct acl *acl, struct textfile *tf)
{
	size_t i;

	if (acl->n == 0)
		return 0;	/* and blocks may be NULL */
	qsort(acl->blocks, acl->n, sizeof(acl->blocks[0]), block_cmp);
	for (i = 0; i < acl->n; i++) {
		const struct acl_block *b = &acl->blocks[i];

		if (i > 0 && strcmp(b[-1].user, b->user) == 0) {
			tf->lineno = b->line;
			return textfile_error(tf, "a second block for user %s "
			    "(the first is at line %u)", b->user, b[-1].line);
		}
		if (strcmp(b->user, "*") == 0)
			acl->all = b;
	}
	return 0;
}

/* Parse an ACL from buf[0..len). */
struct acl *
acl_parse(const char *buf, size_t len, const char *name, char *err,
    size_t errlen)
{
	struct textfile tf;
	struct acl *acl;
	const char *line;
	size_t n;
	int r;

	textfile_init(&tf, name, buf, len, err, errlen);
	if ((acl = calloc(1, sizeof(*acl))) == NULL) {
		textfile_error(&tf, "out of memory");
		return NULL;
	}
	while ((r = textfile_next(&tf, &line, &n)) == 1)
		if (parse_line(acl, &tf, line, n) == -1)
			break;
	if (r != 0 || index_blocks(acl, &tf) == -1) {
		acl_free(acl);
		return NULL;
	}
	return acl;
}

/* Read the file at path and parse it. */
struct acl *
acl_load(const char *path, char *err, size_t errlen)
{
	struct acl *acl;
	size_t len;
	char *buf;

	if ((buf = textfile_read(path, &len, err, errlen)) == NULL)
		return NULL;
	acl = acl_parse(buf, len, path, err, errlen);
	free(buf);
	return acl;
}

/* Add the patterns of block b for user. */
static int
add_block_rules(const struct acl_block *b, const char *user,
    struct perm_list *read, struct perm_list *publish)
{
	size_t i, ulen = strlen(user), n;
	int seg = ident_is_segment(user, ulen);
	char buf[TOPIC_MAX + 1];

	for (i = 0; i < b->n; i++) {
		const struct acl_rule *r = &b->rules[i];
		const char *p = r->pat;

		n = r->len;
		if (r->has_u) {
			if (!seg || (n = fill_user(r->pat, r->len, user, ulen,
			    buf)) == 0 ||
			    !pattern_valid(buf, n))
				continue;
			p = buf;
		}
		if (perm_add(r->publish ? publish : read, p, n) == -1)
			return -1;
	}
	return 0;
}

/* The patterns the user may read and publish. */
int
acl_permissions(const struct acl *acl, const char *user,
    struct perm_list *read, struct perm_list *publish)
{
	const struct acl_block *b;

	if (!ident_valid(user, strlen(user)))
		return 0;
	if (acl->all != NULL &&
	    add_block_rules(acl->all, user, read, publish) == -1)
		return -1;
	b = acl->n == 0 ? NULL : bsearch(user, acl->blocks, acl->n,
	    sizeof(*b), block_cmp_user);
	if (b != NULL && add_block_rules(b, user, read, publish) == -1)
		return -1;
	return 0;
}

/* The number of user blocks. */
size_t
acl_users(const struct acl *acl)
{
	return acl->n;
}

/* Free the ACL. */
void
acl_free(struct acl *acl)
{
	size_t i, j;

	if (acl == NULL)
		return;
	for (i = 0; i < acl->n; i++) {
		for (j = 0; j < acl->blocks[i].n; j++)
			free(acl->blocks[i].rules[j].pat);
		free(acl->blocks[i].rules);
		free(acl->blocks[i].user);
	}
	free(acl->blocks);
	free(acl);
}
