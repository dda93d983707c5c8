/* Data-driven tests of the workflow compiler.
 *   $WF_TEST_DATA/dsl/valid/X.yaml   compiles to the DAG in X.json
 *   $WF_TEST_DATA/dsl/invalid/X.yaml fails with exactly the lines of X.err
 * Adding a case is adding a file. Run from the repository root. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dsl.h"
#include "xalloc.h"

static const char *data_dir(void)
{
	const char *d = getenv("WF_TEST_DATA");
	return d && *d ? d : "tests/data";
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b;
	buf_init(&b, 0);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		cr_assert_eq(buf_append(&b, tmp, n), 0);
	fclose(f);
	cr_assert_eq(buf_append(&b, "", 0), 0);
	*len = b.len;
	return buf_detach(&b);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of dir's files ending in ext. */
static char **list_files(const char *dir, const char *ext, size_t *count)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "cannot open %s (set WF_TEST_DATA or run from the repo root)", dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), el = strlen(ext);
		if (l > el && strcmp(e->d_name + l - el, ext) == 0) {
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = xstrdup(e->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	*count = n;
	return names;
}

static void free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static char *errors_text(const struct dsl_result *r)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < r->nerrors; i++) {
		char *s = dsl_error_format(&r->errors[i]);
		cr_assert_eq(buf_printf(&b, "%s\n", s), 0);
		free(s);
	}
	cr_assert_eq(buf_append(&b, "", 0), 0);
	return buf_detach(&b);
}

Test(dsl_data, valid_cases)
{
	char *dir = xasprintf("%s/dsl/valid", data_dir());
	size_t n;
	char **names = list_files(dir, ".yaml", &n);
	cr_expect_geq(n, 12, "expected at least 12 valid cases, found %zu", n);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		char *jpath = xasprintf("%s/%.*s.json", dir, (int)(strlen(names[i]) - 5), names[i]);
		size_t len;
		char *src = slurp(path, &len);
		cr_assert_not_null(src, "%s", path);
		struct dsl_result r;
		int rc = dsl_compile(src, len, names[i], &r);
		if (rc != 0) {
			char *errs = errors_text(&r);
			cr_expect_eq(rc, 0, "%s: expected to compile, got:\n%s", names[i], errs);
			free(errs);
		} else {
			json_error_t jerr;
			json_t *want = json_load_file(jpath, 0, &jerr);
			cr_expect_not_null(want, "%s: %s", jpath, jerr.text);
			cr_expect(json_equal(want, r.dag), "%s: compiled DAG differs from %s:\n%s",
			          names[i], jpath, r.canonical);
			cr_expect_eq(strlen(r.hash), 64);
			json_decref(want);
		}
		dsl_result_release(&r);
		free(src);
		free(path);
		free(jpath);
	}
	free_list(names, n);
	free(dir);
}

Test(dsl_data, invalid_cases)
{
	char *dir = xasprintf("%s/dsl/invalid", data_dir());
	size_t n;
	char **names = list_files(dir, ".yaml", &n);
	cr_expect_geq(n, 30, "expected at least 30 invalid cases, found %zu", n);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		char *epath = xasprintf("%s/%.*s.err", dir, (int)(strlen(names[i]) - 5), names[i]);
		size_t len, elen;
		char *src = slurp(path, &len);
		char *want = slurp(epath, &elen);
		cr_assert_not_null(src, "%s", path);
		cr_expect_not_null(want, "missing %s", epath);
		struct dsl_result r;
		int rc = dsl_compile(src, len, names[i], &r);
		cr_expect_eq(rc, -1, "%s: expected errors, it compiled", names[i]);
		cr_expect_null(r.dag, "%s", names[i]);
		char *got = errors_text(&r);
		if (want)
			cr_expect_str_eq(got, want, "%s: errors differ.\n--- got\n%s--- want\n%s",
			                 names[i], got, want);
		free(got);
		dsl_result_release(&r);
		free(src);
		free(want);
		free(path);
		free(epath);
	}
	free_list(names, n);
	free(dir);
}

