/* Finding and compiling workflow files (see files.h). */
#include "cli/files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xalloc.h"

#define MAX_DEPTH 32

static int has_yaml_ext(const char *name)
{
	size_t n = strlen(name);
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_path(struct cli_strv *paths, const char *p)
{
	cli_strv_push(paths, xstrdup(p));
}

/* Appends the workflow files under dir (sorted, recursive). */
static int walk(const char *dir, int depth, struct cli_strv *paths)
{
	int rc = -1;
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	if (!d) {
		fprintf(stderr, "wfctl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (depth > MAX_DEPTH) {
		fprintf(stderr, "wfctl: %s: folders nested too deep\n", dir);
		goto out;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue; /* ., .., .git, editors' hidden files */
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		size_t dl = strlen(dir);
		char *p = xasprintf("%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", names[i]);
		struct stat st;
		int failed = 0;
		if (stat(p, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				failed = walk(p, depth + 1, paths) != 0;
			else if (S_ISREG(st.st_mode) && has_yaml_ext(names[i]))
				add_path(paths, p);
		}
		free(p);
		if (failed)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/* Reads a whole file of at most DSL_MAX_SOURCE bytes. Returns NULL when it
 * cannot (dsl_compile_file then says why). */
static char *read_source(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *src = xmalloc(DSL_MAX_SOURCE + 2);
	size_t n = fread(src, 1, DSL_MAX_SOURCE + 1, f);
	int bad = ferror(f) || n > DSL_MAX_SOURCE;
	fclose(f);
	if (bad) {
		free(src);
		return NULL;
	}
	src[n] = '\0';
	*len = n;
	return src;
}

static void compile_one(struct cli_wf_file *f)
{
	struct stat st;
	if (stat(f->path, &st) == 0 && S_ISREG(st.st_mode))
		f->source = read_source(f->path, &f->len);
	int rc;
	if (f->source)
		rc = dsl_compile(f->source, f->len, f->path, &f->res);
	else
		rc = dsl_compile_file(f->path, &f->res);
	f->valid = rc == 0;
}

int cli_wf_files_load(struct cli_wf_files *fs, const char *const *args, int nargs)
{
	struct cli_strv paths = {0};
	int rc = -1;
	memset(fs, 0, sizeof *fs);
	for (int i = 0; i < nargs; i++) {
		struct stat st;
		if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			size_t before = (size_t)paths.n;
			if (walk(args[i], 0, &paths) != 0)
				goto out;
			if ((size_t)paths.n == before)
				fprintf(stderr, "wfctl: warning: no *.yaml or *.yml files in %s\n",
				        args[i]);
		} else {
			add_path(&paths, args[i]); /* missing files are reported by the compiler */
		}
	}
	fs->v = xcalloc(paths.n ? (size_t)paths.n : 1, sizeof *fs->v);
	for (int i = 0; i < paths.n; i++) {
		struct cli_wf_file *f = &fs->v[fs->n++];
		f->path = (char *)paths.v[i];
		paths.v[i] = NULL;
		compile_one(f);
		if (!f->valid)
			fs->invalid++;
	}
	rc = 0;
out:
	for (int i = 0; i < paths.n; i++)
		free((char *)paths.v[i]);
	cli_strv_release(&paths);
	return rc;
}

void cli_wf_files_release(struct cli_wf_files *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->v[i].path);
		free(fs->v[i].source);
		dsl_result_release(&fs->v[i].res);
	}
	free(fs->v);
	memset(fs, 0, sizeof *fs);
}

void cli_wf_file_print_errors(const struct cli_wf_file *f, FILE *out)
{
	for (size_t i = 0; i < f->res.nerrors; i++) {
		char *line = dsl_error_format(&f->res.errors[i]);
		fprintf(out, "%s\n", line);
		free(line);
	}
	if (!f->valid && f->res.nerrors == 0)
		fprintf(out, "%s: invalid workflow\n", f->path);
}

/* A JSON string, null for NULL; bytes that are not UTF-8 become '?'. */
static json_t *str_or_null(const char *s)
{
	if (!s)
		return json_null();
	json_t *v = json_string(s);
	if (v)
		return v;
	char *copy = xstrdup(s);
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

json_t *cli_wf_file_json(const struct cli_wf_file *f)
{
	json_t *errs = json_array();
	for (size_t i = 0; i < f->res.nerrors; i++) {
		const struct dsl_error *e = &f->res.errors[i];
		json_array_append_new(errs, json_pack("{s:o,s:i,s:i,s:o,s:o}", "file",
		                                      str_or_null(e->file), "line", e->line, "col",
		                                      e->col, "field", str_or_null(e->field),
		                                      "message", str_or_null(e->message)));
	}
	const char *name = f->valid ? json_string_value(json_object_get(f->res.dag, "name")) : NULL;
	return json_pack("{s:o,s:b,s:o,s:o,s:o}", "file", str_or_null(f->path), "valid", f->valid,
	                 "workflow", str_or_null(name), "hash",
	                 f->valid ? json_string(f->res.hash) : json_null(), "errors", errs);
}
