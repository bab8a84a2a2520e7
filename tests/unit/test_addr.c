/*
 * Unit tests of the per-address connection table (shm/addr.c): the limit
 * over every worker, slots reused once an address has no connection, a
 * full table, addresses that share a home slot, a restarted worker, and
 * the lock of a worker that died holding it.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "addr.h"

static struct addr_table *T;

static void
setup(void)
{
	T = addr_table_create();
	ck_assert_ptr_nonnull(T);
}

static void
teardown(void)
{
	munmap(T, sizeof(*T));
}

/* A key whose home slot is home (keys are hashes: any value will do). */
static uint64_t
key_at(int home, int round)
{
	return (uint64_t)round * ADDR_SLOTS + home;
}

START_TEST(limit_over_workers)
{
	uint64_t k = key_at(7, 1);
	int s1 = addr_admit(T, 1, 3, k, 3);

	ck_assert_int_ge(s1, 0);
	ck_assert_int_eq(addr_admit(T, 2, 3, k, 3), s1);
	ck_assert_int_eq(addr_admit(T, 3, 3, k, 3), s1);
	ck_assert_int_eq(addr_admit(T, 1, 3, k, 3), ADDR_REFUSED);
	ck_assert_int_eq(addr_admit(T, 2, 3, k, 3), ADDR_REFUSED);
	addr_release(T, 2, s1);
	ck_assert_int_eq(addr_admit(T, 1, 3, k, 3), s1);
	ck_assert_int_eq(addr_admit(T, 3, 3, k, 3), ADDR_REFUSED);
	/* another address has its own count */
	ck_assert_int_ge(addr_admit(T, 1, 3, key_at(8, 1), 3), 0);
}
END_TEST

START_TEST(untracked)
{
	ck_assert_int_eq(addr_admit(T, 1, 1, 0, 1), ADDR_UNTRACKED);
	ck_assert_int_eq(addr_admit(T, 1, 1, 0, 1), ADDR_UNTRACKED);
}
END_TEST

/* Far more addresses than slots come and go: the limit still applies
 * to a new one (the table used to keep every address it had seen). */
START_TEST(slots_reused)
{
	for (int i = 0; i < 4 * ADDR_SLOTS; i++) {
		uint64_t k = 0x9e3779b97f4a7c15ULL * (i + 1);
		int s = addr_admit(T, 1 + i % 2, 2, k, 2);
		ck_assert_int_ge(s, 0);
		addr_release(T, 1 + i % 2, s);
	}
	uint64_t k = 0x1234567;
	int s = addr_admit(T, 1, 2, k, 2);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(addr_admit(T, 2, 2, k, 2), s);
	ck_assert_int_eq(addr_admit(T, 1, 2, k, 2), ADDR_REFUSED);
}
END_TEST

/* Every slot holds an address with a connection: a new address is
 * ADDR_FULL, until one of those in its probes has none. */
START_TEST(full)
{
	for (int i = 0; i < ADDR_SLOTS; i++)
		ck_assert_int_eq(addr_admit(T, 1, 1, key_at(i, 1), 1), i);
	ck_assert_int_eq(addr_admit(T, 1, 1, key_at(5, 2), 1), ADDR_FULL);
	ck_assert_int_eq(addr_admit(T, 1, 1, key_at(5, 1), 1), ADDR_REFUSED);
	addr_release(T, 1, 5 + ADDR_PROBES);	/* out of its probes */
	ck_assert_int_eq(addr_admit(T, 1, 1, key_at(5, 2), 1), ADDR_FULL);
	addr_release(T, 1, 9);
	ck_assert_int_eq(addr_admit(T, 1, 1, key_at(5, 2), 1), 9);
	ck_assert_int_eq(addr_admit(T, 1, 1, key_at(5, 2), 1), ADDR_REFUSED);
	/* the address that had slot 9 takes the one free in its probes */
	ck_assert_int_eq(addr_admit(T, 1, 1, key_at(9, 1), 1), 5 + ADDR_PROBES);
	ck_assert_int_eq(addr_admit(T, 1, 1, key_at(10, 3), 1), ADDR_FULL);
}
END_TEST

/* Addresses with one home slot: each found in its own, and a slot
 * reused in front of another never hides it. */
START_TEST(shared_home)
{
	uint64_t a = key_at(100, 1), b = key_at(100, 2), c = key_at(100, 3);
	int sa = addr_admit(T, 1, 1, a, 1);
	int sb = addr_admit(T, 1, 1, b, 1);

	ck_assert_int_eq(sa, 100);
	ck_assert_int_eq(sb, 101);
	ck_assert_int_eq(addr_admit(T, 1, 1, b, 1), ADDR_REFUSED);
	addr_release(T, 1, sa);
	ck_assert_int_eq(addr_admit(T, 1, 1, c, 1), sa);	/* reused */
	ck_assert_int_eq(addr_admit(T, 1, 1, b, 1), ADDR_REFUSED);
	ck_assert_int_eq(addr_admit(T, 1, 1, a, 1), 102);
}
END_TEST

START_TEST(worker_reset)
{
	uint64_t k = key_at(3, 1);
	int s = addr_admit(T, 1, 2, k, 2);

	ck_assert_int_eq(addr_admit(T, 2, 2, k, 2), s);
	ck_assert_int_eq(addr_admit(T, 1, 2, k, 2), ADDR_REFUSED);
	addr_worker_reset(T, 1);	/* worker 1 restarted */
	ck_assert_int_eq(addr_admit(T, 1, 2, k, 2), s);
	ck_assert_int_eq(addr_admit(T, 2, 2, k, 2), ADDR_REFUSED);
}
END_TEST

/* A worker that died holding the lock: the others are told busy (not
 * held up) until the master releases it. */
START_TEST(dead_holder)
{
	T->lock = 2;
	ck_assert_int_eq(addr_admit(T, 1, 2, key_at(1, 1), 5), ADDR_BUSY);
	ck_assert_int_eq(addr_unlock_dead(T, 1), 0);	/* not its lock */
	ck_assert_int_eq(addr_unlock_dead(T, 2), 1);
	ck_assert_int_eq(addr_admit(T, 1, 2, key_at(1, 1), 5), 1);
	ck_assert_int_eq(T->lock, 0);
}
END_TEST

static Suite *
addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("table");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, limit_over_workers);
	tcase_add_test(tc, untracked);
	tcase_add_test(tc, slots_reused);
	tcase_add_test(tc, full);
	tcase_add_test(tc, shared_home);
	tcase_add_test(tc, worker_reset);
	tcase_add_test(tc, dead_holder);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(addr_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
