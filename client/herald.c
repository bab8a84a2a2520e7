/*
 * herald(1): talk to a herald server from the shell.  main() takes the
 * global options and the subcommand; each subcommand parses the rest.
 * `herald get` lives here too: it is a few lines.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

const struct cli_cmd cli_cmds[] = {
	{ "sub", cli_run_sub, "[OPTIONS] PATTERN...", "print messages",
	  "Print the messages on topics matching the patterns: first the\n"
	  "newest value of each (the snapshot), then every new message.\n"
	  "Reconnects and resumes where it was when the connection is lost.\n"
	  "\n"
	  "  -f, --format plain|json  \"TOPIC PAYLOAD\" lines (default), or\n"
	  "                           one JSON object a line\n"
	  "      --since SEQ          the messages after SEQ, not a snapshot\n"
	  "  -c, --count N            exit after N messages\n"
	  "      --no-reconnect       exit 3 when the connection is lost\n" },
	{ "pub", cli_run_pub, "[OPTIONS] TOPIC PAYLOAD | TOPIC -", "publish",
	  "Publish PAYLOAD on TOPIC through the ingest listener, or with -\n"
	  "each line of the standard input as a message, as fast as the\n"
	  "server takes them.  Returns once the server has them all.\n" },
	{ "get", cli_run_get, "[OPTIONS] TOPIC", "print a topic's value",
	  "Print TOPIC's newest value.  Exits 1, printing nothing, if it has\n"
	  "none.\n"
	  "\n"
	  "  -f, --format plain|json  the payload (default), or a JSON object\n"
	  },
	{ "stats", cli_run_stats, "[OPTIONS]", "print the server's figures",
	  "Print the server's figures (summed over its workers).\n"
	  "\n"
	  "  -f, --format table|plain|json  a table with what each figure\n"
	  "                           means (default), \"NAME VALUE\" lines,\n"
	  "                           or a JSON object\n" },
	{ "top", cli_run_top, "[OPTIONS]", "watch the server's figures",
	  "Show the server's figures and their rates, refreshed.\n"
	  "\n"
	  "  -d, --delay SECONDS      between refreshes (default 1)\n"
	  "  -n, --iterations N       exit after N refreshes\n"
	  "  -b, --batch              no screen control: one report after\n"
	  "                           another (the default when the output\n"
	  "                           is not a terminal)\n" },
	{ "passwd", cli_run_passwd, "FILE USER", "set a user's password",
	  "Add USER to the users file FILE (auth.users of heraldd.conf(5)),\n"
	  "or change its password: asked twice on a terminal, else read from\n"
	  "the first line of the standard input.  The hash is yescrypt.  FILE\n"
	  "is written anew and renamed into place; a new file is mode 0600.\n" },
	{ "token", cli_run_token, "--key FILE --sub USER [OPTIONS]",
	  "mint a token",
	  "Print a token (JWT) for AUTH, signed with the key in FILE: an\n"
	  "HS256 secret (the file's bytes, a final newline dropped), or a PEM\n"
	  "private key, EC P-256 (ES256) or RSA (RS256).\n"
	  "\n"
	  "      --key FILE           the signing key\n"
	  "      --sub USER           the user the token names\n"
	  "      --exp SECONDS        it expires after SECONDS (default\n"
	  "                           3600; 0: never)\n"
	  "      --aud AUDIENCE       for the server of that audience\n"
	  "      --read PATTERN       the token's own permissions: with\n"
	  "      --publish PATTERN    either, only these (both may repeat)\n" },
	{ NULL, NULL, NULL, NULL, NULL }
};

static const char common_help[] =
	"  -s, --server HOST:PORT   the server's client listener (default\n"
	"                           $HERALD_SERVER, else " DEFAULT_SERVER ")\n"
	"  -i, --ingest ADDR        where pub publishes: HOST:PORT or\n"
	"                           unix:/PATH (default $HERALD_INGEST,\n"
	"                           else " DEFAULT_INGEST ")\n"
	"  -t, --timeout SECONDS    wait this long to connect and for each\n"
	"                           answer (default 5)\n"
	"      --tls                speak TLS, checking the server's\n"
	"                           certificate against the system's CAs\n"
	"      --ca FILE            ... against the CAs in FILE (PEM);\n"
	"                           implies --tls\n"
	"      --cert FILE          present this client certificate (PEM);\n"
	"                           implies --tls\n"
	"      --key FILE           its private key (default: in --cert)\n"
	"      --user USER          AUTH as USER; the password from\n"
	"                           $HERALD_PASSWORD, else asked on the\n"
	"                           terminal\n"
	"      --token TOKEN        AUTH with TOKEN (default $HERALD_TOKEN)\n"
	"  -h, --help               show this help\n";

static void
vwarn_line(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("herald: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* Print a warning: "herald: ...". */
void
cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn_line(fmt, ap);
	va_end(ap);
}

