/*
 * Unit tests of the configuration: defaults, files, -o overrides,
 * errors with file:line, validation, and what a reload may change.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char	errors[8192];

static void
collect(void *arg, const char *msg)
{
	strncat(errors, msg, sizeof(errors) - strlen(errors) - 2);
	strcat(errors, "\n");
}

static int
load_text(struct herald_config *c, const char *text, char **ov, int nov)
{
	errors[0] = '\0';
	return config_load(c, "test.conf", text, ov, nov, collect, NULL);
}

START_TEST(defaults)
{
	struct herald_config c;

	ck_assert_int_eq(config_load(&c, NULL, NULL, NULL, 0, collect, NULL), 0);
	ck_assert_int_ge(c.workers, 1);
	ck_assert_int_eq(c.listen.n, 1);
	ck_assert_str_eq(c.listen.v[0], "0.0.0.0:7400");
	ck_assert_str_eq(c.ingest.v[0], "127.0.0.1:7401");
	ck_assert_int_eq(c.bus_size, 64 * 1024 * 1024);
	ck_assert_int_eq(c.clients_max_line, 4096);
	ck_assert_int_eq(c.clients_max_errors, 16);
	ck_assert_int_eq(c.max_payload, 65536);
	ck_assert_int_eq(c.ingest_max_line, 65536 + 512);
	ck_assert_int_eq(c.clients_slow_policy, SLOW_CONFLATE);
	ck_assert_int_eq(c.clients_publish.n, 0);
	ck_assert_int_eq(c.ingest_mode, 0660);
	ck_assert(strncmp(c.status_prefix, "sys/", 4) == 0);
	config_free(&c);
}
END_TEST

START_TEST(file_values)
{
	struct herald_config c;
	const char *text =
	    "workers = 3;\n"
	    "listen = [\"127.0.0.1:9000\", \"[::1]:9001\"];\n"
	    "ingest = (\"unix:/tmp/h.sock\");\n"
	    "bus: { size = \"1M\"; file = \"\"; };\n"
	    "clients: { max_subs = 7; slow_policy = \"disconnect\";\n"
	    "  publish = [\"cmd/#\"]; out_limit = 65536; };\n"
	    "tcp: { keepalive = false; };\n"
	    "max_payload = 1000;\n";

	ck_assert_int_eq(load_text(&c, text, NULL, 0), 0);
	ck_assert_int_eq(c.workers, 3);
	ck_assert_int_eq(c.listen.n, 2);
	ck_assert_str_eq(c.listen.v[1], "[::1]:9001");
	ck_assert_str_eq(c.ingest.v[0], "unix:/tmp/h.sock");
	ck_assert_int_eq(c.bus_size, 1024 * 1024);
	ck_assert_str_eq(c.bus_file, "");
	ck_assert_int_eq(c.clients_max_subs, 7);
	ck_assert_int_eq(c.clients_slow_policy, SLOW_DISCONNECT);
	ck_assert_str_eq(c.clients_publish.v[0], "cmd/#");
	ck_assert_int_eq(c.clients_out_limit, 65536);
	ck_assert_int_eq(c.tcp_keepalive, 0);
	ck_assert_int_eq(c.ingest_max_line, 1512);
	config_free(&c);
}
END_TEST

START_TEST(overrides)
{
	struct herald_config c;
	char *ov[] = { "listen=127.0.0.1:1,127.0.0.1:2", "workers=2",
	    "clients.heartbeat=5", "bus.size=1M", "tcp.keepalive=no" };

	ck_assert_int_eq(load_text(&c, "workers = 4;", ov, 5), 0);
	ck_assert_int_eq(c.workers, 2);		/* -o wins over the file */
	ck_assert_int_eq(c.listen.n, 2);
	ck_assert_str_eq(c.listen.v[1], "127.0.0.1:2");
	ck_assert_int_eq(c.clients_heartbeat, 5);
	ck_assert_int_eq(c.bus_size, 1024 * 1024);
	ck_assert_int_eq(c.tcp_keepalive, 0);
	config_free(&c);
}
END_TEST

