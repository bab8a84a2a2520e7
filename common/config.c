/*
 * The configuration, table-driven: one row per setting gives its path,
 * type, default, bounds, whether a reload changes it live, and its
 * meaning.  Loading, -o overrides, validation and reload all walk it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <libconfig.h>

#include "config.h"
#include "net.h"
#include "topic.h"

enum setting_type {
	T_INT,		/* integer */
	T_SIZE,		/* integer, or string with a K, M or G suffix */
	T_BOOL,
	T_STR,
	T_LIST,		/* list or array of strings; -o takes a,b,c */
	T_MODE,		/* octal file mode as a string: "0660" */
	T_POLICY	/* "conflate" | "disconnect" */
};

struct setting {
	const char	*path;
	enum setting_type type;
	size_t		 offset;
	const char	*def;
	int64_t		 min, max;	/* for T_INT and T_SIZE */
	int		 live;		/* a reload changes it live */
	const char	*help;
};

#define O(f)	offsetof(struct herald_config, f)
#define KI	1024LL
#define MI	(1024LL * 1024)
#define GI	(1024LL * 1024 * 1024)

static const struct setting settings[] = {
	{ "workers", T_INT, O(workers), "0", 0, WORKERS_MAX, 0,
	  "worker processes; 0 = one per core" },
	{ "listen", T_LIST, O(listen), "0.0.0.0:7400", 0, 0, 0,
	  "client listeners, host:port" },
	{ "ingest", T_LIST, O(ingest), "127.0.0.1:7401", 0, 0, 0,
	  "ingest listeners (PUB to any topic), host:port or unix:PATH" },
	{ "http", T_LIST, O(http), "127.0.0.1:7480", 0, 0, 0,
	  "HTTP listeners (/metrics, /healthz, /events), host:port or "
	  "tls:host:port" },
	{ "http_max_header", T_INT, O(http_max_header), "8192", 256,
	  64 * 1024, 1, "longest HTTP request head, in bytes" },
	{ "http_request_timeout", T_INT, O(http_request_timeout), "10", 1,
	  3600, 1, "seconds an HTTP connection has to send its request" },
	{ "ingest_mode", T_MODE, O(ingest_mode), "0660", 0, 07777, 0,
	  "file mode of unix ingest sockets" },
	{ "bus.file", T_STR, O(bus_file), LOCALSTATEDIR "/lib/herald/heraldd.bus",
	  0, 0, 0, "file backing the bus (\"\" = anonymous memory)" },
	{ "bus.size", T_SIZE, O(bus_size), "64M", 64 * KI, 16 * GI, 0,
	  "ring bytes, a power of two" },
	{ "bus.retained_max", T_INT, O(bus_retained_max), "65536", 16,
	  16 * 1024 * 1024, 0, "topics whose newest value is retained" },
	{ "bus.retained_bytes", T_SIZE, O(bus_retained_bytes), "64M", 64 * KI,
	  16 * GI, 0, "memory for retained values" },
	{ "clients.max", T_INT, O(clients_max), "100000", 1, 10000000, 1,
	  "clients connected at once, over all workers" },
	{ "clients.per_address", T_INT, O(clients_per_address), "10000", 1,
	  10000000, 1, "clients connected at once from one address" },
	{ "clients.max_subs", T_INT, O(clients_max_subs), "256", 1, 65536, 1,
	  "subscriptions per client" },
	{ "clients.max_line", T_INT, O(clients_max_line), "4096", 64,
	  1024 * 1024, 1, "longest line from a client listener" },
	{ "clients.max_errors", T_INT, O(clients_max_errors), "16", 1, 1000000,
	  1, "bad lines in a row before BYE too-many-errors" },
	{ "clients.heartbeat", T_INT, O(clients_heartbeat), "30", 0, 86400, 1,
	  "seconds of silence before an HB line (0 = never)" },
	{ "clients.idle_timeout", T_INT, O(clients_idle_timeout), "0", 0,
	  31 * 86400, 1, "seconds without a line from a client before "
	  "BYE idle (0 = never)" },
	{ "clients.slow_policy", T_POLICY, O(clients_slow_policy), "conflate",
	  0, 0, 1, "slow clients: conflate (GAP + newest values) or "
	  "disconnect" },
	{ "clients.out_limit", T_SIZE, O(clients_out_limit), "1M", 4 * KI,
	  16 * GI, 1, "bus bytes a client may lag behind before it is slow" },
	{ "clients.publish", T_LIST, O(clients_publish), "", 0, 0, 1,
	  "patterns clients may PUB to on client listeners" },
	{ "ingest_max_line", T_INT, O(ingest_max_line), "0", 0,
	  64 * 1024 * 1024, 1, "longest line on ingest (0 = max_payload + 512)" },
	{ "max_payload", T_INT, O(max_payload), "65536", 1, 16 * 1024 * 1024,
	  1, "largest PUB payload, in bytes" },
	{ "log.file", T_STR, O(log_file), "", 0, 0, 0,
	  "log file (\"\" = stderr in the foreground, else syslog)" },
	{ "log.syslog", T_BOOL, O(log_syslog), "true", 0, 0, 0,
	  "log to syslog when detached and no log.file is set" },
	{ "log.facility", T_STR, O(log_facility), "daemon", 0, 0, 0,
	  "syslog facility" },
	{ "log.level", T_STR, O(log_level), "info", 0, 0, 1,
	  "error, warning, info or debug" },
	{ "user", T_STR, O(user), "", 0, 0, 0,
	  "user to run as after binding (\"\" = stay)" },
	{ "group", T_STR, O(group), "", 0, 0, 0,
	  "group to run as (\"\" = the user's)" },
	{ "pidfile", T_STR, O(pidfile), RUNSTATEDIR "/heraldd.pid", 0, 0, 0,
	  "file holding the master's pid (\"\" = none)" },
	{ "shutdown_grace", T_INT, O(shutdown_grace), "5", 1, 3600, 1,
	  "seconds a stop waits for children before killing them" },
	{ "tcp.keepalive", T_BOOL, O(tcp_keepalive), "true", 0, 0, 1,
	  "TCP keepalive on client connections" },
	{ "tcp.keepidle", T_INT, O(tcp_keepidle), "60", 1, 86400, 1,
	  "seconds idle before the first keepalive probe" },
	{ "tcp.keepintvl", T_INT, O(tcp_keepintvl), "10", 1, 3600, 1,
	  "seconds between keepalive probes" },
	{ "tcp.keepcnt", T_INT, O(tcp_keepcnt), "5", 1, 100, 1,
	  "unanswered probes before the connection is dropped" },
	{ "tcp.user_timeout", T_INT, O(tcp_user_timeout), "60000", 0,
	  86400000, 1, "ms unacknowledged data may wait (TCP_USER_TIMEOUT)" },
	{ "tcp.sndbuf", T_SIZE, O(tcp_sndbuf), "0", 0, 64 * MI, 1,
	  "send buffer of client sockets (0 = the kernel's autotuning)" },
	{ "tcp.congestion", T_STR, O(tcp_congestion), "cubic", 0, 0, 1,
	  "congestion control of client sockets (\"\" = the system's)" },
	{ "status.interval", T_INT, O(status_interval), "1", 0, 3600, 1,
	  "seconds between the built-in status figures (0 = off)" },
	{ "status.prefix", T_STR, O(status_prefix), "", 0, 0, 1,
	  "topic prefix of the status figures (\"\" = sys/<hostname>)" },
	{ "clients.max_auth_failures", T_INT, O(clients_max_auth_failures),
	  "3", 1, 1000, 1, "failed AUTHs on a connection before "
	  "BYE auth-failed" },
	{ "auth.users", T_STR, O(auth_users), "", 0, 0, 1,
	  "users file: user:crypt-hash lines (herald passwd)" },
	{ "auth.acl", T_STR, O(auth_acl), "", 0, 0, 1,
	  "ACL file: user blocks of read and publish patterns" },
	{ "auth.jwt_keys", T_LIST, O(auth_jwt_keys), "", 0, 0, 1,
	  "files of token keys: an HS256 secret or a PEM public key" },
	{ "auth.jwt_require_exp", T_BOOL, O(auth_jwt_require_exp), "true", 0,
	  0, 1, "refuse tokens without an exp claim" },
	{ "auth.jwt_audience", T_STR, O(auth_jwt_audience), "", 0, 0, 1,
	  "the aud a token must carry (\"\" = not checked)" },
	{ "auth.anonymous", T_LIST, O(auth_anonymous), "", 0, 0, 1,
	  "patterns an anonymous connection may read" },
	{ "auth.required", T_BOOL, O(auth_required), "false", 0, 0, 1,
	  "client, http (and non-local ingest) listeners require AUTH first" },
	{ "auth.fail_delay_ms", T_INT, O(auth_fail_delay_ms), "500", 0, 60000,
	  1, "delay before a failed AUTH is answered" },
	{ "auth.cert_user", T_BOOL, O(auth_cert_user), "false", 0, 0, 1,
	  "a verified client certificate's CN authenticates its connection" },
	/* TLS of the tls:HOST:PORT listeners (heraldd.conf(5), TLS). */
	{ "tls.cert", T_STR, O(tls_cert), "", 0, 0, 1,
	  "certificate chain of tls: listeners, PEM (server first)" },
	{ "tls.key", T_STR, O(tls_key), "", 0, 0, 1,
	  "its private key, PEM (\"\" = in the tls.cert file)" },
	{ "tls.client_ca", T_STR, O(tls_client_ca), "", 0, 0, 1,
	  "CA certificates, PEM: clients must show one they signed "
	  "(\"\" = no client certificates)" },
	{ "tls.min_version", T_STR, O(tls_min_version), "1.2", 0, 0, 1,
	  "lowest TLS version accepted: 1.2 or 1.3" },
	{ "tls.ciphers", T_STR, O(tls_ciphers), "", 0, 0, 1,
	  "OpenSSL cipher list for TLS 1.2 (\"\" = OpenSSL's default; "
	  "TLS 1.3 suites are always OpenSSL's)" },
	{ "cluster.redis", T_STR, O(cluster_redis), "", 0, 0, 0,
	  "Redis of the cluster, host:port or unix:PATH (\"\" = one node)" },
	{ "cluster.key", T_STR, O(cluster_key), "herald", 0, 0, 0,
	  "prefix of the cluster's Redis keys" },
	{ "cluster.user", T_STR, O(cluster_user), "", 0, 0, 0,
	  "Redis user (AUTH; \"\" = the default user)" },
	{ "cluster.password", T_STR, O(cluster_password), "", 0, 0, 0,
	  "Redis password (AUTH; \"\" = none)" },
	{ "cluster.trim", T_INT, O(cluster_trim), "0", 0, INT_MAX, 0,
	  "records the Redis stream keeps (0 = as many as the ring can)" },
	{ "cluster.hold", T_SIZE, O(cluster_hold), "16M", 1, 16 * GI, 0,
	  "PUB bytes held while Redis is away, then -ERR busy" },
	{ "cluster.timeout", T_INT, O(cluster_timeout), "2000", 100, 600000, 0,
	  "ms Redis may take to answer before the link is dropped" },
};
#define NSETTINGS	(sizeof(settings) / sizeof(settings[0]))

