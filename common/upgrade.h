/*
 * A live upgrade (heraldd(8), "Upgrades"): what the old master and the
 * new one, and an old worker and its successor, agree on.
 */
#ifndef HERALD_UPGRADE_H
#define HERALD_UPGRADE_H

#include <stdint.h>

/* The new master finds its end of the upgrade socket in this variable. */
#define UPGRADE_ENV		"HERALD_UPGRADE_FD"

/*
 * The layout of what moves in an upgrade: the masters' messages and the
 * clients' state (worker/handover.c).  Any change to either is a new
 * version; a new binary refuses an old master of another version before
 * any connection moves, and the old one carries on.
 */
#define HANDOVER_VERSION	1

#define HANDOVER_MSG_MAX	(192 * 1024) /* bytes of one message of
					 * clients: within what a unix socket's
					 * buffer takes (net.core.wmem_max,
					 * doubled) */

/* HANDOVER_VERSION, from one small object (master/state_version.c), so
 * that a test build of heraldd can speak another (the tests' rollback). */
extern const uint32_t handover_version;

#endif /* HERALD_UPGRADE_H */