/* Print an error and return EXIT_FAIL: `return cli_fail(...)`. */
int
cli_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn_line(fmt, ap);
	va_end(ap);
	return EXIT_FAIL;
}

/* A usage error: say what and where help is; exit 2. */
void
cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;
	const char *sp = cli->cmd ? " " : "";
	const char *cmd = cli->cmd ? cli->cmd : "";

	fprintf(stderr, "%s%s%s: ", cli->prog, sp, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s%s%s --help'.\n", cli->prog, sp, cmd);
	exit(EXIT_USAGE);
}

/* Help for one subcommand, or for herald as a whole; on stdout. */
void
cli_help(const struct cli *cli, const struct cli_cmd *cmd)
{
	if (cmd != NULL) {
		printf("usage: %s %s %s\n\n%s\nOptions of every command:\n%s",
		    cli->prog, cmd->name, cmd->synopsis, cmd->help,
		    common_help);
		return;
	}
	printf("usage: %s [OPTIONS] COMMAND [ARGS]\n\n"
	    "Talk to a herald server.  Commands:\n", cli->prog);
	for (const struct cli_cmd *c = cli_cmds; c->name != NULL; c++)
		printf("  %-6s %-33s %s\n", c->name, c->synopsis, c->summary);
	printf("  %-6s %-33s %s\n", "help", "[COMMAND]", "show help");
	printf("\nOptions (before or after COMMAND and its operands;"
	    " -- ends them):\n%s"
	    "  -V, --version            show the version\n\n"
	    "Exit status: 0 done, 1 get found no value, 2 usage error, 3 the"
	    " server\ncould not be reached or refused, or a file could not be"
	    " read or written,\n4 authentication refused or the token "
	    "expired, 5 TLS failed.\nSee herald(1).\n",
	    common_help);
}

/* Handle an option every subcommand takes; usage errors exit. */
int
cli_common_opt(struct cli *cli, int ch, const char *arg)
{
	switch (ch) {
	case 's':
		cli->server = arg;
		return 0;
	case 'i':
		cli->ingest = arg;
		return 0;
	case 't':
		if (fmt_parse_seconds(arg, &cli->timeout_ms) == -1)
			cli_usage_error(cli, "bad timeout '%s': expected "
			    "seconds, e.g. 5 or 0.5", arg);
		return 0;
	case CLI_OPT_TLS:
		cli->tls = 1;
		return 0;
	case CLI_OPT_CA:
		cli->ca = arg;
		cli->tls = 1;
		return 0;
	case CLI_OPT_CERT:
		cli->cert = arg;
		cli->tls = 1;
		return 0;
	case CLI_OPT_KEY:
		cli->key = arg;
		return 0;
	case CLI_OPT_USER:
		cli->user = arg;
		return 0;
	case CLI_OPT_TOKEN:
		cli->token = arg;
		return 0;
	case 'h':
		if (cli->cmd == NULL) {
			cli_help(cli, NULL);
			exit(0);
		}
		for (const struct cli_cmd *c = cli_cmds; c->name; c++) {
			if (strcmp(c->name, cli->cmd) == 0) {
				cli_help(cli, c);
				exit(0);
			}
		}
		cli_usage_error(cli, "no such command");
	case ':':	/* the word is behind optind; a letter may be in a
			 * cluster (-bn) */
		if (strncmp(cli->argv[optind - 1], "--", 2) != 0)
			cli_usage_error(cli, "option '-%c' needs a value",
			    optopt);
		cli_usage_error(cli, "option '%s' needs a value",
		    cli->argv[optind - 1]);
	default:
		/* A letter, maybe in a cluster (-qx): optind may not have
		 * moved past its word yet.  A long option has: optopt 0. */
		if (optopt != 0)
			cli_usage_error(cli, "unknown option '-%c'", optopt);
		cli_usage_error(cli, "unknown option '%s'",
		    cli->argv[optind - 1]);
	}
}

