/*
 * Descriptors passed over a unix socket (SCM_RIGHTS): the master's
 * control messages that carry one, and an upgrade's hand-over of
 * listeners, the bus and client connections (heraldd(8), "Upgrades").
 */
#ifndef HERALD_FDPASS_H
#define HERALD_FDPASS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define FDPASS_MAX	250	/* descriptors in one message: the kernel
				 * takes at most SCM_MAX_FD (253) */

/*
 * Send iov as one message with nfds descriptors (0..FDPASS_MAX) attached;
 * flags as sendmsg's.  Returns what sendmsg returns.
 */
ssize_t	fdpass_send(int sock, const struct iovec *iov, int iovcnt,
	    const int *fds, int nfds, int flags);

/*
 * Receive one message into buf and up to maxfds descriptors into fds
 * (*nfds set), close-on-exec.  A message with more descriptors than
 * maxfds, or cut short, is an error (EMSGSIZE; whatever came is closed).
 * Returns what recvmsg returns.
 */
ssize_t	fdpass_recv(int sock, void *buf, size_t len, int *fds, int *nfds,
	    int maxfds, int flags);

#endif /* HERALD_FDPASS_H */
