/* Minting tokens (jwt_sign.h), with OpenSSL 3's EVP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "jwt_sign.h"
#include "textfile.h"

struct jwt_signer {
	const char	*alg;
	unsigned char	*secret;	/* HS256 */
	size_t		 len;
	EVP_PKEY	*pkey;		/* ES256, RS256 */
};

static struct jwt_signer *
signer_error(struct jwt_signer *s, char *err, size_t errlen,
    const char *name, const char *why)
{
	snprintf(err, errlen, "%s: %s", name, why);
	jwt_signer_free(s);
	return NULL;
}

/* A signer from a key file's contents. */
struct jwt_signer *
jwt_signer_new(const char *buf, size_t len, const char *name, char *err,
    size_t errlen)
{
	struct jwt_signer *s = calloc(1, sizeof(*s));
	const char *why = NULL;
	BIO *bio;

	if (s == NULL)
		return signer_error(s, err, errlen, name, "out of memory");
	if (len < 10 || memcmp(buf, "-----BEGIN", 10) != 0) {
		if ((len = jwt_secret_len(buf, len)) < JWT_HS256_MIN)
			return signer_error(s, err, errlen, name, "an HS256 "
			    "secret of fewer than 32 bytes");
		if ((s->secret = malloc(len)) == NULL)
			return signer_error(s, err, errlen, name,
			    "out of memory");
		memcpy(s->secret, buf, len);
		s->len = len;
		s->alg = "HS256";
		return s;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		return signer_error(s, err, errlen, name, "out of memory");
	s->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (s->pkey == NULL)
		return signer_error(s, err, errlen, name,
		    "not a PEM private key (without a passphrase)");
	if ((s->alg = jwt_pkey_alg(s->pkey, &why)) == NULL)
		return signer_error(s, err, errlen, name, why);
	return s;
}

/* A signer from the file at path. */
struct jwt_signer *
jwt_signer_load(const char *path, char *err, size_t errlen)
{
	struct jwt_signer *s;
	size_t len;
	char *buf;

	if ((buf = textfile_read(path, &len, err, errlen)) == NULL)
		return NULL;
	s = jwt_signer_new(buf, len, path, err, errlen);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return s;
}

/* The signer's algorithm. */
const char *
jwt_signer_alg(const struct jwt_signer *s)
{
	return s->alg;
}

/* Free the signer. */
void
jwt_signer_free(struct jwt_signer *s)
{
	if (s == NULL)
		return;
	if (s->secret != NULL) {
		OPENSSL_cleanse(s->secret, s->len);
		free(s->secret);
	}
	EVP_PKEY_free(s->pkey);
	free(s);
}

/* ES256's r || s from a DER ECDSA signature; -1 if it is not one. */
static int
der_to_raw(const unsigned char *der, size_t len, unsigned char *raw)
{
	const BIGNUM *r, *s;
	ECDSA_SIG *es;
	int ok;

	if ((es = d2i_ECDSA_SIG(NULL, &der, (long)len)) == NULL)
		return -1;
	ECDSA_SIG_get0(es, &r, &s);
	ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32,
	    32) == 32;
	ECDSA_SIG_free(es);
	return ok ? 0 : -1;
}

/* The signature of msg[0..len) into sig; its length, or -1. */
static long
sign(const struct jwt_signer *s, const char *msg, size_t len,
    unsigned char *sig)
{
	unsigned char der[JWT_SIG_MAX];
	size_t n = sizeof(der);
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int ok;

	if (s->secret != NULL)
		return HMAC(EVP_sha256(), s->secret, (int)s->len,
		    (const unsigned char *)msg, len, sig, &mdlen) == NULL ?
		    -1 : (long)mdlen;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->pkey) == 1 &&
	    EVP_DigestSign(ctx, der, &n, (const unsigned char *)msg,
	    len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (!ok)
		return -1;
	if (strcmp(s->alg, "ES256") == 0)
		return der_to_raw(der, n, sig) == 0 ? 64 : -1;
	memcpy(sig, der, n);
	return (long)n;
}

/* The compact token for payload under header. */
char *
jwt_sign(const struct jwt_signer *s, const char *header, const char *payload)
{
	char dflt[64], *tok;
	unsigned char sig[JWT_SIG_MAX];
	size_t hl, pl, n;
	long sl;

	if (header == NULL) {
		snprintf(dflt, sizeof(dflt), "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
		    s->alg);
		header = dflt;
	}
	hl = strlen(header);
	pl = strlen(payload);
	tok = malloc(B64URL_ENC_LEN(hl) + B64URL_ENC_LEN(pl) +
	    B64URL_ENC_LEN(JWT_SIG_MAX) + 3);
	if (tok == NULL)
		return NULL;
	n = b64url_encode((const unsigned char *)header, hl, tok);
	tok[n++] = '.';
	n += b64url_encode((const unsigned char *)payload, pl, tok + n);
	if ((sl = sign(s, tok, n, sig)) < 0) {
		free(tok);
		return NULL;
	}
	tok[n++] = '.';
	b64url_encode(sig, (size_t)sl, tok + n);
	return tok;
}