struct loader {
	struct herald_config	*cfg;
	const char		*file;
	config_err_fn		 errfn;
	void			*arg;
	int			 errors;
};

static void
report(struct loader *l, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
report(struct loader *l, int line, const char *fmt, ...)
{
	char msg[512], full[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(full, sizeof(full), "%s:%d: %s", l->file, line, msg);
	else
		snprintf(full, sizeof(full), "%s: %s", l->file, msg);
	l->errors++;
	if (l->errfn != NULL)
		l->errfn(l->arg, full);
}

static const struct setting *
find_setting(const char *path)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].path, path) == 0)
			return &settings[i];
	return NULL;
}

static void
strlist_free(struct strlist *sl)
{
	for (int i = 0; i < sl->n; i++)
		free(sl->v[i]);
	free(sl->v);
	sl->v = NULL;
	sl->n = 0;
}

static void
strlist_add(struct strlist *sl, const char *s)
{
	char **v = realloc(sl->v, (sl->n + 1) * sizeof(*v));
	char *copy = strdup(s);

	if (v == NULL || copy == NULL) {
		perror("heraldd: out of memory");
		exit(1);
	}
	sl->v = v;
	sl->v[sl->n++] = copy;
}

/* Split "a,b,c" (spaces around items ignored) into a list. */
static void
strlist_split(struct strlist *sl, const char *s)
{
	char *copy = strdup(s), *p = copy, *item;

	if (copy == NULL) {
		perror("heraldd: out of memory");
		exit(1);
	}
	strlist_free(sl);
	while ((item = strsep(&p, ",")) != NULL) {
		while (isspace((unsigned char)*item))
			item++;
		char *end = item + strlen(item);
		while (end > item && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*item != '\0')
			strlist_add(sl, item);
	}
	free(copy);
}