Test(dsl_data, examples_compile)
{
	const char *dir = getenv("WF_EXAMPLES");
	if (!dir || !*dir)
		dir = "examples";
	size_t n;
	char **names = list_files(dir, ".yaml", &n);
	cr_expect_geq(n, 7, "expected the examples in %s", dir);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		struct dsl_result r;
		int rc = dsl_compile_file(path, &r);
		if (rc != 0) {
			char *errs = errors_text(&r);
			cr_expect_eq(rc, 0, "%s does not compile:\n%s", path, errs);
			free(errs);
		}
		dsl_result_release(&r);
		free(path);
	}
	free_list(names, n);
}

static void compile_ok(const char *src, struct dsl_result *r)
{
	int rc = dsl_compile(src, strlen(src), "t.yaml", r);
	if (rc != 0) {
		char *errs = errors_text(r);
		cr_assert_eq(rc, 0, "does not compile:\n%s", errs);
		free(errs);
	}
}

Test(dsl_hash, same_for_comments_order_whitespace)
{
	const char *a = "name: h\n"
	                "tasks:\n"
	                "  b: {needs: [a], shell: [echo, b], retries: 2}\n"
	                "  a: {shell: [echo, a]}\n";
	const char *b = "# a comment\n"
	                "tasks:   # the tasks\n"
	                "    a:\n"
	                "        shell:\n"
	                "          - echo\n"
	                "          - \"a\"\n"
	                "    b:\n"
	                "        retries: 2\n"
	                "        shell: ['echo', b]\n"
	                "        needs: a\n"
	                "name: 'h'\n";
	const char *c = "name: h\ntasks:\n  b: {needs: [a], shell: [echo, b], retries: 3}\n"
	                "  a: {shell: [echo, a]}\n";
	struct dsl_result ra, rb, rc;
	compile_ok(a, &ra);
	compile_ok(b, &rb);
	compile_ok(c, &rc);
	cr_expect_str_eq(ra.canonical, rb.canonical);
	cr_expect_str_eq(ra.hash, rb.hash);
	cr_expect_str_neq(ra.hash, rc.hash);
	/* the hash is the SHA-256 of the canonical text, which is json_dumps' */
	char *again = json_dumps(ra.dag, JSON_SORT_KEYS | JSON_COMPACT);
	cr_expect_str_eq(again, ra.canonical);
	free(again);
	dsl_result_release(&ra);
	dsl_result_release(&rb);
	dsl_result_release(&rc);
}

Test(dsl_hash, known_value)
{
	struct dsl_result r;
	compile_ok("name: k\ntasks: {t: {noop: {}}}\n", &r);
	/* recompute independently with the canonical text */
	cr_expect_eq(strlen(r.hash), 64);
	cr_expect_eq(strspn(r.hash, "0123456789abcdef"), 64);
	dsl_result_release(&r);
}

Test(dsl_format, error_shapes)
{
	struct dsl_error e = {
	    .file = "f.yaml", .line = 3, .col = 7, .field = "tasks.a", .message = "m"};
	char *s = dsl_error_format(&e);
	cr_expect_str_eq(s, "f.yaml:3:7: tasks.a: m");
	free(s);
	e.field = "";
	s = dsl_error_format(&e);
	cr_expect_str_eq(s, "f.yaml:3:7: m");
	free(s);
	e.line = 0;
	e.field = "x";
	s = dsl_error_format(&e);
	cr_expect_str_eq(s, "f.yaml: x: m");
	free(s);
}

Test(dsl_limits, source_too_big)
{
	size_t len = DSL_MAX_SOURCE + 1;
	char *src = xmalloc(len);
	memset(src, '#', len);
	struct dsl_result r;
	cr_expect_eq(dsl_compile(src, len, "big.yaml", &r), -1);
	cr_assert_eq(r.nerrors, 1);
	cr_expect(strstr(r.errors[0].message, "limit") != NULL, "%s", r.errors[0].message);
	dsl_result_release(&r);
	free(src);
}

