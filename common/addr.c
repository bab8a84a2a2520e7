/*
 * The per-address connection table (addr.h): open addressing over
 * ADDR_SLOTS slots, ADDR_PROBES of them from an address's hash on, under
 * a spin lock that its holder keeps for a few hundred nanoseconds.
 *
 * A slot is never emptied once used: a key stays until the slot is
 * reused, so a search may stop at the first never-used slot, and reuse
 * never makes an address findable in two slots (it is placed, under the
 * lock, only where a search found it absent).
 */
#include <sched.h>
#include <stddef.h>
#include <sys/mman.h>
#include <time.h>

#include "addr.h"

struct addr_table *
addr_table_create(void)
{
	void *p = mmap(NULL, sizeof(struct addr_table), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Take the lock for worker; -1 if ADDR_LOCK_WAIT_MS passed first. */
static int
table_lock(struct addr_table *t, int worker)
{
	struct timespec start = { 0, 0 }, now;

	for (int i = 1;; i++) {
		uint32_t free = 0;
		if (__atomic_compare_exchange_n(&t->lock, &free, worker, 0,
		    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return 0;
		if (i % 64 != 0)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (i == 64)
			start = now;
		else if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec -
		    start.tv_nsec) / 1000000 >= ADDR_LOCK_WAIT_MS)
			return -1;
		sched_yield();	/* the holder may need this CPU */
	}
}

static void
table_unlock(struct addr_table *t)
{
	__atomic_store_n(&t->lock, 0, __ATOMIC_RELEASE);
}

/* Connections counted in slot, over every worker. */
static int64_t
slot_count(struct addr_table *t, int slot, int nworkers)
{
	int64_t n = 0;

	for (int i = 0; i < nworkers; i++)
		n += __atomic_load_n(&t->counts[i][slot], __ATOMIC_RELAXED);
	return n;
}

/*
 * The address's slot: where key is, or else the first slot of its probes
 * that is free (never used, or no connection counted), now key's; -1 if
 * there is none.
 */
static int
claim_slot(struct addr_table *t, uint64_t key, int nworkers)
{
	int spare = -1;

	for (int probe = 0; probe < ADDR_PROBES; probe++) {
		int s = (key + probe) & (ADDR_SLOTS - 1);
		uint64_t k = t->keys[s];
		if (k == key)
			return s;
		if (spare == -1 && (k == 0 || slot_count(t, s, nworkers) == 0))
			spare = s;
		if (k == 0)
			break;	/* never used: key is not further on */
	}
	if (spare != -1)
		t->keys[spare] = key;
	return spare;
}

int
addr_admit(struct addr_table *t, int worker, int nworkers, uint64_t key,
    int limit)
{
	if (key == 0)
		return ADDR_UNTRACKED;
	if (table_lock(t, worker) == -1)
		return ADDR_BUSY;
	int slot = claim_slot(t, key, nworkers);
	if (slot == -1)
		slot = ADDR_FULL;
	else if (slot_count(t, slot, nworkers) >= limit)
		slot = ADDR_REFUSED;
	else
		__atomic_fetch_add(&t->counts[worker - 1][slot], 1,
		    __ATOMIC_RELAXED);
	table_unlock(t);
	return slot;
}

void
addr_release(struct addr_table *t, int worker, int slot)
{
	__atomic_fetch_sub(&t->counts[worker - 1][slot], 1, __ATOMIC_RELAXED);
}

void
addr_worker_reset(struct addr_table *t, int worker)
{
	for (int s = 0; s < ADDR_SLOTS; s++)
		__atomic_store_n(&t->counts[worker - 1][s], 0, __ATOMIC_RELAXED);
}

int
addr_unlock_dead(struct addr_table *t, int worker)
{
	uint32_t held = worker;

	return __atomic_compare_exchange_n(&t->lock, &held, 0, 0,
	    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
