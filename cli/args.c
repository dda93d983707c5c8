/* Command-line parsing shared by wfctl's commands (see cli.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "xalloc.h"

void cli_strv_push(struct cli_strv *sv, const char *s)
{
	sv->v = xrealloc(sv->v, (size_t)(sv->n + 1) * sizeof *sv->v);
	sv->v[sv->n++] = s;
}

void cli_strv_release(struct cli_strv *sv)
{
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "wfctl: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	/* Only the synopsis: the first paragraph of the usage text. */
	const char *end = strstr(usage, "\n\n");
	int len = end ? (int)(end - usage) : (int)strlen(usage);
	fprintf(stderr, "%.*s\n", len, usage);
	return EXIT_USAGE;
}

/* Splits "--name=value". Returns the length of the name part. */
static size_t name_len(const char *arg)
{
	const char *eq = strchr(arg, '=');
	return eq && arg[1] == '-' ? (size_t)(eq - arg) : strlen(arg);
}

static int matches(const char *want, const char *arg, size_t len)
{
	return want && strlen(want) == len && strncmp(want, arg, len) == 0;
}

int cli_parse_args(int argc, char **argv, const struct cli_opt *opts, const char *usage,
                   struct cli_strv *pos)
{
	int only_pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			cli_strv_push(pos, arg);
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage, stdout);
			return EXIT_OK;
		}
		size_t len = name_len(arg);
		const char *inline_val = arg[len] == '=' ? arg + len + 1 : NULL;
		if (matches("--json", arg, len) && !inline_val) {
			cli_opts.json = 1;
			continue;
		}
		const char **dest = NULL;
		int *flag = NULL;
		struct cli_strv *multi = NULL;
		if (matches("--url", arg, len))
			dest = &cli_opts.url;
		else if (matches("--token", arg, len))
			dest = &cli_opts.token;
		for (const struct cli_opt *o = opts; o && o->name && !dest && !flag && !multi;
		     o++) {
			if (matches(o->name, arg, len) || matches(o->alias, arg, len)) {
				dest = o->val;
				flag = o->flag;
				multi = o->multi;
			}
		}
		if (flag) {
			if (inline_val)
				return cli_usage_error(usage, "option '%.*s' takes no value",
				                       (int)len, arg);
			*flag = 1;
			continue;
		}
		if (!dest && !multi)
			return cli_usage_error(usage, "unknown option '%s'", arg);
		const char *v = inline_val;
		if (!v) {
			if (i + 1 >= argc)
				return cli_usage_error(usage, "option '%s' needs a value", arg);
			v = argv[++i];
		}
		if (multi)
			cli_strv_push(multi, v);
		else
			*dest = v;
	}
	return -1;
}
