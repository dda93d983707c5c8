/* Schema migrations compiled into the binaries (scripts/embed-migrations.sh). */
#ifndef WF_MIGRATE_H
#define WF_MIGRATE_H
#include <libpq-fe.h>

struct migration {
	int version;
	const char *name;
	const char *sql;
};

/* Every migration this binary knows, in order, ended by { 0, NULL, NULL }. */
extern const struct migration wf_migrations[];

/* The newest version this binary knows. */
int migrate_latest(void);
/* Applies the missing migrations, each in its own transaction, under an
 * advisory lock, recording them in schema_migrations. Refuses (returns -1)
 * when the database is newer than this binary. Returns the number applied,
 * or -1 with a message in err. */
int migrate_up(PGconn *db, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The database's current version (0 when none), or -1 with err. */
int migrate_current(PGconn *db, char *err, size_t errlen) __attribute__((warn_unused_result));
/* 0 when the database is exactly at migrate_latest(), else -1 with err. */
int migrate_check(PGconn *db, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
