/* The hand-over layout this heraldd speaks (common/upgrade.h). */
#include "upgrade.h"

const uint32_t handover_version = HANDOVER_VERSION;
