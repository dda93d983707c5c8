/* Commands that need neither engine nor database: validate, next, graph. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/files.h"
#include "cli/output.h"
#include "cron.h"
#include "tz.h"
#include "util.h"
#include "xalloc.h"

/* ------------------------------------------------------------ validate */

static const char usage_validate[] =
    "usage: wfctl validate [--json] [-v] FILE|DIR...\n"
    "\n"
    "Compiles every workflow file (directories are searched recursively for\n"
    "*.yaml and *.yml) without contacting the engine, and prints each error as\n"
    "file:line:col: field: message, then a summary. Usable as a pre-commit hook.\n"
    "\n"
    "options:\n"
    "  -v, --verbose   also list the valid files with their workflow and hash\n"
    "  --json          {\"files\":[{\"file\",\"valid\",\"workflow\",\"hash\",\"errors\":[...]}]}\n"
    "\n"
    "exit status: 0 all valid, 1 some invalid, 2 usage\n";

int cmd_validate(int argc, char **argv)
{
	int verbose = 0, rc;
	struct cli_strv pos = {0};
	struct cli_wf_files fs = {0};
	const struct cli_opt opts[] = {{"--verbose", "-v", NULL, &verbose, NULL}, {0}};
	rc = cli_parse_args(argc, argv, opts, usage_validate, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n == 0) {
		rc = cli_usage_error(usage_validate, "validate: name at least one file or folder");
		goto out;
	}
	if (cli_wf_files_load(&fs, pos.v, pos.n) != 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	if (cli_opts.json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < fs.n; i++)
			json_array_append_new(arr, cli_wf_file_json(&fs.v[i]));
		json_t *o = json_pack("{s:o}", "files", arr);
		cli_print_json(o);
		json_decref(o);
	} else {
		for (size_t i = 0; i < fs.n; i++) {
			const struct cli_wf_file *f = &fs.v[i];
			if (!f->valid)
				cli_wf_file_print_errors(f, stdout);
			else if (verbose)
				printf("%s: ok (workflow %s, hash %.12s)\n", f->path,
				       cli_str(f->res.dag, "name"), f->res.hash);
		}
		printf("%zu file%s, %d invalid\n", fs.n, fs.n == 1 ? "" : "s", fs.invalid);
	}
	rc = fs.invalid ? EXIT_FAIL : EXIT_OK;
out:
	cli_wf_files_release(&fs);
	cli_strv_release(&pos);
	return rc;
}

/* ---------------------------------------------------------------- next */

static const char usage_next[] =
    "usage: wfctl next \"CRON\" [--tz ZONE] [-n N] [--after TIME] [--key NAME]\n"
    "\n"
    "Prints the next fire times of a cron expression in a time zone, as local\n"
    "time with its offset and as UTC, and what the expression means.\n"
    "\n"
    "options:\n"
    "  --tz ZONE            IANA time zone (default UTC), e.g. Europe/Berlin\n"
    "  -n N                 how many times (default 5, at most 1000)\n"
    "  --after TIME         start after this RFC 3339 time (default now)\n"
    "  --key NAME           seed for H fields (the workflow's name)\n"
    "  --dst-gap shift|next|skip    a time skipped by DST (default shift)\n"
    "  --dst-repeat once|twice      a time repeated by DST (default once)\n"
    "  --json               "
    "{\"expression\",\"timezone\",\"description\",\"times\":[{\"local\",\"utc\"}]}\n"
    "\n"
    "exit status: 0 ok, 1 invalid expression or zone, 2 usage\n";

/* Epoch seconds as wall-clock time in zone z: "Fri 2026-03-27 09:00:00 +01:00"
 * (human) or "2026-03-27T09:00:00+01:00" (rfc). */
static void fmt_zoned(const struct tz_zone *z, int64_t t, int rfc, char *out, size_t outlen)
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	int32_t off = tz_offset(z, t, NULL);
	int64_t local = t + off;
	int64_t days = local / 86400, secs = local % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	int64_t y;
	int m, d;
	tz_civil_from_days(days, &y, &m, &d);
	int aoff = off < 0 ? -off : off;
	char sign = off < 0 ? '-' : '+';
	if (rfc)
		snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long)y, m,
		         d, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), sign,
		         aoff / 3600, aoff / 60 % 60);
	else
		snprintf(out, outlen, "%s %04lld-%02d-%02d %02d:%02d:%02d %c%02d:%02d",
		         wd[tz_weekday(days)], (long long)y, m, d, (int)(secs / 3600),
		         (int)(secs / 60 % 60), (int)(secs % 60), sign, aoff / 3600,
		         aoff / 60 % 60);
}

