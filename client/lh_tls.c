/*
 * TLS (OpenSSL 3): the client's context (CAs, its own certificate, TLS
 * 1.2 at least), the handshake on a connected socket without blocking,
 * the server's name checked (SNI, and the certificate must name the host,
 * an IP address as one), and the socket's reads and writes through the
 * TLS layer.  The last session is kept to resume the next connection.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lh.h"
#include "sockbio.h"

/* Fill tls with no files. */
void
herald_tls_init(struct herald_tls *tls)
{
	memset(tls, 0, sizeof(*tls));
}

/* OpenSSL's reason for the newest error in its queue, and empty it. */
static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : "unknown error";
}

/* A TLS set-up failure: the file and OpenSSL's reason. */
static int
setup_fail(struct herald_client *c, SSL_CTX *ctx, const char *what,
    const char *file)
{
	lh_fail(c, HERALD_ETLS, "TLS: cannot use %s %s: %s", what,
	    file != NULL ? file : "(the system's default)", ssl_reason());
	SSL_CTX_free(ctx);
	return HERALD_ETLS;
}

/* A new session ticket: keep it (it replaces the one kept). */
static int
new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct herald_client *c = SSL_get_app_data(ssl);

	if (c->tls_session != NULL)
		SSL_SESSION_free(c->tls_session);
	c->tls_session = sess;
	return 1;		/* the reference is ours */
}

/* The context of every connection of c, from tls's files. */
static int
make_ctx(struct herald_client *c, const struct herald_tls *tls)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return lh_fail(c, HERALD_ENOMEM, "TLS: %s", ssl_reason());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Writes resume from a queue that may move or grow meanwhile. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* A close without close_notify is an end like any other: a line
	 * cut short is caught by the line reader. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	if (tls->ca_file != NULL ?
	    SSL_CTX_load_verify_locations(ctx, tls->ca_file, NULL) != 1 :
	    SSL_CTX_set_default_verify_paths(ctx) != 1)
		return setup_fail(c, ctx, "the CA file", tls->ca_file);
	if (tls->cert_file != NULL) {
		const char *key = tls->key_file ? tls->key_file :
		    tls->cert_file;
		if (SSL_CTX_use_certificate_chain_file(ctx,
		    tls->cert_file) != 1)
			return setup_fail(c, ctx, "the certificate",
			    tls->cert_file);
		if (SSL_CTX_use_PrivateKey_file(ctx, key,
		    SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1)
			return setup_fail(c, ctx, "the key", key);
	}
	if (c->tls_bio == NULL && (c->tls_bio = sockbio_method()) == NULL) {
		SSL_CTX_free(ctx);
		return lh_fail(c, HERALD_ENOMEM, "TLS: %s", ssl_reason());
	}
	if (c->tls_ctx != NULL)
		SSL_CTX_free(c->tls_ctx);
	c->tls_ctx = ctx;
	return HERALD_OK;
}

/* Speak TLS on every connection from now on. */
int
herald_set_tls(struct herald_client *c, const struct herald_tls *tls)
{
	int rc;

	lh_enter(c);
	if (tls == NULL || c->state != LH_DEAD)
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "herald_set_tls:"
		    " %s", tls == NULL ? "no settings" : "the client is "
		    "open"));
	if (tls->key_file != NULL && tls->cert_file == NULL)
		return lh_leave(c, lh_fail(c, HERALD_EINVAL, "herald_set_tls:"
		    " a key file without a certificate file"));
	rc = make_ctx(c, tls);
	if (rc == HERALD_OK && c->tls_session != NULL) {
		SSL_SESSION_free(c->tls_session);	/* another context's */
		c->tls_session = NULL;
	}
	return lh_leave(c, rc);
}

/* 1 if host is an IPv4 or IPv6 address, not a name. */
static int
is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	    inet_pton(AF_INET6, host, buf) == 1;
}

/*
 * The socket is connected: start the handshake.  The certificate must
 * name the address's host: a name is also sent as SNI; an IP address is
 * checked against the certificate's IP addresses (RFC 6066 keeps it out
 * of SNI).
 */
void
lh_tls_start(struct herald_client *c)
{
	const char *host = c->addr.host;
	SSL *ssl = SSL_new(c->tls_ctx);
	BIO *bio = sockbio_new(c->tls_bio, &c->fd);
	int ok;

	if (ssl == NULL || bio == NULL) {
		SSL_free(ssl);
		BIO_free(bio);
		c->broken = lh_fail(c, HERALD_ENOMEM, "TLS: %s", ssl_reason());
		return;
	}
	SSL_set_bio(ssl, bio, bio);
	SSL_set_app_data(ssl, c);
	ok = 1;
	if (is_ip(host))
		ok = ok && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    host);
	else
		ok = ok && SSL_set_tlsext_host_name(ssl, host) &&
		    SSL_set1_host(ssl, host);
	if (!ok) {
		SSL_free(ssl);
		c->broken = lh_fail(c, HERALD_ETLS, "TLS: cannot check the "
		    "name \"%s\": %s", host, ssl_reason());
		return;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (c->tls_session != NULL)
		SSL_set_session(ssl, c->tls_session);
	SSL_set_connect_state(ssl);
	c->ssl = ssl;
	c->state = LH_TLS;
	lh_tls_handshake(c);
}

