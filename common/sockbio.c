/* A socket BIO with send(2) and recv(2) (sockbio.h). */
#include <errno.h>
#include <sys/socket.h>

#include "sockbio.h"

static int
retryable(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int
sockbio_write(BIO *b, const char *buf, int len)
{
	int fd = *(int *)BIO_get_data(b);
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	BIO_clear_retry_flags(b);
	if (n == -1 && retryable())
		BIO_set_retry_write(b);
	return (int)n;
}

static int
sockbio_read(BIO *b, char *buf, int len)
{
	int fd = *(int *)BIO_get_data(b);
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

	BIO_clear_retry_flags(b);
	if (n == -1 && retryable())
		BIO_set_retry_read(b);
	return (int)n;
}

/* Nothing is buffered here: a flush is done at once; the rest of the
 * controls (a socket BIO's pending counts, its fd) are not asked of a
 * BIO that libssl only reads and writes. */
static long
sockbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
sockbio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

BIO_METHOD *
sockbio_method(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() |
	    BIO_TYPE_SOURCE_SINK, "herald socket");

	if (m == NULL)
		return NULL;
	if (BIO_meth_set_write(m, sockbio_write) != 1 ||
	    BIO_meth_set_read(m, sockbio_read) != 1 ||
	    BIO_meth_set_ctrl(m, sockbio_ctrl) != 1 ||
	    BIO_meth_set_create(m, sockbio_create) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

BIO *
sockbio_new(BIO_METHOD *m, int *fdp)
{
	BIO *b = BIO_new(m);

	if (b != NULL)
		BIO_set_data(b, fdp);
	return b;
}
