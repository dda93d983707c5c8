/* ${secrets.NAME} expansion on the executor: secret values come from its own
 * environment (WF_SECRET_NAME) or from files (--secrets-dir DIR/NAME), so
 * they never reach the engine or the database. Everything else in ${...} was
 * expanded by the engine and is left as it is. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "xalloc.h"

#define SECRET_FILE_MAX (64 * 1024)
#define PREFIX          "${secrets."

static int valid_name(const char *s, size_t n)
{
	if (n == 0 || n > 128 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return 0;
	return 1;
}

static char *from_file(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *val = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return NULL;
	struct buf b;
	buf_init(&b, SECRET_FILE_MAX);
	char chunk[4096];
	ssize_t r;
	while ((r = read(fd, chunk, sizeof chunk)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || buf_append(&b, chunk, (size_t)r)) {
			buf_release(&b);
			goto out;
		}
	}
	/* files usually end with a newline that is not part of the secret */
	if (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	if (b.len && b.data[b.len - 1] == '\r')
		b.data[--b.len] = '\0';
	val = buf_detach(&b);
out:
	close(fd);
	return val;
}

static char *lookup(const char *name, const char *dir)
{
	char *var = xasprintf("WF_SECRET_%s", name);
	const char *v = getenv(var);
	if (!v) {
		/* WF_SECRET_DB_PASSWORD also serves secrets.db-password */
		for (char *p = var; *p; p++)
			*p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
		v = getenv(var);
	}
	free(var);
	if (v)
		return xstrdup(v);
	return dir && *dir ? from_file(dir, name) : NULL;
}

static void remember(struct secrets *used, char *val)
{
	for (size_t i = 0; i < used->n; i++) {
		if (strcmp(used->v[i], val) == 0) {
			free(val);
			return;
		}
	}
	used->v = xrealloc(used->v, (used->n + 1) * sizeof *used->v);
	used->v[used->n++] = val;
	size_t l = strlen(val);
	if (l > used->longest)
		used->longest = l;
}

int secrets_expand(const char *tmpl, const char *secrets_dir, const char *executor_id,
                   struct secrets *used, char **out, char *err, size_t errlen)
{
	int rc = -1;
	struct buf b;
	buf_init(&b, 0);
	const char *p = tmpl;
	for (;;) {
		const char *ref = strstr(p, PREFIX);
		if (!ref) {
			(void)!buf_puts(&b, p);
			break;
		}
		(void)!buf_append(&b, p, (size_t)(ref - p));
		const char *name = ref + strlen(PREFIX);
		const char *end = strchr(name, '}');
		if (!end) {
			(void)!buf_puts(&b, ref);
			break;
		}
		size_t n = (size_t)(end - name);
		if (!valid_name(name, n)) {
			snprintf(err, errlen,
			         "invalid secret reference '${secrets.%.*s}': a name is letters, "
			         "digits, '_', '-' and '.'",
			         (int)(n > 64 ? 64 : n), name);
			goto out;
		}
		char *nm = xstrndup(name, n);
		char *val = lookup(nm, secrets_dir);
		if (!val) {
			snprintf(err, errlen, "secret %s is not defined on executor %s", nm,
			         executor_id);
			free(nm);
			goto out;
		}
		free(nm);
		(void)!buf_puts(&b, val);
		remember(used, val);
		p = end + 1;
	}
	*out = buf_detach(&b);
	rc = 0;
out:
	buf_release(&b);
	return rc;
}
