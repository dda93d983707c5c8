/* wfctl's presentation helpers: aligned tables, durations, local times, JSON
 * output and the topological order of a DAG's tasks. */
#ifndef WF_CLI_OUTPUT_H
#define WF_CLI_OUTPUT_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A table of text cells printed with aligned columns (two spaces between
 * columns, the last one not padded). Cells are copied. */
struct cli_table;

/* A table with ncols columns and their headers (ncols strings). */
struct cli_table *cli_table_new(int ncols, const char *const *headers);
/* Appends a row of ncols cells; a NULL cell prints as "-". */
void cli_table_add(struct cli_table *t, const char *const *cells);
size_t cli_table_rows(const struct cli_table *t);
/* Prints the table. max_width > 0 truncates each line to that many
 * characters (for redrawing on a terminal); 0 = no limit. Returns the
 * number of lines printed. */
int cli_table_print(const struct cli_table *t, FILE *f, int max_width);
void cli_table_free(struct cli_table *t);

/* "340ms", "1.2s", "3m04s", "2h05m", "3d04h"; "-" for a negative value. */
void cli_fmt_duration(int64_t ms, char *out, size_t outlen);

/* Parses an RFC 3339 time ("2026-03-27T08:00:00Z", fractions and numeric
 * offsets allowed). Returns 0 and epoch milliseconds in *ms, or -1. */
int cli_parse_time(const char *s, int64_t *ms) __attribute__((warn_unused_result));

/* An RFC 3339 time as local time "2026-03-27 09:00:05" (the process's time
 * zone); "-" for NULL, the input itself when it does not parse. */
void cli_fmt_time(const char *rfc3339, char *out, size_t outlen);
/* Epoch milliseconds as local time, same format. */
void cli_fmt_time_ms(int64_t ms, char *out, size_t outlen);

/* The milliseconds between two RFC 3339 times (end NULL = now), or -1 when
 * start is NULL or either does not parse. */
int64_t cli_elapsed_ms(const char *start, const char *end);

/* Prints v (borrowed) as JSON on stdout: indented on a terminal, one compact
 * line otherwise. */
void cli_print_json(const json_t *v);

/* The string value of key in object o, or NULL (borrowed). */
const char *cli_str(const json_t *o, const char *key);
/* The integer value of key in o, or def when absent or not an integer. */
long long cli_int(const json_t *o, const char *key, long long def);

/* Orders the objects of array items (each with a name_key string and a
 * needs_key array of names) so that every item comes after the ones it
 * needs; ties keep the array's order, cycles and unknown names are tolerated
 * (left-over items come last in array order). Writes n indexes to order
 * (n = json_array_size(items)). depth (may be NULL) receives each item's
 * longest distance from a root, 0-based. */
void cli_topo_order(const json_t *items, const char *name_key, const char *needs_key, size_t *order,
                    int *depth);

/* 1 when stdout is a terminal (and TERM is not "dumb"). */
int cli_stdout_tty(void);
/* The terminal's width, or 0 when unknown. */
int cli_term_width(void);

#endif
