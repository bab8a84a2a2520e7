/*
 * A socket BIO for OpenSSL that sends with send(2) and MSG_NOSIGNAL, and
 * reads with recv(2), both without blocking.  OpenSSL's own socket BIO
 * uses write(2) and read(2): a peer that closed raises SIGPIPE in a
 * library's caller, and write(2) on a socket takes the file's position
 * lock and the VFS path for nothing, a cost paid on every record of a
 * fan-out.  The BIO reads the descriptor through a pointer, so that the
 * owner may change or close it (-1) without telling OpenSSL.
 */
#ifndef HERALD_SOCKBIO_H
#define HERALD_SOCKBIO_H

#include <openssl/bio.h>

/* The method (make it once per process; BIO_meth_free it at the end);
 * NULL when out of memory. */
BIO_METHOD *sockbio_method(void);

/* A BIO of method m on the descriptor *fdp; NULL when out of memory. */
BIO	*sockbio_new(BIO_METHOD *m, int *fdp);

#endif /* HERALD_SOCKBIO_H */
