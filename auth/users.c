/*
 * The users file and password checks (users.h).  Hashing is libxcrypt's
 * (crypt_rn, crypt_gensalt_rn); comparisons and the cache's digests are
 * OpenSSL's (CRYPTO_memcmp, HMAC-SHA256).
 */
#include <crypt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ident.h"
#include "textfile.h"
#include "users.h"

/*
 * What an unknown user's password is hashed against, so that it costs
 * what a known user's does: a yescrypt setting of the default cost.
 */
#define DUMMY_SETTING	"$y$j9T$Rl8ZmIiD5SAaIqhFqsUWN/"

#define DIGEST_LEN	32		/* HMAC-SHA256 */

struct user {
	char		*name;
	char		*hash;
	unsigned	 line;
};

struct users {
	struct user	*v;		/* sorted by name */
	size_t		 n;
	size_t		 cap;
};

/*
 * The cache is one shared mapping: made before the workers are forked,
 * every worker reads and fills the same slots, so a client that
 * reconnects to another worker is still remembered.  A slot is written
 * under its sequence number (odd while a write is under way: a reader
 * that sees it odd, or changed, takes a miss; two writers never write it
 * at once).  A clear bumps the epoch, which every slot records.
 */
struct cache_slot {
	uint32_t	seq;
	uint32_t	epoch;
	char		user[IDENT_MAX + 1];	/* "" when free */
	unsigned char	digest[DIGEST_LEN];
};

struct users_cache {
	int		  keyed;	/* 0: no randomness for a key, and
					 * then the cache stays empty */
	uint32_t	  epoch;	/* a slot of another epoch is free */
	unsigned char	  key[DIGEST_LEN];
	struct cache_slot slots[USERS_CACHE_SLOTS];
};

/*
 * Why the hash h[0..n) cannot be used, or NULL if it can: yescrypt or
 * sha512crypt, well formed, with its checksum (a bare setting would lock
 * the user out without a word).
 */
static const char *
hash_problem(const char *h, size_t n)
{
	char buf[USERS_HASH_MAX + 1];
	size_t want, i;
	const char *last;

	if (n > USERS_HASH_MAX)
		return "the hash is too long";
	if (n > 3 && memcmp(h, "$y$", 3) == 0)
		want = 43;
	else if (n > 3 && memcmp(h, "$6$", 3) == 0)
		want = 86;
	else
		return "the hash is not yescrypt ($y$) nor sha512crypt ($6$)";
	memcpy(buf, h, n);
	buf[n] = '\0';
	if (crypt_checksalt(buf) != CRYPT_SALT_OK)
		return "malformed hash";
	last = strrchr(buf, '$') + 1;
	if (strlen(last) != want)
		return "malformed hash (no checksum)";
	for (i = 0; i < want; i++)
		if (strchr("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz", last[i]) == NULL)
			return "malformed hash";
	return NULL;
}

/* One "user:hash" line. */
static int
parse_line(struct users *us, struct textfile *tf, const char *s, size_t len)
{
	char q[TEXTFILE_QUOTE_MAX];
	const char *colon = memchr(s, ':', len), *why;
	size_t ulen;
	struct user *u;

	if (colon == NULL)
		return textfile_error(tf, "expected user:hash");
	ulen = (size_t)(colon - s);
	if (!ident_valid(s, ulen))
		return textfile_error(tf, "bad user name '%s'",
		    textfile_quote(q, sizeof(q), s, ulen));
	s += ulen + 1;
	len -= ulen + 1;
	if ((why = hash_problem(s, len)) != NULL)
		return textfile_error(tf, "user %.*s: %s", (int)ulen,
		    colon - ulen, why);
	if (us->n == USERS_MAX)
		return textfile_error(tf, "more than %d users", USERS_MAX);
	if (us->n == us->cap) {
		size_t cap = us->cap ? us->cap * 2 : 16;

		if ((u = reallocarray(us->v, cap, sizeof(*u))) == NULL)
			return textfile_error(tf, "out of memory");
		us->v = u;
		us->cap = cap;
	}
	u = &us->v[us->n];
	u->name = textfile_dup(colon - ulen, ulen);
	u->hash = textfile_dup(s, len);
	u->line = tf->lineno;
	us->n++;
	if (u->name == NULL || u->hash == NULL)
		return textfile_error(tf, "out of memory");
	return 0;
}

