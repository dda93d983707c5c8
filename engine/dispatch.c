/* The dispatcher: claim in one transaction, assign, commit, then send. */
#include "dispatch.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dsl.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "runs_int.h"
#include "specs.h"
#include "util.h"
#include "wire.h"
#include "xalloc.h"

/* The claim: for each priority level (0 high, 1 medium, 2 low), the ready
 * queue read in index order (the partial index task_runs_ready (priority,
 * available_at, id): one ordered index scan per level, joined LATERAL to
 * the three levels, which plans in about half the time three UNION ALL
 * branches took), then the oldest by effective priority (aging: a level
 * up per minute waited) over all levels.
 * Everything that needs another table (the run is running, its workflow
 * not paused, the task's route can be served) is one LATERAL subquery per
 * candidate, probed by primary key in a fixed order (OFFSET 0 keeps it a
 * probe: the planner cannot turn it into a join, so the scan stops after
 * LIMIT rows that pass, whatever the backlog; a join let it start from runs
 * and visit every queued row on each claim, and, with runs estimated at
 * one row, merge-join a million-row tasks and workflows per candidate).
 * The same probe of the run returns what the frame needs (workflow,
 * version, params, scheduled time): the claim reads each row once
 * (reading the claimed rows again by id cost a fifth of the claim,
 * bench/README.md round 8).
 * Each level's rows are locked as its scan finds them (SKIP LOCKED under
 * the LIMIT): rows another engine holds are passed over, not counted.
 * Locking only the chosen candidates afterwards made a second engine
 * choose the first engine's rows, skip them all and claim nothing: half of
 * all claims were empty with two engines (round 7). A level's rows beyond
 * the LIMIT of the whole claim stay locked until its commit, unclaimed:
 * other engines take the next ones.
 * date_part is float8: extract() is numeric, and sorting on numeric cost
 * more than the rest of the claim. */
static const char CLAIM_SQL[] =
    "SELECT c.id, c.run_id, c.task, c.workflow_id, c.version, c.params, c.sched_ms,"
    " c.target_executor"
    " FROM (VALUES (0::smallint), (1::smallint), (2::smallint)) AS p(p) CROSS JOIN LATERAL"
    " (SELECT tr.id, tr.priority - floor(date_part('epoch', now() - tr.available_at) / 60)"
    "  AS eff, tr.available_at, tr.run_id, tr.task, x.workflow_id, x.version, x.params,"
    "  x.sched_ms, tr.target_executor FROM task_runs tr CROSS JOIN LATERAL (SELECT"
    "  r.workflow_id, r.version, r.params::text AS params,"
    "  (extract(epoch FROM r.scheduled_for) * 1000)::bigint AS sched_ms, (SELECT CASE"
    "  WHEN k.spec->>'route' LIKE 'executor:%' THEN substr(k.spec->>'route', 10) ="
    "  ANY($3::text[]) WHEN k.spec->>'route' LIKE 'label:%' THEN substr(k.spec->>'route', 7)"
    "  = ANY($4::text[]) ELSE true END FROM (SELECT 1 FROM workflows w"
    "  WHERE w.id = r.workflow_id AND NOT w.paused OFFSET 0) w CROSS JOIN LATERAL (SELECT"
    "  k.spec FROM tasks k WHERE k.workflow_id = r.workflow_id AND k.version = r.version"
    "  AND k.name = tr.task OFFSET 0) k) AS ok"
    "  FROM runs r WHERE r.id = tr.run_id AND r.state || '' = 'running' OFFSET 0) x"
    "  WHERE tr.priority = p.p AND tr.state IN ('queued', 'retrying')"
    "  AND tr.available_at <= now() AND tr.pool = $1"
    "  AND (tr.target_executor IS NULL OR tr.target_executor = ANY($3::text[])) AND x.ok"
    "  ORDER BY tr.available_at, tr.id LIMIT $2 FOR UPDATE OF tr SKIP LOCKED) AS c"
    " ORDER BY c.eff, c.available_at, c.id LIMIT $2";

static const char *const mark_sql =
    /* The attempt lives on the task run until it ends (its attempts row
     * is written then: migration 013). */
    "WITH u AS (SELECT * FROM unnest($1::bigint[], $3::text[]) AS u(id, ex)) "
    "UPDATE task_runs t SET state = 'running', attempt = t.attempt + 1, "
    "executor_id = u.ex, lease_expires_at = now() + $2::bigint * interval '1 millisecond', "
    "started_at = coalesce(t.started_at, now()), attempt_claimed_at = now(), "
    "attempt_started_at = NULL, wait_reason = NULL, updated_at = now() "
    /* the third column: seconds from ready to claimed, for the metrics */
    "FROM u WHERE t.id = u.id RETURNING t.id, t.attempt, "
    "date_part('epoch', clock_timestamp() - t.available_at)";

