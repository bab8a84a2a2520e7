/*
 * The TLS context of the tls: listeners, and the session ticket keys.
 *
 * Resumption is stateless (tickets), never a server-side session cache:
 * a cache would be one worker's, and a reconnect lands on any worker
 * (SO_REUSEPORT).  Every worker holds the same keys, which the master
 * makes and rotates (master.c) and sends in a CTL_TICKETS message; a
 * worker it respawns inherits the keys of the moment at fork.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "config.h"
#include "tlsctx.h"

static struct ticket_keys keys;

/* The last OpenSSL error of this thread as text, and the queue cleared. */
static const char *
ssl_why(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return why ? why : "rejected by OpenSSL";
}

/* 0 if path can be opened for reading, else -1 with "setting: path: why". */
static int
readable(const char *setting, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		fclose(f);
		return 0;
	}
	snprintf(err, errlen, "%s: %s: %s", setting, path, strerror(errno));
	return -1;
}

/* The certificate chain and its key, checked to match. */
static int
load_identity(SSL_CTX *ctx, const struct herald_config *cfg, char *err,
    size_t errlen)
{
	const char *key = cfg->tls_key[0] ? cfg->tls_key : cfg->tls_cert;
	const char *key_setting = cfg->tls_key[0] ? "tls.key" : "tls.cert";

	if (readable("tls.cert", cfg->tls_cert, err, errlen) == -1 ||
	    readable(key_setting, key, err, errlen) == -1)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		snprintf(err, errlen, "tls.cert: %s: no PEM certificate chain "
		    "(%s)", cfg->tls_cert, ssl_why());
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "%s: %s: no PEM private key (%s)",
		    key_setting, key, ssl_why());
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: %s: does not match the certificate "
		    "in %s", key_setting, key, cfg->tls_cert);
		return -1;
	}
	return 0;
}

/* With client_ca: ask every client for a certificate, and refuse the
 * handshake without one that a CA of the file signed. */
static int
load_client_ca(SSL_CTX *ctx, const struct herald_config *cfg, char *err,
    size_t errlen)
{
	const char *ca = cfg->tls_client_ca;

	if (ca[0] == '\0')
		return 0;
	if (readable("tls.client_ca", ca, err, errlen) == -1)
		return -1;
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
	if (names == NULL || SSL_CTX_load_verify_locations(ctx, ca,
	    NULL) != 1) {
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		snprintf(err, errlen, "tls.client_ca: %s: %s", ca,
		    names == NULL ? "no PEM certificate in it" : ssl_why());
		ERR_clear_error();
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

/* Versions, ciphers, and what a server of ours never does. */
static int
set_protocol(SSL_CTX *ctx, const struct herald_config *cfg, char *err,
    size_t errlen)
{
	int min = strcmp(cfg->tls_min_version, "1.3") == 0 ? TLS1_3_VERSION :
	    TLS1_2_VERSION;

	if (SSL_CTX_set_min_proto_version(ctx, min) != 1) {
		snprintf(err, errlen, "tls.min_version: %s: %s",
		    cfg->tls_min_version, ssl_why());
		return -1;
	}
	/* TLS 1.2 suites only: the 1.3 ones stay OpenSSL's defaults, all
	 * of them sound (heraldd.conf(5)). */
	if (cfg->tls_ciphers[0] != '\0' &&
	    SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		snprintf(err, errlen, "tls.ciphers: \"%s\": %s",
		    cfg->tls_ciphers, ssl_why());
		return -1;
	}
	/* Renegotiation is a handshake in the middle of the stream, which
	 * the worker's loop does not expect (and an old attack surface). */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* A client that closes TCP without close_notify (most do, a
	 * crashed one always) has ended, not failed: the protocol's lines
	 * end with LF, so a cut stream cannot pass for a whole one. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/*
	 * Partial writes and a moving buffer: worker/tls.c writes a batch as
	 * records, keeps the bytes of one that could not go out, and
	 * presents them again from another address.  Release the buffers:
	 * an idle connection holds none of OpenSSL's (some 34 KB).
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

/* Stateless resumption with the shared ticket keys, and no cache. */
static void
set_resumption(SSL_CTX *ctx)
{
	static const unsigned char sid_ctx[] = "herald";

	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* (required to resume a session whose client was verified) */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* TLS 1.3: one ticket after a handshake is enough to resume. */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_timeout(ctx, TICKET_ROTATE_SEC);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tickets_cb);
}

/* Build the tls: listeners' context from cfg (see tlsctx.h). */
SSL_CTX *
tlsctx_new(const struct herald_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		snprintf(err, errlen, "tls: %s", ssl_why());
		return NULL;
	}
	if (load_identity(ctx, cfg, err, errlen) == -1 ||
	    load_client_ca(ctx, cfg, err, errlen) == -1 ||
	    set_protocol(ctx, cfg, err, errlen) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	set_resumption(ctx);
	return ctx;
}

/* New random keys; the current ones become the previous. */
int
tickets_rotate(void)
{
	struct ticket_key k;

	if (RAND_bytes((unsigned char *)&k, sizeof(k)) != 1) {
		ERR_clear_error();
		return -1;
	}
	keys.prev = keys.cur;
	keys.cur = k;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

/* Both keys random (at start): a key never set would be all zeros, one
 * anybody could make tickets with. */
int
tickets_init(void)
{
	return tickets_rotate() == -1 || tickets_rotate() == -1 ? -1 : 0;
}

/* The process's ticket keys. */
const struct ticket_keys *
tickets_get(void)
{
	return &keys;
}

/* Replace the keys with a CTL_TICKETS message's. */
int
tickets_set(const void *msg, size_t len)
{
	if (len != sizeof(keys))
		return -1;
	memcpy(&keys, msg, sizeof(keys));
	return 0;
}

/* OpenSSL's ticket key callback (see tlsctx.h). */
int
tickets_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct ticket_key *k;
	int found;

	if (enc) {
		k = &keys.cur;
		memcpy(name, k->name, TICKET_NAME_LEN);
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(
		    EVP_aes_256_cbc())) != 1 ||
		    EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv) != 1)
			return -1;
		found = 1;
	} else {
		if (memcmp(name, keys.cur.name, TICKET_NAME_LEN) == 0)
			k = &keys.cur, found = 1;
		else if (memcmp(name, keys.prev.name, TICKET_NAME_LEN) == 0)
			k = &keys.prev, found = 2;
		else
			return 0;
		if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv) != 1)
			return -1;
	}
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
		    (void *)k->hmac, TICKET_KEY_LEN),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
		    "SHA256", 0),
		OSSL_PARAM_construct_end()
	};
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return found;
}
