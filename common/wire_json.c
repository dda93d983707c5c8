/* The plain-JSON paths under wire_decode and wire_encode.
 *
 * jansson reads its input a byte at a time through a callback and writes
 * its output the same way: about 200 instructions a byte of a frame here
 * (callgrind: 42,000 to parse a 200-byte task frame, 18,000 to dump a
 * `finished`), which made JSON the larger part of an executor's and the
 * engine's work per task (bench/README.md, round 5). The frames themselves
 * are plain: objects of short ASCII keys, integers, strings, small nested
 * objects. These two functions handle exactly that and build or read the
 * same jansson values; anything else is left to jansson:
 *
 * - wire_load_plain takes objects, arrays, strings (valid UTF-8, no control
 *   characters, the escapes \" \\ \/ \b \f \n \r \t), integers of up to 18
 *   digits, true, false and null. A \u escape, a fraction or exponent, a
 *   longer number, a duplicate key (wire_decode rejects them), any syntax
 *   error: NULL, and the caller parses with json_loadb, which returns the
 *   value or the error with its line and column.
 * - wire_dump_plain writes what json_dumps(v, JSON_COMPACT) writes (keys in
 *   insertion order, the same escapes) for values without reals; NULL for a
 *   real, a string that is not valid UTF-8 or nesting deeper than
 *   WIRE_MAX_DEPTH, and the caller falls back to json_dumps.
 *
 * tests/unit/common/test_wire.c and tests/fuzz/fuzz_wire.c check both
 * against jansson on the same inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "wire.h"
#include "wire_int.h"

/* ------------------------------------------------------------ parse */

struct pp {
	const unsigned char *s, *end;
	int depth;
	struct buf tmp; /* a string with escapes, decoded */
};

static void skip_ws(struct pp *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

/* A string after its opening quote: *out points at its bytes (in the input,
 * or in p->tmp when it had escapes: *escaped = 1), *len their number.
 * Returns 0, or -1 when it is not plain (or not valid). */
static int parse_string(struct pp *p, const char **out, size_t *len, int *escaped)
{
	const unsigned char *start = p->s;
	*escaped = 0;
	for (;;) {
		if (p->s >= p->end)
			return -1;
		unsigned char c = *p->s;
		if (c == '"')
			break;
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (p->end - p->s < 2)
				return -1;
			*escaped = 1;
			p->s += 2;
			continue;
		}
		if (c < 0x80) {
			p->s++;
			continue;
		}
		size_t k = wire__utf8_seq(p->s, (size_t)(p->end - p->s));
		if (!k)
			return -1;
		p->s += k;
	}
	const unsigned char *stop = p->s++; /* the closing quote */
	if (!*escaped) {
		*out = (const char *)start;
		*len = (size_t)(stop - start);
		return 0;
	}
	buf_reset(&p->tmp);
	for (const unsigned char *q = start; q < stop;) {
		const unsigned char *bs = memchr(q, '\\', (size_t)(stop - q));
		const unsigned char *run_end = bs ? bs : stop;
		if (run_end > q && buf_append(&p->tmp, q, (size_t)(run_end - q)) != 0)
			return -1;
		if (!bs)
			break;
		char d;
		switch (bs[1]) {
		case '"':
			d = '"';
			break;
		case '\\':
			d = '\\';
			break;
		case '/':
			d = '/';
			break;
		case 'b':
			d = '\b';
			break;
		case 'f':
			d = '\f';
			break;
		case 'n':
			d = '\n';
			break;
		case 'r':
			d = '\r';
			break;
		case 't':
			d = '\t';
			break;
		default:
			return -1; /* \u, or not an escape at all */
		}
		if (buf_append(&p->tmp, &d, 1) != 0)
			return -1;
		q = bs + 2;
	}
	*out = p->tmp.data ? p->tmp.data : "";
	*len = p->tmp.len;
	return 0;
}

static int is_delim(struct pp *p)
{
	if (p->s >= p->end)
		return 1;
	unsigned char c = *p->s;
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static json_t *parse_value(struct pp *p);

/* Takes the byte c (after white space) if it comes next. */
static int take(struct pp *p, char c)
{
	skip_ws(p);
	if (p->s < p->end && *p->s == c) {
		p->s++;
		return 1;
	}
	return 0;
}

/* After a member or an element: 1 when another follows (a comma), 0 at
 * the closing bracket, -1 for anything else. */
static int next_item(struct pp *p, char close)
{
	if (take(p, ','))
		return 1;
	return take(p, close) ? 0 : -1;
}

static json_t *parse_object(struct pp *p)
{
	json_t *o = json_object();
	if (!o || take(p, '}'))
		return o;
	for (;;) {
		const char *key;
		size_t klen;
		if (!take(p, '"'))
			goto fail;
		/* a key with escapes is left to jansson: keys are plain words,
		 * and p->tmp is the value's to use */
		int esc;
		if (parse_string(p, &key, &klen, &esc) != 0 || esc)
			goto fail;
		if (!take(p, ':'))
			goto fail;
		json_t *v = parse_value(p);
		if (!v)
			goto fail;
		/* a duplicate key replaces the value and leaves the size as it
		 * was: left to jansson, which says where (wire_decode rejects
		 * them). Counting is cheaper than looking the key up first. */
		size_t before = json_object_size(o);
		if (json_object_setn_new_nocheck(o, key, klen, v) != 0 ||
		    json_object_size(o) == before)
			goto fail; /* v is taken either way */
		int more = next_item(p, '}');
		if (more == 0)
			return o;
		if (more < 0)
			goto fail;
	}
fail:
	json_decref(o);
	return NULL;
}

static json_t *parse_array(struct pp *p)
{
	json_t *a = json_array();
	if (!a || take(p, ']'))
		return a;
	for (;;) {
		json_t *v = parse_value(p);
		if (!v || json_array_append_new(a, v) != 0)
			goto fail;
		int more = next_item(p, ']');
		if (more == 0)
			return a;
		if (more < 0)
			goto fail;
	}
fail:
	json_decref(a);
	return NULL;
}

static json_t *parse_number(struct pp *p)
{
	int neg = 0, digits = 0;
	json_int_t v = 0;
	if (*p->s == '-') {
		neg = 1;
		p->s++;
	}
	if (p->s < p->end && *p->s == '0' && p->s + 1 < p->end && p->s[1] >= '0' && p->s[1] <= '9')
		return NULL; /* a leading zero: jansson's error */
	while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
		if (++digits > 18)
			return NULL;
		v = v * 10 + (*p->s++ - '0');
	}
	if (digits == 0 || !is_delim(p))
		return NULL; /* a fraction, an exponent, or not a number */
	return json_integer(neg ? -v : v);
}

