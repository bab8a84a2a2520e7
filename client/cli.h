/*
 * herald(1): one command, subcommands in their own files.  This header
 * holds what they share: exit codes, the global options, messages, and
 * the formatting helpers (cli_fmt.c).
 */
#ifndef CLI_H
#define CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "herald.h"

/* Exit codes (herald(1), EXIT STATUS). */
#define EXIT_NOVALUE	1	/* get: the topic has no value */
#define EXIT_USAGE	2	/* bad option, argument or address */
#define EXIT_FAIL	3	/* the server could not be reached, or
				 * refused, or the connection was lost */
#define EXIT_AUTH	4	/* the server refused the user, password or
				 * token, or wants AUTH and none was given,
				 * or the token expired */
#define EXIT_TLS	5	/* TLS failed: a certificate, key or CA
				 * file is unusable, the handshake failed or
				 * the server's certificate did not verify */

#define DEFAULT_SERVER	"127.0.0.1:7400"
#define DEFAULT_INGEST	"127.0.0.1:7401"
#define DEFAULT_TIMEOUT_MS 5000
#define CLI_PASSWORD_MAX 256	/* the longest password libherald sends
				 * (and the server checks) */

enum cli_format { FMT_PLAIN, FMT_JSON, FMT_TABLE };

/* The options every subcommand takes. */
struct cli {
	const char	*prog;		/* "herald" */
	const char	*cmd;		/* the subcommand */
	char		**argv;		/* what getopt parses now */
	const char	*server;	/* --server, $HERALD_SERVER, default */
	const char	*ingest;	/* --ingest, $HERALD_INGEST, default */
	int		 timeout_ms;	/* --timeout */
	int		 tls;		/* --tls (or --ca, --cert) */
	const char	*ca;		/* --ca FILE */
	const char	*cert;		/* --cert FILE */
	const char	*key;		/* --key FILE */
	const char	*user;		/* --user USER */
	const char	*token;		/* --token, or $HERALD_TOKEN */
};

/* A subcommand: run it with the arguments after its name. */
struct cli_cmd {
	const char	*name;
	int		(*run)(struct cli *, int argc, char **argv);
	const char	*synopsis;	/* after "herald NAME " */
	const char	*summary;	/* one line, for herald --help */
	const char	*help;		/* its options, for --help */
};

/* herald.c */
extern const struct cli_cmd cli_cmds[];
int	cli_common_opt(struct cli *, int ch, const char *arg);
void	cli_usage_error(const struct cli *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3), noreturn));
void	cli_help(const struct cli *, const struct cli_cmd *);
void	cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int	cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct herald_client *cli_client(const struct cli *, const char *addr,
	    struct herald_options *, int *exit_code);
struct herald_client *cli_open(const struct cli *, const char *addr,
	    struct herald_options *, int *exit_code);
int	cli_exit_code(int herald_err);
void	cli_flush_stdout(void);
int	cli_run_get(struct cli *, int argc, char **argv);

/* The long options cli_common_opt handles (end a subcommand's table);
 * those without a letter have codes above any subcommand's own. */
enum { CLI_OPT_TLS = 1000, CLI_OPT_CA, CLI_OPT_CERT, CLI_OPT_KEY,
	CLI_OPT_USER, CLI_OPT_TOKEN };
#define CLI_COMMON_SHORT	"s:i:t:h"
#define CLI_COMMON_LONG \
	{ "server", required_argument, NULL, 's' }, \
	{ "ingest", required_argument, NULL, 'i' }, \
	{ "timeout", required_argument, NULL, 't' }, \
	{ "tls", no_argument, NULL, CLI_OPT_TLS }, \
	{ "ca", required_argument, NULL, CLI_OPT_CA }, \
	{ "cert", required_argument, NULL, CLI_OPT_CERT }, \
	{ "key", required_argument, NULL, CLI_OPT_KEY }, \
	{ "user", required_argument, NULL, CLI_OPT_USER }, \
	{ "token", required_argument, NULL, CLI_OPT_TOKEN }, \
	{ "help", no_argument, NULL, 'h' }, \
	{ NULL, 0, NULL, 0 }

/*
 * A subcommand's optstring for getopt_long: its own letters, then the
 * common ones.  No leading '+': options are taken anywhere before "--",
 * operands moved after them, as GNU tools do ("herald sub PATTERN -c 1").
 * ':' first: a missing value is told apart from an unknown option.
 */
#define CLI_SHORTOPTS(own)	":" own CLI_COMMON_SHORT

/* cli_fmt.c */
int	fmt_parse_u64(const char *s, uint64_t *out);
int	fmt_parse_seconds(const char *s, int *ms);
int	fmt_parse_format(const char *s, int allow_table, enum cli_format *out);
void	fmt_json_string(FILE *, const char *s, size_t len);
void	fmt_msg(FILE *, enum cli_format, const struct herald_msg *);
void	fmt_duration(char *buf, size_t len, uint64_t seconds);
void	fmt_rate(char *buf, size_t len, double per_second);
const char *fmt_stat_help(const char *name);

/* the subcommands (cli_auth.c: passwd, token, and the password of
 * --user) */
int	cli_run_sub(struct cli *, int argc, char **argv);
int	cli_run_pub(struct cli *, int argc, char **argv);
int	cli_run_stats(struct cli *, int argc, char **argv);
int	cli_run_top(struct cli *, int argc, char **argv);
int	cli_run_passwd(struct cli *, int argc, char **argv);
int	cli_ask(FILE *in, FILE *out, const char *prompt, char *buf,
	    size_t len);
int	cli_login_password(const char *user, char *buf, size_t len);
int	cli_run_token(struct cli *, int argc, char **argv);

#endif /* CLI_H */
