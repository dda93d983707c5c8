/* The compiled task spec cache (see specs.h): an open-addressing hash table
 * keyed by (workflow id, version). */
#include "specs.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "xalloc.h"

struct ver {
	long long wf;
	int version;
	int used;
	char *name;    /* the workflow's name */
	json_t *tasks; /* task name → spec (owned) */
};

struct specs {
	struct ver *tab;
	size_t cap; /* power of two */
	size_t n;
	size_t max;
};

/* Every task spec of the requested versions, as one JSON object each. */
static const char LOAD_SQL[] = "SELECT u.wf, u.v, w.name, coalesce(jsonb_object_agg(t.name, t.spec)"
                               " FILTER (WHERE t.name IS NOT NULL), '{}')::text"
                               " FROM unnest($1::bigint[], $2::int[]) AS u(wf, v)"
                               " JOIN workflows w ON w.id = u.wf"
                               " LEFT JOIN tasks t ON t.workflow_id = u.wf AND t.version = u.v"
                               " GROUP BY u.wf, u.v, w.name";

struct specs *specs_new(int max_versions)
{
	struct specs *c = xcalloc(1, sizeof *c);
	c->max = max_versions > 0 ? (size_t)max_versions : 4096;
	c->cap = 64;
	c->tab = xcalloc(c->cap, sizeof *c->tab);
	return c;
}

static void clear(struct specs *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		if (!c->tab[i].used)
			continue;
		free(c->tab[i].name);
		json_decref(c->tab[i].tasks);
	}
	memset(c->tab, 0, c->cap * sizeof *c->tab);
	c->n = 0;
}

void specs_free(struct specs *c)
{
	if (!c)
		return;
	clear(c);
	free(c->tab);
	free(c);
}

static size_t slot_of(const struct specs *c, long long wf, int version)
{
	unsigned long long h = (unsigned long long)wf * 0x9E3779B97F4A7C15ull ^
	                       (unsigned long long)(unsigned)version * 0xC2B2AE3D27D4EB4Full;
	size_t i = (size_t)(h >> 17) & (c->cap - 1);
	while (c->tab[i].used && (c->tab[i].wf != wf || c->tab[i].version != version))
		i = (i + 1) & (c->cap - 1);
	return i;
}

static struct ver *find(struct specs *c, long long wf, int version)
{
	struct ver *v = &c->tab[slot_of(c, wf, version)];
	return v->used ? v : NULL;
}

static void grow(struct specs *c)
{
	struct ver *old = c->tab;
	size_t oldcap = c->cap;
	c->cap *= 2;
	c->tab = xcalloc(c->cap, sizeof *c->tab);
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].used)
			c->tab[slot_of(c, old[i].wf, old[i].version)] = old[i];
	free(old);
}

static void put(struct specs *c, long long wf, int version, const char *name, json_t *tasks)
{
	if ((c->n + 1) * 2 > c->cap)
		grow(c);
	struct ver *v = &c->tab[slot_of(c, wf, version)];
	if (v->used) { /* loaded twice in one call: keep the first */
		json_decref(tasks);
		return;
	}
	*v = (struct ver){wf, version, 1, xstrdup(name), tasks};
	c->n++;
}

int specs_load(struct specs *c, struct store *s, const long long *workflow_id, const int *version,
               int n)
{
	struct buf wfs, vers;
	PGresult *r = NULL;
	int rc = -1, missing = 0;

	buf_init(&wfs, 0);
	buf_init(&vers, 0);
	if (c->n >= c->max)
		clear(c);
	if (buf_puts(&wfs, "{") != 0 || buf_puts(&vers, "{") != 0)
		goto out;
	for (int i = 0; i < n; i++) {
		if (find(c, workflow_id[i], version[i]))
			continue;
		if (buf_printf(&wfs, missing ? ",%lld" : "%lld", workflow_id[i]) != 0 ||
		    buf_printf(&vers, missing ? ",%d" : "%d", version[i]) != 0)
			goto out;
		missing++;
	}
	if (buf_puts(&wfs, "}") != 0 || buf_puts(&vers, "}") != 0)
		goto out;
	if (missing == 0) {
		rc = 0;
		goto out;
	}
	const char *p[2] = {wfs.data, vers.data};
	r = store_execp(s, "specs_load", LOAD_SQL, 2, p);
	if (!r)
		goto out;
	for (int i = 0; i < PQntuples(r); i++) {
		json_t *tasks = json_loads(PQgetvalue(r, i, 3), 0, NULL);
		if (!json_is_object(tasks)) {
			json_decref(tasks);
			log_warn("unreadable task specs", "workflow_id=%s version=%s",
			         PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
			continue;
		}
		put(c, strtoll(PQgetvalue(r, i, 0), NULL, 10),
		    (int)strtol(PQgetvalue(r, i, 1), NULL, 10), PQgetvalue(r, i, 2), tasks);
	}
	rc = 0;
out:
	PQclear(r);
	buf_release(&wfs);
	buf_release(&vers);
	return rc;
}

int specs_ntasks(struct specs *c, long long workflow_id, int version)
{
	struct ver *v = find(c, workflow_id, version);
	return v ? (int)json_object_size(v->tasks) : -1;
}

json_t *specs_task(struct specs *c, long long workflow_id, int version, const char *task,
                   const char **workflow)
{
	struct ver *v = find(c, workflow_id, version);
	if (workflow)
		*workflow = v ? v->name : NULL;
	return v ? json_object_get(v->tasks, task) : NULL;
}
