/*
 * Listeners and socket options.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "net.h"

/* Parse an address into out; returns 0 or -1 with a message. */
int
net_parse_addr(const char *s, int allow_unix, struct net_addr *out,
    char *err, size_t errlen)
{
	struct net_addr a;
	const char *colon;
	size_t hostlen;

	memset(&a, 0, sizeof(a));
	if (strncmp(s, NET_TLS_PREFIX, strlen(NET_TLS_PREFIX)) == 0) {
		s += strlen(NET_TLS_PREFIX);
		a.tls = 1;
		if (strncmp(s, "unix:", 5) == 0) {
			snprintf(err, errlen, "\"tls:%s\": TLS is for TCP "
			    "listeners only", s);
			return -1;
		}
	}
	if (strncmp(s, "unix:", 5) == 0) {
		if (!allow_unix) {
			snprintf(err, errlen, "\"%s\": unix sockets are for "
			    "ingest only", s);
			return -1;
		}
		if (s[5] != '/' || strlen(s + 5) >= sizeof(a.path)) {
			snprintf(err, errlen, "\"%s\": expected unix:/absolute"
			    "/path (at most %zu bytes)", s, sizeof(a.path) - 1);
			return -1;
		}
		a.is_unix = 1;
		strcpy(a.path, s + 5);
		goto done;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			goto bad;
		hostlen = close - s - 1;
		memcpy(a.host, s + 1, hostlen < sizeof(a.host) ? hostlen : 0);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			goto bad;
		hostlen = colon - s;
		if (hostlen >= sizeof(a.host))
			goto bad;
		memcpy(a.host, s, hostlen);
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		goto bad;
	snprintf(a.port, sizeof(a.port), "%ld", port);
done:
	if (out != NULL)
		*out = a;
	return 0;
bad:
	snprintf(err, errlen, "\"%s%s\": expected host:port or tls:host:port%s",
	    a.tls ? NET_TLS_PREFIX : "", s, allow_unix ? " or unix:/path" : "");
	return -1;
}

/* Set O_NONBLOCK. */
int
net_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Bind and listen on a TCP address. */
int
net_listen_tcp(const struct net_addr *a, int reuseport, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res;
	int fd, on = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(a->host[0] ? a->host : NULL, a->port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s:%s: %s", a->host, a->port,
		    gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1)
		goto fail;
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 4096) == -1 || net_nonblock(fd) == -1)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	snprintf(err, errlen, "%s:%s: %s", a->host[0] ? a->host : "*",
	    a->port, strerror(errno));
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

/* 1 if a server answers on the unix socket at path. */
static int
unix_socket_alive(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int alive;

	if (fd == -1)
		return 0;
	alive = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return alive;
}

/* Bind and listen on a unix socket with the given mode. */
int
net_listen_unix(const struct net_addr *a, int mode, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, a->path);
	if (lstat(a->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket",
			    a->path);
			return -1;
		}
		if (unix_socket_alive(&sun)) {
			snprintf(err, errlen, "%s: another server is listening "
			    "on it", a->path);
			return -1;
		}
		unlink(a->path);	/* stale, from a crashed run */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(a->path, mode) == -1 || listen(fd, 1024) == -1 ||
	    net_nonblock(fd) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/*
 * The client socket options, set on a TCP listening socket: Linux copies
 * them to every socket accepted from it, which saves a reconnect storm
 * six system calls per connection.  Set again on reload.
 */
int
net_client_options(int fd, const struct herald_config *cfg)
{
	int on = 1, ka = cfg->tcp_keepalive;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, sizeof(ka));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &cfg->tcp_keepidle,
	    sizeof(int));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &cfg->tcp_keepintvl,
	    sizeof(int));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cfg->tcp_keepcnt,
	    sizeof(int));
	/* 0 (the default) cannot be restored once a size was set: a change
	 * back to 0 takes effect at the next restart. */
	if (cfg->tcp_sndbuf > 0) {
		int sz = (int)cfg->tcp_sndbuf;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &cfg->tcp_user_timeout,
	    sizeof(int));
	if (cfg->tcp_congestion != NULL && cfg->tcp_congestion[0] != '\0')
		return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION,
		    cfg->tcp_congestion, strlen(cfg->tcp_congestion));
	return 0;
}

/* The port a socket is bound to, or 0. */
int
net_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}
