/*
 * The TLS context of the tls: listeners (OpenSSL 3), shared by the master
 * (which builds it before forking and checks it for heraldd -t and on a
 * reload) and the workers (which build it anew on a reload), and the
 * session ticket keys every worker shares, so that a session resumes
 * whichever worker accepts the reconnect.  The connections themselves
 * are worker/tls.c's.
 */
#ifndef HERALD_TLSCTX_H
#define HERALD_TLSCTX_H

#include <stddef.h>

#include <openssl/ssl.h>

struct herald_config;

#define TICKET_ROTATE_SEC	3600	/* a new ticket key this often; the
					 * one before still decrypts, so a
					 * ticket resumes for one to two
					 * periods: long enough to ride out a
					 * reconnect storm or a restart of the
					 * network, short enough that a stolen
					 * key opens little */
#define TICKET_NAME_LEN		16	/* OpenSSL's key_name */
#define TICKET_KEY_LEN		32	/* AES-256 and HMAC-SHA256 keys */

/* One ticket key: its name (sent in each ticket), the AES key that
 * encrypts tickets and the HMAC key that authenticates them. */
struct ticket_key {
	unsigned char	name[TICKET_NAME_LEN];
	unsigned char	aes[TICKET_KEY_LEN];
	unsigned char	hmac[TICKET_KEY_LEN];
};

/* The keys a process holds: tickets are made with cur, and accepted
 * (and renewed) with prev.  A CTL_TICKETS message carries this struct. */
struct ticket_keys {
	struct ticket_key	cur, prev;
};

/*
 * Build the context of the tls: listeners from cfg's tls group: the
 * chain and its key (checked to match), client_ca (verify clients),
 * min_version, ciphers, no renegotiation, stateless tickets with the
 * process's ticket keys.  Returns it, or NULL with "setting: file: why"
 * in err.
 */
SSL_CTX	*tlsctx_new(const struct herald_config *cfg, char *err, size_t errlen);

/* Both keys random (before any context is used).  Returns -1 if the
 * random generator failed. */
int	tickets_init(void);
/* A new random key: cur becomes prev (rotation).  Returns -1 if the random
 * generator failed (the keys are unchanged). */
int	tickets_rotate(void);
/* The process's keys (to send them), and replace them (a CTL_TICKETS
 * message of len bytes; -1 if its size is wrong). */
const struct ticket_keys *tickets_get(void);
int	tickets_set(const void *msg, size_t len);

/*
 * OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb):
 * enc = 1 makes a ticket with the current key (returns 1); enc = 0 finds
 * the key by its name: 1 for the current one, 2 for the previous one
 * (accepted, and a new ticket is issued), 0 for none (a full handshake).
 * -1 on an internal error.
 */
int	tickets_cb(SSL *, unsigned char *name, unsigned char *iv,
	    EVP_CIPHER_CTX *, EVP_MAC_CTX *, int enc);

#endif /* HERALD_TLSCTX_H */
