/*
 * Unit tests of what a child takes from the master (master/proc.c): its
 * signals (HUP ignored, TERM kept for its signalfd) and its control
 * messages (a reload, a broken one, the master gone, and the messages
 * that can only come from a bug: fatal).
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <event2/event.h>

#include "heraldd.h"
#include "log.h"
#include "proc.h"

static int	sv[2];
static struct herald H;

static void
setup(void)
{
	int sz = CTL_MSG_MAX + 1024;

	log_init("test_proc");
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK,
	    0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	memset(&H, 0, sizeof(H));
}

static void
teardown(void)
{
	close(sv[0]);
	close(sv[1]);
}

START_TEST(reload)
{
	const char *text = "clients = { max_subs = 7; };\n";
	struct herald_config next;

	ck_assert_int_eq(ctl_send(sv[0], CTL_RELOAD, text, strlen(text)), 0);
	ck_assert_int_eq(child_ctl_read(sv[1], &H, &next, NULL), CTL_RELOAD);
	ck_assert_int_eq(next.clients_max_subs, 7);
	config_free(&next);
	/* nothing more: nothing to do */
	ck_assert_int_eq(child_ctl_read(sv[1], &H, &next, NULL), 0);
}
END_TEST

START_TEST(reload_broken)
{
	const char *text = "clients = { max_subs = 7;\n";
	struct herald_config next;

	ck_assert_int_eq(ctl_send(sv[0], CTL_RELOAD, text, strlen(text)), 0);
	ck_assert_int_eq(child_ctl_read(sv[1], &H, &next, NULL), 0);
}
END_TEST

START_TEST(master_gone)
{
	struct herald_config next;

	close(sv[0]);
	ck_assert_int_eq(child_ctl_read(sv[1], &H, &next, NULL), -1);
	sv[0] = socket(AF_UNIX, SOCK_STREAM, 0);	/* for teardown */
}
END_TEST

/* A type that no master sends: the child stops (exit status 1). */
START_TEST(unknown_type)
{
	struct herald_config next;

	ck_assert_int_eq(send(sv[0], "Xabc", 4, 0), 4);
	child_ctl_read(sv[1], &H, &next, NULL);
}
END_TEST

START_TEST(too_large)
{
	struct herald_config next;
	size_t n = CTL_MSG_MAX + 1;
	char *msg = malloc(n);

	memset(msg, ' ', n);
	msg[0] = CTL_RELOAD;
	ck_assert_int_eq(send(sv[0], msg, n, 0), (ssize_t)n);
	free(msg);
	child_ctl_read(sv[1], &H, &next, NULL);
}
END_TEST

START_TEST(largest)
{
	struct herald_config next;
	size_t n = CTL_MSG_MAX - 1;
	char *text = malloc(n);

	memset(text, ' ', n);
	ck_assert_int_eq(ctl_send(sv[0], CTL_RELOAD, text, n), 0);
	free(text);
	ck_assert_int_eq(child_ctl_read(sv[1], &H, &next, NULL), CTL_RELOAD);
	config_free(&next);
}
END_TEST

/* An upgrade's hand-over socket reaches the worker, close-on-exec, and
 * it is the same socket; a descriptor with any other message is a bug. */
START_TEST(handover_passes_fd)
{
	struct herald_config next;
	int p[2], got = -1;
	char c = 0;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(ctl_send_fd(sv[0], CTL_HANDOVER, NULL, 0, p[1]), 0);
	close(p[1]);
	ck_assert_int_eq(child_ctl_read(sv[1], &H, &next, &got),
	    CTL_HANDOVER);
	ck_assert_int_ge(got, 0);
	ck_assert_int_eq(fcntl(got, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(write(got, "x", 1), 1);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(c, 'x');
	close(got);
	close(p[0]);
	ck_assert_int_eq(ctl_send(sv[0], CTL_GO, NULL, 0), 0);
	ck_assert_int_eq(child_ctl_read(sv[1], &H, &next, NULL), CTL_GO);
}
END_TEST

START_TEST(fd_with_reload_is_fatal)
{
	struct herald_config next;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(ctl_send_fd(sv[0], CTL_RELOAD, "", 0, p[1]), 0);
	child_ctl_read(sv[1], &H, &next, NULL);
}
END_TEST

static int	stopped;

static void
stop_cb(void *arg)
{
	stopped++;
}

/* HUP is ignored (it would kill); TERM waits, blocked, for the loop. */
START_TEST(child_signal_set)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);	/* as the master forks */
	child_signals_init();
	ck_assert_int_eq(raise(SIGHUP), 0);
	ck_assert_int_eq(raise(SIGTERM), 0);	/* pending, not fatal */
	struct event_base *b = event_base_new();
	struct event *ev = child_signals(b, stop_cb, NULL);
	event_base_loop(b, EVLOOP_ONCE);
	ck_assert_int_eq(stopped, 1);		/* the TERM: once */
	ck_assert_int_eq(raise(SIGHUP), 0);	/* unblocked, and ignored */
	close(event_get_fd(ev));
	event_free(ev);
	event_base_free(b);
}
END_TEST

static Suite *
proc_suite(void)
{
	Suite *s = suite_create("proc");
	TCase *tc = tcase_create("control");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, reload);
	tcase_add_test(tc, reload_broken);
	tcase_add_test(tc, master_gone);
	tcase_add_test(tc, largest);
	tcase_add_test(tc, handover_passes_fd);
	tcase_add_exit_test(tc, fd_with_reload_is_fatal, 1);
	tcase_add_exit_test(tc, unknown_type, 1);
	tcase_add_exit_test(tc, too_large, 1);
	suite_add_tcase(s, tc);
	tc = tcase_create("signals");
	tcase_add_test(tc, child_signal_set);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proc_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