static json_t *parse_word(struct pp *p, const char *w, json_t *v)
{
	size_t n = strlen(w);
	if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n) != 0)
		return NULL;
	p->s += n;
	return is_delim(p) ? v : NULL;
}

static json_t *parse_value(struct pp *p)
{
	skip_ws(p);
	if (p->s >= p->end)
		return NULL;
	json_t *v = NULL;
	switch (*p->s) {
	case '{':
	case '[':
		if (++p->depth > WIRE_MAX_DEPTH)
			return NULL;
		p->s++;
		v = p->s[-1] == '{' ? parse_object(p) : parse_array(p);
		p->depth--;
		return v;
	case '"': {
		const char *s;
		size_t n;
		int esc;
		p->s++;
		if (parse_string(p, &s, &n, &esc) != 0)
			return NULL;
		return json_stringn_nocheck(s, n);
	}
	case 't':
		return parse_word(p, "true", json_true());
	case 'f':
		return parse_word(p, "false", json_false());
	case 'n':
		return parse_word(p, "null", json_null());
	default:
		if (*p->s == '-' || (*p->s >= '0' && *p->s <= '9'))
			return parse_number(p);
		return NULL;
	}
}

json_t *wire_load_plain(const char *data, size_t len)
{
	struct pp p = {(const unsigned char *)data, (const unsigned char *)data + len, 0, {0}};
	buf_init(&p.tmp, 0);
	json_t *v = NULL;
	skip_ws(&p);
	if (p.s < p.end && *p.s == '{')
		v = parse_value(&p);
	skip_ws(&p);
	if (v && p.s != p.end) {
		json_decref(v);
		v = NULL;
	}
	buf_release(&p.tmp);
	return v;
}

/* ------------------------------------------------------------ dump */

static int put(struct buf *b, const void *s, size_t n)
{
	return buf_append(b, s, n);
}

int wire_put_string(struct buf *b, const char *str, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)str, *end = s + n, *run = s;
	if (put(b, "\"", 1) != 0)
		return -1;
	while (s < end) {
		unsigned char c = *s;
		if (c >= 0x20 && c != '"' && c != '\\') {
			if (c < 0x80) {
				s++;
				continue;
			}
			size_t k = wire__utf8_seq(s, (size_t)(end - s));
			if (!k)
				return -1;
			s += k;
			continue;
		}
		if (s > run && put(b, run, (size_t)(s - run)) != 0)
			return -1;
		char esc[6] = {'\\', 0};
		size_t el = 2;
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		}
		if (put(b, esc, el) != 0)
			return -1;
		run = ++s;
	}
	if (s > run && put(b, run, (size_t)(s - run)) != 0)
		return -1;
	return put(b, "\"", 1);
}

static int dump_int(struct buf *b, json_int_t v)
{
	char t[24], *e = t + sizeof t, *q = e;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		*--q = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--q = '-';
	return put(b, q, (size_t)(e - q));
}

static int dump_value(struct buf *b, const json_t *v, int depth)
{
	if (depth > WIRE_MAX_DEPTH)
		return -1;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *val;
		int first = 1;
		if (put(b, "{", 1) != 0)
			return -1;
		void *it = json_object_iter((json_t *)v);
		for (; it; it = json_object_iter_next((json_t *)v, it)) {
			key = json_object_iter_key(it);
			val = json_object_iter_value(it);
			if ((!first && put(b, ",", 1) != 0) ||
			    wire_put_string(b, key, json_object_iter_key_len(it)) != 0 ||
			    put(b, ":", 1) != 0 || dump_value(b, val, depth + 1) != 0)
				return -1;
			first = 0;
		}
		return put(b, "}", 1);
	}
	case JSON_ARRAY: {
		if (put(b, "[", 1) != 0)
			return -1;
		for (size_t i = 0; i < json_array_size(v); i++)
			if ((i && put(b, ",", 1) != 0) ||
			    dump_value(b, json_array_get(v, i), depth + 1) != 0)
				return -1;
		return put(b, "]", 1);
	}
	case JSON_STRING:
		return wire_put_string(b, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return dump_int(b, json_integer_value(v));
	case JSON_TRUE:
		return put(b, "true", 4);
	case JSON_FALSE:
		return put(b, "false", 5);
	case JSON_NULL:
		return put(b, "null", 4);
	default:
		return -1; /* a real: jansson's own format */
	}
}

char *wire_dump_plain(const json_t *v)
{
	struct buf b;
	buf_init(&b, 0);
	if (!json_is_object(v) && !json_is_array(v)) /* json_dumps says no too */
		return NULL;
	if (dump_value(&b, v, 0) != 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}
