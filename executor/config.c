/* wf-executor settings: defaults < --config FILE < environment < options. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "curve.h"
#include "exec.h"
#include "util.h"
#include "xalloc.h"

#define MAX_SLOTS 4096

void exec_usage(FILE *f)
{
	fputs("usage: wf-executor [options]\n"
	      "  --id ID              executor id (WF_EXECUTOR_ID; default hostname-pid)\n"
	      "  --listen ENDPOINT    PULL endpoint to bind (WF_EXECUTOR_LISTEN;\n"
	      "                       default tcp://127.0.0.1:5601)\n"
	      "  --advertise ENDPOINT endpoint engines connect to (default: --listen)\n"
	      "  --engine ENDPOINT    an engine's PULL endpoint, repeatable (WF_ENGINES=a,b;\n"
	      "                       default tcp://127.0.0.1:5555)\n"
	      "  --pool NAME          pool (WF_POOL; default default)\n"
	      "  --label L            label, repeatable (WF_LABELS=a,b)\n"
	      "  --slots N            concurrent tasks (WF_SLOTS; default 4)\n"
	      "  --heartbeat-ms MS    heartbeat interval (default 2000)\n"
	      "  --hello-every N      repeat hello every N heartbeats (default 10)\n"
	      "  --drain-timeout D    on SIGTERM, wait this long for running tasks (default 30s)\n"
	      "  --kill-grace D       SIGTERM to SIGKILL delay for a step (default 5s)\n"
	      "  --max-output BYTES   output kept per task, the tail (default 65536)\n"
	      "  --secrets-dir DIR    ${secrets.NAME} from DIR/NAME when WF_SECRET_NAME is unset\n"
	      "  --curve-secret FILE  this executor's CURVE key pair (wfctl keys generate)\n"
	      "  --engine-key KEY     an engine's public key (z85 text or a .pub file),\n"
	      "                       repeatable: one for every engine, or one per --engine\n"
	      "                       in the same order; only these engines may send work\n"
	      "  --insecure-plaintext no CURVE: plaintext ZeroMQ, allowed only when --listen\n"
	      "                       and every --engine are loopback (development)\n"
	      "  --config FILE        key=value lines (the option names without --);\n"
	      "                       SIGHUP re-reads slots, label(s), heartbeat-ms, max-output,\n"
	      "                       drain-timeout, kill-grace and secrets-dir from it\n"
	      "  --help, --version\n"
	      "Durations take ms, s, m or h; a bare number is seconds.\n"
	      "Signals: SIGTERM/SIGINT drain then exit (twice: exit now), SIGHUP reload.\n",
	      f);
}

int exec_parse_duration(const char *s, int64_t *ms)
{
	char *end;
	errno = 0;
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	long long v = strtoll(s, &end, 10);
	if (errno || v < 0)
		return -1;
	long long mul;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else
		return -1;
	if (v > INT64_MAX / mul / 1000)
		return -1;
	*ms = v * mul;
	return 0;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

static void free_list(char ***v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

static void add_list(char ***v, size_t *n, const char *s, size_t len)
{
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (!len)
		return;
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = xstrndup(s, len);
}

/* Replaces the list with the comma-separated items of s. */
static void set_list(char ***v, size_t *n, const char *s)
{
	free_list(v, n);
	while (*s) {
		const char *c = strchr(s, ',');
		size_t len = c ? (size_t)(c - s) : strlen(s);
		add_list(v, n, s, len);
		s += len + (c ? 1 : 0);
	}
}

/* Applies one setting; reload limits it to the reloadable keys.
 * append: repeated --label/--engine add to the list. */