static const char *const requeue_sql =
    "WITH u AS (SELECT * FROM json_to_recordset($1::json) AS u(id bigint, att int)), "
    "o AS (SELECT t.id, t.attempt, t.executor_id, t.attempt_claimed_at AS claimed_at "
    "FROM task_runs t JOIN u ON t.id = u.id AND t.attempt = u.att "
    "WHERE t.state = 'running' ORDER BY t.id FOR UPDATE OF t), "
    "up AS (UPDATE task_runs t SET state = 'retrying', available_at = now(), "
    "max_attempts = t.max_attempts + 1, executor_id = NULL, lease_expires_at = NULL, "
    "updated_at = now() FROM o WHERE t.id = o.id RETURNING t.id) "
    /* the attempt ends here: its row (migration 013) */
    "INSERT INTO attempts (task_run_id, attempt, executor_id, state, claimed_at, sent_at, "
    "finished_at, error) SELECT o.id, o.attempt, o.executor_id, 'lost', "
    "coalesce(o.claimed_at, now()), o.claimed_at, now(), "
    "'the engine could not send the task to its executor' FROM o JOIN up ON up.id = o.id";

/* Broadcast fan-out: $1 = [{"id": parent, "execs": [executor ids]}]. The
 * parent becomes `running` without an executor or a lease (the reaper and
 * lease renewal leave it alone: its copies carry the leases) and one queued
 * copy per executor is added with target_executor set; a copy that already
 * exists (a resumed run) is kept as it is. advance.c rolls the copies up
 * into the parent. */
static const char *const fanout_sql =
    "WITH f AS (SELECT (e->>'id')::bigint AS id, x.ex FROM jsonb_array_elements($1::jsonb) e"
    " CROSS JOIN LATERAL jsonb_array_elements_text(e->'execs') AS x(ex)), "
    "p AS (UPDATE task_runs t SET state = 'running', attempt = t.attempt + 1, "
    "executor_id = NULL, lease_expires_at = NULL, started_at = coalesce(t.started_at, now()), "
    "wait_reason = NULL, updated_at = now() "
    "WHERE t.id IN (SELECT id FROM f) AND t.target_executor IS NULL "
    "RETURNING t.id, t.run_id, t.task, t.max_attempts, t.priority, t.pool), "
    "ins AS (INSERT INTO task_runs (run_id, task, state, max_attempts, priority, pool, "
    "target_executor) SELECT p.run_id, p.task, 'queued', p.max_attempts, p.priority, p.pool, "
    "f.ex FROM p JOIN f ON f.id = p.id ORDER BY p.id, f.ex "
    "ON CONFLICT (run_id, task, target_executor) DO NOTHING RETURNING 1) "
    "SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM ins)";

static const char *const outputs_sql =
    "SELECT run_id, task, outputs::text FROM task_runs "
    "WHERE run_id = ANY($1::bigint[]) AND outputs IS NOT NULL AND target_executor IS NULL";

struct disp {
	struct disp_opts o;
	char *engine_id;
	char *engine_quoted; /* engine_id as JSON text, for task frames */
	struct specs *specs; /* compiled task specs by workflow version */
	long long spliced;   /* frames assembled from spec fragments */
	uint64_t rnd;
};

/* One claimed task run. */
struct row {
	long long id;
	long long run_id;
	int attempt;
	const char *task;     /* borrowed from the claim result */
	const char *workflow; /* borrowed from the spec cache */
	const char *params;   /* borrowed JSON text */
	int64_t sched_ms;     /* 0 = none */
	json_t *spec;         /* borrowed from the spec cache, or NULL */
	struct reg_exec *ex;  /* assigned executor, or NULL */
	int sole;             /* the only task run of its run */
};

/* A string as JSON text ("…" with the escapes frames use), or NULL when
 * it is not valid UTF-8. Caller frees. */