/* Parse "123", "64K", "16M", "2G" into *v; returns -1 if malformed. */
static int
parse_size(const char *s, int64_t *v)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || end == s || n < 0)
		return -1;
	long long mult = 1;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mult = KI, end++;
		break;
	case 'M':
		mult = MI, end++;
		break;
	case 'G':
		mult = GI, end++;
		break;
	default:
		return -1;
	}
	if (n > LLONG_MAX / mult)	/* too big for any setting anyway */
		return -1;
	n *= mult;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -1;
	*v = n;
	return 0;
}

static int
parse_bool(const char *s, int *v)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
	    strcmp(s, "on") == 0 || strcmp(s, "1") == 0)
		*v = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
	    strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
		*v = 0;
	else
		return -1;
	return 0;
}

/* Store a setting's value given as text (a default or a -o value). */
static int
set_from_string(struct loader *l, const struct setting *s, const char *val,
    int line)
{
	char *field = (char *)l->cfg + s->offset;
	int64_t n;
	char *end;

	switch (s->type) {
	case T_INT:
	case T_SIZE:
		if (s->type == T_INT) {
			errno = 0;
			n = strtoll(val, &end, 10);
			if (errno != 0 || end == val || *end != '\0')
				goto bad;
		} else if (parse_size(val, &n) == -1)
			goto bad;
		if (n < s->min || n > s->max) {
			report(l, line, "%s: %lld is out of range %lld..%lld",
			    s->path, (long long)n, (long long)s->min,
			    (long long)s->max);
			return -1;
		}
		if (s->type == T_INT)
			*(int *)field = (int)n;
		else
			*(int64_t *)field = n;
		return 0;
	case T_BOOL:
		if (parse_bool(val, (int *)field) == -1)
			goto bad;
		return 0;
	case T_STR:
		free(*(char **)field);
		if ((*(char **)field = strdup(val)) == NULL)
			goto bad;
		return 0;
	case T_LIST:
		strlist_split((struct strlist *)field, val);
		return 0;
	case T_MODE:
		errno = 0;
		n = strtoll(val, &end, 8);
		if (errno != 0 || end == val || *end != '\0' || n > s->max)
			goto bad;
		*(int *)field = (int)n;
		return 0;
	case T_POLICY:
		if (strcmp(val, "conflate") == 0)
			*(int *)field = SLOW_CONFLATE;
		else if (strcmp(val, "disconnect") == 0)
			*(int *)field = SLOW_DISCONNECT;
		else
			goto bad;
		return 0;
	}
bad:
	report(l, line, "%s: bad value \"%s\"", s->path, val);
	return -1;
}

