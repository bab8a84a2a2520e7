/*
 * Token checks (jwt.h).  Base64url is b64url.c's, JSON jansson's (with
 * duplicate keys refused), signatures OpenSSL 3's EVP: no cryptography of
 * our own.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "b64url.h"
#include "jwt.h"
#include "textfile.h"
#include "topic.h"

#define ES256_SIG_LEN	64	/* r || s, 32 bytes each (RFC 7518 3.4) */
#define HS256_SIG_LEN	32

enum key_type { KEY_HS256, KEY_ES256, KEY_RS256 };

/* The algorithms herald takes, each with the one type of key it needs. */
static const struct {
	const char	*alg;
	enum key_type	 type;
} algs[] = {
	{ "HS256", KEY_HS256 },
	{ "ES256", KEY_ES256 },
	{ "RS256", KEY_RS256 },
};

struct jwt_key {
	enum key_type	 type;
	unsigned char	*secret;	/* HS256 */
	size_t		 len;
	EVP_PKEY	*pkey;		/* ES256, RS256 */
};

struct jwt_keys {
	struct jwt_key	 v[JWT_KEYS_MAX];
	size_t		 n;
};

static int
key_error(char *err, size_t errlen, const char *name, const char *why)
{
	snprintf(err, errlen, "%s: %s", name, why);
	return -1;
}

/* An empty key set. */
struct jwt_keys *
jwt_keys_new(void)
{
	return calloc(1, sizeof(struct jwt_keys));
}

/* The type of key a public or private key is, or -1 with why. */
static int
pkey_type(const EVP_PKEY *pkey, const char **why)
{
	char group[64];
	size_t n;

	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_group_name(pkey, group, sizeof(group),
		    &n) == 1 && strcmp(group, "prime256v1") == 0)
			return KEY_ES256;
		*why = "an EC key not on P-256 (ES256 needs P-256)";
		return -1;
	}
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if (EVP_PKEY_get_bits(pkey) >= JWT_RSA_BITS_MIN)
			return KEY_RS256;
		*why = "an RSA key of fewer than 2048 bits";
		return -1;
	}
	*why = "neither an EC P-256 nor an RSA key";
	return -1;
}

/* The algorithm a key is fit for. */
const char *
jwt_pkey_alg(const EVP_PKEY *pkey, const char **why)
{
	int type = pkey_type(pkey, why);
	size_t i;

	for (i = 0; type != -1 && i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].type == (enum key_type)type)
			return algs[i].alg;
	return NULL;
}

/* The length of the secret in a key file's contents. */
size_t
jwt_secret_len(const char *buf, size_t len)
{
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	return len;
}

/* Add a PEM public key. */
static int
add_pem(struct jwt_key *k, const char *buf, size_t len, const char *name,
    char *err, size_t errlen)
{
	const char *why = NULL;
	EVP_PKEY *pkey;
	BIO *bio;
	int type;

	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		return key_error(err, errlen, name, "out of memory");
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL)
		return key_error(err, errlen, name,
		    memmem(buf, len, "PRIVATE KEY", 11) != NULL ?
		    "a private key: give its public key (openssl pkey "
		    "-pubout)" : "not a PEM public key");
	if ((type = pkey_type(pkey, &why)) == -1) {
		EVP_PKEY_free(pkey);
		return key_error(err, errlen, name, why);
	}
	k->type = (enum key_type)type;
	k->pkey = pkey;
	return 0;
}

/* Add the key in buf[0..len). */
int
jwt_keys_add(struct jwt_keys *ks, const char *buf, size_t len,
    const char *name, char *err, size_t errlen)
{
	struct jwt_key *k;

	if (ks->n == JWT_KEYS_MAX)
		return key_error(err, errlen, name, "too many keys (16 at "
		    "most)");
	k = &ks->v[ks->n];
	if (len > JWT_KEY_FILE_MAX)
		return key_error(err, errlen, name, "larger than a key");
	memset(k, 0, sizeof(*k));
	if (len >= 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		if (add_pem(k, buf, len, name, err, errlen) == -1)
			return -1;
	} else {
		if ((len = jwt_secret_len(buf, len)) < JWT_HS256_MIN)
			return key_error(err, errlen, name, "an HS256 secret "
			    "of fewer than 32 bytes");
		if ((k->secret = malloc(len)) == NULL)
			return key_error(err, errlen, name, "out of memory");
		memcpy(k->secret, buf, len);
		k->len = len;
		k->type = KEY_HS256;
	}
	ks->n++;
	return 0;
}

