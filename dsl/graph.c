/* The task graph: needs, cycles, and references between tasks. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dsl_int.h"
#include "xalloc.h"

static int task_cmp_name(const void *key, const void *elem)
{
	return strcmp(key, ((const struct dsl_task *)elem)->name);
}

long graph_find(const struct dsl_graph *g, const char *name)
{
	const struct dsl_task *t =
	    bsearch(name, g->tasks, g->ntasks, sizeof(*g->tasks), task_cmp_name);
	return t ? (long)(t - g->tasks) : -1;
}

/* "did you mean 'x'?" among the task names, or NULL. */
static const char *closest_task(const struct dsl_graph *g, const char *name)
{
	const char *best = NULL;
	int bestd = 3;
	for (size_t i = 0; i < g->ntasks && i < 5000; i++) {
		int d = levenshtein(name, g->tasks[i].name);
		if (d < bestd) {
			bestd = d;
			best = g->tasks[i].name;
		}
	}
	return best;
}

static void add_need(struct dsl_graph *g, struct dsl_task *t, const struct ynode *n,
                     const char *field)
{
	const char *s;
	if (get_string(g->c, n, field, &s))
		return;
	long idx = graph_find(g, s);
	if (idx < 0) {
		const char *hint = closest_task(g, s);
		if (hint)
			ctx_err(g->c, n, field, "unknown task '%s' in needs: did you mean '%s'?", s,
			        hint);
		else
			ctx_err(g->c, n, field, "unknown task '%s' in needs: no task has that name",
			        s);
		return;
	}
	if (&g->tasks[idx] == t) {
		ctx_err(g->c, n, field, "task '%s' needs itself", s);
		return;
	}
	for (size_t i = 0; i < t->nneeds; i++)
		if (t->needs[i] == (size_t)idx) {
			ctx_err(g->c, n, field, "task '%s' is listed twice in needs", s);
			return;
		}
	t->needs = xrealloc(t->needs, (t->nneeds + 1) * sizeof(*t->needs));
	t->needs_at = xrealloc(t->needs_at, (t->nneeds + 1) * sizeof(*t->needs_at));
	t->needs[t->nneeds] = (size_t)idx;
	t->needs_at[t->nneeds] = n;
	t->nneeds++;
}

void graph_needs(struct dsl_graph *g)
{
	for (size_t i = 0; i < g->ntasks; i++) {
		struct dsl_task *t = &g->tasks[i];
		const struct ynode *n = t->node->kind == YN_MAP ? ymap_get(t->node, "needs") : NULL;
		char *field = path_key(t->field, "needs");
		if (!n || ynode_is_null(n)) {
			/* no needs */
		} else if (n->kind == YN_SCALAR) {
			add_need(g, t, n, field);
		} else if (n->kind == YN_SEQ) {
			for (size_t j = 0; j < n->n; j++) {
				char *f = path_idx(field, j);
				add_need(g, t, n->items[j], f);
				free(f);
			}
		} else {
			ctx_err(g->c, n, field,
			        "expected a task name or a list of task names, got a %s",
			        ynode_kind_name(n));
		}
		free(field);
		/* sort needs (with their marks) by index, i.e. by name */
		for (size_t a = 1; a < t->nneeds; a++) {
			size_t v = t->needs[a];
			const struct ynode *at = t->needs_at[a];
			size_t b = a;
			while (b > 0 && t->needs[b - 1] > v) {
				t->needs[b] = t->needs[b - 1];
				t->needs_at[b] = t->needs_at[b - 1];
				b--;
			}
			t->needs[b] = v;
			t->needs_at[b] = at;
		}
	}
}

struct dfs {
	struct dsl_graph *g;
	unsigned char *color; /* 0 new, 1 on the stack, 2 done */
	size_t *stack;
	size_t depth;
};

static void report_cycle(struct dfs *d, size_t from, size_t edge)
{
	struct dsl_task *t = &d->g->tasks[from];
	size_t to = t->needs[edge];
	size_t start = 0;
	while (start < d->depth && d->stack[start] != to)
		start++;
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = start; i < d->depth; i++)
		if (buf_printf(&b, "%s -> ", d->g->tasks[d->stack[i]].name))
			break;
	if (buf_puts(&b, d->g->tasks[to].name)) {
		/* unbounded buffer: cannot fail */
	}
	char *field = path_key(t->field, "needs");
	ctx_err(d->g->c, t->needs_at[edge], field,
	        "dependency cycle: %s (each task needs the next)", b.data);
	free(field);
	buf_release(&b);
}

/* Iterative depth-first search: a chain of DSL_MAX_TASKS tasks must not
 * exhaust the C stack. */
