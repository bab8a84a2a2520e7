/*
 * The connection count of every source address, for clients.per_address:
 * one table in shared memory for all workers, made by the master before
 * it forks.  A worker admits a connection under the table's lock (so the
 * limit holds exactly across workers) and lets it go without it.
 */
#ifndef HERALD_ADDR_H
#define HERALD_ADDR_H

#include <stdint.h>

#include "heraldd.h"

#define ADDR_SLOTS		16384	/* source addresses counted at once
					 * (a power of two): many more than
					 * a server has distinct sources of
					 * clients, at 512 KB of counts per
					 * worker at most */
#define ADDR_PROBES		64	/* slots an address may be in, from
					 * its hash on (open addressing) */
#define ADDR_LOCK_WAIT_MS	10	/* the lock is held for a few
					 * hundred ns; held longer, its holder
					 * is stopped (SIGSTOP, a debugger) */

/*
 * Shared between processes: keys[] and the lock are read and written
 * under the lock only; counts[] may go down without it (a connection
 * ends), never up.  An address whose counts are all zero has no slot of
 * its own any more: its slot goes to the next new address that needs it.
 */
struct addr_table {
	uint32_t	lock;			/* id of the worker holding it,
						 * or 0 */
	uint64_t	keys[ADDR_SLOTS];	/* address hash; 0 = never used */
	int32_t		counts[WORKERS_MAX][ADDR_SLOTS]; /* per worker, so that
						 * a restarted one clears its own */
};

/* What addr_admit returns when it gives no slot. */
#define ADDR_UNTRACKED	(-1)	/* not counted (key 0: a unix socket) */
#define ADDR_REFUSED	(-2)	/* the address is at its limit */
#define ADDR_FULL	(-3)	/* no slot free: admitted, not counted */
#define ADDR_BUSY	(-4)	/* the lock was not to be had within
				 * ADDR_LOCK_WAIT_MS: admitted, not counted */

/* The table, zeroed, in anonymous shared memory; NULL if mmap fails. */
struct addr_table *addr_table_create(void);

/*
 * Count one connection of worker (1..WORKERS_MAX) from the address whose
 * hash is key (0: not tracked), if the address has fewer than limit over
 * the first nworkers workers.  Returns its slot (>= 0: give it back with
 * addr_release), or one of the ADDR_* values above.
 */
int	addr_admit(struct addr_table *, int worker, int nworkers, uint64_t key,
	    int limit);

/* A connection counted in slot by worker ended. */
void	addr_release(struct addr_table *, int worker, int slot);

/* A worker starts: its predecessor's connections are gone. */
void	addr_worker_reset(struct addr_table *, int worker);

/* A worker died: release the lock if it held it (after nginx's
 * ngx_shmtx_force_unlock).  Returns 1 if it did. */
int	addr_unlock_dead(struct addr_table *, int worker);

#endif /* HERALD_ADDR_H */
