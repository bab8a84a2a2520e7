/*
 * What a client reads of its own token: the "exp" claim of a JWT's
 * payload (base64url, then a JSON object), to know when to ask for a new
 * one.  The signature is the server's business and is not checked.  Pure
 * code: no I/O, so it can be unit-tested alone.
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "b64url.h"
#include "lh.h"

/*
 * Read the "exp" claim (seconds since the epoch) of token[0..len), a
 * compact JWT "header.payload.signature".  Returns 1 with the claim in
 * *exp (a fraction rounded down: renewal comes no later), 0 if the
 * payload is a JSON object without "exp", or -1 if the token is not
 * three parts, its payload is not strict base64url of a JSON object (no
 * duplicate keys), is longer than LH_TOKEN_JSON_MAX, or "exp" is not a
 * number from 0 to 2^53.
 */
int
lh_token_exp(const char *token, size_t len, int64_t *exp)
{
	unsigned char buf[LH_TOKEN_JSON_MAX];
	const char *p1, *p2;
	json_t *root, *e;
	json_error_t jerr;
	long n;
	int rc = -1;

	if ((p1 = memchr(token, '.', len)) == NULL)
		return -1;
	p1++;
	if ((p2 = memchr(p1, '.', len - (p1 - token))) == NULL ||
	    memchr(p2 + 1, '.', len - (p2 + 1 - token)) != NULL)
		return -1;
	if (B64URL_DEC_LEN((size_t)(p2 - p1)) > sizeof(buf) ||
	    (n = b64url_decode(p1, p2 - p1, buf)) <= 0)
		return -1;
	root = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return -1;
	if (!json_is_object(root))
		goto out;
	if ((e = json_object_get(root, "exp")) == NULL) {
		rc = 0;
		goto out;
	}
	if (json_is_integer(e) && json_integer_value(e) >= 0 &&
	    json_integer_value(e) <= (1LL << 53)) {
		*exp = json_integer_value(e);
		rc = 1;
	} else if (json_is_real(e) && json_real_value(e) >= 0 &&
	    json_real_value(e) <= (double)(1LL << 53)) {
		*exp = (int64_t)json_real_value(e);
		rc = 1;
	}
out:
	json_decref(root);
	return rc;
}