/* Users in order of name, then of line. */
static int
user_cmp(const void *a, const void *b)
{
	const struct user *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

/* For bsearch: a name against a user. */
static int
user_cmp_name(const void *key, const void *b)
{
	return strcmp(key, ((const struct user *)b)->name);
}

/* Parse a users file from buf[0..len). */
struct users *
users_parse(const char *buf, size_t len, const char *name, char *err,
    size_t errlen)
{
	struct textfile tf;
	struct users *us;
	const char *line;
	size_t i, n;
	int r;

	textfile_init(&tf, name, buf, len, err, errlen);
	if ((us = calloc(1, sizeof(*us))) == NULL) {
		textfile_error(&tf, "out of memory");
		return NULL;
	}
	while ((r = textfile_next(&tf, &line, &n)) == 1)
		if (parse_line(us, &tf, line, n) == -1)
			break;
	if (r != 0)
		goto fail;
	if (us->n > 0)
		qsort(us->v, us->n, sizeof(us->v[0]), user_cmp);
	for (i = 1; i < us->n; i++) {
		if (strcmp(us->v[i - 1].name, us->v[i].name) == 0) {
			tf.lineno = us->v[i].line;
			textfile_error(&tf, "a second line for user %s (the "
			    "first is line %u)", us->v[i].name,
			    us->v[i - 1].line);
			goto fail;
		}
	}
	return us;
fail:
	users_free(us);
	return NULL;
}

/* Read the file at path and parse it. */
struct users *
users_load(const char *path, char *err, size_t errlen)
{
	struct users *us;
	size_t len;
	char *buf;

	if ((buf = textfile_read(path, &len, err, errlen)) == NULL)
		return NULL;
	us = users_parse(buf, len, path, err, errlen);
	OPENSSL_cleanse(buf, len);	/* hashes: not left in free memory */
	free(buf);
	return us;
}

/* The number of users. */
size_t
users_count(const struct users *us)
{
	return us->n;
}

/* Free the users. */
void
users_free(struct users *us)
{
	size_t i;

	if (us == NULL)
		return;
	for (i = 0; i < us->n; i++) {
		free(us->v[i].name);
		if (us->v[i].hash != NULL) {
			OPENSSL_cleanse(us->v[i].hash, strlen(us->v[i].hash));
			free(us->v[i].hash);
		}
	}
	free(us->v);
	free(us);
}

/* Check user's password against its hash. */
enum users_result
users_verify(const struct users *us, const char *user, const char *pw,
    size_t len)
{
	char phrase[USERS_PASSWORD_MAX + 1];
	struct crypt_data *cd;
	const struct user *u;
	enum users_result res;
	const char *out;

	if (len > USERS_PASSWORD_MAX || memchr(pw, '\0', len) != NULL)
		return USERS_REFUSED;
	/* crypt_data is 32 KiB: not for a worker's stack.  Zeroed, as
	 * crypt_rn wants it the first time. */
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return USERS_ERROR;
	memcpy(phrase, pw, len);
	phrase[len] = '\0';
	u = us->n == 0 ? NULL : bsearch(user, us->v, us->n, sizeof(*u),
	    user_cmp_name);
	out = crypt_rn(phrase, u != NULL ? u->hash : DUMMY_SETTING, cd,
	    sizeof(*cd));
	if (out == NULL)
		res = USERS_ERROR;
	else if (u == NULL)
		res = USERS_UNKNOWN;
	else if (strlen(out) == strlen(u->hash) &&
	    CRYPTO_memcmp(out, u->hash, strlen(out)) == 0)
		res = USERS_OK;
	else
		res = USERS_MISMATCH;
	OPENSSL_cleanse(phrase, sizeof(phrase));
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return res;
}

/* A word for the log. */
const char *
users_result_str(enum users_result r)
{
	switch (r) {
	case USERS_OK:
		return "ok";
	case USERS_UNKNOWN:
		return "unknown user";
	case USERS_MISMATCH:
		return "wrong password";
	case USERS_REFUSED:
		return "password too long or with a NUL byte";
	case USERS_ERROR:
		break;
	}
	return "error checking the password";
}

/* Hash pw with yescrypt and a new salt. */
int
users_hash_password(const char *pw, char *out, size_t outlen)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *h;
	int rc = -1;

	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    sizeof(setting)) == NULL)
		return -1;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return -1;
	h = crypt_rn(pw, setting, cd, sizeof(*cd));
	if (h != NULL && h[0] == '$' && strlen(h) < outlen &&
	    hash_problem(h, strlen(h)) == NULL) {
		memcpy(out, h, strlen(h) + 1);
		rc = 0;
	}
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return rc;
}