START_TEST(errors_name_file_and_line)
{
	struct herald_config c;

	/* A syntax error: file and line. */
	ck_assert_int_gt(load_text(&c, "workers = 2;\nlisten = [;\n", NULL, 0),
	    0);
	ck_assert_msg(strstr(errors, "test.conf:2: ") != NULL, "%s", errors);
	config_free(&c);
	/* An unknown setting, on its line. */
	ck_assert_int_gt(load_text(&c, "\n\nclients: { maxsubs = 3; };\n",
	    NULL, 0), 0);
	ck_assert_msg(strstr(errors, "test.conf:3: unknown setting "
	    "\"clients.maxsubs\"") != NULL, "%s", errors);
	config_free(&c);
	/* Out of range and wrong type. */
	ck_assert_int_gt(load_text(&c, "clients: { max_line = 10; };\n"
	    "workers = \"x\";\n", NULL, 0), 0);
	ck_assert_msg(strstr(errors, "test.conf:1: clients.max_line: 10 is "
	    "out of range") != NULL, "%s", errors);
	ck_assert_msg(strstr(errors, "test.conf:2: workers: wrong type") !=
	    NULL, "%s", errors);
	config_free(&c);
}
END_TEST

START_TEST(validation)
{
	struct herald_config c;
	char *bad_ov[] = { "nosuch=1" };
	char *bad_val[] = { "clients.slow_policy=drop" };

	ck_assert_int_gt(load_text(&c, "bus: { size = 100000; };", NULL, 0), 0);
	ck_assert(strstr(errors, "not a power of two") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "listen = [\"nocolon\"];", NULL, 0), 0);
	ck_assert(strstr(errors, "expected host:port") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "listen = [\"unix:/tmp/x\"];", NULL, 0),
	    0);
	ck_assert(strstr(errors, "ingest only") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "clients: { publish = [\"a/#/b\"]; };",
	    NULL, 0), 0);
	ck_assert(strstr(errors, "not a valid pattern") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "", bad_ov, 1), 0);
	ck_assert(strstr(errors, "unknown setting \"nosuch\"") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "", bad_val, 1), 0);
	ck_assert(strstr(errors, "bad value \"drop\"") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "max_payload = 1000000;\nbus: { size = "
	    "\"1M\"; };", NULL, 0), 0);
	ck_assert(strstr(errors, "too large for bus.size") != NULL);
	config_free(&c);
	/* a size whose multiple overflows is refused, never wrapped (UBSan
	 * found "8888888888G") */
	ck_assert_int_gt(load_text(&c, "bus: { size = \"8888888888G\"; };",
	    NULL, 0), 0);
	ck_assert(strstr(errors, "bus.size") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "clients: { out_limit = "
	    "\"9223372036854775807K\"; };", NULL, 0), 0);
	config_free(&c);
}
END_TEST

START_TEST(reload_live_and_restart)
{
	struct herald_config cur, next;

	ck_assert_int_eq(load_text(&cur, "clients: { max_subs = 5; };", NULL, 0),
	    0);
	ck_assert_int_eq(load_text(&next, "workers = 9;\nclients: { max_subs = "
	    "2; publish = [\"x/#\"]; };", NULL, 0), 0);
	errors[0] = '\0';
	ck_assert_int_eq(config_apply_reload(&cur, &next, collect, NULL), 1);
	ck_assert_int_eq(cur.clients_max_subs, 2);	/* live */
	ck_assert_int_eq(cur.clients_publish.n, 1);
	ck_assert_int_ne(cur.workers, 9);		/* needs a restart */
	ck_assert(strstr(errors, "workers changed") != NULL);
	config_free(&cur);
	config_free(&next);
}
END_TEST

/* An auth setting turns authentication on (an auth group of defaults
 * does not); its checks span settings. */
