/*
 * The configuration: every setting, its default, its checks, and whether a
 * reload (SIGHUP) changes it in the running processes.  Read with libconfig
 * from a file, then -o NAME=VALUE overrides on top.
 */
#ifndef HERALD_CONFIG_H
#define HERALD_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_FILE	SYSCONFDIR "/herald/heraldd.conf"

/* The most worker processes (the `workers` setting's bound).  Every
 * per-worker table is sized by it: listener sockets, wake descriptors,
 * address counts, the bus's counter slots (heraldd.h ties them). */
#define WORKERS_MAX		128

enum slow_policy { SLOW_CONFLATE, SLOW_DISCONNECT };

struct strlist {
	int	  n;
	char	**v;
};

struct herald_config {
	char		*file;		/* where it was read from, or NULL */
	int		 workers;
	struct strlist	 listen;
	struct strlist	 ingest;
	int		 ingest_mode;
	struct strlist	 http;
	int		 http_max_header;
	int		 http_request_timeout;
	char		*bus_file;
	int64_t		 bus_size;
	int		 bus_retained_max;
	int64_t		 bus_retained_bytes;
	int		 clients_max;
	int		 clients_per_address;
	int		 clients_max_subs;
	int		 clients_max_line;
	int		 clients_max_errors;
	int		 clients_heartbeat;
	int		 clients_idle_timeout;
	int		 clients_slow_policy;
	int64_t		 clients_out_limit;
	struct strlist	 clients_publish;
	int		 ingest_max_line;
	int		 max_payload;
	char		*log_file;
	int		 log_syslog;
	char		*log_facility;
	char		*log_level;
	char		*user;
	char		*group;
	char		*pidfile;
	int		 shutdown_grace;
	int		 tcp_keepalive;
	int		 tcp_keepidle;
	int		 tcp_keepintvl;
	int		 tcp_keepcnt;
	int		 tcp_user_timeout;
	int64_t		 tcp_sndbuf;
	char		*tcp_congestion;
	int		 status_interval;
	char		*status_prefix;

	/* Who may connect, read and publish (authdb.h) */
	int		 auth_on;	/* an auth setting says who may do
					 * what (resolve): else herald is
					 * open to every connection */
	char		*auth_users;
	char		*auth_acl;
	struct strlist	 auth_jwt_keys;
	int		 auth_jwt_require_exp;
	char		*auth_jwt_audience;
	struct strlist	 auth_anonymous;
	int		 auth_required;
	int		 auth_fail_delay_ms;
	int		 auth_cert_user;
	int		 clients_max_auth_failures;
	/* tls: the tls: listeners (worker/tls.c, common/tlsctx.c) */
	char		*tls_cert;
	char		*tls_key;
	char		*tls_client_ca;
	char		*tls_min_version;
	char		*tls_ciphers;

	/* Many nodes on one Redis (producer/cluster.c); "" = one node */
	char		*cluster_redis;
	char		*cluster_key;
	char		*cluster_user;
	char		*cluster_password;	/* never logged */
	int		 cluster_trim;
	int64_t		 cluster_hold;
	int		 cluster_timeout;
};

/* 1 if any listen, ingest or http address is a tls: one. */
int	config_has_tls(const struct herald_config *);

/* Called with one "file:line: message" per error found. */
typedef void	(*config_err_fn)(void *arg, const char *msg);

/*
 * Build a configuration: defaults, then the file (or text, when not NULL,
 * parsed as if read from file), then the overrides ("NAME=VALUE").
 * Returns the number of errors (each reported through errfn); on success
 * *out holds the result (free with config_free).
 */
int	config_load(struct herald_config *out, const char *file,
	    const char *text, char **overrides, int noverrides,
	    config_err_fn errfn, void *arg);

/* Free what config_load allocated. */
void	config_free(struct herald_config *);

/*
 * Compare a reloaded configuration with the running one: copy into cur the
 * settings that may change live, and report through errfn each changed
 * setting that needs a restart.  Returns the number of those.
 */
int	config_apply_reload(struct herald_config *cur,
	    const struct herald_config *next, config_err_fn errfn, void *arg);

/* Print every setting with its default and meaning (heraldd -o help). */
void	config_print_help(FILE *);

/* 1 if a listener at this address (as configured) can only be reached
 * from this machine: a unix socket, a loopback address or "localhost". */
int	config_addr_is_local(const char *addr);

/* Read a whole file into a NUL-terminated string; NULL and errno on error. */
char	*config_read_text(const char *path);

#endif /* HERALD_CONFIG_H */