int cmd_next(int argc, char **argv)
{
	const char *tz = NULL, *count = NULL, *after = NULL, *key = NULL, *gap_s = NULL,
	           *rep_s = NULL;
	struct cli_strv pos = {0};
	struct cron_expr *e = NULL;
	char *desc = NULL;
	json_t *times = NULL;
	int rc;
	const struct cli_opt opts[] = {{"--tz", "--timezone", &tz, NULL, NULL},
	                               {"-n", "--count", &count, NULL, NULL},
	                               {"--after", NULL, &after, NULL, NULL},
	                               {"--key", NULL, &key, NULL, NULL},
	                               {"--dst-gap", NULL, &gap_s, NULL, NULL},
	                               {"--dst-repeat", NULL, &rep_s, NULL, NULL},
	                               {0}};
	rc = cli_parse_args(argc, argv, opts, usage_next, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1) {
		rc = cli_usage_error(usage_next, "next: expected one cron expression (quote it)");
		goto out;
	}
	int64_t n = 5;
	if (count && parse_int64(count, 1, 1000, &n) != 0) {
		rc =
		    cli_usage_error(usage_next, "-n '%s': expected a number from 1 to 1000", count);
		goto out;
	}
	enum cron_dst_gap gap = CRON_GAP_SHIFT;
	enum cron_dst_repeat rep = CRON_REPEAT_ONCE;
	if (gap_s && cron_dst_gap_parse(gap_s, &gap) != 0) {
		rc = cli_usage_error(usage_next, "--dst-gap '%s': expected shift, next or skip",
		                     gap_s);
		goto out;
	}
	if (rep_s && cron_dst_repeat_parse(rep_s, &rep) != 0) {
		rc =
		    cli_usage_error(usage_next, "--dst-repeat '%s': expected once or twice", rep_s);
		goto out;
	}
	int64_t t;
	if (after) {
		int64_t ms;
		if (cli_parse_time(after, &ms) != 0) {
			rc = cli_usage_error(usage_next,
			                     "--after '%s': expected an RFC 3339 time such as "
			                     "2026-03-27T00:00:00Z",
			                     after);
			goto out;
		}
		t = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	} else {
		t = (int64_t)time(NULL);
	}
	const char *zone_name = tz ? tz : "UTC";
	const struct tz_zone *zone = NULL;
	if (!cron_tz_valid(zone_name) || !(zone = tz_get(zone_name))) {
		fprintf(stderr,
		        "wfctl: unknown time zone '%s': expected an IANA name such as "
		        "Europe/Berlin or UTC\n",
		        zone_name);
		rc = EXIT_FAIL;
		goto out;
	}
	char err[256] = "";
	if (cron_parse(pos.v[0], key, &e, err, sizeof err) != 0) {
		fprintf(stderr, "wfctl: invalid cron expression '%s': %s\n", pos.v[0],
		        err[0] ? err : "cannot parse");
		rc = EXIT_FAIL;
		goto out;
	}
	desc = cron_describe(e);
	times = json_array();
	for (int64_t i = 0; i < n; i++) {
		int64_t next;
		if (cron_next(e, zone_name, gap, rep, t, &next) != 0)
			break;
		char local[64], utc[64];
		fmt_zoned(zone, next, 1, local, sizeof local);
		fmt_time_ms(next * 1000, utc, sizeof utc);
		/* whole seconds: drop ".000" */
		char *dot = strchr(utc, '.');
		if (dot)
			memcpy(dot, "Z", 2);
		json_array_append_new(times, json_pack("{s:s,s:s}", "local", local, "utc", utc));
		t = next;
	}
	if (cli_opts.json) {
		json_t *o = json_pack("{s:s,s:s,s:s?,s:O}", "expression", pos.v[0], "timezone",
		                      zone_name, "description", desc, "times", times);
		cli_print_json(o);
		json_decref(o);
	} else {
		printf("%s (%s)\n", desc ? desc : pos.v[0], zone_name);
		for (size_t i = 0; i < json_array_size(times); i++) {
			json_t *it = json_array_get(times, i);
			int64_t ms = 0;
			char local[64];
			if (cli_parse_time(cli_str(it, "utc"), &ms) != 0)
				continue;
			fmt_zoned(zone, ms / 1000, 0, local, sizeof local);
			printf("  %s   %s\n", local, cli_str(it, "utc"));
		}
		if (json_array_size(times) < (size_t)n)
			printf("  (no further fire times)\n");
	}
	rc = EXIT_OK;
out:
	json_decref(times);
	free(desc);
	cron_free(e);
	cli_strv_release(&pos);
	return rc;
}

/* --------------------------------------------------------------- graph */

static const char usage_graph[] =
    "usage: wfctl graph FILE [--dot] [--json]\n"
    "\n"
    "Compiles a workflow file and prints its DAG: the tasks in topological\n"
    "order with their step type and needs, then one \"a -> b\" line per edge.\n"
    "\n"
    "options:\n"
    "  --dot    Graphviz instead (wfctl graph x.yaml --dot | dot -Tsvg > x.svg)\n"
    "  --json   the compiled DAG\n";

/* Writes s as the inside of a dot double-quoted string. */
static void dot_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static const char *step_type(const json_t *task)
{
	const char *t = cli_str(json_object_get(task, "step"), "type");
	return t ? t : "?";
}

