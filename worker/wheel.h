/*
 * The lists of a worker's timer wheel, and the walks over them.  Every
 * client is in one slot of the wheel (timers.c decides which), so the
 * slots are also the list of all clients (CLIENTS_FOREACH).
 *
 * A walk must survive its body moving any client to another slot: a
 * write that fills a socket under the disconnect policy calls
 * timers_soon, and a body may write to many clients (a SUB's snapshot
 * runs the fan-out).  Taking "the next one" before the body is not
 * enough: when the body moves that one, the walk goes on in the wrong
 * slot and skips the rest of its own.  So a walk first takes the clients
 * it is to visit off the slots onto its own list, and puts each one back
 * as it visits it: a move of a client not yet visited only changes the
 * slot it goes back to.  Walks nest (a body may walk all clients again):
 * the inner walk visits in place the clients the outer ones still hold,
 * which nothing moves meanwhile.  A body must not free a client (the
 * reaper does, outside any walk), nor leave the walk (break, return).
 */
#ifndef HERALD_WHEEL_H
#define HERALD_WHEEL_H

#include <stdint.h>

/*
 * Slots of the per-client timer wheel, one second each (timers.c).  A
 * turn of 64 s is longer than the default heartbeat (30 s), so an idle
 * client is looked at once per heartbeat; a time further off than a turn
 * costs one look per turn (the client is put back).  At most 256: struct
 * client keeps its slot in 8 bits.
 */
#define WHEEL_SLOTS	64

struct client;

/* A place on a circular list: a client's, or a list's head. */
struct wheel_link {
	struct wheel_link	*next, *prev;
};

/* A walk under way. */
struct wheel_walk {
	int			 slot;	/* the slot it visits, -1: all */
	int			 started;
	struct wheel_link	 todo;	/* its clients not visited yet */
	struct wheel_walk	*outer;	/* the walk under way when it began */
	struct wheel_walk	*held;	/* the outer walk it is visiting */
	struct wheel_link	*at;	/* ... and where in its todo */
};

#define WHEEL_WALK_ALL		{ .slot = -1 }
#define WHEEL_WALK_SLOT(s)	{ .slot = (int)(s) }

struct wheel {
	struct wheel_link	 slot[WHEEL_SLOTS];	/* heads */
	struct wheel_walk	*walks;		/* under way, innermost first */
	uint64_t		 sec;		/* the last second timers_run
						 * ran (timers.c) */
};

/* Empty slots; sec is the second the wheel starts at. */
void	wheel_init(struct wheel *, uint64_t sec);
/* Put a client that is on no list in slot s. */
void	wheel_add(struct wheel *, struct client *, unsigned s);
/* Take a client off the wheel (to free it: never inside a walk). */
void	wheel_remove(struct client *);
/* Move a client to slot s; one a walk holds goes there once visited. */
void	wheel_move(struct wheel *, struct client *, unsigned s);
/* The next client of the walk, back in its slot; NULL when it is over. */
struct client *wheel_next(struct wheel *, struct wheel_walk *);

#endif /* HERALD_WHEEL_H */