static char *json_quoted(const char *s)
{
	struct buf b;
	buf_init(&b, 0);
	if (wire_put_string(&b, s, strlen(s)) != 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}

struct disp *disp_new(const struct disp_opts *o)
{
	struct disp *d = xcalloc(1, sizeof *d);
	d->o = *o;
	d->engine_id = xstrdup(o->engine_id ? o->engine_id : "");
	d->o.engine_id = d->engine_id;
	d->engine_quoted = json_quoted(d->engine_id);
	if (!d->engine_quoted) /* not valid UTF-8: frames carry none */
		d->engine_quoted = xstrdup("\"\"");
	if (d->o.batch <= 0)
		d->o.batch = 500;
	d->specs = specs_new(0);
	d->rnd = (uint64_t)mono_ms() * 2654435761u + 1;
	return d;
}

void disp_free(struct disp *d)
{
	if (!d)
		return;
	free(d->engine_id);
	free(d->engine_quoted);
	specs_free(d->specs);
	free(d);
}

static unsigned rnd(struct disp *d)
{
	d->rnd ^= d->rnd << 13;
	d->rnd ^= d->rnd >> 7;
	d->rnd ^= d->rnd << 17;
	return (unsigned)(d->rnd >> 11);
}

/* Appends to an unbounded buffer (which cannot refuse). */
static void bput(struct buf *b, const char *s, size_t n)
{
	if (buf_append(b, s, n) != 0)
		abort();
}

static int has_label(const struct reg_exec *e, const char *l)
{
	for (int i = 0; i < e->nlabels; i++)
		if (strcmp(e->labels[i], l) == 0)
			return 1;
	return 0;
}

/* Chooses an executor with credit among cand for a task run. */
static struct reg_exec *choose(struct disp *d, struct reg *r, struct reg_exec **cand, int n,
                               const char *route, const char *target)
{
	struct reg_exec *ok[256];
	int k = 0;
	const char *label = NULL;

	if (target || (route && strncmp(route, "executor:", 9) == 0)) {
		const char *id = target ? target : route + 9;
		for (int i = 0; i < n; i++)
			if (cand[i]->credit > 0 && strcmp(cand[i]->id, id) == 0)
				return cand[i];
		return NULL;
	}
	if (route && strncmp(route, "label:", 6) == 0)
		label = route + 6;
	for (int i = 0; i < n && k < 256; i++)
		if (cand[i]->credit > 0 && (!label || has_label(cand[i], label)))
			ok[k++] = cand[i];
	if (k == 0)
		return NULL;
	if (route && strcmp(route, "random") == 0)
		return ok[rnd(d) % (unsigned)k];
	if (route && strcmp(route, "least-loaded") == 0) {
		struct reg_exec *best = ok[0];
		for (int i = 1; i < k; i++)
			if (ok[i]->credit > best->credit ||
			    (ok[i]->credit == best->credit && ok[i]->load < best->load))
				best = ok[i];
		return best;
	}
	/* round-robin (the default), label:, and a broadcast copy without a
	 * target (cannot happen: copies carry target_executor): the executor
	 * given the fewest tasks so far among those with credit, ties in
	 * rotation. A plain rotation over "those with credit" drifts: whoever
	 * has credit when another is full takes its turn for good. */
	unsigned start = r->rr++ % (unsigned)k;
	struct reg_exec *best = ok[start];
	for (int i = 1; i < k; i++) {
		struct reg_exec *e = ok[(start + (unsigned)i) % (unsigned)k];
		if (e->rr_given < best->rr_given)
			best = e;
	}
	best->rr_given++;
	return best;
}

/* ------------------------------------------------------------ templates */

struct xctx {
	json_t *params;  /* borrowed */
	json_t *outputs; /* borrowed: task → outputs object, or NULL */
	const struct row *row;
	char run_id[24];
	char sched[40];
	char *tmp; /* last value made up for a lookup */
	char err[256];
};

static const char *value_text(struct xctx *x, const json_t *v)
{
	free(x->tmp);
	x->tmp = NULL;
	if (json_is_string(v))
		return json_string_value(v);
	if (!v || json_is_null(v))
		return "";
	x->tmp = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	return x->tmp ? x->tmp : "";
}

static const char *lookup(void *ud, const char *ref)
{
	struct xctx *x = ud;
	if (strncmp(ref, "params.", 7) == 0) {
		json_t *v = json_object_get(x->params, ref + 7);
		if (!v) {
			if (!x->err[0])
				snprintf(x->err, sizeof x->err, "%s is not set", ref);
			return "";
		}
		return value_text(x, v);
	}
	if (strncmp(ref, "tasks.", 6) == 0) {
		const char *dot = strstr(ref + 6, ".output.");
		json_t *v = NULL;
		if (dot && x->outputs) {
			char task[256];
			snprintf(task, sizeof task, "%.*s", (int)(dot - (ref + 6)), ref + 6);
			v = json_object_get(json_object_get(x->outputs, task), dot + 8);
		}
		if (!v) {
			if (!x->err[0])
				snprintf(x->err, sizeof x->err, "%s is not set", ref);
			return "";
		}
		return value_text(x, v);
	}
	if (strcmp(ref, "run.id") == 0)
		return x->run_id;
	if (strcmp(ref, "run.workflow") == 0)
		return x->row->workflow;
	if (strcmp(ref, "run.task") == 0)
		return x->row->task;
	if (strcmp(ref, "schedule.time") == 0)
		return x->sched;
	return NULL; /* secrets.* and anything else: left for the executor */
}

/* Expands the string at *v in place. Returns 0 or -1 with x->err. */
static int expand_value(struct xctx *x, json_t *holder, const char *key, size_t idx, json_t *v)
{
	char *out = NULL;
	char err[256];
	if (!json_is_string(v))
		return 0;
	if (!strstr(json_string_value(v), "${"))
		return 0;
	if (dsl_expand(json_string_value(v), lookup, x, &out, err, sizeof err) != 0) {
		if (!x->err[0])
			snprintf(x->err, sizeof x->err, "%s", err);
		return -1;
	}
	if (x->err[0]) {
		free(out);
		return -1;
	}
	if (key)
		json_object_set_new(holder, key, json_string(out));
	else
		json_array_set_new(holder, idx, json_string(out));
	free(out);
	return 0;
}

/* Every string inside v (objects and arrays, recursively). */
static int expand_all(struct xctx *x, json_t *v)
{
	size_t i;
	json_t *e;
	const char *k;
	void *tmp;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (json_is_string(e) ? expand_value(x, v, NULL, i, e) : expand_all(x, e))
				return -1;
		}
	} else if (json_is_object(v)) {
		json_object_foreach_safe(v, tmp, k, e)
		{
			if (json_is_string(e) ? expand_value(x, v, k, 0, e) : expand_all(x, e))
				return -1;
		}
	}
	return 0;
}