/* The exit code for a library error. */
int
cli_exit_code(int err)
{
	switch (err) {
	case HERALD_OK:
		return 0;
	case HERALD_EINVAL:
		return EXIT_USAGE;
	case HERALD_ENOTFOUND:
		return EXIT_NOVALUE;
	case HERALD_EAUTH:
	case HERALD_EEXPIRED:
		return EXIT_AUTH;
	case HERALD_ETLS:
		return EXIT_TLS;
	default:
		return EXIT_FAIL;
	}
}

/*
 * Give c the security options: TLS, and AUTH with a user's password or
 * a token (--user before $HERALD_TOKEN).  Returns 0, or the exit code
 * after saying why.
 */
static int
secure(const struct cli *cli, struct herald_client *c)
{
	const char *token = cli->token ? cli->token : getenv("HERALD_TOKEN");
	char pw[CLI_PASSWORD_MAX + 2];
	struct herald_tls tls;
	int rc;

	if (cli->key != NULL && cli->cert == NULL)
		cli_usage_error(cli, "--key needs --cert");
	if (cli->user != NULL && cli->token != NULL)
		cli_usage_error(cli, "--user and --token exclude each other");
	if (cli->tls) {
		herald_tls_init(&tls);
		tls.ca_file = cli->ca;
		tls.cert_file = cli->cert;
		tls.key_file = cli->key;
		if ((rc = herald_set_tls(c, &tls)) != HERALD_OK) {
			cli_warn("%s", herald_errmsg(c));
			return cli_exit_code(rc);
		}
	}
	if (cli->user != NULL) {
		if ((rc = cli_login_password(cli->user, pw, sizeof(pw))) != 0)
			return rc;
		rc = herald_set_password(c, cli->user, pw);
		OPENSSL_cleanse(pw, sizeof(pw));
	} else if (token != NULL && *token != '\0') {
		rc = herald_set_token(c, token);
	} else {
		return 0;
	}
	if (rc != HERALD_OK) {
		cli_warn("%s", herald_errmsg(c));
		return cli_exit_code(rc);
	}
	return 0;
}

/*
 * A client for addr with opts (timeouts from --timeout) and the security
 * options, not connected.  Returns it, or NULL after printing why, with
 * the exit code in *exit_code.
 */
struct herald_client *
cli_client(const struct cli *cli, const char *addr, struct herald_options *o,
    int *exit_code)
{
	struct herald_client *c;

	o->connect_timeout_ms = cli->timeout_ms;
	o->timeout_ms = cli->timeout_ms;
	if ((c = herald_new(addr, o)) == NULL) {
		*exit_code = cli_fail("out of memory");
		return NULL;
	}
	if ((*exit_code = secure(cli, c)) != 0) {
		herald_close(c);
		return NULL;
	}
	return c;
}

/*
 * Connect to addr as cli_client makes it.  Returns the client, or NULL
 * after printing why, with the exit code in *exit_code.
 */
