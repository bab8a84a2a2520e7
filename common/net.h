/*
 * Listeners and socket options.
 */
#ifndef HERALD_NET_H
#define HERALD_NET_H

#include <sys/socket.h>
#include <sys/un.h>

struct herald_config;

/* What a TCP listener's address starts with when it speaks TLS. */
#define NET_TLS_PREFIX	"tls:"

/* A listener address: "host:port", "[v6]:port" or "unix:PATH"; the TCP
 * ones may be written "tls:host:port" (TLS, worker/tls.c). */
struct net_addr {
	int	is_unix;
	int	tls;
	char	host[256];	/* numeric or name; "" = any */
	char	port[16];
	char	path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/*
 * Parse an address; unix:PATH only when allow_unix.  Returns 0, or -1
 * with a message in err.  out may be NULL (check only).
 */
int	net_parse_addr(const char *s, int allow_unix, struct net_addr *out,
	    char *err, size_t errlen);

/*
 * Bind and listen on a TCP address, non-blocking; with reuseport the
 * socket has SO_REUSEPORT so that several (one per worker) share the
 * port.  Returns the fd, or -1 with a message in err.
 */
int	net_listen_tcp(const struct net_addr *a, int reuseport, char *err,
	    size_t errlen);

/*
 * Bind and listen on a unix socket with the given mode, replacing a stale
 * socket file but refusing one a live server answers on.  Returns the fd,
 * or -1 with a message in err.
 */
int	net_listen_unix(const struct net_addr *a, int mode, char *err,
	    size_t errlen);

/* On a TCP listener, for the sockets accepted from it: TCP_NODELAY,
 * keepalive, SO_SNDBUF, TCP_USER_TIMEOUT and the congestion control per
 * config.  Returns -1 (errno set) if the congestion control was refused
 * (unknown, or not permitted to this user). */
int	net_client_options(int fd, const struct herald_config *cfg);

/* The port a socket is bound to (for logs), or 0. */
int	net_bound_port(int fd);

/* Set O_NONBLOCK; returns -1 on error. */
int	net_nonblock(int fd);

#endif /* HERALD_NET_H */