static int apply(struct exec_config *c, const char *key, const char *val, int append, int reload,
                 char *err, size_t errlen)
{
	int64_t n;
	if (strcmp(key, "slots") == 0) {
		if (parse_int64(val, 1, MAX_SLOTS, &n))
			goto bad;
		c->slots = (int)n;
	} else if (strcmp(key, "label") == 0 || strcmp(key, "labels") == 0) {
		if (append)
			add_list(&c->labels, &c->nlabels, val, strlen(val));
		else
			set_list(&c->labels, &c->nlabels, val);
	} else if (strcmp(key, "heartbeat-ms") == 0) {
		if (parse_int64(val, 10, 3600000, &n))
			goto bad;
		c->heartbeat_ms = n;
	} else if (strcmp(key, "max-output") == 0) {
		if (parse_int64(val, 256, 64 * 1024 * 1024, &n))
			goto bad;
		c->max_output = (size_t)n;
	} else if (strcmp(key, "drain-timeout") == 0) {
		if (exec_parse_duration(val, &c->drain_timeout_ms))
			goto bad;
	} else if (strcmp(key, "kill-grace") == 0) {
		if (exec_parse_duration(val, &c->kill_grace_ms))
			goto bad;
	} else if (strcmp(key, "secrets-dir") == 0) {
		set_str(&c->secrets_dir, val);
	} else if (reload) {
		return 0; /* identity and sockets need a restart */
	} else if (strcmp(key, "id") == 0) {
		if (!*val)
			goto bad;
		set_str(&c->id, val);
	} else if (strcmp(key, "listen") == 0) {
		set_str(&c->listen, val);
	} else if (strcmp(key, "advertise") == 0) {
		set_str(&c->advertise, val);
	} else if (strcmp(key, "engine") == 0 || strcmp(key, "engines") == 0) {
		if (append)
			add_list(&c->engines, &c->nengines, val, strlen(val));
		else
			set_list(&c->engines, &c->nengines, val);
	} else if (strcmp(key, "curve-secret") == 0) {
		set_str(&c->curve_secret, val);
	} else if (strcmp(key, "engine-key") == 0) {
		char pub[CURVE_Z85_LEN + 1], msg[256];
		if (curve_pubkey_arg(val, pub, msg, sizeof msg) != 0) {
			snprintf(err, errlen, "%s", msg);
			return -1;
		}
		add_list(&c->engine_keys, &c->nengine_keys, pub, strlen(pub));
	} else if (strcmp(key, "pool") == 0) {
		if (!*val)
			goto bad;
		set_str(&c->pool, val);
	} else if (strcmp(key, "hello-every") == 0) {
		if (parse_int64(val, 1, 1000000, &n))
			goto bad;
		c->hello_every = (int)n;
	} else {
		snprintf(err, errlen, "unknown setting '%s'", key);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "invalid value '%s' for %s", val, key);
	return -1;
}

static int load_file(struct exec_config *c, int reload, char *err, size_t errlen)
{
	int rc = -1;
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	int labels_seen = 0;
	FILE *f = fopen(c->config_file, "re");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", c->config_file, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		size_t len = strlen(s);
		while (len && isspace((unsigned char)s[len - 1]))
			s[--len] = '\0';
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected key=value", c->config_file, lineno);
			goto out;
		}
		*eq = '\0';
		char *key = s, *val = eq + 1;
		for (char *k = eq - 1; k >= key && isspace((unsigned char)*k); k--)
			*k = '\0';
		while (isspace((unsigned char)*val))
			val++;
		/* "label" lines add up; the first one replaces what was there */
		int is_label = strcmp(key, "label") == 0;
		if (is_label && !labels_seen++)
			free_list(&c->labels, &c->nlabels);
		char msg[256];
		if (apply(c, key, val, is_label, reload, msg, sizeof msg)) {
			snprintf(err, errlen, "%s:%d: %s", c->config_file, lineno, msg);
			goto out;
		}
	}
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}

static void defaults(struct exec_config *c)
{
	memset(c, 0, sizeof *c);
	char host[256] = "localhost";
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	c->id = xasprintf("%s-%ld", host, (long)getpid());
	c->listen = xstrdup("tcp://127.0.0.1:5601");
	c->pool = xstrdup("default");
	c->slots = 4;
	c->heartbeat_ms = 2000;
	c->hello_every = 10;
	c->drain_timeout_ms = 30000;
	c->kill_grace_ms = 5000;
	c->max_output = 65536;
}