struct herald_client *
cli_open(const struct cli *cli, const char *addr, struct herald_options *o,
    int *exit_code)
{
	struct herald_client *c;
	int rc;

	if ((c = cli_client(cli, addr, o, exit_code)) == NULL)
		return NULL;
	if ((rc = herald_open(c)) != HERALD_OK) {
		cli_warn("%s", herald_errmsg(c));
		*exit_code = cli_exit_code(rc);
		herald_close(c);
		return NULL;
	}
	return c;
}

/* Flush stdout; a failure to write it (a full disk, a closed pipe) ends
 * the program. */
void
cli_flush_stdout(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		cli_warn("cannot write the output");
		exit(EXIT_FAIL);
	}
}

/* herald get TOPIC */
int
cli_run_get(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' }, CLI_COMMON_LONG };
	enum cli_format fmt = FMT_PLAIN;
	struct herald_options o;
	struct herald_client *c;
	char *payload;
	size_t len;
	uint64_t seq;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, CLI_SHORTOPTS("f:"), lo,
	    NULL)) != -1) {
		if (ch == 'f') {
			if (fmt_parse_format(optarg, 0, &fmt) == -1)
				cli_usage_error(cli, "bad format '%s': "
				    "expected plain or json", optarg);
		} else {
			cli_common_opt(cli, ch, optarg);
		}
	}
	if (argc - optind != 1)
		cli_usage_error(cli, "expected one TOPIC");
	herald_options_init(&o);
	o.reconnect = 0;
	if ((c = cli_open(cli, cli->server, &o, &rc)) == NULL)
		return rc;
	rc = herald_get(c, argv[optind], &payload, &len, &seq);
	if (rc == HERALD_ENOTFOUND) {
		herald_close(c);
		return EXIT_NOVALUE;
	}
	if (rc != HERALD_OK) {
		cli_warn("get %s: %s", argv[optind], herald_errmsg(c));
		herald_close(c);
		return cli_exit_code(rc);
	}
	struct herald_msg m = { argv[optind], payload, len, seq, 1, NULL };
	if (fmt == FMT_JSON)
		fmt_msg(stdout, FMT_JSON, &m);
	else
		printf("%s\n", payload);
	free(payload);
	herald_close(c);
	cli_flush_stdout();
	return 0;
}

/* Where to find the server: the environment, else the default. */
static const char *
env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : dflt;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "version", no_argument, NULL, 'V' }, CLI_COMMON_LONG };
	struct cli cli = { .prog = "herald", .argv = argv,
	    .server = env_or("HERALD_SERVER", DEFAULT_SERVER),
	    .ingest = env_or("HERALD_INGEST", DEFAULT_INGEST),
	    .timeout_ms = DEFAULT_TIMEOUT_MS };
	int ch;

	opterr = 0;
	/* '+': stop at the command's name; its own words are its own. */
	while ((ch = getopt_long(argc, argv, "+:V" CLI_COMMON_SHORT, lo,
	    NULL)) != -1) {
		if (ch == 'V') {
			printf("herald %s\n", herald_version());
			return 0;
		}
		cli_common_opt(&cli, ch, optarg);
	}
	if (optind == argc)
		cli_usage_error(&cli, "no command given");
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		name = optind + 1 < argc ? argv[optind + 1] : NULL;
		if (name == NULL) {
			cli_help(&cli, NULL);
			return 0;
		}
		cli.cmd = name;
		cli_common_opt(&cli, 'h', NULL);
	}
	for (const struct cli_cmd *c = cli_cmds; c->name != NULL; c++) {
		if (strcmp(c->name, name) != 0)
			continue;
		cli.cmd = c->name;
		argc -= optind;
		argv += optind;
		cli.argv = argv;
		optind = 0;	/* start over on the subcommand's words */
		return c->run(&cli, argc, argv);
	}
	cli_usage_error(&cli, "unknown command '%s'", name);
}
