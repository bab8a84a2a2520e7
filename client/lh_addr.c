/*
 * Addresses as herald writes them: "HOST:PORT", "[IPv6]:PORT" or
 * "unix:/PATH".  Pure code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lh.h"

/* Split "host:port" or "[v6]:port"; returns 0 or -1. */
static int
parse_tcp(const char *s, struct lh_addr *a)
{
	const char *colon, *host = s;
	size_t hostlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		host = s + 1;
		hostlen = close - host;
		colon = close + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		hostlen = colon - s;
		if (memchr(s, ':', hostlen) != NULL)
			return -1;	/* a bare IPv6 address needs [] */
	}
	if (hostlen == 0 || hostlen >= sizeof(a->host))
		return -1;
	memcpy(a->host, host, hostlen);
	a->host[hostlen] = '\0';

	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port < 1 ||
	    port > 65535)
		return -1;
	snprintf(a->port, sizeof(a->port), "%ld", port);
	return 0;
}

/*
 * Parse an address into a.  Returns 0, or -1 with a message in err
 * (which names the address and what was expected).
 */
int
lh_addr_parse(const char *s, struct lh_addr *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "empty address: expected HOST:PORT or "
		    "unix:/PATH");
		return -1;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || strlen(s + 5) >= sizeof(a->path)) {
			snprintf(err, errlen, "bad address \"%s\": expected "
			    "unix:/absolute/path (at most %zu bytes)", s,
			    sizeof(a->path) - 1);
			return -1;
		}
		a->is_unix = 1;
		strcpy(a->path, s + 5);
		return 0;
	}
	if (parse_tcp(s, a) == -1) {
		snprintf(err, errlen, "bad address \"%s\": expected HOST:PORT "
		    "(port 1-65535), [IPv6]:PORT or unix:/PATH", s);
		return -1;
	}
	return 0;
}