static int expand_step(struct xctx *x, json_t *step)
{
	json_t *v;
	const char *type = json_string_value(json_object_get(step, "type"));
	if (!type)
		return 0;
	if (strcmp(type, "shell") == 0 && expand_all(x, json_object_get(step, "argv")))
		return -1;
	if ((strcmp(type, "shell") == 0 || strcmp(type, "sh") == 0) &&
	    expand_all(x, json_object_get(step, "env")))
		return -1;
	if (strcmp(type, "http") == 0) {
		if (expand_value(x, step, "url", 0, json_object_get(step, "url")) ||
		    expand_all(x, json_object_get(step, "headers")))
			return -1;
		v = json_object_get(step, "body");
		if (json_is_string(v) ? expand_value(x, step, "body", 0, v) : expand_all(x, v))
			return -1;
	}
	return 0;
}

static json_t *param_env(json_t *params, struct xctx *x)
{
	json_t *env = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v)
	{
		char name[160];
		size_t n = (size_t)snprintf(name, sizeof name, "WF_PARAM_");
		for (const char *p = k; *p && n + 1 < sizeof name; p++)
			name[n++] =
			    isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
		name[n] = '\0';
		json_object_set_new(env, name, json_string(value_text(x, v)));
	}
	return env;
}

/* The run's parameters as an object (an empty one when they are not). */
static json_t *row_params(const struct row *w)
{
	json_t *params = json_loads(w->params ? w->params : "{}", 0, NULL);
	if (!json_is_object(params)) {
		json_decref(params);
		params = json_object();
	}
	return params;
}

/* The task frame for a claimed row, or NULL with the reason in err. */
static json_t *build_task_json(struct disp *d, const struct row *w, json_t *run_outputs, char *err,
                               size_t errlen)
{
	json_t *msg = NULL, *step = NULL, *params = NULL, *env = NULL;
	struct xctx x;
	char key[320];

	memset(&x, 0, sizeof x);
	x.row = w;
	snprintf(x.run_id, sizeof x.run_id, "%lld", w->run_id);
	if (w->sched_ms)
		fmt_time_ms(w->sched_ms, x.sched, sizeof x.sched);
	params = row_params(w);
	x.params = params;
	x.outputs = run_outputs;
	step = json_deep_copy(json_object_get(w->spec, "step"));
	if (!json_is_object(step)) {
		snprintf(err, errlen, "the task has no step in its compiled DAG");
		goto out;
	}
	if (expand_step(&x, step) != 0) {
		snprintf(err, errlen, "cannot expand the step's templates: %s", x.err);
		goto out;
	}
	env = param_env(params, &x);
	snprintf(key, sizeof key, "%lld-%s", w->run_id, w->task);
	json_t *timeout = json_object_get(w->spec, "timeout_ms");
	json_t *breaker = json_object_get(w->spec, "breaker");
	struct wire_task t = {
	    .task_run_id = w->id,
	    .attempt = w->attempt,
	    .run_id = w->run_id,
	    .workflow = w->workflow,
	    .task = w->task,
	    .step = step,
	    .timeout_ms = json_is_integer(timeout) ? json_integer_value(timeout) : 0,
	    .idempotency_key = key,
	    .breaker = json_is_object(breaker) ? breaker : NULL,
	    .env = env,
	    .lease_ms = d->o.lease_ms,
	    .engine_id = d->engine_id,
	};
	msg = wire_task(&t);
	if (!msg)
		snprintf(err, errlen, "cannot build the task frame");
out:
	free(x.tmp);
	json_decref(step);
	json_decref(params);
	json_decref(env);
	return msg;
}

/* Whether a string anywhere in v (objects and arrays, recursively)
 * contains needle. A walk, not a serialisation: it runs for claimed rows. */
static int any_string_has(const json_t *v, const char *needle)
{
	size_t i;
	const char *k;
	json_t *e;
	if (json_is_string(v))
		return strstr(json_string_value(v), needle) != NULL;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (any_string_has(e, needle))
				return 1;
		}
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, e)
		{
			if (any_string_has(e, needle))
				return 1;
		}
	}
	return 0;
}

/* What a task frame takes from its spec alone, as JSON text made once per
 * spec and batch: `"workflow":…,"task":…,"step":…` (plus `timeout_ms`
 * and `breaker` when set), and the task's name escaped for the idempotency
 * key. Only for a step with nothing to expand, the same for every run;
 * text is NULL for the others, whose frames are built per task. */