/* Store a setting's value from the parsed file. */
static void
set_from_file(struct loader *l, const struct setting *s, config_setting_t *cs)
{
	int line = config_setting_source_line(cs);
	int type = config_setting_type(cs);
	char num[32];

	if (s->type == T_LIST) {
		struct strlist *sl = (struct strlist *)((char *)l->cfg +
		    s->offset);
		if (type == CONFIG_TYPE_STRING) {
			strlist_split(sl, config_setting_get_string(cs));
			return;
		}
		if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) {
			report(l, line, "%s: expected a list of strings",
			    s->path);
			return;
		}
		strlist_free(sl);
		for (int i = 0; i < config_setting_length(cs); i++) {
			const char *item = config_setting_get_string_elem(cs, i);
			if (item == NULL) {
				report(l, line, "%s: item %d is not a string",
				    s->path, i + 1);
				return;
			}
			strlist_add(sl, item);
		}
		return;
	}
	switch (type) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		if (s->type == T_BOOL || s->type == T_STR || s->type == T_MODE ||
		    s->type == T_POLICY)
			break;
		snprintf(num, sizeof(num), "%lld",
		    (long long)config_setting_get_int64(cs));
		set_from_string(l, s, num, line);
		return;
	case CONFIG_TYPE_BOOL:
		if (s->type != T_BOOL)
			break;
		*(int *)((char *)l->cfg + s->offset) =
		    config_setting_get_bool(cs);
		return;
	case CONFIG_TYPE_STRING:
		if (s->type == T_INT || s->type == T_BOOL)
			break;
		set_from_string(l, s, config_setting_get_string(cs), line);
		return;
	default:
		break;
	}
	report(l, line, "%s: wrong type of value", s->path);
}

