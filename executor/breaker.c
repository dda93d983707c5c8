#include "breaker.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Calls remembered for the failure-rate window (oldest dropped beyond). */
#define WINDOW_MAX 4096

struct call {
	int64_t at;
	int failed;
};

struct breaker {
	char *name;
	struct breaker_config cfg;
	enum breaker_state state;
	int64_t until;       /* open: when it turns half-open */
	int64_t consecutive; /* consecutive failures while closed */
	int64_t probes;      /* half-open probes in flight */
	int64_t successes;   /* half-open probe successes */
	int64_t inflight;    /* calls allowed and not yet released */
	int64_t last_used;
	struct call *calls; /* ring of recent calls */
	size_t ncalls, head;
};

struct breaker_set {
	struct breaker **v;
	size_t n, max;
};

struct breaker_set *breaker_set_new(size_t max)
{
	struct breaker_set *s = xcalloc(1, sizeof *s);
	s->max = max ? max : 1;
	s->v = xcalloc(s->max, sizeof *s->v);
	return s;
}

static void breaker_free(struct breaker *b)
{
	free(b->name);
	free(b->calls);
	free(b);
}

void breaker_set_free(struct breaker_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		breaker_free(s->v[i]);
	free(s->v);
	free(s);
}

static int64_t get_int(const json_t *o, const char *key, int64_t def)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

const char *breaker_config_from_json(const json_t *obj, struct breaker_config *cfg)
{
	const char *name = json_string_value(json_object_get(obj, "name"));
	if (!name || !*name)
		return NULL;
	cfg->failures = get_int(obj, "failures", 5);
	cfg->window_ms = get_int(obj, "window_ms", 60000);
	const json_t *r = json_object_get(obj, "failure_rate");
	cfg->failure_rate = json_is_number(r) ? json_number_value(r) : 0;
	cfg->open_for_ms = get_int(obj, "open_for_ms", 30000);
	cfg->half_open_probes = get_int(obj, "half_open_probes", 1);
	if (cfg->failures < 1)
		cfg->failures = 1;
	if (cfg->half_open_probes < 1)
		cfg->half_open_probes = 1;
	if (cfg->open_for_ms < 0)
		cfg->open_for_ms = 0;
	return name;
}

static struct breaker *find(struct breaker_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i]->name, name) == 0)
			return s->v[i];
	return NULL;
}

/* Open breakers turn half-open once their time is up. */
static void tick(struct breaker *b, int64_t now)
{
	if (b->state == BREAKER_OPEN && now >= b->until) {
		b->state = BREAKER_HALF_OPEN;
		b->probes = 0;
		b->successes = 0;
	}
}

static struct breaker *get(struct breaker_set *s, const char *name, int64_t now)
{
	struct breaker *b = find(s, name);
	if (b)
		return b;
	if (s->n == s->max) {
		/* evict the least recently used idle closed breaker */
		size_t victim = s->n;
		for (size_t i = 0; i < s->n; i++) {
			struct breaker *c = s->v[i];
			if (c->state == BREAKER_CLOSED && c->inflight == 0 &&
			    (victim == s->n || c->last_used < s->v[victim]->last_used))
				victim = i;
		}
		if (victim == s->n)
			return NULL;
		breaker_free(s->v[victim]);
		s->v[victim] = s->v[--s->n];
	}
	b = xcalloc(1, sizeof *b);
	b->name = xstrdup(name);
	b->state = BREAKER_CLOSED;
	b->last_used = now;
	s->v[s->n++] = b;
	return b;
}

static void trip(struct breaker *b, int64_t now)
{
	b->state = BREAKER_OPEN;
	b->until = now + b->cfg.open_for_ms;
	b->probes = 0;
	b->successes = 0;
}

static void close_breaker(struct breaker *b)
{
	b->state = BREAKER_CLOSED;
	b->consecutive = 0;
	b->ncalls = 0;
	b->head = 0;
	b->probes = 0;
	b->successes = 0;
}