static void dfs_from(struct dfs *d, size_t root)
{
	size_t *next_edge = xcalloc(d->g->ntasks, sizeof(*next_edge));
	d->depth = 0;
	d->stack[d->depth++] = root;
	d->color[root] = 1;
	while (d->depth > 0) {
		size_t u = d->stack[d->depth - 1];
		struct dsl_task *t = &d->g->tasks[u];
		if (next_edge[u] >= t->nneeds) {
			d->color[u] = 2;
			d->depth--;
			continue;
		}
		size_t e = next_edge[u]++;
		size_t v = t->needs[e];
		if (d->color[v] == 1) {
			report_cycle(d, u, e);
		} else if (d->color[v] == 0) {
			d->color[v] = 1;
			d->stack[d->depth++] = v;
		}
	}
	free(next_edge);
}

void graph_cycles(struct dsl_graph *g)
{
	struct dfs d = {.g = g};
	d.color = xcalloc(g->ntasks ? g->ntasks : 1, 1);
	d.stack = xcalloc(g->ntasks ? g->ntasks : 1, sizeof(*d.stack));
	for (size_t i = 0; i < g->ntasks; i++)
		if (d.color[i] == 0)
			dfs_from(&d, i);
	free(d.color);
	free(d.stack);
}

static const unsigned char *ancestors(struct dsl_graph *g, size_t ti)
{
	struct dsl_task *t = &g->tasks[ti];
	if (t->ancestors)
		return t->ancestors;
	t->ancestors = xcalloc(g->ntasks, 1);
	size_t *todo = xcalloc(g->ntasks, sizeof(*todo));
	size_t n = 0;
	todo[n++] = ti;
	while (n > 0) {
		struct dsl_task *u = &g->tasks[todo[--n]];
		for (size_t i = 0; i < u->nneeds; i++) {
			size_t v = u->needs[i];
			if (!t->ancestors[v]) {
				t->ancestors[v] = 1;
				todo[n++] = v;
			}
		}
	}
	free(todo);
	return t->ancestors;
}

struct refck {
	struct dsl_graph *g;
	const struct dsl_site *s;
};

static const char *const roots_msg =
    "expected ${params.NAME}, ${tasks.TASK.output.KEY}, ${run.id}, ${run.workflow}, "
    "${schedule.time} or ${secrets.NAME}";

static int valid_ident(const char *s, int upper_ok)
{
	size_t len = strlen(s);
	const char *set = upper_ok
	                      ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
	                      : "abcdefghijklmnopqrstuvwxyz0123456789_-";
	return len > 0 && len <= 128 && strspn(s, set) == len;
}

static void check_task_ref(struct refck *k, const char *ref, const char *task, const char *key)
{
	struct dsl_graph *g = k->g;
	const struct dsl_site *s = k->s;
	const struct dsl_task *cur = &g->tasks[s->task];
	long idx = graph_find(g, task);
	if (idx < 0) {
		const char *hint = closest_task(g, task);
		ctx_err(g->c, s->at, s->field, "unknown task '%s' in '${%s}'%s%s%s", task, ref,
		        hint ? ": did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
		return;
	}
	if ((size_t)idx == s->task) {
		ctx_err(g->c, s->at, s->field, "'${%s}': a task cannot use its own outputs", ref);
		return;
	}
	if (!ancestors(g, s->task)[idx]) {
		ctx_err(g->c, s->at, s->field,
		        "'${%s}': task '%s' is not upstream of '%s'; add it to needs (directly "
		        "or through another task)",
		        ref, task, cur->name);
		return;
	}
	const json_t *outs = g->tasks[idx].outputs;
	if (outs && json_array_size(outs) > 0) {
		size_t i;
		json_t *o;
		json_array_foreach(outs, i, o) if (strcmp(json_string_value(o), key) == 0) return;
		struct buf b;
		buf_init(&b, 0);
		json_array_foreach(outs, i, o)
		{
			if (buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(o)))
				break;
		}
		ctx_err(g->c, s->at, s->field,
		        "'${%s}': task '%s' declares no output '%s' (it declares %s)", ref, task,
		        key, b.data);
		buf_release(&b);
	}
}