struct frag {
	const json_t *spec;
	char *text;
	char *task_esc; /* JSON-escaped, without the quotes */
};

struct frags {
	struct frag *v;
	int n, cap;
};

static void frags_release(struct frags *f)
{
	for (int i = 0; i < f->n; i++) {
		free(f->v[i].text);
		free(f->v[i].task_esc);
	}
	free(f->v);
	memset(f, 0, sizeof *f);
}

static const struct frag *frag_of(struct frags *f, const struct row *w)
{
	for (int i = 0; i < f->n; i++)
		if (f->v[i].spec == w->spec)
			return &f->v[i];
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 8;
		f->v = xrealloc(f->v, (size_t)f->cap * sizeof *f->v);
	}
	struct frag *g = &f->v[f->n++];
	memset(g, 0, sizeof *g);
	g->spec = w->spec;
	json_t *step = json_object_get(w->spec, "step");
	if (!json_is_object(step) || any_string_has(step, "${"))
		return g;
	json_t *o = json_pack("{s:s, s:s, s:O}", "workflow", w->workflow ? w->workflow : "", "task",
	                      w->task, "step", step);
	json_t *timeout = json_object_get(w->spec, "timeout_ms");
	json_t *breaker = json_object_get(w->spec, "breaker");
	if (o && json_is_integer(timeout) && json_integer_value(timeout) > 0)
		json_object_set(o, "timeout_ms", timeout);
	if (o && json_is_object(breaker))
		json_object_set(o, "breaker", breaker);
	char *text = o ? wire_encode(o) : NULL;
	char *task = json_quoted(w->task);
	json_decref(o);
	if (text && task && strlen(text) >= 2 && strlen(task) >= 2) {
		/* without the braces and the quotes */
		size_t n = strlen(text);
		memmove(text, text + 1, n - 2);
		text[n - 2] = '\0';
		n = strlen(task);
		memmove(task, task + 1, n - 2);
		task[n - 2] = '\0';
		g->text = text;
		g->task_esc = task;
	} else {
		free(text);
		free(task);
	}
	return g;
}

/* The task frame for a claimed row as JSON text (*len bytes), or NULL with
 * the reason in err. A step with nothing to expand is spliced in from its
 * spec's fragment, so the frame costs a few formatted numbers instead of a
 * JSON tree built and serialised per task (bench/README.md, round 4); the
 * same fields as wire_task, which builds the others. */
static char *build_task(struct disp *d, const struct row *w, json_t *run_outputs,
                        struct frags *frags, size_t *len, char *err, size_t errlen)
{
	const struct frag *f = frag_of(frags, w);
	if (!f->text) {
		json_t *msg = build_task_json(d, w, run_outputs, err, errlen);
		char *text = msg ? wire_encode(msg) : NULL;
		json_decref(msg);
		if (msg && !text)
			snprintf(err, errlen, "cannot encode the task frame");
		*len = text ? strlen(text) : 0;
		return text;
	}
	struct buf b;
	char *env_text = NULL;
	buf_init(&b, 0);
	if (w->params && strcmp(w->params, "{}") != 0) {
		struct xctx x;
		memset(&x, 0, sizeof x);
		x.row = w;
		json_t *params = row_params(w);
		json_t *env = param_env(params, &x);
		if (json_object_size(env) > 0)
			env_text = wire_encode(env);
		free(x.tmp);
		json_decref(env);
		json_decref(params);
	}
	if (buf_puts(&b, "{\"type\":\"task\",\"task_run_id\":") != 0 ||
	    buf_put_ll(&b, w->id) != 0 || buf_puts(&b, ",\"attempt\":") != 0 ||
	    buf_put_ll(&b, w->attempt) != 0 || buf_puts(&b, ",\"run_id\":") != 0 ||
	    buf_put_ll(&b, w->run_id) != 0 || buf_puts(&b, ",") != 0 ||
	    buf_puts(&b, f->text) != 0 || buf_puts(&b, ",\"idempotency_key\":\"") != 0 ||
	    buf_put_ll(&b, w->run_id) != 0 || buf_puts(&b, "-") != 0 ||
	    buf_puts(&b, f->task_esc) != 0 || buf_puts(&b, "\"") != 0 ||
	    (env_text && (buf_puts(&b, ",\"env\":") != 0 || buf_puts(&b, env_text) != 0)) ||
	    buf_puts(&b, ",\"lease_ms\":") != 0 || buf_put_ll(&b, (long long)d->o.lease_ms) != 0 ||
	    buf_puts(&b, ",\"engine_id\":") != 0 || buf_puts(&b, d->engine_quoted) != 0 ||
	    buf_puts(&b, "}") != 0)
		abort(); /* an unbounded buf refuses only when memory runs out */
	free(env_text);
	d->spliced++;
	*len = b.len;
	return buf_detach(&b);
}

long long disp_spliced(const struct disp *d)
{
	return d->spliced;
}

/* ------------------------------------------------------------- outputs */

