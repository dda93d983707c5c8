/* wfctl's presentation helpers (see output.h). */
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "xalloc.h"

struct cli_table {
	int ncols;
	char **cells; /* row-major, row 0 = headers */
	size_t nrows; /* including the header row */
	size_t cap;
};

/* Display width of UTF-8 text: one column per code point. */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

static void add_row(struct cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->cells = xrealloc(t->cells, t->cap * (size_t)t->ncols * sizeof *t->cells);
	}
	char **row = t->cells + t->nrows * (size_t)t->ncols;
	for (int c = 0; c < t->ncols; c++) {
		const char *v = cells[c] && *cells[c] ? cells[c] : "-";
		/* A cell is one line: newlines and tabs would break the columns. */
		char *copy = xstrdup(v);
		for (char *p = copy; *p; p++)
			if (*p == '\n' || *p == '\r' || *p == '\t')
				*p = ' ';
		row[c] = copy;
	}
	t->nrows++;
}

struct cli_table *cli_table_new(int ncols, const char *const *headers)
{
	struct cli_table *t = xcalloc(1, sizeof *t);
	t->ncols = ncols;
	add_row(t, headers);
	return t;
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
	add_row(t, cells);
}

size_t cli_table_rows(const struct cli_table *t)
{
	return t->nrows - 1;
}

/* Writes line to f, cut to max_width code points when max_width > 0. */
static void put_line(FILE *f, const char *line, int max_width)
{
	size_t len = strlen(line);
	while (len > 0 && line[len - 1] == ' ')
		len--;
	if (max_width > 0) {
		size_t w = 0, i = 0;
		for (; i < len; i++) {
			if (((unsigned char)line[i] & 0xC0) != 0x80) {
				if (w == (size_t)max_width)
					break;
				w++;
			}
		}
		len = i;
	}
	fwrite(line, 1, len, f);
	fputc('\n', f);
}