/* Report every setting in the file that the table does not know. */
static void
check_unknown(struct loader *l, config_setting_t *group, const char *prefix)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		config_setting_t *cs = config_setting_get_elem(group, i);
		char path[256];

		snprintf(path, sizeof(path), "%s%s%s", prefix,
		    prefix[0] ? "." : "", config_setting_name(cs));
		if (config_setting_type(cs) == CONFIG_TYPE_GROUP)
			check_unknown(l, cs, path);
		else if (find_setting(path) == NULL)
			report(l, config_setting_source_line(cs),
			    "unknown setting \"%s\"", path);
	}
}

static void
load_file(struct loader *l, const char *file, const char *text)
{
	config_t lc;

	config_init(&lc);
	int ok = text != NULL ? config_read_string(&lc, text) :
	    config_read_file(&lc, file);
	if (!ok) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			report(l, 0, "cannot read: %s", strerror(errno));
		else
			report(l, config_error_line(&lc), "%s",
			    config_error_text(&lc));
		config_destroy(&lc);
		return;
	}
	check_unknown(l, config_root_setting(&lc), "");
	for (size_t i = 0; i < NSETTINGS; i++) {
		config_setting_t *cs = config_lookup(&lc, settings[i].path);
		if (cs != NULL)
			set_from_file(l, &settings[i], cs);
	}
	config_destroy(&lc);
}

static void
apply_override(struct loader *l, const char *ov)
{
	const char *eq = strchr(ov, '=');
	char path[128];

	if (eq == NULL || eq == ov || (size_t)(eq - ov) >= sizeof(path)) {
		report(l, 0, "-o %s: expected NAME=VALUE", ov);
		return;
	}
	memcpy(path, ov, eq - ov);
	path[eq - ov] = '\0';
	const struct setting *s = find_setting(path);
	if (s == NULL) {
		report(l, 0, "-o %s: unknown setting \"%s\"", ov, path);
		return;
	}
	set_from_string(l, s, eq + 1, 0);
}

