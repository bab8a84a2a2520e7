/*
 * The ACL file (auth.acl), in Mosquitto's spirit:
 *
 *	# comment
 *	user *			rules for every authenticated user
 *	read status/#
 *	user alice
 *	read plant/+/temp
 *	publish devices/%u/#	"%u" is the user's name, a whole segment
 *
 * A user gets the rules of "user *" and of its own block.  A "%u" rule
 * applies only to a user whose name can be a topic segment (no '+', '#'
 * or '/'): a name such as "#" must not widen a rule (CVE-2017-7650).
 * Parsing is pure (acl_parse, from a buffer); acl_load reads the file.
 */
#ifndef HERALD_ACL_H
#define HERALD_ACL_H

#include <stddef.h>

#include "perm.h"

#define ACL_RULES_MAX	256	/* rules in one user block: an operator
				 * who needs more wants patterns */
#define ACL_USERS_MAX	65536	/* user blocks in a file: beyond that,
				 * tokens carrying their own permissions
				 * scale better */

struct acl;

/*
 * Parse an ACL from buf[0..len) (the file's contents; name is its path,
 * for errors).  Returns the ACL, or NULL after writing
 * "NAME:LINE: message" (or "out of memory") into err.
 */
struct acl *acl_parse(const char *buf, size_t len, const char *name,
	    char *err, size_t errlen);

/* Read the file at path and parse it; NULL after writing why into err. */
struct acl *acl_load(const char *path, char *err, size_t errlen);

/*
 * Add to read and publish the patterns the valid user (ident_valid) may
 * use: those of "user *" and of its own block, "%u" filled with its name
 * (and left out when the name cannot be a segment, or the pattern grows
 * past TOPIC_MAX).  Returns 0, or -1 when out of memory or a list is full
 * (the lists then hold part of the patterns: free them).
 */
int	acl_permissions(const struct acl *, const char *user,
	    struct perm_list *read, struct perm_list *publish);

/* The number of user blocks ("user *" included), for a summary. */
size_t	acl_users(const struct acl *);

/* Free the ACL (NULL is fine). */
void	acl_free(struct acl *);

#endif /* HERALD_ACL_H */