enum {
	O_ID = 256,
	O_LISTEN,
	O_ADVERTISE,
	O_ENGINE,
	O_POOL,
	O_LABEL,
	O_SLOTS,
	O_HB,
	O_HELLO,
	O_DRAIN,
	O_GRACE,
	O_MAXOUT,
	O_SECRETS,
	O_CONFIG,
	O_CURVE_SECRET,
	O_ENGINE_KEY,
	O_INSECURE_PLAINTEXT,
	O_HELP,
	O_VERSION
};

/* What engines should connect to: a wildcard bind (tcp://STAR:5601 or
 * tcp://0.0.0.0:5601) is announced with this host's name. */
static char *advertised(const char *listen)
{
	const char *host = strstr(listen, "://");
	if (!host)
		return xstrdup(listen);
	host += 3;
	size_t skip = 0;
	if (strncmp(host, "*:", 2) == 0)
		skip = 1;
	else if (strncmp(host, "0.0.0.0:", 8) == 0)
		skip = 7;
	if (!skip)
		return xstrdup(listen);
	char name[256] = "localhost";
	if (gethostname(name, sizeof name - 1) != 0)
		snprintf(name, sizeof name, "localhost");
	name[sizeof name - 1] = '\0';
	return xasprintf("%.*s%s%s", (int)(host - listen), listen, name, host + skip);
}

static const struct option options[] = {
    {"id", required_argument, NULL, O_ID},
    {"listen", required_argument, NULL, O_LISTEN},
    {"advertise", required_argument, NULL, O_ADVERTISE},
    {"engine", required_argument, NULL, O_ENGINE},
    {"pool", required_argument, NULL, O_POOL},
    {"label", required_argument, NULL, O_LABEL},
    {"slots", required_argument, NULL, O_SLOTS},
    {"heartbeat-ms", required_argument, NULL, O_HB},
    {"hello-every", required_argument, NULL, O_HELLO},
    {"drain-timeout", required_argument, NULL, O_DRAIN},
    {"kill-grace", required_argument, NULL, O_GRACE},
    {"max-output", required_argument, NULL, O_MAXOUT},
    {"secrets-dir", required_argument, NULL, O_SECRETS},
    {"config", required_argument, NULL, O_CONFIG},
    {"curve-secret", required_argument, NULL, O_CURVE_SECRET},
    {"engine-key", required_argument, NULL, O_ENGINE_KEY},
    {"insecure-plaintext", no_argument, NULL, O_INSECURE_PLAINTEXT},
    {"help", no_argument, NULL, O_HELP},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
};

/* CURVE unless --insecure-plaintext, which stays on loopback. */
static int check_security(const struct exec_config *c, char *err, size_t errlen)
{
	if (c->insecure_plaintext) {
		if (c->curve_secret || c->nengine_keys) {
			snprintf(err, errlen,
			         "--insecure-plaintext cannot be combined with --curve-secret or "
			         "--engine-key");
			return -1;
		}
		if (!curve_endpoint_is_local(c->listen)) {
			snprintf(
			    err, errlen,
			    "--insecure-plaintext: --listen %s is not loopback; anyone who reaches "
			    "it could run commands here (use tcp://127.0.0.1:PORT or CURVE keys)",
			    c->listen);
			return -1;
		}
		for (size_t i = 0; i < c->nengines; i++)
			if (!curve_endpoint_is_local(c->engines[i])) {
				snprintf(err, errlen,
				         "--insecure-plaintext: engine %s is not loopback "
				         "(plaintext never "
				         "leaves this host; use CURVE keys)",
				         c->engines[i]);
				return -1;
			}
		return 0;
	}
	if (!c->curve_secret || !c->nengine_keys) {
		snprintf(
		    err, errlen,
		    "refusing plaintext ZeroMQ: give --curve-secret FILE (wfctl keys generate) "
		    "and --engine-key KEY for the engines, or --insecure-plaintext for "
		    "loopback development");
		return -1;
	}
	if (c->nengine_keys != 1 && c->nengine_keys != c->nengines) {
		snprintf(err, errlen,
		         "%zu --engine-key for %zu --engine: give one key for all engines or one "
		         "per engine, in the same order",
		         c->nengine_keys, c->nengines);
		return -1;
	}
	return 0;
}