static void print_dot(const json_t *dag, const json_t *tasks, const size_t *order)
{
	size_t n = json_array_size(tasks);
	printf("digraph ");
	dot_quoted(stdout, cli_str(dag, "name") ? cli_str(dag, "name") : "workflow");
	printf(" {\n\trankdir=LR;\n\tnode [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
	for (size_t k = 0; k < n; k++) {
		json_t *t = json_array_get(tasks, order[k]);
		const char *name = cli_str(t, "name");
		char *label = xasprintf("%s\n%s", name, step_type(t));
		printf("\t");
		dot_quoted(stdout, name);
		printf(" [label=");
		dot_quoted(stdout, label);
		printf("];\n");
		free(label);
	}
	for (size_t k = 0; k < n; k++) {
		json_t *t = json_array_get(tasks, order[k]);
		json_t *needs = json_object_get(t, "needs");
		const char *trig = cli_str(t, "trigger");
		int plain = !trig || strcmp(trig, "all_success") == 0;
		for (size_t j = 0; j < json_array_size(needs); j++) {
			printf("\t");
			dot_quoted(stdout, json_string_value(json_array_get(needs, j)));
			printf(" -> ");
			dot_quoted(stdout, cli_str(t, "name"));
			if (!plain) {
				printf(" [style=dashed, label=");
				dot_quoted(stdout, trig);
				printf("]");
			}
			printf(";\n");
		}
	}
	printf("}\n");
}

static void print_text(const json_t *dag, const json_t *tasks, const size_t *order,
                       const int *depth)
{
	size_t n = json_array_size(tasks);
	printf("workflow %s: %zu task%s\n", cli_str(dag, "name"), n, n == 1 ? "" : "s");
	const char *hdr[] = {"  LEVEL", "TASK", "STEP", "NEEDS", "TRIGGER"};
	struct cli_table *tb = cli_table_new(5, hdr);
	for (size_t k = 0; k < n; k++) {
		json_t *t = json_array_get(tasks, order[k]);
		json_t *needs = json_object_get(t, "needs");
		char level[16];
		snprintf(level, sizeof level, "  %d", depth[order[k]] + 1);
		char *joined = NULL;
		for (size_t j = 0; j < json_array_size(needs); j++) {
			const char *nm = json_string_value(json_array_get(needs, j));
			char *more = xasprintf("%s%s%s", joined ? joined : "", joined ? ", " : "",
			                       nm ? nm : "?");
			free(joined);
			joined = more;
		}
		const char *trig = cli_str(t, "trigger");
		const char *row[] = {level, cli_str(t, "name"), step_type(t), joined,
		                     trig && strcmp(trig, "all_success") != 0 ? trig : NULL};
		cli_table_add(tb, row);
		free(joined);
	}
	cli_table_print(tb, stdout, 0);
	cli_table_free(tb);
	int first = 1;
	for (size_t k = 0; k < n; k++) {
		json_t *t = json_array_get(tasks, order[k]);
		json_t *needs = json_object_get(t, "needs");
		for (size_t j = 0; j < json_array_size(needs); j++) {
			if (first)
				printf("\n");
			first = 0;
			printf("%s -> %s\n", json_string_value(json_array_get(needs, j)),
			       cli_str(t, "name"));
		}
	}
}

int cmd_graph(int argc, char **argv)
{
	int dot = 0, rc;
	struct cli_strv pos = {0};
	struct cli_wf_files fs = {0};
	size_t *order = NULL;
	int *depth = NULL;
	const struct cli_opt opts[] = {{"--dot", NULL, NULL, &dot, NULL}, {0}};
	rc = cli_parse_args(argc, argv, opts, usage_graph, &pos);
	if (rc >= 0)
		goto out;
	if (pos.n != 1) {
		rc = cli_usage_error(usage_graph, "graph: expected one workflow file");
		goto out;
	}
	if (cli_wf_files_load(&fs, pos.v, 1) != 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	if (fs.n != 1) {
		rc = cli_usage_error(usage_graph, "graph: '%s' holds %zu workflow files; name one",
		                     pos.v[0], fs.n);
		goto out;
	}
	if (!fs.v[0].valid) {
		cli_wf_file_print_errors(&fs.v[0], stderr);
		rc = EXIT_FAIL;
		goto out;
	}
	json_t *dag = fs.v[0].res.dag;
	json_t *tasks = json_object_get(dag, "tasks");
	size_t n = json_array_size(tasks);
	order = xcalloc(n ? n : 1, sizeof *order);
	depth = xcalloc(n ? n : 1, sizeof *depth);
	cli_topo_order(tasks, "name", "needs", order, depth);
	if (cli_opts.json)
		cli_print_json(dag);
	else if (dot)
		print_dot(dag, tasks, order);
	else
		print_text(dag, tasks, order, depth);
	rc = EXIT_OK;
out:
	free(order);
	free(depth);
	cli_wf_files_release(&fs);
	cli_strv_release(&pos);
	return rc;
}
