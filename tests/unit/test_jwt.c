/*
 * Unit tests of tokens (auth/jwt.c, auth/jwt_sign.c, auth/b64url.c):
 * base64url by RFC 4648's vectors and its strictness; the signatures of
 * RFC 7515's examples; good HS256, ES256 and RS256 tokens made with keys
 * made here by OpenSSL; every refusal ("none", HS256 against a public
 * key, bad signatures, expiry, nbf, aud, sub, malformed parts, bad
 * "herald" claims); key rotation; key files refused.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "b64url.h"
#include "jwt.h"
#include "jwt_sign.h"
#include "textfile.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define NOW		1700000000
#define SECRET		"0123456789abcdef0123456789abcdef"	/* 32 bytes */
#define SECRET2		"another secret, long enough for HS256"

/* --- base64url ------------------------------------------------------- */

static const struct {
	const char	*plain;
	const char	*enc;
} b64[] = {
	{ "", "" },
	{ "f", "Zg" },
	{ "fo", "Zm8" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg" },
	{ "fooba", "Zm9vYmE" },
	{ "foobar", "Zm9vYmFy" },
	{ "\xfb\xff\xbf", "-_-_" },
};

START_TEST(b64_vectors)
{
	char enc[64];
	unsigned char dec[64];
	size_t n = strlen(b64[_i].plain);

	ck_assert_uint_eq(b64url_encode((const unsigned char *)b64[_i].plain,
	    n, enc), strlen(b64[_i].enc));
	ck_assert_str_eq(enc, b64[_i].enc);
	ck_assert_uint_eq(B64URL_ENC_LEN(n), strlen(b64[_i].enc));
	ck_assert_int_eq(b64url_decode(b64[_i].enc, strlen(b64[_i].enc),
	    dec), (long)n);
	ck_assert(memcmp(dec, b64[_i].plain, n) == 0);
}
END_TEST

static const char *b64_bad[] = {
	"Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm9vYmF", "+/+/", "Zm9v!",
	"Zm 9", "Zm9v\n", "Zm9v.", "\xc3\xa9Zm",
};

START_TEST(b64_strict)
{
	unsigned char dec[64];

	ck_assert_msg(b64url_decode(b64_bad[_i], strlen(b64_bad[_i]), dec) ==
	    -1, "accepted \"%s\"", b64_bad[_i]);
}
END_TEST

/* --- keys made here ---------------------------------------------------- */

/* PEM of a key, private or public, as a new string. */
static char *
pem(EVP_PKEY *k, int private)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	ck_assert_ptr_nonnull(bio);
	ck_assert_int_eq(private ? PEM_write_bio_PrivateKey(bio, k, NULL,
	    NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(bio, k), 1);
	n = BIO_get_mem_data(bio, &data);
	ck_assert_ptr_nonnull(s = textfile_dup(data, (size_t)n));
	BIO_free(bio);
	return s;
}

struct kp {
	char	*priv;
	char	*pub;
};

static struct kp
make_key(const char *type)
{
	EVP_PKEY *k = strcmp(type, "EC") == 0 ? EVP_EC_gen("P-256") :
	    strcmp(type, "P-384") == 0 ? EVP_EC_gen("P-384") :
	    strcmp(type, "RSA1024") == 0 ? EVP_RSA_gen(1024) :
	    EVP_RSA_gen(2048);
	struct kp kp;

	ck_assert_ptr_nonnull(k);
	kp.priv = pem(k, 1);
	kp.pub = pem(k, 0);
	EVP_PKEY_free(k);
	return kp;
}

static void
kp_free(struct kp *kp)
{
	free(kp->priv);
	free(kp->pub);
}

static struct jwt_signer *
signer(const char *key)
{
	char err[256];
	struct jwt_signer *s = jwt_signer_new(key, strlen(key), "key", err,
	    sizeof(err));

	ck_assert_msg(s != NULL, "%s", err);
	return s;
}

/* A key set of the keys given, NULL-terminated. */
static struct jwt_keys *
keys(const char *key, ...)
{
	struct jwt_keys *ks = jwt_keys_new();
	char err[256];
	va_list ap;

	ck_assert_ptr_nonnull(ks);
	va_start(ap, key);
	for (; key != NULL; key = va_arg(ap, const char *))
		ck_assert_msg(jwt_keys_add(ks, key, strlen(key), "key", err,
		    sizeof(err)) == 0, "%s", err);
	va_end(ap);
	return ks;
}

/* Sign payload with key, under header (NULL: the default). */
static char *
mint(const char *key, const char *header, const char *payload)
{
	struct jwt_signer *s = signer(key);
	char *tok = jwt_sign(s, header, payload);

	ck_assert_ptr_nonnull(tok);
	jwt_signer_free(s);
	return tok;
}

static const struct jwt_opts opts_exp = { 1, NULL };

/* Check tok with ks and o at NOW; the claims are freed. */
static enum jwt_result
check(const struct jwt_keys *ks, const struct jwt_opts *o, const char *tok)
{
	struct jwt_claims c;
	enum jwt_result r = jwt_check(ks, o, tok, strlen(tok), NOW, &c);

	if (r != JWT_OK) {
		/* A refusal leaves nothing behind. */
		ck_assert_str_eq(c.sub, "");
		ck_assert_uint_eq(c.read.n + c.publish.n, 0);
	}
	jwt_claims_free(&c);
	return r;
}

/* Mint payload with key and check it with ks. */
static enum jwt_result
mint_check(const char *key, const struct jwt_keys *ks,
    const struct jwt_opts *o, const char *payload)
{
	char *tok = mint(key, NULL, payload);
	enum jwt_result r = check(ks, o, tok);

	free(tok);
	return r;
}

#define GOOD	"{\"sub\":\"alice\",\"exp\":1700000100}"

/* --- good tokens ------------------------------------------------------- */

START_TEST(good_hs256)
{
	struct jwt_keys *ks = keys(SECRET "\n", NULL);
	char *tok = mint(SECRET, NULL, GOOD);
	struct jwt_claims c;

	ck_assert_int_eq(jwt_check(ks, &opts_exp, tok, strlen(tok), NOW, &c),
	    JWT_OK);
	ck_assert_str_eq(c.sub, "alice");
	ck_assert_int_eq(c.exp, 1700000100);
	ck_assert_int_eq(c.has_perms, 0);
	jwt_claims_free(&c);
	free(tok);
	jwt_keys_free(ks);
}
END_TEST

START_TEST(good_es256_rs256)
{
	struct kp ec = make_key("EC"), rsa = make_key("RSA");
	struct jwt_keys *ks = keys(ec.pub, rsa.pub, NULL);
	struct jwt_signer *s = signer(ec.priv);

	ck_assert_str_eq(jwt_signer_alg(s), "ES256");
	jwt_signer_free(s);
	s = signer(rsa.priv);
	ck_assert_str_eq(jwt_signer_alg(s), "RS256");
	jwt_signer_free(s);
	ck_assert_int_eq(mint_check(ec.priv, ks, &opts_exp, GOOD), JWT_OK);
	ck_assert_int_eq(mint_check(rsa.priv, ks, &opts_exp, GOOD), JWT_OK);
	jwt_keys_free(ks);
	kp_free(&ec);
	kp_free(&rsa);
}
END_TEST

/*
 * RFC 7515 A.1 (HS256) and A.3 (ES256): tokens signed elsewhere.  Their
 * signatures are good; they have no sub, so that is what stops them.
 */
#define RFC_PAYLOAD "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0" \
	"dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define RFC_A1 "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." RFC_PAYLOAD \
	".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define RFC_A1_KEY "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH7" \
	"5aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
#define RFC_A3 "eyJhbGciOiJFUzI1NiJ9." RFC_PAYLOAD ".DtEhU3ljbEg8L38VWAf" \
	"UAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
#define RFC_A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define RFC_A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define RFC_NOW	1300819000	/* before the examples' exp */

/* The public key of A.3 as PEM, from its x and y. */
static char *
rfc_a3_pem(void)
{
	unsigned char pt[65];
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	char *s;

	pt[0] = 4;	/* uncompressed */
	ck_assert_int_eq(b64url_decode(RFC_A3_X, strlen(RFC_A3_X), pt + 1),
	    32);
	ck_assert_int_eq(b64url_decode(RFC_A3_Y, strlen(RFC_A3_Y), pt + 33),
	    32);
	ck_assert(OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME,
	    "prime256v1", 0));
	ck_assert(OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY,
	    pt, sizeof(pt)));
	ck_assert_ptr_nonnull(params = OSSL_PARAM_BLD_to_param(b));
	ck_assert_int_eq(EVP_PKEY_fromdata_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY,
	    params), 1);
	s = pem(k, 0);
	EVP_PKEY_free(k);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	EVP_PKEY_CTX_free(ctx);
	return s;
}

