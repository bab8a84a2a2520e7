/*
 * TLS on a worker's connections.  A TLS client is a struct client with a
 * struct tls_conn (its SSL) behind one pointer; a plaintext one pays only
 * that pointer.
 *
 * Handshake: non-blocking, driven by the client's events in the worker's
 * epoll set (client_event_cb), HELLO only once it is done, closed after
 * TLS_HANDSHAKE_MS.  Renegotiation is off (tlsctx.c).
 *
 * Reads: each SSL_read is given room for a whole record, and read-ahead
 * stays off, so OpenSSL never keeps bytes the socket would not announce
 * again (SSL_pending stays 0): epoll tells the truth about what is there.
 * An end or error met after data is kept for the next read, and the loop
 * comes back for it (tls_input_ready, worker_want).
 *
 * Writes: see tls_writev.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "sockbio.h"
#include "tls.h"
#include "tlsctx.h"
#include "worker.h"

struct tls_conn {
	SSL		*ssl;
	struct tls_conn	*hs_prev, *hs_next;	/* in w->tls->hs while in
						 * its handshake */
	struct client	*c;
	uint64_t	 started;		/* now_ms() at accept */
	char		*held;			/* bytes taken, not yet out */
	uint32_t	 held_off, held_len;
	int		 rd_errno;		/* the end a read met after
						 * data: -1 EOF, else errno */
	unsigned	 handshaking:1;
};

struct tls_worker {
	SSL_CTX		*ctx;
	BIO_METHOD	*bio;		/* sockets through send(2), recv(2) */
	struct tls_conn	*hs_head, *hs_tail;	/* oldest first */
	char		 scratch[TLS_RECORD_MAX]; /* a record's gathering */
};

/* The reason of the last OpenSSL error (for a log line); the queue is
 * cleared, as SSL_get_error needs it empty before the next call. */
static const char *
ssl_reason(int err)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	if (why != NULL)
		return why;
	if (err == SSL_ERROR_SYSCALL)
		return errno ? strerror(errno) : "connection closed";
	return "protocol error";
}

/* Take over the context the master built (it stays this process's). */
void
tls_worker_init(struct worker *w)
{
	if (w->h->tls_ctx == NULL)
		return;
	if ((w->tls = calloc(1, sizeof(*w->tls))) == NULL)
		fatalx("out of memory");
	w->tls->ctx = w->h->tls_ctx;
	w->h->tls_ctx = NULL;
	if ((w->tls->bio = sockbio_method()) == NULL)
		fatalx("out of memory");
}