static int
is_power_of_two(uint64_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

/* 1 if any listen, ingest or http address is a tls: one. */
int
config_has_tls(const struct herald_config *c)
{
	for (int k = 0; k < 3; k++) {
		const struct strlist *sl = k == 0 ? &c->listen :
		    k == 1 ? &c->ingest : &c->http;
		for (int i = 0; i < sl->n; i++)
			if (strncmp(sl->v[i], NET_TLS_PREFIX,
			    strlen(NET_TLS_PREFIX)) == 0)
				return 1;
	}
	return 0;
}

/* The tls group's checks that need no file (the files themselves are
 * read by tlsctx_new, which heraldd -t runs too). */
static void
validate_tls(struct loader *l)
{
	const struct herald_config *c = l->cfg;

	if (strcmp(c->tls_min_version, "1.2") != 0 &&
	    strcmp(c->tls_min_version, "1.3") != 0)
		report(l, 0, "tls.min_version: \"%s\" is not 1.2 or 1.3",
		    c->tls_min_version);
	if (config_has_tls(c) && c->tls_cert[0] == '\0')
		report(l, 0, "tls.cert: a tls: listener needs a certificate");
}

/* Checks that span settings or need more than a range. */
static void
validate(struct loader *l)
{
	struct herald_config *c = l->cfg;
	char err[256];

	if (c->listen.n == 0)
		report(l, 0, "listen: at least one address is needed");
	for (int i = 0; i < c->listen.n; i++)
		if (net_parse_addr(c->listen.v[i], 0, NULL, err,
		    sizeof(err)) == -1)
			report(l, 0, "listen: %s", err);
	for (int i = 0; i < c->ingest.n; i++)
		if (net_parse_addr(c->ingest.v[i], 1, NULL, err,
		    sizeof(err)) == -1)
			report(l, 0, "ingest: %s", err);
	for (int i = 0; i < c->http.n; i++)
		if (net_parse_addr(c->http.v[i], 0, NULL, err,
		    sizeof(err)) == -1)
			report(l, 0, "http: %s", err);
	for (int i = 0; i < c->clients_publish.n; i++) {
		const char *p = c->clients_publish.v[i];
		if (!pattern_valid(p, strlen(p)))
			report(l, 0, "clients.publish: \"%s\" is not a valid "
			    "pattern", p);
	}
	for (int i = 0; i < c->auth_anonymous.n; i++) {
		const char *p = c->auth_anonymous.v[i];
		if (!pattern_valid(p, strlen(p)))
			report(l, 0, "auth.anonymous: \"%s\" is not a valid "
			    "pattern", p);
	}
	/* Ingest takes PUBs to any topic: only this machine is trusted
	 * with that, unless every connection must say who it is. */
	for (int i = 0; i < c->ingest.n; i++)
		if (!c->auth_required && !config_addr_is_local(c->ingest.v[i]))
			report(l, 0, "ingest: %s is reachable from other "
			    "machines: set auth.required = true (then its "
			    "connections AUTH and publish within their "
			    "publish patterns), or listen on a loopback or "
			    "unix address", c->ingest.v[i]);
	if (c->auth_required && c->auth_users[0] == '\0' &&
	    c->auth_jwt_keys.n == 0 && !c->auth_cert_user)
		report(l, 0, "auth.required: no way to authenticate: set "
		    "auth.users, auth.jwt_keys or auth.cert_user");
	if (!is_power_of_two(c->bus_size))
		report(l, 0, "bus.size: %lld is not a power of two",
		    (long long)c->bus_size);
	/* A record must fit a quarter of the ring (bus_append's bound). */
	if ((int64_t)c->max_payload + TOPIC_MAX + 64 > c->bus_size / 4)
		report(l, 0, "max_payload: %d is too large for bus.size %lld "
		    "(at most a quarter of the ring)", c->max_payload,
		    (long long)c->bus_size);
	if (c->ingest_max_line != 0 && c->ingest_max_line < 64)
		report(l, 0, "ingest_max_line: %d is below 64",
		    c->ingest_max_line);
	validate_tls(l);
	if (c->cluster_redis[0] != '\0' && net_parse_addr(c->cluster_redis, 1,
	    NULL, err, sizeof(err)) == -1)
		report(l, 0, "cluster.redis: %s", err);
	if (c->cluster_key[0] == '\0')
		report(l, 0, "cluster.key: must not be empty");
	if (strcmp(c->log_level, "error") && strcmp(c->log_level, "warning") &&
	    strcmp(c->log_level, "info") && strcmp(c->log_level, "debug"))
		report(l, 0, "log.level: \"%s\" is not error, warning, info "
		    "or debug", c->log_level);
}

/* Fill in the settings whose default depends on others or the machine. */
static void
resolve(struct herald_config *c)
{
	if (c->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers = n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (int)n;
	}
	if (c->ingest_max_line == 0)
		c->ingest_max_line = c->max_payload + 512;
	/* Any of these says who may do what; with none (the defaults, as
	 * the example file sets them), herald is open as it always was. */
	c->auth_on = c->auth_users[0] != '\0' || c->auth_acl[0] != '\0' ||
	    c->auth_jwt_keys.n > 0 || c->auth_anonymous.n > 0 ||
	    c->auth_required || c->auth_cert_user;
	if (c->status_prefix[0] == '\0') {
		char host[256], prefix[300];
		if (gethostname(host, sizeof(host)) == -1)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		/* A hostname is a valid topic segment except for odd bytes. */
		for (char *p = host; *p; p++)
			if (*p <= 0x20 || *p >= 0x7f || *p == '/' ||
			    *p == '+' || *p == '#')
				*p = '_';
		snprintf(prefix, sizeof(prefix), "sys/%s", host);
		free(c->status_prefix);
		c->status_prefix = strdup(prefix);
	}
}

/* Build a configuration: defaults, then file or text, then overrides. */
int
config_load(struct herald_config *out, const char *file, const char *text,
    char **overrides, int noverrides, config_err_fn errfn, void *arg)
{
	struct loader l = { out, file ? file : "(defaults)", errfn, arg, 0 };

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < NSETTINGS; i++)
		set_from_string(&l, &settings[i], settings[i].def, 0);
	if (file != NULL || text != NULL) {
		out->file = file ? strdup(file) : NULL;
		load_file(&l, file, text);
	}
	l.file = "command line";
	for (int i = 0; i < noverrides; i++)
		apply_override(&l, overrides[i]);
	l.file = file ? file : "command line";
	if (l.errors == 0)
		validate(&l);
	if (l.errors == 0)
		resolve(out);
	return l.errors;
}