/* Read the file at path and add its key. */
int
jwt_keys_add_file(struct jwt_keys *ks, const char *path, char *err,
    size_t errlen)
{
	size_t len;
	char *buf;
	int rc;

	if ((buf = textfile_read(path, &len, err, errlen)) == NULL)
		return -1;
	rc = jwt_keys_add(ks, buf, len, path, err, errlen);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

/* The number of keys. */
size_t
jwt_keys_count(const struct jwt_keys *ks)
{
	return ks->n;
}

/* Free the keys. */
void
jwt_keys_free(struct jwt_keys *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++) {
		if (ks->v[i].secret != NULL) {
			OPENSSL_cleanse(ks->v[i].secret, ks->v[i].len);
			free(ks->v[i].secret);
		}
		EVP_PKEY_free(ks->v[i].pkey);
	}
	free(ks);
}

/* 1 if sig is pkey's signature of msg with SHA-256 (EVP, DER for EC). */
static int
digest_verify(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen,
    const char *msg, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;

	if (ctx != NULL &&
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen,
		    (const unsigned char *)msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* 1 if sig (JWS: r || s) is an ES256 signature of msg by pkey. */
static int
verify_es256(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen,
    const char *msg, size_t len)
{
	unsigned char *der = NULL;
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	int n, ok = 0;

	if (siglen != ES256_SIG_LEN || (es = ECDSA_SIG_new()) == NULL)
		return 0;
	r = BN_bin2bn(sig, ES256_SIG_LEN / 2, NULL);
	s = BN_bin2bn(sig + ES256_SIG_LEN / 2, ES256_SIG_LEN / 2, NULL);
	if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
	} else if ((n = i2d_ECDSA_SIG(es, &der)) > 0) {
		ok = digest_verify(pkey, der, (size_t)n, msg, len);
	}
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

/* 1 if sig is the HS256 MAC of msg under the secret. */
static int
verify_hs256(const struct jwt_key *k, const unsigned char *sig,
    size_t siglen, const char *msg, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (HMAC(EVP_sha256(), k->secret, (int)k->len,
	    (const unsigned char *)msg, len, md, &mdlen) == NULL ||
	    mdlen != HS256_SIG_LEN)
		return 0;
	return siglen == HS256_SIG_LEN &&
	    CRYPTO_memcmp(md, sig, HS256_SIG_LEN) == 0;
}

/*
 * Check sig over msg with every key of the type: JWT_OK, JWT_NO_KEY or
 * JWT_BAD_SIGNATURE.
 */
static enum jwt_result
verify(const struct jwt_keys *ks, enum key_type type,
    const unsigned char *sig, size_t siglen, const char *msg, size_t len)
{
	size_t i;
	int tried = 0, ok = 0;

	for (i = 0; i < ks->n && !ok; i++) {
		const struct jwt_key *k = &ks->v[i];

		if (k->type != type)
			continue;
		tried = 1;
		if (type == KEY_HS256)
			ok = verify_hs256(k, sig, siglen, msg, len);
		else if (type == KEY_ES256)
			ok = verify_es256(k->pkey, sig, siglen, msg, len);
		else
			ok = digest_verify(k->pkey, sig, siglen, msg, len);
	}
	return ok ? JWT_OK : tried ? JWT_BAD_SIGNATURE : JWT_NO_KEY;
}

/* Decode a base64url part holding a JSON object; NULL if it does not. */
static json_t *
decode_object(const char *s, size_t len)
{
	unsigned char buf[JWT_JSON_MAX];
	json_error_t e;
	json_t *j;
	long n;

	if (B64URL_DEC_LEN(len) > sizeof(buf) ||
	    (n = b64url_decode(s, len, buf)) <= 0)
		return NULL;
	j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES,
	    &e);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* The header's alg, as a key type; JWT_BAD_ALG for any other. */
static enum jwt_result
header_type(const json_t *hdr, enum key_type *type)
{
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	size_t i;

	/* Extensions that must be understood: herald knows none. */
	if (alg == NULL || json_object_get(hdr, "crit") != NULL)
		return JWT_BAD_ALG;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		if (strcmp(alg, algs[i].alg) == 0) {
			*type = algs[i].type;
			return JWT_OK;
		}
	}
	return JWT_BAD_ALG;
}

/* A NumericDate claim, rounded up to a second; -1 if not a number. */
static int
claim_time(const json_t *j, int64_t *t)
{
	double d;

	if (json_is_integer(j)) {
		*t = json_integer_value(j);
		return 0;
	}
	if (!json_is_real(j))
		return -1;
	d = json_real_value(j);
	if (!(d > -9.2e18 && d < 9.2e18))
		return -1;
	*t = (int64_t)d;
	if ((double)*t < d)
		(*t)++;
	return 0;
}

/* 1 if aud (a string or an array of strings) holds the audience. */
static int
aud_holds(const json_t *aud, const char *audience)
{
	const json_t *v;
	size_t i;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), audience) == 0;
	json_array_foreach(aud, i, v)
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), audience) == 0)
			return 1;
	return 0;
}