struct run_outputs {
	long long *run_id;
	json_t **obj; /* task → outputs */
	int n;
};

static void outputs_release(struct run_outputs *o)
{
	for (int i = 0; i < o->n; i++)
		json_decref(o->obj[i]);
	free(o->run_id);
	free(o->obj);
	memset(o, 0, sizeof *o);
}

static json_t *outputs_for(const struct run_outputs *o, long long run_id)
{
	for (int i = 0; i < o->n; i++)
		if (o->run_id[i] == run_id)
			return o->obj[i];
	return NULL;
}

/* Upstream outputs of the runs whose tasks refer to tasks.*. */
static int load_outputs(struct store *s, const struct row *rows, int n, struct run_outputs *o)
{
	struct buf ids;
	int rc = -1, want = 0;
	PGresult *res = NULL;

	buf_init(&ids, 0);
	bput(&ids, "{", 1);
	o->run_id = xcalloc((size_t)n, sizeof *o->run_id);
	o->obj = xcalloc((size_t)n, sizeof *o->obj);
	for (int i = 0; i < n; i++) {
		if (!rows[i].ex)
			continue;
		/* only runs whose tasks refer to upstream outputs (${tasks.…}) */
		if (!any_string_has(json_object_get(rows[i].spec, "step"), "${tasks.") ||
		    outputs_for(o, rows[i].run_id))
			continue;
		o->run_id[o->n] = rows[i].run_id;
		o->obj[o->n++] = json_object();
		char one[32];
		int len = snprintf(one, sizeof one, "%s%lld", want++ ? "," : "", rows[i].run_id);
		bput(&ids, one, (size_t)len);
	}
	bput(&ids, "}", 1);
	if (want == 0) {
		rc = 0;
		goto out;
	}
	const char *p[1] = {ids.data};
	res = store_execp(s, "disp_outputs", outputs_sql, 1, p);
	if (!res)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *obj = outputs_for(o, atoll(PQgetvalue(res, i, 0)));
		json_t *v = json_loads(PQgetvalue(res, i, 2), 0, NULL);
		if (obj && v)
			json_object_set_new(obj, PQgetvalue(res, i, 1), v);
		else
			json_decref(v);
	}
	rc = 0;
out:
	PQclear(res);
	buf_release(&ids);
	return rc;
}

/* ------------------------------------------------------------ dispatch */

static void report_failure(struct ingest *g, const struct row *w, const char *error)
{
	json_t *m = json_pack("{s:s, s:s, s:I, s:i, s:s, s:s, s:I, s:I}", "type", "finished",
	                      "executor_id", w->ex->id, "task_run_id", (json_int_t)w->id, "attempt",
	                      w->attempt, "status", "failed", "error", error, "started_ms",
	                      (json_int_t)wall_ms(), "finished_ms", (json_int_t)wall_ms());
	log_warn("task failed before dispatch", "run_id=%lld task=%s task_run_id=%lld error=\"%s\"",
	         w->run_id, w->task, w->id, error);
	if (m)
		ingest_push_result(g, m);
}

static int requeue(struct store *s, json_t *failed)
{
	char *text = json_dumps(failed, JSON_COMPACT);
	const char *p[1] = {text};
	PGresult *res = store_execp(s, "disp_requeue", requeue_sql, 1, p);
	int rc = res ? 0 : -1;
	if (res)
		log_info("requeued tasks that could not be sent", "count=%d",
		         atoi(PQcmdTuples(res)));
	PQclear(res);
	free(text);
	return rc;
}

/* Adds a broadcast parent to fan: one copy per online (not draining)
 * executor of the pool, whether or not it has credit right now. */
static void add_fanout(struct reg *r, const char *pool, json_t *fan, long long id)
{
	json_t *execs = json_array();
	for (int i = 0; i < r->n; i++)
		if (r->ex[i]->state == REG_ONLINE && strcmp(r->ex[i]->pool, pool) == 0)
			json_array_append_new(execs, json_string(r->ex[i]->id));
	if (json_array_size(execs) == 0) { /* stays queued until one is online */
		json_decref(execs);
		return;
	}
	json_array_append_new(fan, json_pack("{s:I, s:o}", "id", (json_int_t)id, "execs", execs));
}

static int fan_out(struct store *s, json_t *fan)
{
	char *text = json_dumps(fan, JSON_COMPACT);
	const char *p[1] = {text};
	PGresult *res = store_execp(s, "disp_fanout", fanout_sql, 1, p);
	if (res)
		log_info("broadcast tasks fanned out", "tasks=%s copies=%s", PQgetvalue(res, 0, 0),
		         PQgetvalue(res, 0, 1));
	int rc = res ? 0 : -1;
	PQclear(res);
	free(text);
	return rc;
}