/* The length of the user name a line starts with, blanks skipped, or 0
 * if it is a comment or holds no ':'. */
static size_t
line_user(const char *s, size_t n, const char **name)
{
	const char *colon;

	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	if (n == 0 || *s == '#' || (colon = memchr(s, ':', n)) == NULL)
		return 0;
	*name = s;
	return (size_t)(colon - s);
}

/* The file with user's line replaced, or added. */
char *
users_file_set(const char *buf, size_t len, const char *user,
    const char *hash, size_t *outlen)
{
	size_t ulen = strlen(user), hlen = strlen(hash), pos = 0, o = 0;
	int done = 0;
	char *out;

	/* The file, an LF it lacks at its end, "user:hash\n" and a NUL. */
	if ((out = malloc(len + 1 + ulen + 1 + hlen + 1 + 1)) == NULL)
		return NULL;
	while (pos < len) {
		const char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - s) + 1 : len - pos;
		const char *name = NULL;
		size_t k = line_user(s, n, &name);

		pos += n;
		if (k == 0 || k != ulen || memcmp(name, user, ulen) != 0) {
			memcpy(out + o, s, n);
			o += n;
			continue;
		}
		if (done)
			continue;	/* a second line for the user: gone */
		o += (size_t)sprintf(out + o, "%s:%s\n", user, hash);
		done = 1;
	}
	if (!done) {
		if (o > 0 && out[o - 1] != '\n')
			out[o++] = '\n';
		o += (size_t)sprintf(out + o, "%s:%s\n", user, hash);
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* HMAC-SHA256 of user, a NUL and pw under the cache's key. */
static int
cache_digest(const struct users_cache *c, const char *user, const char *pw,
    size_t len, unsigned char *md)
{
	unsigned char msg[IDENT_MAX + 1 + USERS_PASSWORD_MAX];
	size_t ulen = strlen(user);
	unsigned int mdlen = 0;
	int ok;

	if (!c->keyed || ulen > IDENT_MAX || len > USERS_PASSWORD_MAX)
		return -1;
	memcpy(msg, user, ulen + 1);
	memcpy(msg + ulen + 1, pw, len);
	ok = HMAC(EVP_sha256(), c->key, sizeof(c->key), msg, ulen + 1 + len,
	    md, &mdlen) != NULL && mdlen == DIGEST_LEN;
	OPENSSL_cleanse(msg, ulen + 1 + len);
	return ok ? 0 : -1;
}

/* The first slot of the set a digest belongs in. */
static struct cache_slot *
cache_set(struct users_cache *c, const unsigned char *md)
{
	uint32_t h = (uint32_t)md[0] | (uint32_t)md[1] << 8 |
	    (uint32_t)md[2] << 16 | (uint32_t)md[3] << 24;

	return &c->slots[h % (USERS_CACHE_SLOTS / USERS_CACHE_WAYS) *
	    USERS_CACHE_WAYS];
}

/* A new cache, shared with the processes forked after. */
struct users_cache *
users_cache_new(void)
{
	struct users_cache *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (c == MAP_FAILED)
		return NULL;
	if (RAND_bytes(c->key, sizeof(c->key)) != 1) {
		munmap(c, sizeof(*c));
		return NULL;
	}
	c->keyed = 1;
	c->epoch = 1;		/* the zeroed slots are of epoch 0: free */
	return c;
}

/* 1 if slot s holds user's digest md of this epoch (read under its
 * sequence number: a write under way is a miss). */
static int
slot_holds(const struct cache_slot *s, uint32_t epoch, const char *user,
    const unsigned char *md)
{
	char u[IDENT_MAX + 1];
	unsigned char d[DIGEST_LEN];
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

	if (seq & 1)
		return 0;
	uint32_t e = __atomic_load_n(&s->epoch, __ATOMIC_RELAXED);
	memcpy(u, s->user, sizeof(u));
	memcpy(d, s->digest, sizeof(d));
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq || e != epoch)
		return 0;
	u[IDENT_MAX] = '\0';
	return strcmp(u, user) == 0 && CRYPTO_memcmp(d, md, DIGEST_LEN) == 0;
}