/* Fill pl with the patterns of the array a; -1 if one is not valid. */
static int
claim_patterns(const json_t *a, struct perm_list *pl)
{
	const json_t *v;
	size_t i;

	if (!json_is_array(a))
		return -1;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) ||
		    !pattern_valid(json_string_value(v), json_string_length(v)) ||
		    perm_add(pl, json_string_value(v),
		    json_string_length(v)) == -1)
			return -1;
	}
	return 0;
}

/* The "herald" claim: {"read": [...], "publish": [...]}, both optional. */
static enum jwt_result
claim_herald(const json_t *h, struct jwt_claims *out)
{
	const char *key;
	const json_t *v;

	if (!json_is_object(h))
		return JWT_BAD_CLAIMS;
	json_object_foreach((json_t *)h, key, v) {
		if (strcmp(key, "read") == 0) {
			if (claim_patterns(v, &out->read) == -1)
				return JWT_BAD_CLAIMS;
		} else if (strcmp(key, "publish") == 0) {
			if (claim_patterns(v, &out->publish) == -1)
				return JWT_BAD_CLAIMS;
		} else {
			return JWT_BAD_CLAIMS;	/* a typo grants nothing */
		}
	}
	out->has_perms = 1;
	return JWT_OK;
}

/* The claims of a token whose signature is good. */
static enum jwt_result
claims(const json_t *c, const struct jwt_opts *o, int64_t now,
    struct jwt_claims *out)
{
	const json_t *sub = json_object_get(c, "sub");
	const json_t *exp = json_object_get(c, "exp");
	const json_t *nbf = json_object_get(c, "nbf");
	const json_t *aud = json_object_get(c, "aud");
	const json_t *h = json_object_get(c, "herald");
	int64_t t;

	if (!json_is_string(sub) || !ident_valid(json_string_value(sub),
	    json_string_length(sub)))
		return JWT_BAD_SUB;
	memcpy(out->sub, json_string_value(sub), json_string_length(sub) + 1);
	if (exp == NULL && o->require_exp)
		return JWT_NO_EXP;
	if (exp != NULL) {
		if (claim_time(exp, &t) == -1)
			return JWT_BAD_CLAIMS;
		if (now >= t)
			return JWT_EXPIRED;
		out->exp = t;
	}
	if (nbf != NULL) {
		if (claim_time(nbf, &t) == -1)
			return JWT_BAD_CLAIMS;
		if (now < t)
			return JWT_NOT_YET;
	}
	if (o->audience != NULL && (aud == NULL || !aud_holds(aud,
	    o->audience)))
		return JWT_BAD_AUD;
	return h != NULL ? claim_herald(h, out) : JWT_OK;
}

/* Check a token. */
enum jwt_result
jwt_check(const struct jwt_keys *ks, const struct jwt_opts *o,
    const char *tok, size_t len, int64_t now, struct jwt_claims *out)
{
	unsigned char sig[JWT_JSON_MAX];
	const char *d1, *d2;
	enum jwt_result r;
	enum key_type type;
	json_t *hdr, *pay;
	long siglen;

	memset(out, 0, sizeof(*out));
	if (len > JWT_TOKEN_MAX || (d1 = memchr(tok, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) == NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
		return JWT_MALFORMED;
	if ((hdr = decode_object(tok, (size_t)(d1 - tok))) == NULL)
		return JWT_MALFORMED;
	r = header_type(hdr, &type);
	json_decref(hdr);
	if (r != JWT_OK)
		return r;
	siglen = b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), sig);
	if (siglen <= 0)
		return JWT_MALFORMED;
	/* The signature covers the header and payload as sent. */
	r = verify(ks, type, sig, (size_t)siglen, tok, (size_t)(d2 - tok));
	if (r != JWT_OK)
		return r;
	if ((pay = decode_object(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL)
		return JWT_MALFORMED;
	r = claims(pay, o, now, out);
	json_decref(pay);
	if (r != JWT_OK)
		jwt_claims_free(out);
	return r;
}

/* Free the lists of claims, and forget the rest. */
void
jwt_claims_free(struct jwt_claims *c)
{
	perm_free(&c->read);
	perm_free(&c->publish);
	memset(c, 0, sizeof(*c));
}

/* A few words for the log. */
const char *
jwt_result_str(enum jwt_result r)
{
	switch (r) {
	case JWT_OK:
		return "ok";
	case JWT_MALFORMED:
		return "malformed token";
	case JWT_BAD_ALG:
		return "algorithm not accepted";
	case JWT_NO_KEY:
		return "no key for the token's algorithm";
	case JWT_BAD_SIGNATURE:
		return "bad signature";
	case JWT_EXPIRED:
		return "expired";
	case JWT_NO_EXP:
		return "no expiry";
	case JWT_NOT_YET:
		return "not valid yet (nbf)";
	case JWT_BAD_AUD:
		return "wrong audience";
	case JWT_BAD_SUB:
		return "no valid sub";
	case JWT_BAD_CLAIMS:
		return "bad claims";
	case JWT_ERROR:
		break;
	}
	return "error checking the token";
}
