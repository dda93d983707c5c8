/* The compiler's entry points: load, validate, canonicalise and hash. */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dsl_int.h"
#include "util.h"
#include "xalloc.h"

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

static void sodium_setup(void)
{
	sodium_ok = sodium_init() >= 0;
}

static void result_init(struct dsl_result *r)
{
	memset(r, 0, sizeof(*r));
}

/* Moves the collected errors into r. */
static void take_errors(struct dsl_ctx *c, struct dsl_result *r)
{
	ctx_sort_errors(c);
	r->errors = c->errors;
	r->nerrors = c->nerrors;
	c->errors = NULL;
	c->nerrors = c->cap = 0;
}

int dsl_compile(const char *source, size_t len, const char *filename, struct dsl_result *r)
{
	int rc = -1;
	struct dsl_ctx c = {.file = filename ? filename : "<input>"};
	struct ynode *root = NULL;
	json_t *dag = NULL;
	char *text = NULL;

	result_init(r);
	if (len > DSL_MAX_SOURCE) {
		ctx_err_at(&c, 0, 0, "", "the file is %zu bytes long; the limit is %d bytes", len,
		           DSL_MAX_SOURCE);
		goto out;
	}
	root = ytree_load(&c, source ? source : "", source ? len : 0);
	if (!root) {
		if (c.nerrors == 0)
			ctx_err_at(&c, 1, 1, "",
			           "the file is empty: expected a mapping with 'name' and 'tasks'");
		goto out;
	}
	dag = dsl_build(&c, root);
	if (!dag || c.nerrors > 0)
		goto out;
	text = json_dumps(dag, JSON_SORT_KEYS | JSON_COMPACT);
	if (!text) {
		ctx_err_at(&c, 0, 0, "", "cannot serialise the compiled workflow");
		goto out;
	}
	pthread_once(&sodium_once, sodium_setup);
	if (!sodium_ok) {
		ctx_err_at(&c, 0, 0, "", "libsodium failed to initialise");
		goto out;
	}
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
	hex_encode(h, sizeof(h), r->hash);
	r->canonical = xstrdup(text);
	r->dag = dag;
	dag = NULL;
	rc = 0;
out:
	if (rc != 0)
		take_errors(&c, r);
	free(c.errors);
	free(text);
	json_decref(dag);
	ytree_free(root);
	return rc;
}

int dsl_compile_file(const char *path, struct dsl_result *r)
{
	int rc = -1;
	FILE *f = NULL;
	char *src = NULL;
	struct stat st;
	struct dsl_ctx c = {.file = path};

	result_init(r);
	f = fopen(path, "rb");
	if (!f) {
		ctx_err_at(&c, 0, 0, "", "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		ctx_err_at(&c, 0, 0, "", "not a regular file");
		goto fail;
	}
	if (st.st_size > DSL_MAX_SOURCE) {
		ctx_err_at(&c, 0, 0, "", "the file is %lld bytes long; the limit is %d bytes",
		           (long long)st.st_size, DSL_MAX_SOURCE);
		goto fail;
	}
	/* read one byte more than the limit to notice a file that grew */
	src = xmalloc(DSL_MAX_SOURCE + 2);
	size_t n = fread(src, 1, DSL_MAX_SOURCE + 1, f);
	if (ferror(f)) {
		ctx_err_at(&c, 0, 0, "", "cannot read: %s", strerror(errno));
		goto fail;
	}
	src[n] = '\0';
	rc = dsl_compile(src, n, path, r);
	goto out;
fail:
	take_errors(&c, r);
out:
	free(c.errors);
	free(src);
	if (f)
		fclose(f);
	return rc;
}

void dsl_result_release(struct dsl_result *r)
{
	if (!r)
		return;
	json_decref(r->dag);
	free(r->canonical);
	for (size_t i = 0; i < r->nerrors; i++) {
		free(r->errors[i].file);
		free(r->errors[i].field);
		free(r->errors[i].message);
	}
	free(r->errors);
	memset(r, 0, sizeof(*r));
}

char *dsl_error_format(const struct dsl_error *e)
{
	const char *file = e->file ? e->file : "<input>";
	const char *field = e->field ? e->field : "";
	const char *msg = e->message ? e->message : "";
	const char *sep = *field ? ": " : "";
	if (e->line > 0)
		return xasprintf("%s:%d:%d: %s%s%s", file, e->line, e->col, field, sep, msg);
	return xasprintf("%s: %s%s%s", file, field, sep, msg);
}