/* Free what config_load allocated. */
void
config_free(struct herald_config *c)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		char *field = (char *)c + settings[i].offset;
		if (settings[i].type == T_STR)
			free(*(char **)field);
		else if (settings[i].type == T_LIST)
			strlist_free((struct strlist *)field);
	}
	free(c->file);
	memset(c, 0, sizeof(*c));
}

static int
setting_equal(const struct setting *s, const struct herald_config *a,
    const struct herald_config *b)
{
	const char *fa = (const char *)a + s->offset;
	const char *fb = (const char *)b + s->offset;

	switch (s->type) {
	case T_STR:
		return strcmp(*(char *const *)fa, *(char *const *)fb) == 0;
	case T_LIST: {
		const struct strlist *la = (const void *)fa, *lb = (const void *)fb;
		if (la->n != lb->n)
			return 0;
		for (int i = 0; i < la->n; i++)
			if (strcmp(la->v[i], lb->v[i]) != 0)
				return 0;
		return 1;
	}
	case T_SIZE:
		return *(const int64_t *)fa == *(const int64_t *)fb;
	default:
		return *(const int *)fa == *(const int *)fb;
	}
}

/* Move one setting's value from next into cur. */
static void
take_setting(const struct setting *s, struct herald_config *cur,
    const struct herald_config *next)
{
	char *fc = (char *)cur + s->offset;
	const char *fn = (const char *)next + s->offset;

	switch (s->type) {
	case T_STR:
		free(*(char **)fc);
		*(char **)fc = strdup(*(char *const *)fn);
		break;
	case T_LIST: {
		struct strlist *lc = (void *)fc;
		const struct strlist *ln = (const void *)fn;
		strlist_free(lc);
		for (int i = 0; i < ln->n; i++)
			strlist_add(lc, ln->v[i]);
		break;
	}
	case T_SIZE:
		*(int64_t *)fc = *(const int64_t *)fn;
		break;
	default:
		*(int *)fc = *(const int *)fn;
		break;
	}
}

/* Copy the live settings into cur; report the others that changed. */
int
config_apply_reload(struct herald_config *cur,
    const struct herald_config *next, config_err_fn errfn, void *arg)
{
	int restart = 0;

	cur->auth_on = next->auth_on;	/* as live as the auth settings */
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		if (setting_equal(s, cur, next))
			continue;
		if (s->live) {
			take_setting(s, cur, next);
		} else {
			char msg[256];
			snprintf(msg, sizeof(msg), "%s changed: takes effect "
			    "at the next restart", s->path);
			if (errfn != NULL)
				errfn(arg, msg);
			restart++;
		}
	}
	return restart;
}

/* Print every setting with its default and meaning. */
void
config_print_help(FILE *f)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		fprintf(f, "%-22s %-10s %s%s\n", settings[i].path,
		    settings[i].def[0] ? settings[i].def : "\"\"",
		    settings[i].help, settings[i].live ? "" :
		    " [restart]");
}

/* 1 if addr names a unix socket, a loopback address or localhost
 * (a name is not resolved: any other is taken as reachable). */
int
config_addr_is_local(const char *addr)
{
	struct net_addr a;
	char err[256];
	struct in_addr v4;
	struct in6_addr v6;

	if (net_parse_addr(addr, 1, &a, err, sizeof(err)) == -1)
		return 0;
	if (a.is_unix)
		return 1;
	if (strcmp(a.host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, a.host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, a.host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6) ||
		    (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	return 0;
}

/* Read a whole file into a NUL-terminated string. */
char *
config_read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap += 65536);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	int err = ferror(f);
	fclose(f);
	if (err) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}
