/*
 * Unit tests of the timer wheel's walks (worker/wheel.c): a walk visits
 * each of its clients exactly once however its body moves clients
 * between slots (timers_soon from a write that fills a socket), and walks
 * nest.  First, the form the walks had before, copied here, skipping
 * clients under the same moves: the reason the walks hold their clients.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

#define N		200	/* clients */
#define SLOT		3	/* where they all start */
#define ELSEWHERE	4	/* where a body moves them */

/* --- the old form ------------------------------------------------------- */

/* The wheel as it was: NULL-terminated lists, "the next one" taken
 * before the body (CLIENTS_FOREACH and timers_run alike). */
struct old_client {
	struct old_client	*next, *prev;
	unsigned		 slot;
	int			 visits;
};

static struct old_client	*old_wheel[WHEEL_SLOTS];
static struct old_client	 old_cl[N];

static void
old_unlink(struct old_client *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		old_wheel[c->slot] = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void
old_insert(struct old_client *c, unsigned s)
{
	c->slot = s;
	c->prev = NULL;
	c->next = old_wheel[s];
	if (c->next != NULL)
		c->next->prev = c;
	old_wheel[s] = c;
}

#define OLD_CLIENTS_FOREACH(c, nx)					\
	for (int slot_ = 0; slot_ < WHEEL_SLOTS; slot_++)		\
		for ((c) = old_wheel[slot_];				\
		    (c) != NULL && ((nx) = (c)->next, 1); (c) = (nx))

START_TEST(old_form_skips)
{
	struct old_client *c, *nx;
	int seen = 0;

	for (int i = 0; i < N; i++)
		old_insert(&old_cl[i], SLOT);
	/* The first body fills another client's socket: timers_soon moves
	 * it, and it was the one the walk had taken as the next. */
	OLD_CLIENTS_FOREACH(c, nx) {
		if (c->visits++ == 0 && c == old_wheel[SLOT] && nx != NULL) {
			old_unlink(nx);
			old_insert(nx, ELSEWHERE);
		}
	}
	for (int i = 0; i < N; i++)
		seen += old_cl[i].visits > 0;
	ck_assert_int_eq(seen, 2);	/* the first, and the one moved */
}
END_TEST

/* --- the walks ---------------------------------------------------------- */

static struct wheel	 wh;
static struct client	 cl[N];
static int		 visits[N];

static int
id(const struct client *c)
{
	return (int)(c - cl);
}

static void
setup(void)
{
	memset(cl, 0, sizeof(cl));
	memset(visits, 0, sizeof(visits));
	wheel_init(&wh, 0);
	for (int i = 0; i < N; i++)
		wheel_add(&wh, &cl[i], SLOT);
}

/* The lists are sound, every client is on the slot it names, none is
 * held, no walk is left. */
static void
check_wheel(void)
{
	int n = 0;

	ck_assert_ptr_null(wh.walks);
	for (int s = 0; s < WHEEL_SLOTS; s++) {
		const struct wheel_link *h = &wh.slot[s];
		for (const struct wheel_link *l = h->next; l != h;
		    l = l->next) {
			const struct client *c = (const struct client *)
			    ((const char *)l - offsetof(struct client, link));
			ck_assert_ptr_eq(l->next->prev, l);
			ck_assert_int_eq(c->wheel_slot, s);
			ck_assert_int_eq(c->in_walk, 0);
			n++;
		}
	}
	ck_assert_int_eq(n, N);
}

static void
check_each_once(const int *v)
{
	for (int i = 0; i < N; i++)
		ck_assert_msg(v[i] == 1, "client %d visited %d times", i, v[i]);
}

/* Every client once, while each body moves clients not yet visited
 * away and back (what skipped them before), and the one it visits. */
START_TEST(walk_survives_moves)
{
	struct wheel_walk walk = WHEEL_WALK_ALL;
	struct client *c;
	unsigned want[N];
	int k = 0;

	for (int i = 0; i < N; i++)
		want[i] = SLOT;
	while ((c = wheel_next(&wh, &walk)) != NULL) {
		int later = (id(c) * 7 + 3) % N;
		visits[id(c)]++;
		want[later] = ELSEWHERE + k % 5;
		wheel_move(&wh, &cl[later], want[later]);
		want[id(c)] = k++ % WHEEL_SLOTS;
		wheel_move(&wh, c, want[id(c)]);
	}
	check_each_once(visits);
	check_wheel();
	/* Each where the last move put it, held by the walk or not. */
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(cl[i].wheel_slot, want[i]);
}
END_TEST

/* The worker's macro over its own wheel: each client once. */
START_TEST(clients_foreach)
{
	static struct worker w;
	struct client *c;

	wheel_init(&w.wheel, 0);
	memset(cl, 0, sizeof(cl));
	for (int i = 0; i < N; i++)
		wheel_add(&w.wheel, &cl[i], (unsigned)(i % 2 ? SLOT : 60));
	CLIENTS_FOREACH(&w, c) {
		visits[id(c)]++;
		wheel_move(&w.wheel, &cl[(id(c) + 1) % N], ELSEWHERE);
	}
	check_each_once(visits);
	ck_assert_ptr_null(w.wheel.walks);
}
END_TEST

/* A slot walk (timers_run) visits the clients the slot had when it
 * began: not one moved in, every one moved out before its turn. */
START_TEST(slot_walk)
{
	struct wheel_walk walk = WHEEL_WALK_SLOT(SLOT);
	struct client *c;

	for (int i = 0; i < N; i += 2)
		wheel_move(&wh, &cl[i], ELSEWHERE);
	while ((c = wheel_next(&wh, &walk)) != NULL) {
		ck_assert_int_eq(id(c) % 2, 1);
		visits[id(c)]++;
		wheel_move(&wh, &cl[(id(c) + 1) % N], SLOT);	/* in */
		wheel_move(&wh, &cl[(id(c) + 2) % N], ELSEWHERE); /* out */
		wheel_move(&wh, c, ELSEWHERE + 1);		/* placed */
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(visits[i], i % 2);
	check_wheel();
}
END_TEST

/* A body that walks every client again (a SUB's fan-out lapped by the
 * ring): the inner walk visits each once, those the outer one still
 * holds included, and the outer one goes on to visit each once. */
START_TEST(nested_walks)
{
	static int inner[N], slot_inner[N];
	struct wheel_walk walk = WHEEL_WALK_ALL;
	struct client *c, *d;
	int k = 0;

	for (int i = 0; i < N; i += 3)
		wheel_move(&wh, &cl[i], ELSEWHERE);
	while ((c = wheel_next(&wh, &walk)) != NULL) {
		visits[id(c)]++;
		if (k++ != N / 2)
			continue;
		struct wheel_walk again = WHEEL_WALK_ALL;
		while ((d = wheel_next(&wh, &again)) != NULL) {
			inner[id(d)]++;
			wheel_move(&wh, &cl[(id(d) + 5) % N], (unsigned)(
			    id(d) % 2 ? SLOT : ELSEWHERE));
		}
		struct wheel_walk one = WHEEL_WALK_SLOT(ELSEWHERE);
		while ((d = wheel_next(&wh, &one)) != NULL) {
			ck_assert_int_eq(d->wheel_slot, ELSEWHERE);
			slot_inner[id(d)]++;
		}
		ck_assert_ptr_eq(wh.walks, &walk);
	}
	check_each_once(visits);
	check_each_once(inner);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(slot_inner[i], cl[i].wheel_slot == ELSEWHERE);
	check_wheel();
}
END_TEST

static Suite *
wheel_suite(void)
{
	Suite *s = suite_create("wheel");
	TCase *tc = tcase_create("old form");

	tcase_add_test(tc, old_form_skips);
	suite_add_tcase(s, tc);

	tc = tcase_create("walks");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, walk_survives_moves);
	tcase_add_test(tc, clients_foreach);
	tcase_add_test(tc, slot_walk);
	tcase_add_test(tc, nested_walks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(wheel_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
