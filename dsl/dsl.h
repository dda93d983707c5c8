/* The workflow compiler: YAML source → validated DAG in canonical JSON.
 * A pure library: no database, no network. See docs/workflow-format.md for
 * the file format and docs/architecture.md for the compiled DAG. */
#ifndef WF_DSL_H
#define WF_DSL_H
#include <jansson.h>
#include <stddef.h>

struct dsl_error {
	char *file;    /* as given to dsl_compile */
	int line;      /* 1-based, 0 when unknown */
	int col;       /* 1-based, 0 when unknown */
	char *field;   /* dotted path: "tasks.convert.needs[1]", may be "" */
	char *message; /* what is wrong and what is expected */
};

struct dsl_result {
	json_t *dag;     /* the compiled DAG (owned), NULL on error */
	char hash[65];   /* hex SHA-256 of the canonical DAG text */
	char *canonical; /* canonical JSON text (owned) */
	struct dsl_error *errors;
	size_t nerrors;
};

/* Limits against hostile input. */
#define DSL_MAX_SOURCE (1024 * 1024)
#define DSL_MAX_DEPTH  32
#define DSL_MAX_TASKS  5000
#define DSL_MAX_STRING (64 * 1024)

/* Compiles len bytes of YAML. filename is used in messages only.
 * Returns 0 (r->dag set) or -1 (r->errors lists every error found).
 * Always call dsl_result_release afterwards. */
int dsl_compile(const char *source, size_t len, const char *filename, struct dsl_result *r)
    __attribute__((warn_unused_result));
/* Reads and compiles a file (the size limit is checked before reading). */
int dsl_compile_file(const char *path, struct dsl_result *r) __attribute__((warn_unused_result));
void dsl_result_release(struct dsl_result *r);
/* "file:line:col: field: message" — a new string, the caller frees it. */
char *dsl_error_format(const struct dsl_error *e);

/* Template expansion. lookup returns the value of a reference such as
 * "params.region" or "tasks.extract.output.batch_id", or NULL to leave the
 * ${...} text as it is (the engine does that for secrets.*).
 * Returns 0 and a new string in *out, or -1 with a message in err. */
typedef const char *(*dsl_lookup_fn)(void *ud, const char *ref);
int dsl_expand(const char *tmpl, dsl_lookup_fn lookup, void *ud, char **out, char *err,
               size_t errlen) __attribute__((warn_unused_result));

/* Parses a duration ("250ms", "30s", "5m", "2h", "1d", "1h30m").
 * Returns 0 and milliseconds in *ms, or -1. */
int dsl_parse_duration(const char *s, long long *ms) __attribute__((warn_unused_result));

#endif
