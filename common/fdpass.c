/*
 * Descriptors over a unix socket: one message, SCM_RIGHTS.  Received ones
 * are close-on-exec (MSG_CMSG_CLOEXEC), so that nothing passed leaks into
 * a binary an upgrade executes.
 */
#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fdpass.h"

ssize_t
fdpass_send(int sock, const struct iovec *iov, int iovcnt, const int *fds,
    int nfds, int flags)
{
	union {
		char		buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
		struct cmsghdr	align;
	} u;
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
	    .msg_iovlen = iovcnt };

	if (nfds < 0 || nfds > FDPASS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	return sendmsg(sock, &m, flags | MSG_NOSIGNAL);
}

ssize_t
fdpass_recv(int sock, void *buf, size_t len, int *fds, int *nfds, int maxfds,
    int flags)
{
	union {
		char		buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
		struct cmsghdr	align;
	} u;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC);

	*nfds = 0;
	if (n == -1)
		return -1;
	int bad = (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm != NULL;
	    cm = CMSG_NXTHDR(&m, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *p = CMSG_DATA(cm);
		for (int i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, p + i * sizeof(int), sizeof(int));
			if (*nfds < maxfds && !bad)
				fds[(*nfds)++] = fd;
			else {
				bad = 1;
				close(fd);
			}
		}
	}
	if (bad) {
		while (*nfds > 0)
			close(fds[--*nfds]);
		errno = EMSGSIZE;
		return -1;
	}
	return n;
}
