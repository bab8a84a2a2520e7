/*
 * Unit tests of the TLS session ticket keys (common/tlsctx.c): which key
 * the ticket callback makes tickets with and which it accepts (the current
 * one, the previous one renewed, none older), and their way from the
 * master to a worker (a CTL_TICKETS control message, proc.c).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "heraldd.h"
#include "log.h"
#include "proc.h"
#include "tlsctx.h"

/* Run the callback once with fresh contexts; returns what it returned. */
static int
run_cb(unsigned char name[TICKET_NAME_LEN], int enc)
{
	unsigned char iv[EVP_MAX_IV_LENGTH] = { 0 };
	EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *hctx = EVP_MAC_CTX_new(mac);

	ck_assert(cctx != NULL && hctx != NULL);
	int r = tickets_cb(NULL, name, iv, cctx, hctx, enc);
	EVP_MAC_CTX_free(hctx);
	EVP_MAC_free(mac);
	EVP_CIPHER_CTX_free(cctx);
	return r;
}

START_TEST(rotation)
{
	unsigned char made[TICKET_NAME_LEN], name[TICKET_NAME_LEN];

	ck_assert_int_eq(tickets_init(), 0);
	ck_assert_int_eq(run_cb(made, 1), 1);
	ck_assert_mem_eq(made, tickets_get()->cur.name, TICKET_NAME_LEN);
	memcpy(name, made, sizeof(name));
	ck_assert_int_eq(run_cb(name, 0), 1);		/* current */
	ck_assert_int_eq(tickets_rotate(), 0);
	memcpy(name, made, sizeof(name));
	ck_assert_int_eq(run_cb(name, 0), 2);		/* previous: renew */
	ck_assert_int_eq(tickets_rotate(), 0);
	memcpy(name, made, sizeof(name));
	ck_assert_int_eq(run_cb(name, 0), 0);		/* gone */
}
END_TEST

START_TEST(init_sets_both)
{
	static const unsigned char zero[TICKET_NAME_LEN];
	unsigned char name[TICKET_NAME_LEN] = { 0 };

	/* A key never made would be all zeros, which anyone can use. */
	ck_assert_int_eq(tickets_init(), 0);
	ck_assert_mem_ne(tickets_get()->prev.name, zero, TICKET_NAME_LEN);
	ck_assert_mem_ne(tickets_get()->prev.aes, zero, TICKET_NAME_LEN);
	ck_assert_int_eq(run_cb(name, 0), 0);
}
END_TEST

START_TEST(unknown_name)
{
	unsigned char name[TICKET_NAME_LEN];

	ck_assert_int_eq(tickets_init(), 0);
	memset(name, 0x5a, sizeof(name));
	ck_assert_int_eq(run_cb(name, 0), 0);
}
END_TEST

/* The control channel of the ctl tests: master's end sv[0]. */
static int		 sv[2];
static struct herald	 h;
static struct herald_config next;

static void
ctl_setup(void)
{
	log_init("test_tickets");
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK,
	    0, sv), 0);
}

static void
ctl_teardown(void)
{
	close(sv[0]);
	close(sv[1]);
}

/* The master's keys, sent as the master sends them, become the child's. */
START_TEST(ctl_message)
{
	struct ticket_keys sent;

	ck_assert_int_eq(tickets_init(), 0);
	sent = *tickets_get();
	ck_assert_int_eq(tickets_init(), 0);	/* the child's differ */
	ck_assert_mem_ne(&sent, tickets_get(), sizeof(sent));
	ck_assert_int_eq(ctl_send(sv[0], CTL_TICKETS, (const char *)&sent,
	    sizeof(sent)), 0);
	ck_assert_int_eq(child_ctl_read(sv[1], &h, &next, NULL), 0);
	ck_assert_mem_eq(&sent, tickets_get(), sizeof(sent));
}
END_TEST

/* A CTL_TICKETS of another size comes only from a bug: fatal. */
START_TEST(ctl_message_bad_size)
{
	ck_assert_int_eq(ctl_send(sv[0], CTL_TICKETS, "short", 5), 0);
	child_ctl_read(sv[1], &h, &next, NULL);
}
END_TEST

static Suite *
tickets_suite(void)
{
	Suite *s = suite_create("tickets");
	TCase *tc = tcase_create("keys");
	TCase *ctl = tcase_create("ctl");

	tcase_add_test(tc, rotation);
	tcase_add_test(tc, init_sets_both);
	tcase_add_test(tc, unknown_name);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(ctl, ctl_setup, ctl_teardown);
	tcase_add_test(ctl, ctl_message);
	tcase_add_exit_test(ctl, ctl_message_bad_size, 1);
	suite_add_tcase(s, ctl);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tickets_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
