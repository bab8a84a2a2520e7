/*
 * Making a connection: resolve, connect without blocking (trying each
 * address the name has), the TLS handshake if the client speaks TLS,
 * wait for HELLO, AUTH if the client has credentials (lh_auth.c), then
 * resubscribe and send what waited for the connection.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lh.h"

/* Close the socket (its events first) and forget any partial input. */
void
lh_close_socket(struct herald_client *c)
{
	lh_ev_drop_io(c);
	lh_tls_close(c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	c->ai_list = c->ai_next = NULL;
	c->in_len = 0;
	c->in_scan = 0;
}

/* The attempt failed with err (text set): lost, as far as callers care. */
static void
attempt_failed(struct herald_client *c, int err)
{
	lh_lost(c, err);
}

/* The socket is connected: now HELLO is due. */
static void
connected(struct herald_client *c)
{
	int one = 1;

	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	c->ai_list = c->ai_next = NULL;
	if (!c->addr.is_unix)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = LH_HELLO;
	c->last_in = lh_now_ms();
	if (c->tls_ctx != NULL)
		lh_tls_start(c);
}

/*
 * Start a non-blocking connect to sa.  Returns 0 when connected or in
 * progress, -1 with errno when it failed at once.
 */
static int
start_socket(struct herald_client *c, const struct sockaddr *sa,
    socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -1;
	if (connect(fd, sa, len) == 0) {
		c->fd = fd;
		connected(c);
		return 0;
	}
	if (errno == EINPROGRESS) {
		c->fd = fd;
		c->state = LH_CONNECTING;
		return 0;
	}
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Try the resolved addresses in turn until one connects or is trying. */
static void
try_next(struct herald_client *c, int last_errno)
{
	while (c->ai_next != NULL) {
		struct addrinfo *ai = c->ai_next;
		c->ai_next = ai->ai_next;
		if (start_socket(c, ai->ai_addr, ai->ai_addrlen) == 0)
			return;
		last_errno = errno;
	}
	attempt_failed(c, lh_fail(c, HERALD_ECONNECT, "connect to %s: %s",
	    c->addr_str, strerror(last_errno)));
}

/* Connect to a unix socket (at once: no resolving, no waiting). */
static void
start_unix(struct herald_client *c)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, c->addr.path, strlen(c->addr.path));
	if (start_socket(c, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		attempt_failed(c, lh_fail(c, HERALD_ECONNECT, "connect to "
		    "%s: %s", c->addr_str, strerror(errno)));
}

/* Begin an attempt: resolve the address and start connecting. */
void
lh_connect_start(struct herald_client *c)
{
	struct addrinfo hints;
	int rc;

	lh_close_socket(c);
	c->state = LH_CONNECTING;
	c->deadline = lh_now_ms() + c->opt.connect_timeout_ms;
	c->bye[0] = '\0';
	if (c->addr.is_unix) {
		start_unix(c);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(c->addr.host, c->addr.port, &hints, &c->ai_list);
	if (rc != 0) {
		c->ai_list = NULL;
		attempt_failed(c, lh_fail(c, HERALD_EADDR, "cannot resolve "
		    "\"%s\": %s", c->addr.host, rc == EAI_SYSTEM ?
		    strerror(errno) : gai_strerror(rc)));
		return;
	}
	c->ai_next = c->ai_list;
	try_next(c, ECONNREFUSED);
}

/* The socket of a connect in progress is ready: did it connect? */
void
lh_connect_check(struct herald_client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == 0) {
		connected(c);
		return;
	}
	if (err == EINPROGRESS || err == EINTR)
		return;
	lh_ev_drop_io(c);
	close(c->fd);
	c->fd = -1;
	try_next(c, err);
}

/* An attempt ran out of time (connecting, or waiting for HELLO). */
void
lh_connect_timeout(struct herald_client *c)
{
	if (c->state == LH_CONNECTING)
		attempt_failed(c, lh_fail(c, HERALD_ETIMEOUT, "connect to %s: "
		    "timed out after %d ms", c->addr_str,
		    c->opt.connect_timeout_ms));
	else if (c->state == LH_TLS)
		attempt_failed(c, lh_fail(c, HERALD_ETIMEOUT, "TLS handshake "
		    "with %s: no answer within %d ms", c->addr_str,
		    c->opt.connect_timeout_ms));
	else if (c->state == LH_AUTH)
		attempt_failed(c, lh_fail(c, HERALD_ETIMEOUT, "%s: no answer "
		    "to AUTH within %d ms", c->addr_str,
		    c->opt.connect_timeout_ms));
	else
		attempt_failed(c, lh_fail(c, HERALD_ETIMEOUT, "%s: no HELLO "
		    "within %d ms (is it a herald server?)", c->addr_str,
		    c->opt.connect_timeout_ms));
}

/*
 * HELLO came with the bus head: the connection is ready.  A head below
 * what this client has seen means the server's bus is not the one it
 * knew: start the subscriptions over from snapshots.  Then resubscribe
 * (resuming from the position) and send what waited.
 */
void
lh_ready(struct herald_client *c, uint64_t head)
{
	char text[128];

	c->state = LH_READY;
	c->ready_at = lh_now_ms();
	c->hello_seq = head;
	if (head < c->pos) {
		snprintf(text, sizeof(text), "the server's bus is at seq %llu,"
		    " below this client's %llu: starting over",
		    (unsigned long long)head, (unsigned long long)c->pos);
		c->pos = 0;
		lh_subs_restart(c);
		lh_event(c, HERALD_EVENT_RESET, 0, text, NULL, head, 0);
	}
	for (struct lh_sub *s = c->subs; s != NULL; s = s->next)
		if (s->state == LH_SUB_NEW)
			lh_send_sub(c, s);
	lh_flush_deferred(c);
	lh_event(c, HERALD_EVENT_CONNECTED, 0, c->addr_str, NULL, head, 0);
	lh_write(c);
}