START_TEST(auth_settings)
{
	struct herald_config c;
	char *ov[] = { "auth.users=/etc/herald/users" };
	char *anon[] = { "auth.anonymous=status/#,a/+/b" };

	ck_assert_int_eq(load_text(&c, "", NULL, 0), 0);
	ck_assert_int_eq(c.auth_on, 0);
	ck_assert_int_eq(c.auth_fail_delay_ms, 500);
	ck_assert_int_eq(c.clients_max_auth_failures, 3);
	ck_assert_int_eq(c.auth_jwt_require_exp, 1);
	config_free(&c);
	ck_assert_int_eq(load_text(&c, "auth: { anonymous = []; users = \"\"; "
	    "required = false; };", NULL, 0), 0);
	ck_assert_int_eq(c.auth_on, 0);
	config_free(&c);
	ck_assert_int_eq(load_text(&c, "auth: { acl = \"/a\"; };", NULL, 0), 0);
	ck_assert_int_eq(c.auth_on, 1);
	ck_assert_int_eq(c.auth_anonymous.n, 0);
	config_free(&c);
	ck_assert_int_eq(load_text(&c, "", ov, 1), 0);
	ck_assert_int_eq(c.auth_on, 1);
	config_free(&c);
	ck_assert_int_eq(load_text(&c, "", anon, 1), 0);
	ck_assert_int_eq(c.auth_anonymous.n, 2);
	ck_assert_int_eq(c.auth_on, 1);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "auth: { anonymous = [\"a/#/b\"]; };",
	    NULL, 0), 0);
	ck_assert(strstr(errors, "auth.anonymous: \"a/#/b\"") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "auth: { required = true; };", NULL, 0),
	    0);
	ck_assert(strstr(errors, "no way to authenticate") != NULL);
	config_free(&c);
	/* ingest on an address other machines reach needs auth.required */
	ck_assert_int_gt(load_text(&c, "ingest = [\"0.0.0.0:7401\"];", NULL, 0),
	    0);
	ck_assert(strstr(errors, "ingest: 0.0.0.0:7401 is reachable") != NULL);
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "ingest = [\"10.1.2.3:7401\"];", NULL,
	    0), 0);
	config_free(&c);
	ck_assert_int_eq(load_text(&c, "ingest = [\"0.0.0.0:7401\"];\nauth: { "
	    "required = true; users = \"/u\"; };", NULL, 0), 0);
	config_free(&c);
	ck_assert_int_eq(load_text(&c, "ingest = [\"127.0.0.2:1\", \"[::1]:2\", "
	    "\"localhost:3\", \"unix:/run/x\"];", NULL, 0), 0);
	config_free(&c);
}
END_TEST

START_TEST(read_text_file)
{
	char path[] = "/tmp/herald-config-XXXXXX";
	int fd = mkstemp(path);
	struct herald_config c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "workers = 2;\n", 13), 13);
	close(fd);
	errors[0] = '\0';
	ck_assert_int_eq(config_load(&c, path, NULL, NULL, 0, collect, NULL), 0);
	ck_assert_int_eq(c.workers, 2);
	ck_assert_str_eq(c.file, path);
	config_free(&c);
	char *text = config_read_text(path);
	ck_assert_str_eq(text, "workers = 2;\n");
	free(text);
	unlink(path);
	ck_assert_int_gt(config_load(&c, path, NULL, NULL, 0, collect, NULL), 0);
	ck_assert(strstr(errors, "cannot read") != NULL);
	config_free(&c);
}
END_TEST

START_TEST(cluster_settings)
{
	struct herald_config c;
	char *ov[] = { "cluster.redis=unix:/run/redis.sock",
	    "cluster.password=pw secret" };
	char *bad[] = { "cluster.redis=nocolon" };
	char *nokey[] = { "cluster.key=" };

	/* Off by default: one node, nothing to reach. */
	ck_assert_int_eq(load_text(&c, "", NULL, 0), 0);
	ck_assert_str_eq(c.cluster_redis, "");
	ck_assert_str_eq(c.cluster_key, "herald");
	ck_assert_int_eq(c.cluster_trim, 0);
	ck_assert_int_eq(c.cluster_hold, 16 * 1024 * 1024);
	ck_assert_int_eq(c.cluster_timeout, 2000);
	config_free(&c);
	ck_assert_int_eq(load_text(&c, "cluster: { redis = \"10.0.0.5:6379\"; "
	    "trim = 5000; hold = \"1M\"; };", NULL, 0), 0);
	ck_assert_str_eq(c.cluster_redis, "10.0.0.5:6379");
	ck_assert_int_eq(c.cluster_trim, 5000);
	config_free(&c);
	ck_assert_int_eq(load_text(&c, "", ov, 2), 0);
	ck_assert_str_eq(c.cluster_redis, "unix:/run/redis.sock");
	ck_assert_str_eq(c.cluster_password, "pw secret");
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "", bad, 1), 0);
	ck_assert_ptr_nonnull(strstr(errors, "cluster.redis"));
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "", nokey, 1), 0);
	ck_assert_ptr_nonnull(strstr(errors, "cluster.key"));
	config_free(&c);
	ck_assert_int_gt(load_text(&c, "cluster: { timeout = 5; };", NULL, 0),
	    0);
	config_free(&c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, file_values);
	tcase_add_test(tc, overrides);
	tcase_add_test(tc, errors_name_file_and_line);
	tcase_add_test(tc, validation);
	tcase_add_test(tc, reload_live_and_restart);
	tcase_add_test(tc, read_text_file);
	tcase_add_test(tc, auth_settings);
	tcase_add_test(tc, cluster_settings);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
