#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"
#include "xalloc.h"

static const char *prog_name = "wf";
static enum log_level min_level = LOG_INFO;
static int json_lines;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *prog)
{
	prog_name = prog;
	const char *lvl = getenv("WF_LOG_LEVEL");
	if (lvl && log_set_level_name(lvl) != 0)
		fprintf(stderr, "%s: WF_LOG_LEVEL=%s is not one of debug, info, warn, error\n",
		        prog, lvl);
	const char *fmt = getenv("WF_LOG_FORMAT");
	if (fmt && strcmp(fmt, "json") == 0)
		json_lines = 1;
}

void log_set_level(enum log_level level)
{
	min_level = level;
}

int log_set_level_name(const char *name)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			min_level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_json(int json)
{
	json_lines = json;
}

int log_enabled(enum log_level level)
{
	return level >= min_level;
}

static int needs_quotes(const char *s, size_t n)
{
	if (n == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (s[i] == ' ' || s[i] == '"' || s[i] == '=' || (unsigned char)s[i] < 0x20)
			return 1;
	return 0;
}

/* Appends s[0..n) quoted as a JSON string (also valid for logfmt). */
static void put_quoted(struct buf *b, const char *s, size_t n)
{
	(void)!buf_puts(b, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			(void)!buf_printf(b, "\\%c", c);
		else if (c == '\n')
			(void)!buf_puts(b, "\\n");
		else if (c < 0x20)
			(void)!buf_printf(b, "\\u%04x", c);
		else
			(void)!buf_append(b, &s[i], 1);
	}
	(void)!buf_puts(b, "\"");
}

/* Splits "k=v k2=v2" into pairs; a value runs to the next " key=". */
static void put_fields(struct buf *b, const char *f)
{
	while (*f) {
		while (*f == ' ')
			f++;
		const char *eq = strchr(f, '=');
		if (!eq)
			break;
		const char *key = f;
		size_t klen = (size_t)(eq - f);
		const char *val = eq + 1;
		const char *end = val;
		/* the value ends where the next " word=" begins */
		for (;;) {
			const char *sp = strchr(end, ' ');
			if (!sp) {
				end = val + strlen(val);
				break;
			}
			const char *w = sp + 1;
			while (*w && *w != ' ' && *w != '=')
				w++;
			if (*w == '=' && w > sp + 1) {
				end = sp;
				break;
			}
			end = sp + 1;
		}
		size_t vlen = (size_t)(end - val);
		if (json_lines) {
			(void)!buf_puts(b, ",");
			put_quoted(b, key, klen);
			(void)!buf_puts(b, ":");
			put_quoted(b, val, vlen);
		} else {
			(void)!buf_puts(b, " ");
			(void)!buf_append(b, key, klen);
			(void)!buf_puts(b, "=");
			if (needs_quotes(val, vlen))
				put_quoted(b, val, vlen);
			else
				(void)!buf_append(b, val, vlen);
		}
		f = end;
	}
}

void log_write(enum log_level level, const char *msg, const char *fields_fmt, ...)
{
	if (level < min_level)
		return;
	char ts[64];
	fmt_time_ms(wall_ms(), ts, sizeof ts);

	char *fields = NULL;
	if (fields_fmt && *fields_fmt) {
		va_list ap;
		va_start(ap, fields_fmt);
		fields = xvasprintf(fields_fmt, ap);
		va_end(ap);
	}
	struct buf b;
	buf_init(&b, 0);
	if (json_lines) {
		(void)!buf_printf(&b,
		                  "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\",\"msg\":", ts,
		                  level_names[level], prog_name);
		put_quoted(&b, msg, strlen(msg));
		if (fields)
			put_fields(&b, fields);
		(void)!buf_puts(&b, "}\n");
	} else {
		(void)!buf_printf(&b, "ts=%s level=%s prog=%s msg=", ts, level_names[level],
		                  prog_name);
		put_quoted(&b, msg, strlen(msg));
		if (fields)
			put_fields(&b, fields);
		(void)!buf_puts(&b, "\n");
	}
	pthread_mutex_lock(&log_lock);
	fwrite(b.data, 1, b.len, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
	buf_release(&b);
	free(fields);
}
