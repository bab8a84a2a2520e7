/* The auth settings' files, loaded (authdb.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authdb.h"

static void
report(config_err_fn errfn, void *arg, const char *msg)
{
	if (errfn != NULL)
		errfn(arg, msg);
}

/* Add each pattern of sl (checked by config.c) to pl; -1 on no memory. */
static int
add_patterns(struct perm_list *pl, const struct strlist *sl)
{
	for (int i = 0; i < sl->n; i++)
		if (perm_add(pl, sl->v[i], strlen(sl->v[i])) == -1)
			return -1;
	return 0;
}

struct authdb *
authdb_load(const struct herald_config *cfg, config_err_fn errfn, void *arg)
{
	struct authdb *db = calloc(1, sizeof(*db));
	char err[512];
	int bad = 0;

	if (db == NULL) {
		report(errfn, arg, "auth: out of memory");
		return NULL;
	}
	perm_init(&db->anonymous);
	if (cfg->auth_users[0] != '\0' && (db->users =
	    users_load(cfg->auth_users, err, sizeof(err))) == NULL) {
		report(errfn, arg, err);
		bad++;
	}
	if (cfg->auth_acl[0] != '\0' && (db->acl = acl_load(cfg->auth_acl, err,
	    sizeof(err))) == NULL) {
		report(errfn, arg, err);
		bad++;
	}
	if (cfg->auth_jwt_keys.n > 0 && (db->keys = jwt_keys_new()) == NULL) {
		report(errfn, arg, "auth.jwt_keys: out of memory");
		bad++;
	}
	for (int i = 0; db->keys != NULL && i < cfg->auth_jwt_keys.n; i++)
		if (jwt_keys_add_file(db->keys, cfg->auth_jwt_keys.v[i], err,
		    sizeof(err)) == -1) {
			report(errfn, arg, err);
			bad++;
		}
	db->jwt_opts.require_exp = cfg->auth_jwt_require_exp;
	if (cfg->auth_jwt_audience[0] != '\0') {
		if ((db->aud = strdup(cfg->auth_jwt_audience)) == NULL) {
			report(errfn, arg, "auth: out of memory");
			bad++;
		}
		db->jwt_opts.audience = db->aud;
	}
	if (cfg->auth_on ? add_patterns(&db->anonymous, &cfg->auth_anonymous) :
	    perm_add(&db->anonymous, "#", 1)) {
		report(errfn, arg, "auth.anonymous: out of memory");
		bad++;
	}
	if (bad) {
		authdb_free(db);
		return NULL;
	}
	return db;
}

void
authdb_free(struct authdb *db)
{
	if (db == NULL)
		return;
	users_free(db->users);
	acl_free(db->acl);
	jwt_keys_free(db->keys);
	free(db->aud);
	perm_free(&db->anonymous);
	free(db);
}
