/* Templates (${ref}, $${ escape) and durations. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dsl_int.h"
#include "xalloc.h"

#define REF_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
/* A reference longer than this is not a reference. */
#define MAX_REF 512

/* Parses the reference starting after "${" at s. Returns its length (up
 * to the closing brace) or -1 with a message in err. */
static long ref_len(const char *s, char *err, size_t errlen)
{
	const char *close = strchr(s, '}');
	if (!close) {
		snprintf(err, errlen,
		         "unterminated '${': close it with '}' (write '$${' for a "
		         "literal '${')");
		return -1;
	}
	size_t len = (size_t)(close - s);
	if (len == 0) {
		snprintf(err, errlen, "empty reference '${}'");
		return -1;
	}
	if (len > MAX_REF || strspn(s, REF_CHARS) != len) {
		snprintf(err, errlen,
		         "invalid reference '${%.*s}': use letters, digits, '_', '-' and '.' as in "
		         "${params.name} (write '$${' for a literal '${')",
		         (int)(len > 64 ? 64 : len), s);
		return -1;
	}
	return (long)len;
}

int dsl_scan_refs(const char *s, dsl_ref_fn fn, void *ud, char *err, size_t errlen)
{
	char ref[MAX_REF + 1];
	for (const char *p = s; *p; p++) {
		if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
			p += 2;
			continue;
		}
		if (p[0] != '$' || p[1] != '{')
			continue;
		long len = ref_len(p + 2, err, errlen);
		if (len < 0)
			return -1;
		memcpy(ref, p + 2, (size_t)len);
		ref[len] = '\0';
		if (fn && fn(ud, ref))
			return 0;
		p += 2 + len;
	}
	return 0;
}

int dsl_expand(const char *tmpl, dsl_lookup_fn lookup, void *ud, char **out, char *err,
               size_t errlen)
{
	int rc = -1;
	struct buf b;
	char ref[MAX_REF + 1];

	buf_init(&b, 0);
	*out = NULL;
	for (const char *p = tmpl; *p;) {
		if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
			if (buf_puts(&b, "${"))
				goto out;
			p += 3;
			continue;
		}
		if (p[0] != '$' || p[1] != '{') {
			const char *next = strchr(p + 1, '$');
			size_t n = next ? (size_t)(next - p) : strlen(p);
			if (buf_append(&b, p, n))
				goto out;
			p += n;
			continue;
		}
		long len = ref_len(p + 2, err, errlen);
		if (len < 0)
			goto out;
		memcpy(ref, p + 2, (size_t)len);
		ref[len] = '\0';
		const char *v = lookup ? lookup(ud, ref) : NULL;
		if (v) {
			if (buf_puts(&b, v))
				goto out;
		} else if (buf_append(&b, p, (size_t)len + 3)) {
			goto out;
		}
		p += len + 3;
	}
	if (buf_append(&b, "", 0))
		goto out;
	*out = buf_detach(&b);
	rc = 0;
out:
	buf_release(&b);
	return rc;
}

/* At most 100 years: keeps every sum far from overflow. */
#define MAX_DURATION_MS (100LL * 366 * 86400 * 1000)

int dsl_parse_duration(const char *s, long long *ms)
{
	static const struct {
		const char *unit;
		long long ms;
	} units[] = {
	    {"d", 86400000LL}, {"h", 3600000LL}, {"m", 60000LL}, {"s", 1000LL}, {"ms", 1LL}};
	long long total = 0;
	size_t last = 0; /* index after the last unit used: units must descend */
	const char *p = s;

	if (!s || !*s)
		return -1;
	if (strspn(s, "0123456789") == strlen(s)) {
		if (strlen(s) > 12)
			return -1;
		total = strtoll(s, NULL, 10) * 1000;
		goto done;
	}
	while (*p) {
		size_t nd = strspn(p, "0123456789");
		if (nd == 0 || nd > 12)
			return -1;
		long long v = strtoll(p, NULL, 10);
		p += nd;
		size_t ul = strspn(p, "abcdefghijklmnopqrstuvwxyz");
		size_t i;
		for (i = 0; i < NELEM(units); i++)
			if (strlen(units[i].unit) == ul && strncmp(p, units[i].unit, ul) == 0)
				break;
		if (i == NELEM(units) || i < last)
			return -1;
		last = i + 1;
		p += ul;
		if (v > MAX_DURATION_MS / units[i].ms)
			return -1;
		total += v * units[i].ms;
		if (total > MAX_DURATION_MS)
			return -1;
	}
done:
	if (total > MAX_DURATION_MS)
		return -1;
	*ms = total;
	return 0;
}