int cli_table_print(const struct cli_table *t, FILE *f, int max_width)
{
	size_t *width = xcalloc((size_t)t->ncols, sizeof *width);
	for (size_t r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++) {
			size_t w = text_width(t->cells[r * (size_t)t->ncols + (size_t)c]);
			if (w > width[c])
				width[c] = w;
		}
	struct buf line;
	buf_init(&line, 0);
	for (size_t r = 0; r < t->nrows; r++) {
		buf_reset(&line);
		for (int c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * (size_t)t->ncols + (size_t)c];
			int failed = buf_puts(&line, cell);
			if (c + 1 < t->ncols)
				for (size_t pad = text_width(cell); pad < width[c] + 2; pad++)
					failed |= buf_puts(&line, " ");
			(void)failed; /* unbounded buffer: cannot fail */
		}
		put_line(f, line.data ? line.data : "", max_width);
	}
	buf_release(&line);
	free(width);
	return (int)t->nrows;
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void cli_fmt_duration(int64_t ms, char *out, size_t outlen)
{
	if (ms < 0)
		snprintf(out, outlen, "-");
	else if (ms < 1000)
		snprintf(out, outlen, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(out, outlen, "%.1fs", (double)(ms / 100) / 10.0);
	else if (ms < 3600000)
		snprintf(out, outlen, "%lldm%02llds", (long long)(ms / 60000),
		         (long long)(ms / 1000 % 60));
	else if (ms < 86400000)
		snprintf(out, outlen, "%lldh%02lldm", (long long)(ms / 3600000),
		         (long long)(ms / 60000 % 60));
	else
		snprintf(out, outlen, "%lldd%02lldh", (long long)(ms / 86400000),
		         (long long)(ms / 3600000 % 24));
}

/* Reads exactly n digits at *p. Returns the value or -1. */
static int digits(const char **p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	*p += n;
	return v;
}

int cli_parse_time(const char *s, int64_t *ms)
{
	if (!s)
		return -1;
	const char *p = s;
	int y = digits(&p, 4);
	if (y < 0 || *p++ != '-')
		return -1;
	int mo = digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return -1;
	int d = digits(&p, 2);
	if (d < 1 || d > 31 || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	int h = digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return -1;
	int mi = digits(&p, 2);
	if (mi < 0 || mi > 59 || *p++ != ':')
		return -1;
	int sec = digits(&p, 2);
	if (sec < 0 || sec > 60)
		return -1;
	int frac = 0;
	if (*p == '.') {
		p++;
		int scale = 100, any = 0;
		for (; *p >= '0' && *p <= '9'; p++, any = 1) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
		if (!any)
			return -1;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		int oh = digits(&p, 2);
		if (oh < 0 || oh > 23 || *p++ != ':')
			return -1;
		int om = digits(&p, 2);
		if (om < 0 || om > 59)
			return -1;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if (*p)
		return -1;
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mo - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = sec};
	time_t t = timegm(&tm);
	*ms = ((int64_t)t - off) * 1000 + frac;
	return 0;
}

void cli_fmt_time_ms(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!localtime_r(&t, &tm)) {
		snprintf(out, outlen, "-");
		return;
	}
	strftime(out, outlen, "%Y-%m-%d %H:%M:%S", &tm);
}

void cli_fmt_time(const char *rfc3339, char *out, size_t outlen)
{
	int64_t ms;
	if (!rfc3339)
		snprintf(out, outlen, "-");
	else if (cli_parse_time(rfc3339, &ms) != 0)
		snprintf(out, outlen, "%s", rfc3339);
	else
		cli_fmt_time_ms(ms, out, outlen);
}

int64_t cli_elapsed_ms(const char *start, const char *end)
{
	int64_t a, b;
	if (!start || cli_parse_time(start, &a) != 0)
		return -1;
	if (!end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		b = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	} else if (cli_parse_time(end, &b) != 0) {
		return -1;
	}
	return b >= a ? b - a : 0;
}

void cli_print_json(const json_t *v)
{
	size_t flags = cli_stdout_tty() ? JSON_INDENT(2) : JSON_COMPACT;
	char *s = json_dumps(v, flags | JSON_ENCODE_ANY);
	if (s)
		printf("%s\n", s);
	free(s);
}

const char *cli_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

long long cli_int(const json_t *o, const char *key, long long def)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

static long index_of(const json_t *items, const char *name_key, const char *name)
{
	for (size_t i = 0; i < json_array_size(items); i++) {
		const char *n = cli_str(json_array_get(items, i), name_key);
		if (n && strcmp(n, name) == 0)
			return (long)i;
	}
	return -1;
}

void cli_topo_order(const json_t *items, const char *name_key, const char *needs_key, size_t *order,
                    int *depth)
{
	size_t n = json_array_size(items);
	unsigned char *done = xcalloc(n ? n : 1, 1);
	int *dep = xcalloc(n ? n : 1, sizeof *dep);
	size_t k = 0;
	/* Repeatedly take the first item whose known needs are all placed:
	 * O(n^2 * needs), plenty for what a terminal shows. */
	while (k < n) {
		size_t taken = n;
		for (size_t i = 0; i < n && taken == n; i++) {
			if (done[i])
				continue;
			json_t *needs = json_object_get(json_array_get(items, i), needs_key);
			int ready = 1, d = 0;
			for (size_t j = 0; j < json_array_size(needs) && ready; j++) {
				const char *nm = json_string_value(json_array_get(needs, j));
				long at = nm ? index_of(items, name_key, nm) : -1;
				if (at < 0 || (size_t)at == i)
					continue;
				if (!done[at])
					ready = 0;
				else if (dep[at] + 1 > d)
					d = dep[at] + 1;
			}
			if (ready) {
				taken = i;
				dep[i] = d;
			}
		}
		if (taken == n) /* a cycle: take the first left-over item */
			for (size_t i = 0; i < n && taken == n; i++)
				if (!done[i])
					taken = i;
		done[taken] = 1;
		order[k++] = taken;
	}
	if (depth)
		for (size_t i = 0; i < n; i++)
			depth[i] = dep[i];
	free(done);
	free(dep);
}

int cli_stdout_tty(void)
{
	const char *term = getenv("TERM");
	return isatty(STDOUT_FILENO) && !(term && strcmp(term, "dumb") == 0);
}

int cli_term_width(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 0;
}