/* Claims, assigns and sends for one pool. Returns tasks sent or -1. */
static int run_pool(struct disp *d, struct store *s, struct reg *r, struct ingest *g,
                    const char *pool, int *more)
{
	struct reg_exec **cand = xcalloc((size_t)r->n, sizeof *cand);
	struct buf execs, labels;
	struct row *rows = NULL;
	struct run_outputs outs = {0};
	struct frags frags = {0};
	json_t *failed = json_array(), *fan = json_array();
	struct buf mark_ids, mark_ex;
	PGresult *claim = NULL, *mark = NULL;
	long long *marked = NULL, *wfids = NULL;
	int *versions = NULL;
	int ncand = 0, credit = 0, nrows = 0, nassigned = 0, sent = 0, rc = -1, in_tx = 0;
	char nbuf[16], lease[24];

	buf_init(&execs, 0);
	buf_init(&labels, 0);
	buf_init(&mark_ids, 0);
	buf_init(&mark_ex, 0);
	bput(&mark_ids, "{", 1);
	bput(&mark_ex, "{", 1);
	bput(&execs, "{", 1);
	bput(&labels, "{", 1);
	for (int i = 0; i < r->n; i++) {
		struct reg_exec *e = r->ex[i];
		if (!reg_can_take(e) || strcmp(e->pool, pool) != 0)
			continue;
		cand[ncand++] = e;
		credit += e->credit;
		runs__array_text(&execs, e->id);
		for (int j = 0; j < e->nlabels; j++)
			runs__array_text(&labels, e->labels[j]);
	}
	bput(&execs, "}", 1);
	bput(&labels, "}", 1);
	if (credit == 0) {
		rc = 0;
		goto out;
	}
	int limit = credit < d->o.batch ? credit : d->o.batch;
	snprintf(nbuf, sizeof nbuf, "%d", limit);
	snprintf(lease, sizeof lease, "%lld", (long long)d->o.lease_ms);

	if (store_begin(s) != 0)
		goto out;
	in_tx = 1;
	const char *cp[4] = {pool, nbuf, execs.data, labels.data};
	/* Not prepared: a generic plan made while the queue was small (at
	 * start) can probe runs with a sequential scan per candidate, which
	 * turned a 20,000-task backlog into a 25 s claim. A custom plan sees
	 * the tables' current size; planning costs about 0.5 ms per batch on
	 * a 100,000-task backlog, a seventh of the claim (bench/README.md,
	 * round 8). */
	claim = store_exec(s, CLAIM_SQL, 4, cp);
	if (!claim)
		goto out;
	/* The statements after the claim (mark, fan-out, outputs) are prepared
	 * and index-driven: no sequential scans for them (store.h,
	 * STORE_ENGINE_SESSION). Not for the claim itself, planned per call:
	 * with a million freshly loaded workflows and tasks not yet analyzed,
	 * pricing sequential scans out made its per-candidate subquery walk
	 * whole indexes (0.5 s a claim). */
	if (store_cmd(s, "SET LOCAL enable_seqscan = off", 0, NULL) != 0)
		goto out;
	nrows = PQntuples(claim);
	if (nrows == limit)
		*more = 1;
	rows = xcalloc((size_t)(nrows ? nrows : 1), sizeof *rows);
	wfids = xcalloc((size_t)(nrows ? nrows : 1), sizeof *wfids);
	versions = xcalloc((size_t)(nrows ? nrows : 1), sizeof *versions);
	for (int i = 0; i < nrows; i++) {
		wfids[i] = atoll(PQgetvalue(claim, i, 3));
		versions[i] = atoi(PQgetvalue(claim, i, 4));
	}
	if (specs_load(d->specs, s, wfids, versions, nrows) != 0)
		goto out;
	for (int i = 0; i < nrows; i++) {
		struct row *w = &rows[i];
		w->id = atoll(PQgetvalue(claim, i, 0));
		w->run_id = atoll(PQgetvalue(claim, i, 1));
		w->task = PQgetvalue(claim, i, 2);
		w->spec = specs_task(d->specs, wfids[i], versions[i], w->task, &w->workflow);
		if (!w->workflow)
			w->workflow = "";
		w->params = PQgetvalue(claim, i, 5);
		w->sched_ms = PQgetisnull(claim, i, 6) ? 0 : atoll(PQgetvalue(claim, i, 6));
		const char *target = PQgetisnull(claim, i, 7) ? NULL : PQgetvalue(claim, i, 7);
		const char *route = json_string_value(json_object_get(w->spec, "route"));
		if (!target && route && strcmp(route, "broadcast") == 0) {
			add_fanout(r, pool, fan, w->id);
			continue;
		}
		/* a version of one task, not a broadcast copy: the run has no
		 * other task run (its result then settles the run without
		 * reading it; runs__apply) */
		w->sole = !target && specs_ntasks(d->specs, wfids[i], versions[i]) == 1;
		w->ex = choose(d, r, cand, ncand, route, target);
		if (!w->ex)
			continue;
		w->ex->credit--;
		nassigned++;
		char one[24];
		int len = snprintf(one, sizeof one, "%s%lld", nassigned > 1 ? "," : "", w->id);
		bput(&mark_ids, one, (size_t)len);
		runs__array_text(&mark_ex, w->ex->id);
	}
	if (nassigned == 0 && json_array_size(fan) == 0) {
		store_rollback(s);
		in_tx = 0;
		rc = 0;
		goto out;
	}
	if (json_array_size(fan) > 0) {
		if (fan_out(s, fan) != 0)
			goto out;
		*more = 1; /* the copies are ready now */
	}
	bput(&mark_ids, "}", 1);
	bput(&mark_ex, "}", 1);
	const char *mp[3] = {mark_ids.data, lease, mark_ex.data};
	if (nassigned > 0) {
		mark = store_execp(s, "disp_mark", mark_sql, 3, mp);
		if (!mark)
			goto out;
	}
	if (store_commit(s) != 0)
		goto out; /* in_tx stays set: the credit goes back */
	in_tx = 0;
	loop_fault("after-claim"); /* claimed and committed, nothing sent */

	/* The new attempt numbers, by task run id. */
	int nm = mark ? PQntuples(mark) : 0;
	for (int i = 0; i < nm; i++)
		metrics_observe_dispatch_latency(atof(PQgetvalue(mark, i, 2)));
	marked = xcalloc((size_t)(nm ? nm : 1) * 2, sizeof *marked);
	for (int i = 0; i < nm; i++) {
		marked[2 * i] = atoll(PQgetvalue(mark, i, 0));
		marked[2 * i + 1] = atoll(PQgetvalue(mark, i, 1));
	}
	qsort(marked, (size_t)nm, 2 * sizeof *marked, runs__cmp_ll);
	for (int i = 0; i < nrows; i++) {
		if (!rows[i].ex)
			continue;
		long long *m =
		    bsearch(&rows[i].id, marked, (size_t)nm, 2 * sizeof *marked, runs__cmp_ll);
		if (!m) { /* not updated after all (cannot happen under the lock) */
			reg_unclaim(rows[i].ex);
			rows[i].ex = NULL;
			continue;
		}
		rows[i].attempt = (int)m[1];
	}
	if (load_outputs(s, rows, nrows, &outs) != 0)
		log_warn("cannot read upstream outputs", "error=\"%s\"", store_error(s));

	for (int i = 0; i < nrows; i++) {
		struct row *w = &rows[i];
		char err[512];
		size_t len;
		if (!w->ex)
			continue;
		char *msg =
		    build_task(d, w, outputs_for(&outs, w->run_id), &frags, &len, err, sizeof err);
		if (!msg) {
			report_failure(g, w, err);
			reg_unclaim(w->ex);
			continue;
		}
		struct reg_sent task = {.task_run_id = w->id,
		                        .attempt = w->attempt,
		                        .run_id = w->run_id,
		                        .sole = w->sole};
		if (reg_send_task(r, w->ex, msg, len, &task) != 0) {
			reg_unclaim(w->ex);
			json_array_append_new(
			    failed,
			    json_pack("{s:I, s:i}", "id", (json_int_t)w->id, "att", w->attempt));
		} else {
			sent++;
			log_debug("task sent",
			          "run_id=%lld task=%s task_run_id=%lld attempt=%d "
			          "executor_id=%s",
			          w->run_id, w->task, w->id, w->attempt, w->ex->id);
		}
		free(msg);
	}
	if (json_array_size(failed) > 0 && requeue(s, failed) != 0)
		log_warn("cannot requeue unsent tasks: their leases will expire",
		         "count=%zu error=%s", json_array_size(failed), store_error(s));
	if (sent > 0)
		loop_fault("after-send"); /* sent, no result applied yet */
	rc = sent;
out:
	if (in_tx) {
		store_rollback(s);
		/* Nothing was claimed: give the credit back. */
		for (int i = 0; i < nrows; i++)
			if (rows[i].ex)
				reg_unclaim(rows[i].ex);
	}
	free(rows);
	free(wfids);
	free(versions);
	free(marked);
	free(cand);
	outputs_release(&outs);
	frags_release(&frags);
	PQclear(claim);
	PQclear(mark);
	buf_release(&mark_ids);
	buf_release(&mark_ex);
	json_decref(failed);
	json_decref(fan);
	buf_release(&execs);
	buf_release(&labels);
	return rc;
}

int disp_run(struct disp *d, struct store *s, struct reg *r, struct ingest *g, int *more)
{
	const char *pools[64];
	int npools = 0, total = 0;

	*more = 0;
	for (int i = 0; i < r->n && npools < 64; i++) {
		struct reg_exec *e = r->ex[i];
		if (!reg_can_take(e))
			continue;
		int seen = 0;
		for (int j = 0; j < npools; j++)
			seen |= strcmp(pools[j], e->pool) == 0;
		if (!seen)
			pools[npools++] = e->pool;
	}
	for (int i = 0; i < npools; i++) {
		int n = run_pool(d, s, r, g, pools[i], more);
		if (n < 0)
			return -1;
		total += n;
	}
	return total;
}

int disp_reap(struct disp *d, struct store *s)
{
	return runs__fail_lost_copies(s, d->o.lease_ms, d->o.batch);
}
