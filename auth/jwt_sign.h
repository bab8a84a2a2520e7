/*
 * Minting tokens, for herald token (herald(1)) and the tests: HS256 with
 * a secret, ES256 with an EC P-256 private key, RS256 with an RSA one.
 */
#ifndef HERALD_JWT_SIGN_H
#define HERALD_JWT_SIGN_H

#include <stddef.h>

#define JWT_SIG_MAX	1024	/* longest signature made: RSA of 8192
				 * bits */

struct jwt_signer;

/*
 * A signer from a key file's contents buf[0..len) (name is its path, for
 * errors): a PEM private key if it starts "-----BEGIN", else an HS256
 * secret (one trailing newline dropped, JWT_HS256_MIN bytes at least).
 * NULL after writing "NAME: why" into err.
 */
struct jwt_signer *jwt_signer_new(const char *buf, size_t len,
	    const char *name, char *err, size_t errlen);

/* The same from the file at path. */
struct jwt_signer *jwt_signer_load(const char *path, char *err,
	    size_t errlen);

/* "HS256", "ES256" or "RS256". */
const char *jwt_signer_alg(const struct jwt_signer *);

/* Free the signer (NULL is fine). */
void	jwt_signer_free(struct jwt_signer *);

/*
 * The compact token for the JSON text payload, under the JSON text header
 * (NULL: {"alg":ALG,"typ":"JWT"}).  The texts are encoded as given, so a
 * test can make any token.  Returns a new string (free it), NULL on
 * failure.
 */
char	*jwt_sign(const struct jwt_signer *, const char *header,
	    const char *payload);

#endif /* HERALD_JWT_SIGN_H */
