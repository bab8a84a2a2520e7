/*
 * TLS on a worker's connections (tls:HOST:PORT listeners): the handshake
 * on the worker's own epoll set, then every byte in and out through
 * OpenSSL.  The layer knows sockets and bytes, not the line protocol:
 * client.c and fanout.c call it where they would read(2) and sendmsg(2),
 * so that any listener (client, ingest, and HTTP to come) can be wrapped.
 * The context is tlsctx.h's.
 */
#ifndef HERALD_TLS_H
#define HERALD_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define TLS_HANDSHAKE_MS	10000	/* a handshake not done by then is
					 * closed (tls_handshake_timeouts):
					 * a connection that never finishes
					 * would hold its SSL (tens of KB)
					 * for ever; a real client over a
					 * slow link needs a few round trips */
#define TLS_RECORD_MAX		16384	/* the plaintext of one TLS record
					 * (2^14, RFC 8446 5.1): the most
					 * a write hands OpenSSL at once, and
					 * the room a read always gives it */

struct client;
struct worker;

/* The worker's TLS: its context (inherited from the master), the
 * connections in their handshake, the write scratch.  NULL without
 * tls: listeners. */
void	tls_worker_init(struct worker *);
/* A reload: a new context from the configuration's files for new
 * handshakes (established connections keep theirs); a bad one is
 * refused and logged, and the one in use stays. */
void	tls_worker_reload(struct worker *);
/* Close the handshakes older than TLS_HANDSHAKE_MS (once a second). */
void	tls_expire(struct worker *);

/* Begin the server side of a handshake on c's socket.  Returns 0, or -1
 * if memory (or OpenSSL) failed: logged, the caller closes c. */
int	tls_start(struct client *);
/* Go on with c's handshake.  Returns 1 when it is done (c is then read
 * and written as any client), 0 while it waits for the socket (the
 * events it needs are set), -1 if it failed (counted, logged, c closed). */
int	tls_handshake(struct client *);
/* 1 while c's handshake is not done: nothing may be written to it. */
int	tls_handshaking(const struct client *);

/* As read(2): bytes of plaintext (up to len, which must be at least
 * TLS_RECORD_MAX), 0 at the end, -1 with errno (EAGAIN: none yet). */
ssize_t	tls_read(struct client *, char *buf, size_t len);
/* 1 if c has input that the socket will not announce: an end or an error
 * seen after data was returned (tls_read gives it next). */
int	tls_input_ready(const struct client *);
/*
 * As sendmsg(2) on iov: the bytes taken, or -1 with errno (EAGAIN: none).
 * Taken bytes include those of a record that could not go out yet: they
 * are held and sent first by the next tls_writev or tls_flush (EPOLLOUT
 * is then wanted).
 */
ssize_t	tls_writev(struct client *, const struct iovec *, int n);
/* Send the bytes held.  Returns 1 when none is left, 0 if the socket is
 * full (EPOLLOUT wanted), -1 with errno if the connection failed. */
int	tls_flush(struct client *);
/* 1 if bytes are held for c (it is owed them). */
int	tls_holds(const struct client *);
/* Say close_notify (once, not waiting): before a BYE's close. */
void	tls_close_notify(struct client *);
/* Free c's TLS state (client_free). */
void	tls_free(struct client *);

/*
 * The common name (CN) of the certificate c's peer showed and that
 * tls.client_ca verified: copied to buf as a NUL-terminated UTF-8 string.
 * Returns its length, or -1 if there is none (not TLS, no verified
 * certificate, no CN or several, a NUL in it, or longer than len - 1).
 * For auth.cert_user: the CN is the connection's user.
 */
int	tls_peer_cn(const struct client *, char *buf, size_t len);

#endif /* HERALD_TLS_H */
