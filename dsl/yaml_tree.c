/* Loads one YAML document into a tree of ynodes with 1-based marks, using
 * libyaml's event API so that limits apply while parsing: nesting depth,
 * node count, string length. Aliases are rejected (no billion laughs);
 * duplicate keys are reported (libyaml accepts them) and only the first
 * one is kept. */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "dsl_int.h"
#include "xalloc.h"

/* Bounds the memory a hostile flat file can make us allocate. */
#define MAX_NODES (256 * 1024)

struct frame {
	struct ynode *node;
	char *path;
};

struct loader {
	struct dsl_ctx *c;
	const char *src;
	size_t len;
	struct frame stack[DSL_MAX_DEPTH + 1];
	int depth;
	size_t nodes;
	struct ynode *root;
	int fatal;
};

static struct ynode *node_new(enum ynode_kind kind, const yaml_mark_t *m)
{
	struct ynode *n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

void ytree_free(struct ynode *n)
{
	if (!n)
		return;
	size_t count = n->kind == YN_MAP ? 2 * n->n : n->n;
	for (size_t i = 0; i < count; i++)
		ytree_free(n->items[i]);
	free(n->items);
	free(n->str);
	free(n);
}

static void push_item(struct ynode *parent, struct ynode *child)
{
	/* While loading, a mapping keeps its raw item count in len. */
	size_t count = parent->kind == YN_SEQ ? parent->n : parent->len;
	if (count + 1 > parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 8;
		parent->items = xrealloc(parent->items, parent->cap * sizeof(*parent->items));
	}
	parent->items[count] = child;
	if (parent->kind == YN_SEQ) {
		parent->n++;
	} else {
		parent->len++;
		parent->n = parent->len / 2;
	}
}

/* The path of the next child of the top frame. */
static char *child_path(const struct loader *l)
{
	if (l->depth == 0)
		return xstrdup("");
	const struct frame *f = &l->stack[l->depth - 1];
	const struct ynode *p = f->node;
	if (p->kind == YN_SEQ)
		return path_idx(f->path, p->n);
	if (p->len % 2 == 1) {
		const struct ynode *k = p->items[p->len - 1];
		return path_key(f->path, k->kind == YN_SCALAR ? k->str : "?");
	}
	return xstrdup(f->path);
}

static void attach(struct loader *l, struct ynode *n)
{
	if (l->depth == 0) {
		if (!l->root)
			l->root = n;
		else
			ytree_free(n);
		return;
	}
	struct ynode *p = l->stack[l->depth - 1].node;
	if (p->kind == YN_MAP && p->len % 2 == 0 && n->kind != YN_SCALAR) {
		char *path = child_path(l);
		ctx_err(l->c, n, path, "mapping keys must be plain strings, not a %s",
		        ynode_kind_name(n));
		free(path);
	}
	push_item(p, n);
}

static int key_cmp(const void *a, const void *b)
{
	const struct ynode *const *x = a, *const *y = b;
	int r = strcmp((*x)->str, (*y)->str);
	if (r)
		return r;
	/* stable: earlier first (line, then column) */
	if ((*x)->line != (*y)->line)
		return (*x)->line < (*y)->line ? -1 : 1;
	return (*x)->col < (*y)->col ? -1 : (*x)->col > (*y)->col;
}

/* Reports duplicate keys and drops every pair but the first; drops pairs
 * whose key is not a scalar (already reported). */
static void finish_map(struct loader *l, struct ynode *m, const char *path)
{
	size_t npairs = m->len / 2;
	if (m->len % 2) { /* cannot happen with a well-formed event stream */
		ytree_free(m->items[m->len - 1]);
		m->len--;
	}
	struct ynode **keys = xcalloc(npairs ? npairs : 1, sizeof(*keys));
	size_t nk = 0;
	for (size_t i = 0; i < npairs; i++)
		if (m->items[2 * i]->kind == YN_SCALAR)
			keys[nk++] = m->items[2 * i];
	qsort(keys, nk, sizeof(*keys), key_cmp);
	for (size_t i = 1; i < nk; i++) {
		struct ynode *first = keys[i - 1];
		while (i < nk && strcmp(keys[i]->str, first->str) == 0) {
			char *f = path_key(path, keys[i]->str);
			ctx_err(l->c, keys[i], f, "duplicate key '%s' (first defined at line %d)",
			        keys[i]->str, first->line);
			free(f);
			keys[i]->quoted = -1; /* marks the pair for removal */
			i++;
		}
	}
	free(keys);
	size_t w = 0;
	for (size_t i = 0; i < npairs; i++) {
		struct ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
		if (k->kind != YN_SCALAR || k->quoted == -1) {
			ytree_free(k);
			ytree_free(v);
			continue;
		}
		m->items[2 * w] = k;
		m->items[2 * w + 1] = v;
		w++;
	}
	m->n = w;
	m->len = 0;
}

static void offset_to_mark(const char *src, size_t len, size_t off, yaml_mark_t *m)
{
	m->line = 0;
	m->column = 0;
	for (size_t i = 0; i < off && i < len; i++) {
		if (src[i] == '\n') {
			m->line++;
			m->column = 0;
		} else {
			m->column++;
		}
	}
}

static void parser_error(struct loader *l, const yaml_parser_t *p)
{
	yaml_mark_t m = p->problem_mark;
	const char *problem = p->problem ? p->problem : "unknown error";
	if (p->error == YAML_READER_ERROR) {
		offset_to_mark(l->src, l->len, p->problem_offset, &m);
		ctx_err_at(l->c, (int)m.line + 1, (int)m.column + 1, "",
		           "invalid YAML: %s; the file must be UTF-8 text", problem);
		return;
	}
	if (p->error == YAML_MEMORY_ERROR) {
		ctx_err_at(l->c, 0, 0, "", "invalid YAML: out of memory");
		return;
	}
	if (p->context)
		ctx_err_at(l->c, (int)m.line + 1, (int)m.column + 1, "",
		           "invalid YAML: %s (%s at line %d, column %d)", problem, p->context,
		           (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
	else
		ctx_err_at(l->c, (int)m.line + 1, (int)m.column + 1, "", "invalid YAML: %s",
		           problem);
}

static int open_container(struct loader *l, enum ynode_kind kind, const yaml_mark_t *m)
{
	struct ynode *n = node_new(kind, m);
	if (l->depth >= DSL_MAX_DEPTH) {
		char *path = child_path(l);
		ctx_err(l->c, n, path, "nesting is deeper than %d levels", DSL_MAX_DEPTH);
		free(path);
		ytree_free(n);
		return -1;
	}
	char *path = child_path(l);
	attach(l, n);
	l->stack[l->depth].node = n;
	l->stack[l->depth].path = path;
	l->depth++;
	return 0;
}

static void scalar(struct loader *l, const yaml_event_t *ev)
{
	struct ynode *n = node_new(YN_SCALAR, &ev->start_mark);
	size_t len = ev->data.scalar.length;
	const char *v = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	            (tag && strcmp(tag, YAML_STR_TAG) == 0);
	if (len > DSL_MAX_STRING) {
		char *path = child_path(l);
		ctx_err(l->c, n, path, "string of %zu bytes is longer than the limit of %d", len,
		        DSL_MAX_STRING);
		free(path);
		n->str = xstrdup("");
		n->quoted = 1;
		n->bad = 1;
	} else if (memchr(v, '\0', len)) {
		char *path = child_path(l);
		ctx_err(l->c, n, path, "strings must not contain NUL characters");
		free(path);
		n->str = xstrdup("");
		n->quoted = 1;
		n->bad = 1;
	} else {
		n->str = xstrndup(v, len);
		n->len = len;
	}
	attach(l, n);
}

struct ynode *ytree_load(struct dsl_ctx *c, const char *src, size_t len)
{
	struct loader l = {.c = c, .src = src, .len = len};
	yaml_parser_t p;
	yaml_event_t ev;
	int docs = 0, done = 0;

	if (!yaml_parser_initialize(&p)) {
		ctx_err_at(c, 0, 0, "", "cannot initialise the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)src, len);
	while (!done && !l.fatal) {
		if (!yaml_parser_parse(&p, &ev)) {
			parser_error(&l, &p);
			l.fatal = 1;
			break;
		}
		if (++l.nodes > MAX_NODES) {
			ctx_err_at(c, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
			           "", "the document has more than %d nodes", MAX_NODES);
			l.fatal = 1;
			yaml_event_delete(&ev);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				ctx_err_at(c, (int)ev.start_mark.line + 1,
				           (int)ev.start_mark.column + 1, "",
				           "only one YAML document per file is supported");
				l.fatal = 1;
			}
			break;
		case YAML_ALIAS_EVENT: {
			struct ynode *n = node_new(YN_SCALAR, &ev.start_mark);
			char *path = child_path(&l);
			ctx_err(c, n, path,
			        "aliases are not supported (*%s): write the value out in full",
			        (const char *)ev.data.alias.anchor);
			free(path);
			n->str = xstrdup("");
			n->quoted = 1;
			n->bad = 1;
			attach(&l, n);
			break;
		}
		case YAML_SCALAR_EVENT:
			scalar(&l, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			if (open_container(&l, YN_SEQ, &ev.start_mark))
				l.fatal = 1;
			break;
		case YAML_MAPPING_START_EVENT:
			if (open_container(&l, YN_MAP, &ev.start_mark))
				l.fatal = 1;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (l.depth > 0) {
				struct frame *f = &l.stack[--l.depth];
				if (f->node->kind == YN_MAP)
					finish_map(&l, f->node, f->path);
				free(f->path);
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	while (l.depth > 0) {
		struct frame *f = &l.stack[--l.depth];
		if (f->node->kind == YN_MAP)
			finish_map(&l, f->node, f->path);
		free(f->path);
	}
	yaml_parser_delete(&p);
	if (l.fatal) {
		ytree_free(l.root);
		return NULL;
	}
	return l.root;
}

const struct ynode *ymap_get(const struct ynode *m, const char *key)
{
	if (!m || m->kind != YN_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->items[2 * i]->str, key) == 0)
			return m->items[2 * i + 1];
	return NULL;
}

int ynode_is_null(const struct ynode *n)
{
	if (!n || n->kind != YN_SCALAR || n->quoted)
		return 0;
	return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
	       strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

int ynode_bool(const struct ynode *n)
{
	if (!n || n->kind != YN_SCALAR || n->quoted)
		return -1;
	if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "TRUE"))
		return 1;
	if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "FALSE"))
		return 0;
	return -1;
}

int ynode_int(const struct ynode *n, long long *out)
{
	if (!n || n->kind != YN_SCALAR || n->len == 0 || n->len > 19)
		return -1;
	const char *s = n->str;
	int neg = 0;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!*s)
		return -1;
	long long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

const char *ynode_kind_name(const struct ynode *n)
{
	if (!n)
		return "nothing";
	switch (n->kind) {
	case YN_SEQ:
		return "list";
	case YN_MAP:
		return "mapping";
	default:
		return ynode_is_null(n) ? "null" : "string";
	}
}
