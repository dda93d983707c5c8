/* Internals of the workflow compiler shared by the dsl/ sources (not a public API).
 * yaml_tree.c loads YAML into a tree of ynodes with marks; compile.c and
 * tasks.c validate the tree and build the DAG; diag.c collects errors. */
#ifndef WF_DSL_INT_H
#define WF_DSL_INT_H
#include <stdarg.h>
#include <stddef.h>

#include "dsl.h"

/* Past this many errors a file is not worth reading further. */
#define DSL_MAX_ERRORS 500

enum ynode_kind { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
	enum ynode_kind kind;
	int line, col; /* 1-based start mark */
	/* scalar */
	char *str; /* NUL-terminated; len excludes the NUL */
	size_t len;
	int quoted; /* not a plain scalar (or tagged !!str): never null/bool/int */
	int bad;    /* already reported (an alias, a string too long): errors here are dropped */
	/* sequence: items[i]; mapping: items[2i] is a key, items[2i+1] its value */
	struct ynode **items;
	size_t n; /* number of items (sequence) or of key/value pairs (mapping) */
	size_t cap;
};

struct dsl_ctx {
	const char *file;
	struct dsl_error *errors;
	size_t nerrors, cap;
	int too_many; /* DSL_MAX_ERRORS reached */
};

/* diag.c */
void ctx_err(struct dsl_ctx *c, const struct ynode *at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ctx_err_at(struct dsl_ctx *c, int line, int col, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Sorts the errors by line and column (stable). */
void ctx_sort_errors(struct dsl_ctx *c);
int levenshtein(const char *a, const char *b);
/* The closest of cands (Levenshtein <= 2) to s, or NULL. */
const char *closest(const char *s, const char *const *cands, size_t n);
/* "base.key" (or "key" when base is empty) and "base[i]": new strings. */
char *path_key(const char *base, const char *key);
char *path_idx(const char *base, size_t i);

/* yaml_tree.c: loads one YAML document. Returns the root (NULL for an
 * empty document or after errors, which are added to c). */
struct ynode *ytree_load(struct dsl_ctx *c, const char *src, size_t len);
void ytree_free(struct ynode *n);
/* The value of key in mapping m, or NULL. */
const struct ynode *ymap_get(const struct ynode *m, const char *key);
int ynode_is_null(const struct ynode *n);
/* 1 for true, 0 for false, -1 when n is not a boolean. */
int ynode_bool(const struct ynode *n);
/* 0 and *out when n is a plain integer scalar, else -1. */
int ynode_int(const struct ynode *n, long long *out);
const char *ynode_kind_name(const struct ynode *n);

/* expand.c: calls fn for every ${ref} in s (not for $${ escapes).
 * Returns 0, or -1 with a message in err on a syntax error. fn returning
 * non-zero stops the scan (the scan then returns 0). */
typedef int (*dsl_ref_fn)(void *ud, const char *ref);
int dsl_scan_refs(const char *s, dsl_ref_fn fn, void *ud, char *err, size_t errlen);

/* compile.c: validates the document and returns the DAG, or NULL. */
json_t *dsl_build(struct dsl_ctx *c, const struct ynode *root);

/* tasks.c: validates "defaults" and "tasks" into the array of tasks.
 * params is the compiled params object (names are looked up in it). */
json_t *dsl_build_tasks(struct dsl_ctx *c, const struct ynode *root, json_t *params);

/* tasks.c and graph.c: one task while compiling. */
struct dsl_task {
	const char *name;
	const struct ynode *key, *node;
	char *field;                   /* "tasks.NAME" */
	size_t *needs;                 /* indices into the sorted task array, sorted, unique */
	const struct ynode **needs_at; /* where each need was written */
	size_t nneeds;
	json_t *outputs;          /* borrowed: the task's "outputs" array, NULL when undeclared */
	unsigned char *ancestors; /* lazily computed: ancestors[i] set when i is upstream */
};

/* A string whose ${...} references are checked once the graph is known. */
struct dsl_site {
	const char *text;
	const struct ynode *at;
	char *field;
	size_t task;
	int sh; /* an sh script: references are never expanded there */
};

struct dsl_graph {
	struct dsl_ctx *c;
	struct dsl_task *tasks; /* sorted by name */
	size_t ntasks;
	json_t *params;
	struct dsl_site *sites;
	size_t nsites, capsites;
};

/* graph.c */
/* The index of the task named name, or -1. */
long graph_find(const struct dsl_graph *g, const char *name);
/* Resolves every task's needs (reporting unknown, self and duplicate
 * needs) into t->needs. */
void graph_needs(struct dsl_graph *g);
/* Reports each dependency cycle with its path. */
void graph_cycles(struct dsl_graph *g);
/* Checks the references of every site. */
void graph_check_refs(struct dsl_graph *g);
void graph_add_site(struct dsl_graph *g, const char *text, const struct ynode *at,
                    const char *field, size_t task, int sh);
void graph_release(struct dsl_graph *g);

/* Typed getters shared by compile.c and tasks.c: each reports its own
 * error at n with field and returns -1, or returns 0. */
int get_string(struct dsl_ctx *c, const struct ynode *n, const char *field, const char **out);
int get_int(struct dsl_ctx *c, const struct ynode *n, const char *field, long long min,
            long long max, long long *out);
int get_number(struct dsl_ctx *c, const struct ynode *n, const char *field, double min, double max,
               double *out);
int get_duration(struct dsl_ctx *c, const struct ynode *n, const char *field, long long *ms);
int get_enum(struct dsl_ctx *c, const struct ynode *n, const char *field, const char *const *vals,
             size_t nvals, const char **out);
int get_name(struct dsl_ctx *c, const struct ynode *n, const char *field, const char *what,
             size_t maxlen, const char **out);
/* Reports unknown keys of mapping m (with a "did you mean" hint). */
void check_keys(struct dsl_ctx *c, const struct ynode *m, const char *field,
                const char *const *allowed, size_t nallowed);
int expect_map(struct dsl_ctx *c, const struct ynode *n, const char *field);
/* A JSON string (reports invalid UTF-8), or NULL. */
json_t *jstr(struct dsl_ctx *c, const struct ynode *n, const char *field, const char *s);
int valid_name(const char *s, size_t maxlen);

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#endif
