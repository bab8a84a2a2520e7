/*
 * Token checks: a JWT (RFC 7519) in JWS compact form, "AUTH <token>".
 * The keys come from files (auth.jwt_keys): an HS256 secret (the file's
 * bytes, one trailing newline dropped), or a PEM public key, EC P-256
 * (ES256) or RSA (RS256).  A token's "alg" must name the type of a key it
 * is checked with; the algorithm is never taken from the token ("none",
 * or HS256 against a public key, find no key).  Only after its signature
 * is good are its claims read: "sub" (the user), "exp", "nbf", "aud", and
 * "herald": {"read": [...], "publish": [...]}, the connection's
 * permissions in place of the ACL's.
 *
 * No function here puts a key, a token or its signature into an error.
 */
#ifndef HERALD_JWT_H
#define HERALD_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "ident.h"
#include "perm.h"

#define JWT_TOKEN_MAX	4096	/* longest token: a client line is 4096
				 * bytes by default, the token is a word
				 * of it */
#define JWT_JSON_MAX	(JWT_TOKEN_MAX * 3 / 4)	/* a decoded part */
#define JWT_KEYS_MAX	16	/* keys at once: the current ones and
				 * those being rotated out */
#define JWT_KEY_FILE_MAX 16384	/* a key file: an RSA public key of 8192
				 * bits is 1.5 KB of PEM */
#define JWT_HS256_MIN	32	/* shortest HS256 secret: RFC 7518 asks
				 * for a key as long as the hash */
#define JWT_RSA_BITS_MIN 2048	/* smallest RSA key taken */

struct jwt_keys;

/* What a check found: the cause goes to the log, never to the client. */
enum jwt_result {
	JWT_OK,
	JWT_MALFORMED,		/* not three base64url parts of JSON objects,
				 * too long, duplicate keys */
	JWT_BAD_ALG,		/* an alg herald does not take ("none",
				 * "HS512", ...), or "crit" */
	JWT_NO_KEY,		/* no key of the alg's type */
	JWT_BAD_SIGNATURE,	/* no key of that type verifies it */
	JWT_EXPIRED,		/* now >= exp */
	JWT_NO_EXP,		/* no exp, and one is required */
	JWT_NOT_YET,		/* now < nbf */
	JWT_BAD_AUD,		/* the audience is not among aud */
	JWT_BAD_SUB,		/* no sub, or not a user name (ident.h) */
	JWT_BAD_CLAIMS,		/* a claim of the wrong type, a bad pattern
				 * in "herald" */
	JWT_ERROR		/* out of memory */
};

/* How tokens are checked (auth.jwt_require_exp, auth.jwt_audience). */
struct jwt_opts {
	int		 require_exp;	/* no exp: JWT_NO_EXP */
	const char	*audience;	/* NULL: aud is not checked */
};

/* What a good token says. */
struct jwt_claims {
	char		 sub[IDENT_MAX + 1];
	int64_t		 exp;		/* seconds since the epoch; 0: none */
	int		 has_perms;	/* a "herald" claim: read and publish
					 * replace the ACL's */
	struct perm_list read;
	struct perm_list publish;
};

/* An empty key set; NULL when out of memory. */
struct jwt_keys *jwt_keys_new(void);

/*
 * Add the key in buf[0..len) (a file's contents; name is its path, for
 * errors): a PEM public key if it starts "-----BEGIN", else an HS256
 * secret.  Returns 0, or -1 after writing "NAME: why" into err (a private
 * key, an EC key on another curve, RSA under JWT_RSA_BITS_MIN bits, a
 * secret under JWT_HS256_MIN bytes, JWT_KEYS_MAX keys already).
 */
int	jwt_keys_add(struct jwt_keys *, const char *buf, size_t len,
	    const char *name, char *err, size_t errlen);

/* Read the file at path and add its key; -1 after writing why. */
int	jwt_keys_add_file(struct jwt_keys *, const char *path, char *err,
	    size_t errlen);

/* The number of keys. */
size_t	jwt_keys_count(const struct jwt_keys *);

/* Free the keys (NULL is fine). */
void	jwt_keys_free(struct jwt_keys *);

/*
 * Check token[0..len) at time now (seconds since the epoch) with keys and
 * opts.  JWT_OK fills *out (free its lists with jwt_claims_free); any
 * other result leaves *out empty.
 */
enum jwt_result jwt_check(const struct jwt_keys *, const struct jwt_opts *,
	    const char *token, size_t len, int64_t now, struct jwt_claims *out);

/* Free the permission lists of claims. */
void	jwt_claims_free(struct jwt_claims *);

/* The length of the HS256 secret in a key file's contents buf[0..len):
 * one trailing newline (LF or CRLF) dropped. */
size_t	jwt_secret_len(const char *buf, size_t len);

/*
 * The algorithm an OpenSSL key is fit for, "ES256" (EC P-256) or "RS256"
 * (RSA of JWT_RSA_BITS_MIN bits or more); NULL, with why, for any other.
 */
struct evp_pkey_st;
const char *jwt_pkey_alg(const struct evp_pkey_st *, const char **why);

/* A few words for the log: "ok", "expired", "bad signature", ... */
const char *jwt_result_str(enum jwt_result);

#endif /* HERALD_JWT_H */
