/*
 * The users file (auth.users): one "user:hash" line a user, the hash a
 * crypt(3) string, yescrypt ("$y$", what herald passwd writes) or
 * sha512crypt ("$6$", what mkpasswd -m sha-512 writes); '#' comments and
 * blank lines.  Parsing is pure (users_parse, from a buffer); users_load
 * reads the file.  Checking a password costs one slow hash on purpose, so
 * a cache remembers successful checks, keyed by the user and a keyed
 * digest of the password, never the password itself.
 *
 * No function here puts a password or a hash into an error message.
 */
#ifndef HERALD_USERS_H
#define HERALD_USERS_H

#include <stddef.h>

#define USERS_MAX	65536	/* users in a file: beyond that, tokens
				 * scale better than a file every worker
				 * holds */
#define USERS_HASH_MAX	160	/* longest hash: sha512crypt with rounds=
				 * is 123 bytes, yescrypt 73 */
#define USERS_PASSWORD_MAX 256	/* longest password checked: far more than
				 * any passphrase, and it bounds the cost of
				 * sha512crypt, which grows with length */
#define USERS_CACHE_SLOTS 131072 /* successful checks remembered: twice a
				 * full users file, at about 110 bytes
				 * each, in memory shared by the workers
				 * (pages used as slots fill) */
#define USERS_CACHE_WAYS 8	/* slots a check may sit in: a full set
				 * pushes one out, which stays rare (under
				 * 1%) up to 50,000 users; a lookup reads
				 * them all, cheap beside its HMAC */

struct users;
struct users_cache;

/* What a check found: the cause goes to the log, never to the client. */
enum users_result {
	USERS_OK,
	USERS_UNKNOWN,		/* no such user */
	USERS_MISMATCH,		/* wrong password */
	USERS_REFUSED,		/* a password longer than USERS_PASSWORD_MAX
				 * or holding a NUL byte */
	USERS_ERROR		/* crypt(3) failed, out of memory */
};

/*
 * Parse a users file from buf[0..len) (name is its path, for errors).
 * Returns the users, or NULL after writing "NAME:LINE: message" into err.
 */
struct users *users_parse(const char *buf, size_t len, const char *name,
	    char *err, size_t errlen);

/* Read the file at path and parse it; NULL after writing why into err. */
struct users *users_load(const char *path, char *err, size_t errlen);

/* The number of users. */
size_t	users_count(const struct users *);

/* Free the users (NULL is fine). */
void	users_free(struct users *);

/*
 * Check user's password pw[0..len) against its hash, in constant time for
 * the comparison; an unknown user costs a hash too, so timing does not
 * tell which users exist.  Slow on purpose (one crypt(3) hash).
 */
enum users_result users_verify(const struct users *, const char *user,
	    const char *pw, size_t len);

/* A word for the log: "ok", "unknown user", "wrong password", ... */
const char *users_result_str(enum users_result);

/*
 * Hash the password pw (NUL-terminated) with yescrypt and a new random
 * salt into out (at least USERS_HASH_MAX bytes).  Returns 0, or -1 when
 * crypt(3) fails.
 */
int	users_hash_password(const char *pw, char *out, size_t outlen);

/*
 * The users file buf[0..len) with user's line replaced by "user:hash", or
 * added at the end if it has none; other lines kept as they are.  Returns
 * a new NUL-terminated buffer (free it) and its length in *outlen, or NULL
 * when out of memory.
 */
char	*users_file_set(const char *buf, size_t len, const char *user,
	    const char *hash, size_t *outlen);

/* A cache of USERS_CACHE_SLOTS checks with a new random key, in memory
 * shared with the processes forked after (every worker uses the one the
 * master made); NULL when out of memory or out of randomness. */
struct users_cache *users_cache_new(void);

/* 1 if user with password pw[0..len) passed a check since the last
 * users_cache_clear. */
int	users_cache_hit(struct users_cache *, const char *user, const char *pw,
	    size_t len);

/* Remember that user with pw[0..len) passed (may push out another). */
void	users_cache_add(struct users_cache *, const char *user,
	    const char *pw, size_t len);

/* Forget every check (the users file was reloaded), for every process
 * sharing the cache. */
void	users_cache_clear(struct users_cache *);

/* Free the cache (NULL is fine). */
void	users_cache_free(struct users_cache *);

/*
 * users_verify through the cache: a hit costs a digest, a miss one hash,
 * and a success is remembered.
 */
enum users_result users_check(const struct users *, struct users_cache *,
	    const char *user, const char *pw, size_t len);

#endif /* HERALD_USERS_H */