/* A reload: the certificate (and the rest of the tls group) anew. */
void
tls_worker_reload(struct worker *w)
{
	char err[512];
	SSL_CTX *ctx;

	if (w->tls == NULL)
		return;
	if ((ctx = tlsctx_new(w->cfg, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s: TLS keeps the certificate it has", err);
		return;
	}
	/* Connections hold a reference to the context they began with. */
	SSL_CTX_free(w->tls->ctx);
	w->tls->ctx = ctx;
}

static void
hs_unlink(struct worker *w, struct tls_conn *t)
{
	struct tls_worker *tw = w->tls;

	if (!t->handshaking)
		return;
	t->handshaking = 0;
	if (t->hs_prev != NULL)
		t->hs_prev->hs_next = t->hs_next;
	else
		tw->hs_head = t->hs_next;
	if (t->hs_next != NULL)
		t->hs_next->hs_prev = t->hs_prev;
	else
		tw->hs_tail = t->hs_prev;
	t->hs_prev = t->hs_next = NULL;
}

/* Handshakes older than TLS_HANDSHAKE_MS: closed, counted. */
void
tls_expire(struct worker *w)
{
	uint64_t now = now_ms();
	struct tls_conn *t;

	if (w->tls == NULL)
		return;
	while ((t = w->tls->hs_head) != NULL &&
	    now - t->started >= TLS_HANDSHAKE_MS) {
		struct client *c = t->c;
		hs_unlink(w, t);
		if (c->state == CS_DEAD)
			continue;
		worker_limit(w, CTR_TLS_HANDSHAKE_TIMEOUTS, 0, "client %u: TLS "
		    "handshake not done within %d ms: closed", c->id,
		    TLS_HANDSHAKE_MS);
		client_kill(c);
	}
}

/* Begin the server side of c's handshake. */
int
tls_start(struct client *c)
{
	struct tls_worker *tw = c->w->tls;
	struct tls_conn *t = NULL;
	BIO *bio;

	if (tw == NULL || (t = calloc(1, sizeof(*t))) == NULL ||
	    (t->ssl = SSL_new(tw->ctx)) == NULL ||
	    (bio = sockbio_new(tw->bio, &c->fd)) == NULL) {
		log_warnx("client %u: no memory for TLS: closed", c->id);
		if (t != NULL)
			SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return -1;
	}
	SSL_set_bio(t->ssl, bio, bio);
	SSL_set_accept_state(t->ssl);
	t->c = c;
	t->started = now_ms();
	t->handshaking = 1;
	t->hs_prev = tw->hs_tail;
	if (tw->hs_tail != NULL)
		tw->hs_tail->hs_next = t;
	else
		tw->hs_head = t;
	tw->hs_tail = t;
	c->tls = t;
	return 0;
}

/* 1 while c's handshake is not done. */
int
tls_handshaking(const struct client *c)
{
	return c->tls != NULL && c->tls->handshaking;
}

/* A handshake done: counted, and described in the debug log. */
static void
handshake_done(struct client *c)
{
	struct worker *w = c->w;
	SSL *ssl = c->tls->ssl;
	char cn[256];
	int resumed = SSL_session_reused(ssl);

	hs_unlink(w, c->tls);
	bus_counter_add(w->bus, w->slot, CTR_TLS_HANDSHAKES, 1);
	if (resumed)
		bus_counter_add(w->bus, w->slot, CTR_TLS_RESUMED, 1);
	if (tls_peer_cn(c, cn, sizeof(cn)) == -1)
		strcpy(cn, "");
	log_debug("client %u: %s %s%s%s%s%s", c->id, SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl), resumed ? ", resumed" : "",
	    cn[0] ? ", peer CN \"" : "", cn, cn[0] ? "\"" : "");
}

/* Go on with c's handshake (see tls.h). */
int
tls_handshake(struct client *c)
{
	SSL *ssl = c->tls->ssl;
	int r = SSL_do_handshake(ssl);

	if (r == 1) {
		handshake_done(c);
		return 1;
	}
	int err = SSL_get_error(ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		worker_want(c, err == SSL_ERROR_WANT_READ,
		    err == SSL_ERROR_WANT_WRITE);
		return 0;
	}
	/* Plaintext on a TLS port, a scanner, a client refusing our
	 * certificate or refused its own: the alert (if any) is written;
	 * what it sent is read and dropped, so the close is not a reset. */
	worker_limit(c->w, CTR_TLS_HANDSHAKE_FAILURES, 0, "client %u: TLS "
	    "handshake failed: %s: closed", c->id, ssl_reason(err));
	client_close_drained(c);
	return -1;
}

/* As read(2), through OpenSSL (see tls.h and the top of this file). */
ssize_t
tls_read(struct client *c, char *buf, size_t len)
{
	struct tls_conn *t = c->tls;
	size_t got = 0, n;

	while (t->rd_errno == 0 && len - got >= TLS_RECORD_MAX) {
		if (SSL_read_ex(t->ssl, buf + got, len - got, &n) == 1) {
			got += n;
			continue;
		}
		int err = SSL_get_error(t->ssl, 0);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			break;
		if (err == SSL_ERROR_ZERO_RETURN ||
		    (err == SSL_ERROR_SYSCALL && errno == 0)) {
			t->rd_errno = -1;	/* close_notify, or TCP's end */
			ERR_clear_error();
		} else {
			log_debug("client %u: TLS read: %s", c->id,
			    ssl_reason(err));
			t->rd_errno = err == SSL_ERROR_SYSCALL ? errno : EPROTO;
		}
	}
	if (got > 0)
		return got;
	if (t->rd_errno == 0) {
		errno = EAGAIN;
		return -1;
	}
	if (t->rd_errno == -1)
		return 0;
	errno = t->rd_errno;
	return -1;
}

/* 1 if a read has an end or an error to give that epoll will not tell. */
int
tls_input_ready(const struct client *c)
{
	return c->tls != NULL && !c->tls->handshaking &&
	    (c->tls->rd_errno != 0 || SSL_pending(c->tls->ssl) > 0);
}

/* errno for a failed write (err from SSL_get_error), the queue cleared. */
static int
write_errno(struct client *c, int err)
{
	int e = err == SSL_ERROR_SYSCALL && errno != 0 ? errno : EPIPE;

	log_debug("client %u: TLS write: %s", c->id, ssl_reason(err));
	return e;
}

/*
 * Write len bytes with SSL_write until done.  Returns len, or what was
 * written before the socket filled (*err SSL_ERROR_WANT_*), or before an
 * error (*err set).  One call writes one record (partial-write mode).
 */
static size_t
write_records(SSL *ssl, const char *p, size_t len, int *err)
{
	size_t done = 0, n;

	*err = SSL_ERROR_NONE;
	while (done < len) {
		if (SSL_write_ex(ssl, p + done, len - done, &n) != 1) {
			*err = SSL_get_error(ssl, 0);
			break;
		}
		done += n;
	}
	return done;
}

static int
want_more(int err)
{
	return err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ;
}

/* Send the bytes held (see tls.h). */
int
tls_flush(struct client *c)
{
	struct tls_conn *t = c->tls;
	int err;

	if (t == NULL || t->held == NULL)
		return 1;
	t->held_off += write_records(t->ssl, t->held + t->held_off,
	    t->held_len - t->held_off, &err);
	if (t->held_off == t->held_len) {
		free(t->held);
		t->held = NULL;
		t->held_off = t->held_len = 0;
		return 1;
	}
	if (want_more(err)) {
		worker_want(c, c->reading, 1);
		return 0;
	}
	errno = write_errno(c, err);
	return -1;
}

/* 1 if bytes are held for c. */
int
tls_holds(const struct client *c)
{
	return c->tls != NULL && c->tls->held != NULL;
}

/*
 * As sendmsg(2) on iov, through OpenSSL.
 *
 * The batch is gathered into the worker's scratch a record's worth
 * (TLS_RECORD_MAX) at a time and written with SSL_write: the bus's
 * records are copied once, never formatted per message, and a batch that
 * fits a record (the usual one) is one SSL_write and one send.
 *
 * A write the socket cannot take: OpenSSL has then made a record of some
 * of the bytes presented and holds it, and the retry must present the
 * same bytes again (SSL_write's rule; ACCEPT_MOVING_WRITE_BUFFER lets
 * them be at another address).  The cursor design has no copy of them to
 * present: the bus moves on, and a conflation or a reply may come before
 * the retry.  So the bytes of that call, at most TLS_RECORD_MAX, are
 * copied and held here, counted as taken (the caller's cursor moves past
 * them, as after a short sendmsg), and the next write or tls_flush
 * presents exactly them first.  A slow TLS client thus holds at most one
 * record here besides what a plaintext one holds (a cut line in its
 * output), and OpenSSL's buffer for the record it made.
 */
ssize_t
tls_writev(struct client *c, const struct iovec *iov, int niov)
{
	struct tls_conn *t = c->tls;
	char *chunk = c->w->tls->scratch;
	size_t total = 0, off = 0;
	int i = 0, err, r;

	if (t->handshaking || (r = tls_flush(c)) == 0) {
		errno = EAGAIN;
		return -1;
	}
	if (r == -1)
		return -1;
	for (;;) {
		size_t len = 0;
		while (i < niov && len < TLS_RECORD_MAX) {
			size_t take = iov[i].iov_len - off;
			if (take > TLS_RECORD_MAX - len)
				take = TLS_RECORD_MAX - len;
			memcpy(chunk + len, (const char *)iov[i].iov_base + off,
			    take);
			len += take;
			off += take;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		}
		if (len == 0)
			return total;
		size_t done = write_records(t->ssl, chunk, len, &err);
		if (done == len) {
			total += len;
			continue;
		}
		if (!want_more(err)) {
			if (total + done > 0)
				return total + done;	/* the error comes next */
			errno = write_errno(c, err);
			return -1;
		}
		if ((t->held = malloc(len - done)) == NULL) {
			/* OpenSSL holds a record of these bytes and nothing
			 * can present them again: the stream is broken. */
			errno = ENOMEM;
			return -1;
		}
		memcpy(t->held, chunk + done, len - done);
		t->held_off = 0;
		t->held_len = len - done;
		worker_want(c, c->reading, 1);
		return total + len;
	}
}

/* close_notify before a BYE's close; whether it went out is not waited
 * for (the close follows). */
void
tls_close_notify(struct client *c)
{
	if (c->tls == NULL || c->tls->handshaking)
		return;
	SSL_shutdown(c->tls->ssl);
	ERR_clear_error();
}

/* Free c's TLS state. */
void
tls_free(struct client *c)
{
	struct tls_conn *t = c->tls;

	if (t == NULL)
		return;
	hs_unlink(c->w, t);
	SSL_free(t->ssl);
	free(t->held);
	free(t);
	c->tls = NULL;
}

/* The verified peer certificate's CN (see tls.h). */
int
tls_peer_cn(const struct client *c, char *buf, size_t len)
{
	unsigned char *utf8;
	X509 *x;

	if (c->tls == NULL || c->tls->handshaking ||
	    (x = SSL_get0_peer_certificate(c->tls->ssl)) == NULL ||
	    SSL_get_verify_result(c->tls->ssl) != X509_V_OK)
		return -1;
	X509_NAME *name = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	/* None, or several: no one name to stand for the peer. */
	if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return -1;
	int n = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n < 0) {
		ERR_clear_error();
		return -1;
	}
	if (memchr(utf8, '\0', n) != NULL || (size_t)n >= len) {
		OPENSSL_free(utf8);
		return -1;
	}
	memcpy(buf, utf8, n);
	buf[n] = '\0';
	OPENSSL_free(utf8);
	return n;
}