int exec_config_parse(struct exec_config *c, int argc, char **argv, char *err, size_t errlen)
{
	defaults(c);
	/* pass 1: --config, --help, --version and unknown options */
	opterr = 0;
	optind = 0;
	int o;
	while ((o = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (o == O_HELP) {
			exec_usage(stdout);
			return 1;
		}
		if (o == O_VERSION) {
			printf("wf-executor %s\n", WF_VERSION);
			return 1;
		}
		if (o == O_CONFIG)
			set_str(&c->config_file, optarg);
		if (o == '?' || o == ':') {
			snprintf(err, errlen, "unknown option or missing value: %s (see --help)",
			         argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -1;
	}
	if (c->config_file && load_file(c, 0, err, errlen))
		return -1;
	static const struct {
		const char *var, *key;
	} envs[] = {{"WF_EXECUTOR_ID", "id"},  {"WF_EXECUTOR_LISTEN", "listen"},
	            {"WF_ENGINES", "engines"}, {"WF_POOL", "pool"},
	            {"WF_SLOTS", "slots"},     {"WF_LABELS", "labels"}};
	for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
		const char *v = getenv(envs[i].var);
		char msg[200];
		if (v && *v && apply(c, envs[i].key, v, 0, 0, msg, sizeof msg)) {
			snprintf(err, errlen, "%s: %s", envs[i].var, msg);
			return -1;
		}
	}
	/* pass 2: options win; the first --engine/--label replaces env/file lists */
	optind = 0;
	int engines_seen = 0, labels_seen = 0, engine_keys_seen = 0;
	while ((o = getopt_long(argc, argv, "", options, NULL)) != -1) {
		const char *key = NULL;
		int append = 0;
		for (size_t i = 0; options[i].name; i++)
			if (options[i].val == o)
				key = options[i].name;
		if (o == O_CONFIG || !key)
			continue;
		if (o == O_INSECURE_PLAINTEXT) {
			c->insecure_plaintext = 1;
			continue;
		}
		if (o == O_ENGINE_KEY && !engine_keys_seen++)
			free_list(&c->engine_keys, &c->nengine_keys);
		if (o == O_ENGINE) {
			if (!engines_seen++)
				free_list(&c->engines, &c->nengines);
			append = 1;
		}
		if (o == O_LABEL) {
			if (!labels_seen++)
				free_list(&c->labels, &c->nlabels);
			append = 1;
		}
		char msg[200];
		if (apply(c, key, optarg, append, 0, msg, sizeof msg)) {
			snprintf(err, errlen, "--%s: %s", key, msg);
			return -1;
		}
	}
	if (c->nengines == 0)
		add_list(&c->engines, &c->nengines, "tcp://127.0.0.1:5555", 20);
	if (!c->advertise)
		c->advertise = advertised(c->listen);
	return check_security(c, err, errlen);
}

int exec_config_reload(struct exec_config *c, char *err, size_t errlen)
{
	if (!c->config_file) {
		snprintf(err, errlen, "no --config file to reload");
		return -1;
	}
	/* parse into a copy so a broken file changes nothing */
	struct exec_config tmp = *c;
	tmp.labels = NULL;
	tmp.nlabels = 0;
	for (size_t i = 0; i < c->nlabels; i++)
		add_list(&tmp.labels, &tmp.nlabels, c->labels[i], strlen(c->labels[i]));
	tmp.secrets_dir = c->secrets_dir ? xstrdup(c->secrets_dir) : NULL;
	if (load_file(&tmp, 1, err, errlen)) {
		free_list(&tmp.labels, &tmp.nlabels);
		free(tmp.secrets_dir);
		return -1;
	}
	free_list(&c->labels, &c->nlabels);
	free(c->secrets_dir);
	*c = tmp;
	return 0;
}

void exec_config_release(struct exec_config *c)
{
	free(c->id);
	free(c->listen);
	free(c->advertise);
	free_list(&c->engines, &c->nengines);
	free(c->pool);
	free_list(&c->labels, &c->nlabels);
	free(c->secrets_dir);
	free(c->config_file);
	free(c->curve_secret);
	free_list(&c->engine_keys, &c->nengine_keys);
	memset(c, 0, sizeof *c);
}