static void remember(struct breaker *b, int64_t now, int failed)
{
	if (!b->calls)
		b->calls = xcalloc(WINDOW_MAX, sizeof *b->calls);
	size_t i = (b->head + b->ncalls) % WINDOW_MAX;
	if (b->ncalls == WINDOW_MAX)
		b->head = (b->head + 1) % WINDOW_MAX;
	else
		b->ncalls++;
	b->calls[i].at = now;
	b->calls[i].failed = failed;
	/* forget calls older than the window */
	while (b->ncalls && b->calls[b->head].at <= now - b->cfg.window_ms) {
		b->head = (b->head + 1) % WINDOW_MAX;
		b->ncalls--;
	}
}

static int rate_exceeded(const struct breaker *b)
{
	if (b->cfg.failure_rate <= 0 || b->cfg.window_ms <= 0)
		return 0;
	int64_t calls = (int64_t)b->ncalls, failed = 0;
	for (size_t k = 0; k < b->ncalls; k++)
		failed += b->calls[(b->head + k) % WINDOW_MAX].failed;
	return calls >= b->cfg.failures && (double)failed >= b->cfg.failure_rate * (double)calls;
}

enum breaker_verdict breaker_acquire(struct breaker_set *s, const char *name,
                                     const struct breaker_config *cfg, int64_t now_ms,
                                     int64_t *until_ms)
{
	struct breaker *b = get(s, name, now_ms);
	*until_ms = now_ms;
	if (!b)
		return BREAKER_ALLOW; /* too many breakers: run unguarded rather than refuse */
	b->cfg = *cfg;
	b->last_used = now_ms;
	tick(b, now_ms);
	switch (b->state) {
	case BREAKER_OPEN:
		*until_ms = b->until;
		return BREAKER_REJECT;
	case BREAKER_HALF_OPEN:
		if (b->probes >= b->cfg.half_open_probes)
			return BREAKER_REJECT;
		b->probes++;
		b->inflight++;
		return BREAKER_PROBE;
	case BREAKER_CLOSED:
		break;
	}
	b->inflight++;
	return BREAKER_ALLOW;
}

void breaker_release(struct breaker_set *s, const char *name, enum breaker_outcome outcome,
                     int probe, int64_t now_ms)
{
	struct breaker *b = find(s, name);
	if (!b)
		return;
	if (b->inflight > 0)
		b->inflight--;
	b->last_used = now_ms;
	tick(b, now_ms);
	if (probe) {
		if (b->state != BREAKER_HALF_OPEN)
			return;
		if (b->probes > 0)
			b->probes--;
		if (outcome == BREAKER_FAILURE)
			trip(b, now_ms);
		else if (outcome == BREAKER_SUCCESS && ++b->successes >= b->cfg.half_open_probes)
			close_breaker(b);
		return;
	}
	/* a call admitted before the breaker opened says nothing about now */
	if (b->state != BREAKER_CLOSED || outcome == BREAKER_IGNORE)
		return;
	remember(b, now_ms, outcome == BREAKER_FAILURE);
	if (outcome == BREAKER_SUCCESS) {
		b->consecutive = 0;
		return;
	}
	if (++b->consecutive >= b->cfg.failures || rate_exceeded(b))
		trip(b, now_ms);
}

enum breaker_state breaker_state(struct breaker_set *s, const char *name, int64_t now_ms)
{
	struct breaker *b = find(s, name);
	if (!b)
		return BREAKER_CLOSED;
	tick(b, now_ms);
	return b->state;
}

const char *breaker_state_name(enum breaker_state st)
{
	switch (st) {
	case BREAKER_OPEN:
		return "open";
	case BREAKER_HALF_OPEN:
		return "half_open";
	case BREAKER_CLOSED:
		break;
	}
	return "closed";
}

json_t *breaker_states_json(struct breaker_set *s, int64_t now_ms, int64_t offset_ms)
{
	json_t *o = json_object();
	for (size_t i = 0; i < s->n; i++) {
		struct breaker *b = s->v[i];
		tick(b, now_ms);
		json_object_set_new(
		    o, b->name,
		    json_pack("{s:s, s:o, s:I}", "state", breaker_state_name(b->state), "until_ms",
		              b->state == BREAKER_OPEN ? json_integer(b->until + offset_ms)
		                                       : json_null(),
		              "failures", (json_int_t)b->consecutive));
	}
	return o;
}