/* 1 if user with pw passed a check since the last clear. */
int
users_cache_hit(struct users_cache *c, const char *user, const char *pw,
    size_t len)
{
	unsigned char md[DIGEST_LEN];
	struct cache_slot *set;
	uint32_t epoch = __atomic_load_n(&c->epoch, __ATOMIC_ACQUIRE);

	if (cache_digest(c, user, pw, len, md) == -1)
		return 0;
	set = cache_set(c, md);
	for (int i = 0; i < USERS_CACHE_WAYS; i++)
		if (slot_holds(&set[i], epoch, user, md))
			return 1;
	return 0;
}

/* Remember a successful check: in a free way of its set, else in the way
 * its digest picks (pushing out another).  Skipped if another process is
 * writing that slot. */
void
users_cache_add(struct users_cache *c, const char *user, const char *pw,
    size_t len)
{
	unsigned char md[DIGEST_LEN];
	struct cache_slot *set, *s;
	uint32_t epoch = __atomic_load_n(&c->epoch, __ATOMIC_ACQUIRE), seq;

	if (cache_digest(c, user, pw, len, md) == -1)
		return;
	set = cache_set(c, md);
	s = &set[md[4] % USERS_CACHE_WAYS];
	for (int i = 0; i < USERS_CACHE_WAYS; i++)
		if (__atomic_load_n(&set[i].epoch, __ATOMIC_RELAXED) != epoch) {
			s = &set[i];
			break;
		}
	seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	if ((seq & 1) || !__atomic_compare_exchange_n(&s->seq, &seq, seq + 1,
	    0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&s->epoch, epoch, __ATOMIC_RELAXED);
	memset(s->user, 0, sizeof(s->user));
	memcpy(s->user, user, strlen(user));
	memcpy(s->digest, md, DIGEST_LEN);
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Forget every check: a new epoch (every process's clear bumps it, and a
 * slot of another epoch is free). */
void
users_cache_clear(struct users_cache *c)
{
	__atomic_add_fetch(&c->epoch, 1, __ATOMIC_ACQ_REL);
}

/* Free the cache (this process's mapping of it). */
void
users_cache_free(struct users_cache *c)
{
	if (c == NULL)
		return;
	munmap(c, sizeof(*c));
}

/* users_verify through the cache. */
enum users_result
users_check(const struct users *us, struct users_cache *c, const char *user,
    const char *pw, size_t len)
{
	enum users_result r;

	if (users_cache_hit(c, user, pw, len))
		return USERS_OK;
	if ((r = users_verify(us, user, pw, len)) == USERS_OK)
		users_cache_add(c, user, pw, len);
	return r;
}