/* The handshake failed: say why, with the verification's result. */
static void
handshake_failed(struct herald_client *c, int err)
{
	long v = SSL_get_verify_result(c->ssl);

	if (v != X509_V_OK) {
		ERR_clear_error();
		c->broken = lh_fail(c, HERALD_ETLS, "TLS handshake with %s: "
		    "the server's certificate does not verify: %s",
		    c->addr_str, X509_verify_cert_error_string(v));
	} else if (err == SSL_ERROR_SYSCALL) {
		int e = errno;
		ERR_clear_error();
		c->broken = lh_fail(c, HERALD_ETLS, "TLS handshake with %s "
		    "failed: %s", c->addr_str, e != 0 ? strerror(e) :
		    "the server closed the connection");
	} else {
		c->broken = lh_fail(c, HERALD_ETLS, "TLS handshake with %s "
		    "failed: %s", c->addr_str, ssl_reason());
	}
	/* A session the server refused is not offered again. */
	if (c->tls_session != NULL) {
		SSL_SESSION_free(c->tls_session);
		c->tls_session = NULL;
	}
}

/* Go on with the handshake; once done, HELLO is due. */
void
lh_tls_handshake(struct herald_client *c)
{
	int rc, err;

	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_do_handshake(c->ssl)) == 1) {
		c->tls_want = 0;
		c->state = LH_HELLO;
		c->last_in = lh_now_ms();
		return;
	}
	err = SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_READ)
		c->tls_want = HERALD_READ;
	else if (err == SSL_ERROR_WANT_WRITE)
		c->tls_want = HERALD_WRITE;
	else
		handshake_failed(c, err);
}

/* What the TLS layer waits for besides what the client does. */
int
lh_tls_events(const struct herald_client *c)
{
	return c->ssl != NULL ? c->tls_want : 0;
}

/* 1 if the TLS layer holds input already read from the socket. */
int
lh_tls_pending(const struct herald_client *c)
{
	return c->ssl != NULL && SSL_pending(c->ssl) > 0;
}

/*
 * A read or write of the TLS layer did not complete: -1 with errno
 * EAGAIN when it waits for the socket, or with the socket's errno; a
 * failure of TLS itself marks the client broken (HERALD_ETLS) first.
 */
static long
io_failed(struct herald_client *c, int rc, int reading)
{
	int err = SSL_get_error(c->ssl, rc), e = errno;

	c->tls_want = 0;
	switch (err) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			c->tls_want = HERALD_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (e == 0)
			return 0;	/* closed, no close_notify */
		errno = e;
		return -1;
	default:
		c->broken = lh_fail(c, HERALD_ETLS, "TLS with %s: %s",
		    c->addr_str, ssl_reason());
		errno = EPROTO;
		return -1;
	}
}

/*
 * Write up to len bytes to the connection: returns the bytes written, or
 * -1 with errno (EAGAIN: none now); a TLS failure has marked the client
 * broken.
 */
long
lh_sock_send(struct herald_client *c, const char *buf, size_t len)
{
	size_t n;
	int rc;

	if (c->ssl == NULL)
		return send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_write_ex(c->ssl, buf, len, &n)) == 1)
		return (long)n;
	long r = io_failed(c, rc, 0);
	if (r == 0) {
		errno = EPIPE;
		r = -1;
	}
	return r;
}

/*
 * Read up to len bytes from the connection: returns the bytes read, 0 at
 * its end, or -1 with errno (EAGAIN: nothing now); a TLS failure has
 * marked the client broken.
 */
long
lh_sock_recv(struct herald_client *c, char *buf, size_t len)
{
	size_t n;
	int rc;

	if (c->ssl == NULL)
		return recv(c->fd, buf, len, MSG_DONTWAIT);
	ERR_clear_error();
	errno = 0;
	c->tls_want = 0;
	if ((rc = SSL_read_ex(c->ssl, buf, len, &n)) == 1)
		return (long)n;
	return io_failed(c, rc, 1);
}

/* The connection ends: a close_notify if the socket takes it now. */
void
lh_tls_close(struct herald_client *c)
{
	if (c->ssl == NULL)
		return;
	if (c->state == LH_HELLO || c->state == LH_AUTH ||
	    c->state == LH_READY)
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->tls_want = 0;
}

/* Free the context and the kept session (the client goes away). */
void
lh_tls_free(struct herald_client *c)
{
	lh_tls_close(c);
	if (c->tls_session != NULL)
		SSL_SESSION_free(c->tls_session);
	c->tls_session = NULL;
	if (c->tls_ctx != NULL)
		SSL_CTX_free(c->tls_ctx);
	c->tls_ctx = NULL;
	if (c->tls_bio != NULL)
		BIO_meth_free(c->tls_bio);
	c->tls_bio = NULL;
}
