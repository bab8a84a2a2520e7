/*
 * What the auth settings name, loaded: the users file, the ACL, the
 * token keys and the anonymous reads (heraldd.conf(5), "auth").  The
 * master loads one to check them (heraldd -t, a start, a reload: bad
 * files refuse the reload); every worker loads its own and swaps it in
 * whole on a reload, so a check never sees half of one and half of the
 * next.
 */
#ifndef HERALD_AUTHDB_H
#define HERALD_AUTHDB_H

#include "acl.h"
#include "config.h"
#include "jwt.h"
#include "perm.h"
#include "users.h"

struct authdb {
	struct users	*users;		/* NULL: no auth.users */
	struct acl	*acl;		/* NULL: no auth.acl */
	struct jwt_keys	*keys;		/* NULL: no auth.jwt_keys */
	struct jwt_opts	 jwt_opts;	/* audience points into aud */
	char		*aud;
	struct perm_list anonymous;	/* what an anonymous connection may
					 * read: "#" when no auth group is
					 * configured (herald is open) */
};

/*
 * Load what cfg's auth settings name.  Returns the database, or NULL
 * after reporting each problem ("FILE:LINE: message", never a secret)
 * through errfn.
 */
struct authdb *authdb_load(const struct herald_config *cfg,
	    config_err_fn errfn, void *arg);

/* Free it (NULL is fine). */
void	authdb_free(struct authdb *);

#endif /* HERALD_AUTHDB_H */
