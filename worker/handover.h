/*
 * An upgrade's hand-over of clients from a worker of the old binary to
 * its successor (handover.c), and the byte layout their state travels in
 * (common/upgrade.h versions it).
 */
#ifndef HERALD_HANDOVER_H
#define HERALD_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "upgrade.h"

#define HANDOVER_BATCH		64	/* clients (descriptors) per message:
					 * few system calls for many clients,
					 * well under SCM_MAX_FD */
#define HANDOVER_QUIESCE_MS	2000	/* a client still busy after this
					 * (a snapshot being sent, a SYNC or
					 * AUTH being answered, more output
					 * queued than a message holds) is
					 * told BYE restart */
#define HANDOVER_SEND_MS	5000	/* a successor that takes nothing for
					 * this long is given up (every client
					 * left is told BYE restart) */
#define HANDOVER_BYE_MS		200	/* the BYEs said in an upgrade get this
					 * long to be written before the old
					 * worker exits: the new producer, and
					 * so every publisher, waits for it */
#define HANDOVER_MAGIC		0x4f48524cu /* "LRHO" */

/* A message being written: its bytes, and whether they overflowed. */
struct ho_out {
	char	*buf;
	size_t	 len, cap;
	int	 full;
};

/* A message being read: bad is set at the first thing out of bounds. */
struct ho_in {
	const char *p;
	size_t	 len, off;
	int	 bad;
};

void	ho_put(struct ho_out *, const void *, size_t);
void	ho_u8(struct ho_out *, uint8_t);
void	ho_u16(struct ho_out *, uint16_t);
void	ho_u32(struct ho_out *, uint32_t);
void	ho_u64(struct ho_out *, uint64_t);
/* A string of at most 65535 bytes, its length first. */
void	ho_str(struct ho_out *, const char *, size_t);

uint8_t	 ho_get_u8(struct ho_in *);
uint16_t ho_get_u16(struct ho_in *);
uint32_t ho_get_u32(struct ho_in *);
uint64_t ho_get_u64(struct ho_in *);
/* n bytes in place, or NULL (and bad set) past the end. */
const char *ho_get(struct ho_in *, size_t n);
/* A string put by ho_str: in place, its length in *len. */
const char *ho_get_str(struct ho_in *, size_t *len);

struct worker;
struct client;

/* Old worker: begin handing every client over on sock (CTL_HANDOVER). */
void	handover_start(struct worker *, int sock);
/* ... a step, on the stop clock; 1 once no client is left to move */
int	handover_step(struct worker *);
/* New worker: adopt what arrives on sock from the predecessor. */
void	handover_adopt(struct worker *, int sock);

/* authn.c: a client's identity and permissions, saved and restored
 * (-1: bad input or no memory) */
void	authn_save(const struct client *, struct ho_out *);
int	authn_restore(struct client *, struct ho_in *);

#endif /* HERALD_HANDOVER_H */
