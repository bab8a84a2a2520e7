/*
 * TLS for the subscriber children (--tls, --tls-ca): OpenSSL on their
 * non-blocking sockets.  One SSL_CTX per child; each connection keeps the
 * latest session the server gave it, so that a reconnect (the storm)
 * resumes it.  Nothing here blocks: a call that would wait says which
 * epoll event it waits for.
 */
#include <sys/epoll.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "loadgen.h"

/*
 * A new session (TLS 1.2: at the end of the handshake; TLS 1.3: a ticket
 * that comes after it, read by SSL_read) replaces the one the connection
 * kept.  Returns 1: the session is ours now.
 */
static int
tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	SSL_SESSION **keep = SSL_get_app_data(ssl);

	if (keep == NULL)
		return 0;
	if (*keep != NULL)
		SSL_SESSION_free(*keep);
	*keep = sess;
	return 1;
}

/* Write OpenSSL's latest error, after what, into buf. */
void
tls_error(char *buf, size_t len, const char *what)
{
	char e[120];
	unsigned long code = ERR_peek_last_error();

	if (code != 0)
		ERR_error_string_n(code, e, sizeof(e));
	else
		snprintf(e, sizeof(e), "%s", errno ? strerror(errno) : "closed");
	snprintf(buf, len, "%s: %s", what, e);
	ERR_clear_error();
}

/*
 * A client context for one child: TLS 1.2 or later, buffers released
 * while a connection is idle, the server's certificate verified against
 * o->tls_ca and o->host when a CA file is given.  NULL on failure, with
 * the reason in err.
 */
SSL_CTX *
tls_client_ctx(const struct lg_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		tls_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* buffers only while there is something in them */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* sessions go to tls_new_session only, never to a cache of the ctx */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
	if (o->tls_ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, o->tls_ca, NULL) != 1 ||
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx),
		    o->host) != 1) {
			tls_error(err, errlen, o->tls_ca);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
}

/*
 * The TLS side of connection fd, which resumes *keep if there is one and
 * keeps the server's new sessions there.  NULL on failure.
 */
SSL *
tls_conn_new(SSL_CTX *ctx, int fd, SSL_SESSION **keep)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1 ||
	    (*keep != NULL && SSL_set_session(ssl, *keep) != 1)) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_app_data(ssl, keep);
	SSL_set_connect_state(ssl);
	return ssl;
}

/*
 * One step of the handshake: 1 done, 0 not yet (*events: what to wait
 * for), -1 failed.
 */
int
tls_handshake(SSL *ssl, uint32_t *events)
{
	int r = SSL_connect(ssl);

	if (r == 1)
		return 1;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*events = EPOLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*events = EPOLLOUT;
		return 0;
	default:
		return -1;
	}
}

/*
 * Read up to len bytes into buf: the number read; 0 when the connection
 * ended (close, error); -1 when nothing can be read now.  *again is set
 * when more may be waiting: the socket is edge-triggered, and OpenSSL may
 * hold bytes it read from it, so a caller that stops early must call again.
 */
ssize_t
tls_recv(SSL *ssl, char *buf, size_t len, int *again)
{
	size_t got = 0;
	int r;

	while (got < len) {
		r = SSL_read(ssl, buf + got, (int)(len - got));
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ) {
			/* SSL_MODE_RELEASE_BUFFERS leaves the read buffer
			 * (16 KB) that the read which found nothing took:
			 * idle, a connection would keep it */
			SSL_free_buffers(ssl);
			*again = 0;
			return got > 0 ? (ssize_t)got : -1;
		}
		/* the end (or WANT_WRITE, which only a renegotiation or a key
		 * update could cause: neither is ours); the next call finds it
		 * again once what came before is taken */
		*again = got > 0;
		return (ssize_t)got;
	}
	*again = 1;
	return (ssize_t)got;
}

/* Write all of buf (a few hundred bytes, on a socket with room): 0 or -1. */
int
tls_send(SSL *ssl, const char *buf, size_t len)
{
	return SSL_write(ssl, buf, (int)len) == (int)len ? 0 : -1;
}

/*
 * Close the TLS side: a close_notify when the handshake was done, which
 * also keeps its session resumable (OpenSSL drops a session whose
 * connection ends without one); then free it.  The socket stays open.
 */
void
tls_conn_free(SSL *ssl)
{
	if (SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	SSL_free(ssl);
	ERR_clear_error();
}
