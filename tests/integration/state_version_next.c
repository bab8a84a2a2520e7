/*
 * heraldd-nextstate: heraldd speaking the next hand-over layout, which a
 * running heraldd does not know: an upgrade to it must be refused before
 * any connection moves (test_upgrade.py, rollback).
 */
#include "upgrade.h"

const uint32_t handover_version = HANDOVER_VERSION + 1;