static int check_ref(void *ud, const char *ref)
{
	struct refck *k = ud;
	struct dsl_graph *g = k->g;
	const struct dsl_site *s = k->s;
	char *copy = xstrdup(ref);
	char *parts[5] = {0};
	int np = 0;
	char *save = NULL;
	for (char *p = strtok_r(copy, ".", &save); p; p = strtok_r(NULL, ".", &save)) {
		if (np == 5)
			break;
		parts[np++] = p;
	}
	int dots_ok = ref[0] != '.' && ref[strlen(ref) - 1] != '.' && !strstr(ref, "..");
	const char *root = np ? parts[0] : "";

	if (s->sh) {
		if (!strcmp(root, "params") && np == 2) {
			char env[80];
			size_t i;
			for (i = 0; parts[1][i] && i < 64; i++)
				env[i] = (char)(parts[1][i] >= 'a' && parts[1][i] <= 'z'
				                    ? parts[1][i] - 'a' + 'A'
				                    : parts[1][i]);
			env[i] = '\0';
			ctx_err(
			    g->c, s->at, s->field,
			    "'${%s}' in an sh script: parameters are never spliced into a shell "
			    "script; use the environment variable $WF_PARAM_%s instead",
			    ref, env);
		} else if (!strcmp(root, "params") || !strcmp(root, "tasks") ||
		           !strcmp(root, "run") || !strcmp(root, "schedule") ||
		           !strcmp(root, "secrets")) {
			ctx_err(
			    g->c, s->at, s->field,
			    "'${%s}' in an sh script: references are not expanded in sh "
			    "scripts; pass the value through env (e.g. env: {VALUE: \"${%s}\"}) "
			    "and use $VALUE",
			    ref, ref);
		}
		/* anything else is the shell's own ${VAR} */
		goto out;
	}
	if (!dots_ok) {
		ctx_err(g->c, s->at, s->field, "invalid reference '${%s}': %s", ref, roots_msg);
	} else if (!strcmp(root, "params")) {
		if (np != 2) {
			ctx_err(g->c, s->at, s->field,
			        "invalid reference '${%s}': expected ${params.NAME}", ref);
		} else if (!json_object_get(g->params, parts[1])) {
			const char *best = NULL;
			int bestd = 3;
			const char *key;
			json_t *v;
			json_object_foreach(g->params, key, v)
			{
				int d = levenshtein(parts[1], key);
				if (d < bestd || (d == bestd && best && strcmp(key, best) < 0)) {
					bestd = d;
					best = key;
				}
			}
			ctx_err(g->c, s->at, s->field, "unknown parameter '%s' in '${%s}'%s%s%s",
			        parts[1], ref,
			        best ? ": did you mean '" : ": declare it under params",
			        best ? best : "", best ? "'?" : "");
		}
	} else if (!strcmp(root, "tasks")) {
		if (np != 4 || strcmp(parts[2], "output") != 0)
			ctx_err(g->c, s->at, s->field,
			        "invalid reference '${%s}': expected ${tasks.TASK.output.KEY}",
			        ref);
		else
			check_task_ref(k, ref, parts[1], parts[3]);
	} else if (!strcmp(root, "run")) {
		if (np != 2 || (strcmp(parts[1], "id") && strcmp(parts[1], "workflow")))
			ctx_err(g->c, s->at, s->field,
			        "invalid reference '${%s}': expected ${run.id} or ${run.workflow}",
			        ref);
	} else if (!strcmp(root, "schedule")) {
		if (np != 2 || strcmp(parts[1], "time"))
			ctx_err(g->c, s->at, s->field,
			        "invalid reference '${%s}': expected ${schedule.time}", ref);
	} else if (!strcmp(root, "secrets")) {
		if (np != 2 || !valid_ident(parts[1], 1))
			ctx_err(
			    g->c, s->at, s->field,
			    "invalid reference '${%s}': expected ${secrets.NAME} (letters, digits "
			    "and '_')",
			    ref);
	} else {
		ctx_err(g->c, s->at, s->field, "unknown reference '${%s}': %s", ref, roots_msg);
	}
out:
	free(copy);
	return 0;
}

/* A shell script may hold any ${...} the shell understands (${HOME:-x}):
 * only ${root.more} spans that look like ours are checked. */
static void scan_sh(struct refck *k, const char *text)
{
	static const char set[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	char ref[256];
	for (const char *p = strstr(text, "${"); p; p = strstr(p + 2, "${")) {
		size_t n = strspn(p + 2, set);
		if (n == 0 || n >= sizeof(ref) || p[2 + n] != '}' || !memchr(p + 2, '.', n))
			continue;
		memcpy(ref, p + 2, n);
		ref[n] = '\0';
		check_ref(k, ref);
	}
}

void graph_check_refs(struct dsl_graph *g)
{
	for (size_t i = 0; i < g->nsites; i++) {
		struct refck k = {.g = g, .s = &g->sites[i]};
		char err[256];
		if (g->sites[i].sh)
			scan_sh(&k, g->sites[i].text);
		else if (dsl_scan_refs(g->sites[i].text, check_ref, &k, err, sizeof(err)))
			ctx_err(g->c, g->sites[i].at, g->sites[i].field, "%s", err);
	}
}

void graph_add_site(struct dsl_graph *g, const char *text, const struct ynode *at,
                    const char *field, size_t task, int sh)
{
	if (!strstr(text, "${"))
		return;
	if (g->nsites == g->capsites) {
		g->capsites = g->capsites ? g->capsites * 2 : 16;
		g->sites = xrealloc(g->sites, g->capsites * sizeof(*g->sites));
	}
	g->sites[g->nsites++] = (struct dsl_site){
	    .text = text, .at = at, .field = xstrdup(field), .task = task, .sh = sh};
}

void graph_release(struct dsl_graph *g)
{
	for (size_t i = 0; i < g->ntasks; i++) {
		free(g->tasks[i].field);
		free(g->tasks[i].needs);
		free(g->tasks[i].needs_at);
		free(g->tasks[i].ancestors);
	}
	free(g->tasks);
	for (size_t i = 0; i < g->nsites; i++)
		free(g->sites[i].field);
	free(g->sites);
}