Test(dsl_limits, deep_nesting)
{
	struct buf b;
	buf_init(&b, 0);
	cr_assert_eq(buf_puts(&b, "name: d\ntasks: {a: {noop: {}}}\nx: "), 0);
	for (int i = 0; i < 100000; i++)
		cr_assert_eq(buf_puts(&b, "["), 0);
	struct dsl_result r;
	cr_expect_eq(dsl_compile(b.data, b.len, "deep.yaml", &r), -1);
	cr_assert_geq(r.nerrors, 1);
	cr_expect(strstr(r.errors[0].message, "nesting") != NULL, "%s", r.errors[0].message);
	dsl_result_release(&r);
	buf_release(&b);
}

Test(dsl_limits, too_many_tasks)
{
	struct buf b;
	buf_init(&b, 0);
	cr_assert_eq(buf_puts(&b, "name: many\ntasks:\n"), 0);
	for (int i = 0; i <= DSL_MAX_TASKS; i++)
		cr_assert_eq(buf_printf(&b, "  t%d: {noop: {}}\n", i), 0);
	struct dsl_result r;
	cr_expect_eq(dsl_compile(b.data, b.len, "many.yaml", &r), -1);
	cr_assert_eq(r.nerrors, 1);
	cr_expect(strstr(r.errors[0].message, "limit") != NULL, "%s", r.errors[0].message);
	dsl_result_release(&r);
	buf_release(&b);
}

Test(dsl_limits, long_chain_at_the_limit)
{
	struct buf b;
	buf_init(&b, 0);
	cr_assert_eq(buf_puts(&b, "name: chain\ntasks:\n  t0: {noop: {}}\n"), 0);
	for (int i = 1; i < DSL_MAX_TASKS; i++)
		cr_assert_eq(buf_printf(&b, "  t%d: {needs: t%d, noop: {}}\n", i, i - 1), 0);
	struct dsl_result r;
	cr_expect_eq(dsl_compile(b.data, b.len, "chain.yaml", &r), 0);
	cr_expect_eq(json_array_size(json_object_get(r.dag, "tasks")), DSL_MAX_TASKS);
	dsl_result_release(&r);
	buf_release(&b);
}

Test(dsl_limits, long_string)
{
	struct buf b;
	buf_init(&b, 0);
	cr_assert_eq(buf_puts(&b, "name: s\ndescription: "), 0);
	for (int i = 0; i <= DSL_MAX_STRING; i++)
		cr_assert_eq(buf_puts(&b, "x"), 0);
	cr_assert_eq(buf_puts(&b, "\ntasks: {a: {noop: {}}}\n"), 0);
	struct dsl_result r;
	cr_expect_eq(dsl_compile(b.data, b.len, "s.yaml", &r), -1);
	cr_assert_eq(r.nerrors, 1);
	cr_expect(strstr(r.errors[0].message, "longer than") != NULL, "%s", r.errors[0].message);
	dsl_result_release(&r);
	buf_release(&b);
}

Test(dsl_limits, billion_laughs)
{
	const char *src = "name: lol\n"
	                  "a: &a [x, x, x, x, x, x, x, x, x]\n"
	                  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	                  "tasks: {t: {noop: {}}}\n";
	struct dsl_result r;
	cr_expect_eq(dsl_compile(src, strlen(src), "lol.yaml", &r), -1);
	int aliases = 0;
	for (size_t i = 0; i < r.nerrors; i++)
		aliases += strstr(r.errors[i].message, "aliases are not supported") != NULL;
	cr_expect_eq(aliases, 18, "one error per alias, got %d", aliases);
	dsl_result_release(&r);
}

Test(dsl_file, compile_file_and_missing)
{
	struct dsl_result r;
	cr_expect_eq(dsl_compile_file("/nonexistent/x.yaml", &r), -1);
	cr_expect_eq(r.nerrors, 1);
	dsl_result_release(&r);
	char *path = xasprintf("%s/dsl/valid/minimal.yaml", data_dir());
	cr_expect_eq(dsl_compile_file(path, &r), 0);
	cr_expect_not_null(r.dag);
	dsl_result_release(&r);
	free(path);
}
