/*
 * Identities: what a user name may be, wherever it comes from (the users
 * file, a token's sub, the ACL), since it is written back on the wire in
 * "+OK AUTH <user>" and in log lines.
 */
#ifndef HERALD_IDENT_H
#define HERALD_IDENT_H

#include <stddef.h>

#define IDENT_MAX	64	/* longest user name: longer than any login
				 * or e-mail local part in use, short enough
				 * to sit in every log line */

/*
 * 1 if name[0..len) may be a user: 1..IDENT_MAX bytes of 0x21..0x7e,
 * no ':' (the users file's separator), not starting with '#' (a comment
 * there), and not "*" (every user, in the ACL).
 */
int	ident_valid(const char *name, size_t len);

/*
 * 1 if the valid user name may fill a whole topic segment in place of
 * "%u" (no '+', '#' or '/'): otherwise the ACL's "%u" rules do not apply
 * to it at all.
 */
int	ident_is_segment(const char *name, size_t len);

#endif /* HERALD_IDENT_H */