START_TEST(rfc7515)
{
	unsigned char key[64];
	struct jwt_keys *ks = jwt_keys_new();
	struct jwt_claims c;
	char err[256], *a3pem = rfc_a3_pem(), tok[512];
	const struct jwt_opts o = { 0, NULL };

	ck_assert_int_eq(b64url_decode(RFC_A1_KEY, strlen(RFC_A1_KEY), key),
	    64);
	ck_assert(key[63] != '\n');	/* taken whole */
	ck_assert_int_eq(jwt_keys_add(ks, (char *)key, 64, "a1", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(jwt_keys_add(ks, a3pem, strlen(a3pem), "a3", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(jwt_check(ks, &o, RFC_A1, strlen(RFC_A1), RFC_NOW,
	    &c), JWT_BAD_SUB);
	ck_assert_int_eq(jwt_check(ks, &o, RFC_A3, strlen(RFC_A3), RFC_NOW,
	    &c), JWT_BAD_SUB);
	/* A bit of the signature changed: bad. */
	strcpy(tok, RFC_A1);
	tok[strlen(tok) - 1] = 'g';	/* "k" was 100100: 100000 */
	ck_assert_int_eq(jwt_check(ks, &o, tok, strlen(tok), RFC_NOW, &c),
	    JWT_BAD_SIGNATURE);
	strcpy(tok, RFC_A3);
	tok[strlen(tok) - 2] = '2';
	ck_assert_int_eq(jwt_check(ks, &o, tok, strlen(tok), RFC_NOW, &c),
	    JWT_BAD_SIGNATURE);
	jwt_keys_free(ks);
	free(a3pem);
}
END_TEST

/* --- the algorithm ------------------------------------------------------ */

/* "none" in every spelling, algorithms herald does not take, and
 * "crit": refused before any key is tried. */
static const char *bad_headers[] = {
	"{\"alg\":\"none\"}",
	"{\"alg\":\"None\"}",
	"{\"alg\":\"NONE\"}",
	"{\"alg\":\"\"}",
	"{\"alg\":null}",
	"{\"alg\":256}",
	"{\"typ\":\"JWT\"}",
	"{\"alg\":\"HS384\"}",
	"{\"alg\":\"HS512\"}",
	"{\"alg\":\"PS256\"}",
	"{\"alg\":\"ES256K\"}",
	"{\"alg\":\"hs256\"}",
	"{\"alg\":\"HS256 \"}",
	"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
};

START_TEST(alg_refused)
{
	struct jwt_keys *ks = keys(SECRET, NULL);
	char *tok = mint(SECRET, bad_headers[_i], GOOD);
	char unsigned_tok[512];

	ck_assert_int_eq(check(ks, &opts_exp, tok), JWT_BAD_ALG);
	/* An unsecured JWT: an empty signature. */
	*strrchr(tok, '.') = '\0';
	snprintf(unsigned_tok, sizeof(unsigned_tok), "%s.", tok);
	ck_assert_int_eq(check(ks, &opts_exp, unsigned_tok), JWT_BAD_ALG);
	free(tok);
	jwt_keys_free(ks);
}
END_TEST

/* An HS256 token under any secret, made here with OpenSSL's HMAC. */
static char *
hs256_token(const char *secret, const char *payload)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char md[32];
	unsigned int mdlen;
	char *tok = malloc(B64URL_ENC_LEN(strlen(payload)) + 128);
	size_t n;

	ck_assert_ptr_nonnull(tok);
	n = b64url_encode((const unsigned char *)hdr, strlen(hdr), tok);
	tok[n++] = '.';
	n += b64url_encode((const unsigned char *)payload, strlen(payload),
	    tok + n);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (unsigned char *)tok, n, md, &mdlen));
	tok[n++] = '.';
	b64url_encode(md, mdlen, tok + n);
	return tok;
}

/* Check a token and free it. */
static enum jwt_result
check_free(const struct jwt_keys *ks, char *tok)
{
	enum jwt_result r = check(ks, &opts_exp, tok);

	free(tok);
	return r;
}

/*
 * The classic confusion: an HS256 token "signed" with a public key's PEM
 * as the secret.  A public key is never an HS256 secret.
 */
START_TEST(hs256_with_public_key)
{
	struct kp ec = make_key("EC"), rsa = make_key("RSA");
	struct jwt_keys *ks = keys(ec.pub, rsa.pub, NULL);
	struct jwt_keys *mixed = keys(ec.pub, SECRET2, NULL);

	/* The helper is right: with the secret, the token is good. */
	ck_assert_int_eq(check_free(mixed, hs256_token(SECRET2, GOOD)),
	    JWT_OK);
	ck_assert_int_eq(check_free(ks, hs256_token(ec.pub, GOOD)),
	    JWT_NO_KEY);
	ck_assert_int_eq(check_free(ks, hs256_token(rsa.pub, GOOD)),
	    JWT_NO_KEY);
	ck_assert_int_eq(check_free(mixed, hs256_token(ec.pub, GOOD)),
	    JWT_BAD_SIGNATURE);
	jwt_keys_free(mixed);
	/* ES256 and RS256 tokens need a key of their own type. */
	mixed = keys(SECRET, NULL);
	ck_assert_int_eq(mint_check(ec.priv, mixed, &opts_exp, GOOD),
	    JWT_NO_KEY);
	ck_assert_int_eq(mint_check(rsa.priv, mixed, &opts_exp, GOOD),
	    JWT_NO_KEY);
	jwt_keys_free(mixed);
	mixed = keys(ec.pub, NULL);
	ck_assert_int_eq(mint_check(rsa.priv, mixed, &opts_exp, GOOD),
	    JWT_NO_KEY);
	jwt_keys_free(mixed);
	jwt_keys_free(ks);
	kp_free(&ec);
	kp_free(&rsa);
}
END_TEST

/* A token whose header claims ES256 but whose signature is RS256's (and
 * the other way): bad, not a crash. */
START_TEST(alg_header_lies)
{
	struct kp ec = make_key("EC"), rsa = make_key("RSA");
	struct jwt_keys *ks = keys(ec.pub, rsa.pub, NULL);

	ck_assert_int_eq(check_free(ks, mint(rsa.priv,
	    "{\"alg\":\"ES256\"}", GOOD)), JWT_BAD_SIGNATURE);
	ck_assert_int_eq(check_free(ks, mint(ec.priv,
	    "{\"alg\":\"RS256\"}", GOOD)), JWT_BAD_SIGNATURE);
	ck_assert_int_eq(check_free(ks, mint(SECRET,
	    "{\"alg\":\"ES256\"}", GOOD)), JWT_BAD_SIGNATURE);
	jwt_keys_free(ks);
	kp_free(&ec);
	kp_free(&rsa);
}
END_TEST

/* --- signatures --------------------------------------------------------- */

START_TEST(wrong_signature)
{
	struct kp ec = make_key("EC"), ec2 = make_key("EC");
	struct kp rsa = make_key("RSA"), rsa2 = make_key("RSA");
	struct jwt_keys *ks = keys(SECRET, ec.pub, rsa.pub, NULL);
	char *tok, *other;
	size_t n;

	ck_assert_int_eq(mint_check(SECRET2, ks, &opts_exp, GOOD),
	    JWT_BAD_SIGNATURE);
	ck_assert_int_eq(mint_check(ec2.priv, ks, &opts_exp, GOOD),
	    JWT_BAD_SIGNATURE);
	ck_assert_int_eq(mint_check(rsa2.priv, ks, &opts_exp, GOOD),
	    JWT_BAD_SIGNATURE);
	/* Another payload under a good signature. */
	tok = mint(SECRET, NULL, GOOD);
	other = mint(SECRET, NULL, "{\"sub\":\"root\",\"exp\":1700000100}");
	n = strchr(strchr(other, '.') + 1, '.') - other;
	memcpy(other + n, strrchr(tok, '.'), strlen(strrchr(tok, '.')) + 1);
	ck_assert_int_eq(check(ks, &opts_exp, other), JWT_BAD_SIGNATURE);
	free(other);
	/* The signature cut short (to 30 and 63 bytes). */
	tok[strlen(tok) - 3] = '\0';
	ck_assert_int_eq(check(ks, &opts_exp, tok), JWT_BAD_SIGNATURE);
	free(tok);
	tok = mint(ec.priv, NULL, GOOD);
	tok[strlen(tok) - 2] = '\0';	/* 63 bytes */
	ck_assert_int_eq(check(ks, &opts_exp, tok), JWT_BAD_SIGNATURE);
	free(tok);
	jwt_keys_free(ks);
	kp_free(&ec);
	kp_free(&ec2);
	kp_free(&rsa);
	kp_free(&rsa2);
}
END_TEST

/* Several keys of a type: a token signed by any of them is good. */
START_TEST(rotation)
{
	struct kp ec = make_key("EC"), ec2 = make_key("EC");
	struct jwt_keys *ks = keys(SECRET, SECRET2, ec.pub, ec2.pub, NULL);
	struct jwt_keys *old = keys(SECRET, ec.pub, NULL);

	ck_assert_uint_eq(jwt_keys_count(ks), 4);
	ck_assert_int_eq(mint_check(SECRET, ks, &opts_exp, GOOD), JWT_OK);
	ck_assert_int_eq(mint_check(SECRET2, ks, &opts_exp, GOOD), JWT_OK);
	ck_assert_int_eq(mint_check(ec.priv, ks, &opts_exp, GOOD), JWT_OK);
	ck_assert_int_eq(mint_check(ec2.priv, ks, &opts_exp, GOOD), JWT_OK);
	/* The new keys taken out again. */
	ck_assert_int_eq(mint_check(SECRET2, old, &opts_exp, GOOD),
	    JWT_BAD_SIGNATURE);
	ck_assert_int_eq(mint_check(ec2.priv, old, &opts_exp, GOOD),
	    JWT_BAD_SIGNATURE);
	jwt_keys_free(ks);
	jwt_keys_free(old);
	kp_free(&ec);
	kp_free(&ec2);
}
END_TEST

/* --- claims ------------------------------------------------------------- */

struct claim_case {
	const char	*payload;
	int		 require_exp;
	const char	*audience;
	enum jwt_result	 want;
};

static const struct claim_case claim_cases[] = {
	/* exp: now >= exp is expired. */
	{ "{\"sub\":\"a\",\"exp\":1699999999}", 1, NULL, JWT_EXPIRED },
	{ "{\"sub\":\"a\",\"exp\":1700000000}", 1, NULL, JWT_EXPIRED },
	{ "{\"sub\":\"a\",\"exp\":1700000001}", 1, NULL, JWT_OK },
	{ "{\"sub\":\"a\",\"exp\":1699999999.5}", 1, NULL, JWT_EXPIRED },
	{ "{\"sub\":\"a\",\"exp\":1700000000.5}", 1, NULL, JWT_OK },
	{ "{\"sub\":\"a\",\"exp\":-1}", 1, NULL, JWT_EXPIRED },
	{ "{\"sub\":\"a\",\"exp\":1e300}", 1, NULL, JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"exp\":\"1800000000\"}", 1, NULL, JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"exp\":null}", 1, NULL, JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\"}", 1, NULL, JWT_NO_EXP },
	{ "{\"sub\":\"a\"}", 0, NULL, JWT_OK },
	{ "{\"sub\":\"a\",\"exp\":1}", 0, NULL, JWT_EXPIRED },
	/* nbf: now < nbf is not yet. */
	{ "{\"sub\":\"a\",\"nbf\":1700000001}", 0, NULL, JWT_NOT_YET },
	{ "{\"sub\":\"a\",\"nbf\":1700000000}", 0, NULL, JWT_OK },
	{ "{\"sub\":\"a\",\"nbf\":1699999999.5}", 0, NULL, JWT_OK },
	{ "{\"sub\":\"a\",\"nbf\":1700000000.5}", 0, NULL, JWT_NOT_YET },
	{ "{\"sub\":\"a\",\"nbf\":true}", 0, NULL, JWT_BAD_CLAIMS },
	/* aud, when an audience is set. */
	{ "{\"sub\":\"a\",\"aud\":\"herald\"}", 0, "herald", JWT_OK },
	{ "{\"sub\":\"a\",\"aud\":[\"x\",\"herald\"]}", 0, "herald", JWT_OK },
	{ "{\"sub\":\"a\",\"aud\":\"other\"}", 0, "herald", JWT_BAD_AUD },
	{ "{\"sub\":\"a\",\"aud\":[\"x\",\"y\"]}", 0, "herald", JWT_BAD_AUD },
	{ "{\"sub\":\"a\",\"aud\":[]}", 0, "herald", JWT_BAD_AUD },
	{ "{\"sub\":\"a\",\"aud\":[1,null]}", 0, "herald", JWT_BAD_AUD },
	{ "{\"sub\":\"a\",\"aud\":\"Herald\"}", 0, "herald", JWT_BAD_AUD },
	{ "{\"sub\":\"a\",\"aud\":\"heraldx\"}", 0, "herald", JWT_BAD_AUD },
	{ "{\"sub\":\"a\"}", 0, "herald", JWT_BAD_AUD },
	{ "{\"sub\":\"a\",\"aud\":\"other\"}", 0, NULL, JWT_OK },
	/* sub: a user name. */
	{ "{\"exp\":1800000000}", 1, NULL, JWT_BAD_SUB },
	{ "{\"sub\":5}", 0, NULL, JWT_BAD_SUB },
	{ "{\"sub\":\"\"}", 0, NULL, JWT_BAD_SUB },
	{ "{\"sub\":\"a b\"}", 0, NULL, JWT_BAD_SUB },
	{ "{\"sub\":\"*\"}", 0, NULL, JWT_BAD_SUB },
	{ "{\"sub\":\"a:b\"}", 0, NULL, JWT_BAD_SUB },
	{ "{\"sub\":\"a\\nb\"}", 0, NULL, JWT_BAD_SUB },
	{ "{\"sub\":\"a\\u0000b\"}", 0, NULL, JWT_MALFORMED },
	{ "{\"sub\":[\"a\"]}", 0, NULL, JWT_BAD_SUB },
	{ "{\"sub\":\"x123456789012345678901234567890123456789012345678901"
	  "2345678901234\"}", 0, NULL, JWT_BAD_SUB },	/* 65 bytes */
	/* JSON: one object, no key twice. */
	{ "{\"sub\":\"a\",\"sub\":\"root\"}", 0, NULL, JWT_MALFORMED },
	{ "{\"sub\":\"a\"} x", 0, NULL, JWT_MALFORMED },
	{ "{\"sub\":\"a\"", 0, NULL, JWT_MALFORMED },
	{ "[\"sub\"]", 0, NULL, JWT_MALFORMED },
	{ "\"sub\"", 0, NULL, JWT_MALFORMED },
	{ "", 0, NULL, JWT_MALFORMED },
	/* herald: valid patterns, nothing else. */
	{ "{\"sub\":\"a\",\"herald\":[]}", 0, NULL, JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"herald\":{\"read\":\"a/#\"}}", 0, NULL,
	  JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"herald\":{\"read\":[\"a/#/b\"]}}", 0, NULL,
	  JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"herald\":{\"read\":[\"ok\",\"\"]}}", 0, NULL,
	  JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"herald\":{\"publish\":[\"a b\"]}}", 0, NULL,
	  JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"herald\":{\"publish\":[1]}}", 0, NULL,
	  JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"herald\":{\"write\":[\"a\"]}}", 0, NULL,
	  JWT_BAD_CLAIMS },
	{ "{\"sub\":\"a\",\"herald\":{\"read\":[\"a\",\"a\"],"
	  "\"publish\":[]}}", 0, NULL, JWT_OK },
};

START_TEST(claim_table)
{
	const struct claim_case *cc = &claim_cases[_i];
	struct jwt_keys *ks = keys(SECRET, NULL);
	const struct jwt_opts o = { cc->require_exp, cc->audience };

	ck_assert_msg(mint_check(SECRET, ks, &o, cc->payload) == cc->want,
	    "%s: %s, not %s", cc->payload, jwt_result_str(mint_check(SECRET,
	    ks, &o, cc->payload)), jwt_result_str(cc->want));
	jwt_keys_free(ks);
}
END_TEST

/* A "herald" claim: the token's own permissions. */
START_TEST(herald_claims)
{
	struct jwt_keys *ks = keys(SECRET, NULL);
	char *tok = mint(SECRET, NULL, "{\"sub\":\"dev7\",\"exp\":1800000000,"
	    "\"herald\":{\"read\":[\"cmd/dev7/#\",\"status/+\"],"
	    "\"publish\":[\"devices/dev7/#\"]}}");
	struct jwt_claims c;

	ck_assert_int_eq(jwt_check(ks, &opts_exp, tok, strlen(tok), NOW, &c),
	    JWT_OK);
	ck_assert_str_eq(c.sub, "dev7");
	ck_assert_int_eq(c.has_perms, 1);
	ck_assert_uint_eq(c.read.n, 2);
	ck_assert_str_eq(c.read.v[0], "cmd/dev7/#");
	ck_assert_str_eq(c.read.v[1], "status/+");
	ck_assert_uint_eq(c.publish.n, 1);
	ck_assert(perm_allows_topic(&c.publish, "devices/dev7/t", 14));
	ck_assert(!perm_allows_topic(&c.publish, "devices/dev8/t", 14));
	jwt_claims_free(&c);
	free(tok);
	/* An empty claim: no permissions at all, not the ACL's. */
	tok = mint(SECRET, NULL, "{\"sub\":\"x\",\"exp\":1800000000,"
	    "\"herald\":{}}");
	ck_assert_int_eq(jwt_check(ks, &opts_exp, tok, strlen(tok), NOW, &c),
	    JWT_OK);
	ck_assert_int_eq(c.has_perms, 1);
	ck_assert_uint_eq(c.read.n + c.publish.n, 0);
	jwt_claims_free(&c);
	free(tok);
	jwt_keys_free(ks);
}
END_TEST

/* --- malformed tokens --------------------------------------------------- */

START_TEST(malformed)
{
	struct jwt_keys *ks = keys(SECRET, NULL);
	char *tok = mint(SECRET, NULL, GOOD), buf[JWT_TOKEN_MAX + 64];
	static const char *bad[] = {
		"", ".", "..", "...", "a.b", "a.b.c.d",
		"eyJhbGciOiJIUzI1NiJ9..", "eyJhbGciOiJIUzI1NiJ9.e30.",
		"e30.e30.AAAA",
	};
	size_t i, n;

	for (i = 0; i < NELEM(bad); i++)
		ck_assert_msg(check(ks, &opts_exp, bad[i]) == JWT_MALFORMED ||
		    check(ks, &opts_exp, bad[i]) == JWT_BAD_ALG, "%s", bad[i]);
	ck_assert_int_eq(check(ks, &opts_exp, "e30.e30.AAAA"), JWT_BAD_ALG);
	ck_assert_int_eq(check(ks, &opts_exp, "a.b.c.d"), JWT_MALFORMED);
	/* Padding, or base64's '+' and '/', anywhere. */
	n = strlen(tok);
	snprintf(buf, sizeof(buf), "%s=", tok);
	ck_assert_int_eq(check(ks, &opts_exp, buf), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "%s", tok);
	*strchr(buf, '.') = '=';
	ck_assert_int_eq(check(ks, &opts_exp, buf), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "+%s", tok + 1);
	ck_assert_int_eq(check(ks, &opts_exp, buf), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "%s", tok);
	buf[n - 1] = '/';
	ck_assert_int_eq(check(ks, &opts_exp, buf), JWT_MALFORMED);
	/* A payload that is not base64url, under a good signature. */
	{
		char *t2 = mint(SECRET, NULL, GOOD);
		char *p = strchr(t2, '.') + 1;

		ck_assert_int_eq(check(ks, &opts_exp, t2), JWT_OK);
		*p = '!';
		ck_assert_int_ne(check(ks, &opts_exp, t2), JWT_OK);
		free(t2);
	}
	/* Whitespace around it. */
	snprintf(buf, sizeof(buf), " %s", tok);
	ck_assert_int_eq(check(ks, &opts_exp, buf), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "%s\n", tok);
	ck_assert_int_eq(check(ks, &opts_exp, buf), JWT_MALFORMED);
	/* JWT_TOKEN_MAX bytes at most. */
	memset(buf, 'A', sizeof(buf));
	buf[10] = buf[20] = '.';
	buf[JWT_TOKEN_MAX + 1] = '\0';
	ck_assert_int_eq(check(ks, &opts_exp, buf), JWT_MALFORMED);
	free(tok);
	jwt_keys_free(ks);
}
END_TEST

/* A token of JWT_TOKEN_MAX bytes is read; its claims may fill it. */
START_TEST(long_token)
{
	struct jwt_keys *ks = keys(SECRET, NULL);
	char payload[JWT_TOKEN_MAX], *tok;
	size_t n;

	n = (size_t)snprintf(payload, sizeof(payload),
	    "{\"sub\":\"a\",\"exp\":1800000000,\"pad\":\"");
	/* Header 36, signature 43, two dots: the payload's encoding may be
	 * 4096 - 81 bytes, 3011 bytes of JSON. */
	while (n < 3011 - 2)
		payload[n++] = 'x';
	memcpy(payload + n, "\"}", 3);
	tok = mint(SECRET, NULL, payload);
	ck_assert_uint_eq(strlen(tok), JWT_TOKEN_MAX);
	ck_assert_int_eq(check(ks, &opts_exp, tok), JWT_OK);
	free(tok);
	memcpy(payload + n, "xxxx\"}", 7);
	tok = mint(SECRET, NULL, payload);
	ck_assert_uint_gt(strlen(tok), JWT_TOKEN_MAX);
	ck_assert_int_eq(check(ks, &opts_exp, tok), JWT_MALFORMED);
	free(tok);
	jwt_keys_free(ks);
}
END_TEST

/* --- key files ----------------------------------------------------------- */

START_TEST(keys_refused)
{
	struct kp ec = make_key("EC"), p384 = make_key("P-384");
	struct kp rsa1k = make_key("RSA1024");
	struct jwt_keys *ks = jwt_keys_new();
	char err[256];
	int i;

	ck_assert_int_eq(jwt_keys_add(ks, ec.priv, strlen(ec.priv), "f", err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "f: a private key: give its public key "
	    "(openssl pkey -pubout)");
	ck_assert_int_eq(jwt_keys_add(ks, p384.pub, strlen(p384.pub), "f",
	    err, sizeof(err)), -1);
	ck_assert_str_eq(err, "f: an EC key not on P-256 (ES256 needs P-256)");
	ck_assert_int_eq(jwt_keys_add(ks, rsa1k.pub, strlen(rsa1k.pub), "f",
	    err, sizeof(err)), -1);
	ck_assert_str_eq(err, "f: an RSA key of fewer than 2048 bits");
	ck_assert_int_eq(jwt_keys_add(ks, "-----BEGIN junk", 15, "f", err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "f: not a PEM public key");
	/* 31 bytes and a newline: too short, and never quoted. */
	ck_assert_int_eq(jwt_keys_add(ks, "0123456789abcdef0123456789abcde\n",
	    32, "f", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "f: an HS256 secret of fewer than 32 bytes");
	ck_assert_uint_eq(jwt_keys_count(ks), 0);
	for (i = 0; i < JWT_KEYS_MAX; i++)
		ck_assert_int_eq(jwt_keys_add(ks, SECRET, 32, "f", err,
		    sizeof(err)), 0);
	ck_assert_int_eq(jwt_keys_add(ks, SECRET, 32, "f", err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "f: too many keys (16 at most)");
	/* The signer wants a private key. */
	ck_assert_ptr_null(jwt_signer_new(ec.pub, strlen(ec.pub), "f", err,
	    sizeof(err)));
	ck_assert_str_eq(err, "f: not a PEM private key (without a "
	    "passphrase)");
	ck_assert_ptr_null(jwt_signer_new(p384.priv, strlen(p384.priv), "f",
	    err, sizeof(err)));
	ck_assert_str_eq(err, "f: an EC key not on P-256 (ES256 needs P-256)");
	jwt_keys_free(ks);
	kp_free(&ec);
	kp_free(&p384);
	kp_free(&rsa1k);
}
END_TEST

/* Key files: a secret with a CRLF, a public key; a missing file. */
START_TEST(key_files)
{
	char path[] = "/tmp/test_jwt.XXXXXX", err[512];
	struct kp ec = make_key("EC");
	struct jwt_keys *ks = jwt_keys_new();
	FILE *f;
	int fd;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_ptr_nonnull(f = fdopen(fd, "w"));
	fputs(SECRET "\r\n", f);
	fclose(f);
	ck_assert_int_eq(jwt_keys_add_file(ks, path, err, sizeof(err)), 0);
	ck_assert_int_eq(mint_check(SECRET, ks, &opts_exp, GOOD), JWT_OK);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(ec.pub, f);
	fclose(f);
	ck_assert_int_eq(jwt_keys_add_file(ks, path, err, sizeof(err)), 0);
	ck_assert_int_eq(mint_check(ec.priv, ks, &opts_exp, GOOD), JWT_OK);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(ec.priv, f);
	fclose(f);
	{
		struct jwt_signer *s = jwt_signer_load(path, err, sizeof(err));

		ck_assert_ptr_nonnull(s);
		ck_assert_str_eq(jwt_signer_alg(s), "ES256");
		jwt_signer_free(s);
	}
	unlink(path);
	ck_assert_int_eq(jwt_keys_add_file(ks, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, path));
	jwt_keys_free(ks);
	kp_free(&ec);
}
END_TEST

static Suite *
jwt_suite(void)
{
	Suite *s = suite_create("jwt");
	TCase *tc;

	tc = tcase_create("b64url");
	tcase_add_loop_test(tc, b64_vectors, 0, NELEM(b64));
	tcase_add_loop_test(tc, b64_strict, 0, NELEM(b64_bad));
	suite_add_tcase(s, tc);

	tc = tcase_create("tokens");
	tcase_add_test(tc, good_hs256);
	tcase_add_test(tc, good_es256_rs256);
	tcase_add_test(tc, rfc7515);
	tcase_add_loop_test(tc, alg_refused, 0, NELEM(bad_headers));
	tcase_add_test(tc, hs256_with_public_key);
	tcase_add_test(tc, alg_header_lies);
	tcase_add_test(tc, wrong_signature);
	tcase_add_test(tc, rotation);
	tcase_add_loop_test(tc, claim_table, 0, NELEM(claim_cases));
	tcase_add_test(tc, herald_claims);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, long_token);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_test(tc, keys_refused);
	tcase_add_test(tc, key_files);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(jwt_suite());
	int failed;

	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
