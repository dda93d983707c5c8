/* wf-engine: options, schema check, crash repair, the HTTP server and the
 * loop. Signals only set flags; the loop does the work. */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "dsl.h"
#include "log.h"
#include "loop.h"
#include "migrate.h"
#include "notify.h"
#include "retention.h"
#include "runs.h"
#include "store.h"
#include "xalloc.h"
#include "zsec.h"
#include "curve.h"

#ifndef WF_DATADIR
#define WF_DATADIR "/usr/local/share/wf"
#endif

static volatile sig_atomic_t stop_flag, reload_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_flag = 1;
	zsec_reload();
}

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: wf-engine [options]\n"
	       "  --http ADDR:PORT     HTTP API, dashboard and /metrics (default 127.0.0.1:8080)\n"
	       "  --zmq ENDPOINT       ZeroMQ PULL socket for executors (default "
	       "tcp://127.0.0.1:5555)\n"
	       "  --id ID              engine id (default $WF_ENGINE_ID, else hostname-pid)\n"
	       "  --web DIR            dashboard files (default ./web if it exists, else\n"
	       "                       " WF_DATADIR "/web)\n"
	       "  --curve-secret FILE  this engine's CURVE key pair (wfctl keys generate)\n"
	       "  --executor-keys FILE public keys of the executors allowed to connect, one\n"
	       "                       z85 key a line; re-read on SIGHUP\n"
	       "  --tls-cert FILE      serve HTTPS with this PEM certificate (chain) ...\n"
	       "  --tls-key FILE       ... and this PEM private key\n"
	       "  --insecure-local     no API tokens needed and, without CURVE keys, plaintext\n"
	       "                       ZeroMQ (HTTP and ZeroMQ on loopback only)\n"
	       "  --allow-remote       let the HTTP server listen beyond loopback without TLS\n"
	       "  --lease DURATION     task lease, renewed by heartbeats (default 30s)\n"
	       "  --heartbeat DURATION expected executor heartbeat interval; an executor is\n"
	       "                       lost after 3 missed (default 10s)\n"
	       "  --batch N            results per transaction, task runs per claim (default 500)\n"
	       "  --appliers N         threads applying results, a database connection each\n"
	       "                       (default 2)\n"
	       "  --poll-ms N          longest wait between looks for work (default 200)\n"
	       "  --migrate            apply schema migrations at start\n"
	       "  --rate-limit N       API requests a second per token or address (default 50;\n"
	       "                       -1 = no limit)\n"
	       "  --rate-burst N       API burst per token or address (default 100)\n"
	       "  --max-streams N      concurrent event streams (default 32)\n"
	       "  --retention D        delete finished runs, their attempts and events older\n"
	       "                       than D (e.g. 30d) in small batches; default off\n"
	       "  --help               this text\n"
	       "The database comes from WF_DATABASE_URL or libpq's PG* variables.\n"
	       "SIGTERM/SIGINT drain and exit 0; SIGHUP reloads.\n"
	       "Without --insecure-local the engine needs at least one API token\n"
	       "(wfctl token create --role admin --name NAME) and CURVE keys.\n");
	notify_usage(f);
}

static int duration_opt(const char *name, const char *v, int64_t *out)
{
	long long ms;
	if (dsl_parse_duration(v, &ms) != 0 || ms <= 0) {
		fprintf(stderr, "wf-engine: %s: invalid duration '%s' (write e.g. 30s or 500ms)\n",
		        name, v);
		return -1;
	}
	*out = ms;
	return 0;
}

static int int_opt(const char *name, const char *v, int min, int max, int *out)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n < min || n > max) {
		fprintf(stderr, "wf-engine: %s: expected an integer from %d to %d, got '%s'\n",
		        name, min, max, v);
		return -1;
	}
	*out = (int)n;
	return 0;
}

/* Live API tokens in the database, or -1 when it cannot tell. */
static int count_tokens(struct store *s)
{
	PGresult *r =
	    store_exec(s, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL", 0, NULL);
	if (!r)
		return -1;
	int n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

/* Reads a whole PEM file (at most 1 MiB) into a new string. */
static char *read_pem(const char *opt, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "wf-engine: %s: cannot read %s: %s\n", opt, path, strerror(errno));
		return NULL;
	}
	data = xmalloc(1024 * 1024 + 1);
	len = fread(data, 1, 1024 * 1024 + 1, f);
	fclose(f);
	if (len == 0 || len > 1024 * 1024 || memchr(data, '\0', len) ||
	    !strstr(data, "-----BEGIN ")) {
		fprintf(stderr, "wf-engine: %s: %s is not a PEM file\n", opt, path);
		sodium_memzero(data, len);
		free(data);
		return NULL;
	}
	data[len] = '\0';
	return data;
}

/* TLS for HTTP: reads both PEM files. Returns 0 or -1 (printed). */
static int tls_opts(const char *tls_cert, const char *tls_key, char **cert_pem, char **key_pem)
{
	if (!tls_cert != !tls_key) {
		fprintf(stderr, "wf-engine: TLS needs both --tls-cert FILE and --tls-key FILE\n");
		return -1;
	}
	if (tls_cert) {
		*cert_pem = read_pem("--tls-cert", tls_cert);
		*key_pem = *cert_pem ? read_pem("--tls-key", tls_key) : NULL;
		if (!*key_pem)
			return -1;
	}
	return 0;
}

/* CURVE on the executor channel: loads the keys, or allows plaintext only
 * with --insecure-local on a loopback endpoint. Returns 0 or -1 (printed). */
static int curve_opts(int insecure, const char *zmq, const char *curve_secret,
                      const char *executor_keys)
{
	char err[512];
	if (!curve_secret && !executor_keys) {
		if (!insecure) {
			fprintf(
			    stderr,
			    "wf-engine: refusing to start without CURVE keys for the executor "
			    "channel.\n"
			    "Create a key pair with: wfctl keys generate --out engine\n"
			    "then start with --curve-secret engine.key --executor-keys FILE (the\n"
			    "executors' public keys), or use --insecure-local for loopback "
			    "development.\n");
			return -1;
		}
		if (!curve_endpoint_is_local(zmq)) {
			fprintf(stderr,
			        "wf-engine: --insecure-local speaks plaintext ZeroMQ, so --zmq "
			        "must be a\n"
			        "loopback endpoint (tcp://127.0.0.1:PORT, tcp://localhost:PORT or\n"
			        "tcp://[::1]:PORT), not '%s'; or give CURVE keys.\n",
			        zmq);
			return -1;
		}
	}
	if (zsec_configure(curve_secret, executor_keys, err, sizeof err) != 0) {
		fprintf(stderr, "wf-engine: %s\n", err);
		return -1;
	}
	if (zsec_enabled())
		log_info("executor channel encrypted with CURVE", "public_key=%s",
		         zsec_public_key());
	else
		log_warn("INSECURE: the executor channel is PLAINTEXT ZeroMQ (--insecure-local). "
		         "Anyone on this host can send results and read tasks. Never use this in "
		         "production.",
		         "zmq=%s", zmq);
	return 0;
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int main(int argc, char **argv)
{
	enum {
		O_HTTP = 1,
		O_ZMQ,
		O_ID,
		O_WEB,
		O_INSECURE,
		O_REMOTE,
		O_LEASE,
		O_HB,
		O_BATCH,
		O_POLL,
		O_MIGRATE,
		O_RATE,
		O_BURST,
		O_STREAMS,
		O_CURVE_SECRET,
		O_EXECUTOR_KEYS,
		O_TLS_CERT,
		O_TLS_KEY,
		O_RETENTION,
		O_APPLIERS,
		O_HELP
	};
	static const struct option longopts[] = {
	    {"http", required_argument, NULL, O_HTTP},
	    {"zmq", required_argument, NULL, O_ZMQ},
	    {"id", required_argument, NULL, O_ID},
	    {"web", required_argument, NULL, O_WEB},
	    {"insecure-local", no_argument, NULL, O_INSECURE},
	    {"allow-remote", no_argument, NULL, O_REMOTE},
	    {"lease", required_argument, NULL, O_LEASE},
	    {"heartbeat", required_argument, NULL, O_HB},
	    {"batch", required_argument, NULL, O_BATCH},
	    {"appliers", required_argument, NULL, O_APPLIERS},
	    {"poll-ms", required_argument, NULL, O_POLL},
	    {"migrate", no_argument, NULL, O_MIGRATE},
	    {"rate-limit", required_argument, NULL, O_RATE},
	    {"rate-burst", required_argument, NULL, O_BURST},
	    {"max-streams", required_argument, NULL, O_STREAMS},
	    {"retention", required_argument, NULL, O_RETENTION},
	    {"curve-secret", required_argument, NULL, O_CURVE_SECRET},
	    {"executor-keys", required_argument, NULL, O_EXECUTOR_KEYS},
	    {"tls-cert", required_argument, NULL, O_TLS_CERT},
	    {"tls-key", required_argument, NULL, O_TLS_KEY},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	const char *http = "127.0.0.1:8080", *zmq = "tcp://127.0.0.1:5555", *web = NULL;
	char *id = NULL, *web_default = NULL;
	int insecure = 0, remote = 0, batch = 500, poll_ms = 200, do_migrate = 0, rc = 1, c;
	int appliers = 2;
	int64_t lease_ms = 30000, heartbeat_ms = 10000;
	struct store *s = NULL;
	struct api *api = NULL;
	struct notify_opts no;
	struct notifier *nt = NULL;
	int rate = 0, burst = 0, streams = 0;
	int64_t retention_ms = 0;
	char err[512];
	const char *curve_secret = NULL, *executor_keys = NULL, *tls_cert = NULL, *tls_key = NULL;
	char *tls_cert_pem = NULL, *tls_key_pem = NULL;

	log_init("wf-engine");
	/* The notifier's options are taken out of argv before getopt sees it. */
	notify_opts_init(&no);
	if (notify_opts_from_args(&no, &argc, argv, err, sizeof err) != 0) {
		fprintf(stderr, "wf-engine: %s\n", err);
		goto usage_error;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_HTTP:
			http = optarg;
			break;
		case O_ZMQ:
			zmq = optarg;
			break;
		case O_ID:
			free(id);
			id = xstrdup(optarg);
			break;
		case O_WEB:
			web = optarg;
			break;
		case O_INSECURE:
			insecure = 1;
			break;
		case O_REMOTE:
			remote = 1;
			break;
		case O_LEASE:
			if (duration_opt("--lease", optarg, &lease_ms) != 0)
				goto usage_error;
			break;
		case O_HB:
			if (duration_opt("--heartbeat", optarg, &heartbeat_ms) != 0)
				goto usage_error;
			break;
		case O_BATCH:
			if (int_opt("--batch", optarg, 1, 100000, &batch) != 0)
				goto usage_error;
			break;
		case O_APPLIERS:
			if (int_opt("--appliers", optarg, 1, 16, &appliers) != 0)
				goto usage_error;
			break;
		case O_POLL:
			if (int_opt("--poll-ms", optarg, 1, 60000, &poll_ms) != 0)
				goto usage_error;
			break;
		case O_MIGRATE:
			do_migrate = 1;
			break;
		case O_RATE:
			if (int_opt("--rate-limit", optarg, -1, 1000000, &rate) != 0)
				goto usage_error;
			break;
		case O_BURST:
			if (int_opt("--rate-burst", optarg, 1, 1000000, &burst) != 0)
				goto usage_error;
			break;
		case O_RETENTION:
			if (retention_parse(optarg, &retention_ms) != 0) {
				fprintf(stderr,
				        "wf-engine: --retention: expected 30d, 12h, 90m, 2w or "
				        "off, got '%s'\n",
				        optarg);
				goto usage_error;
			}
			break;
		case O_STREAMS:
			if (int_opt("--max-streams", optarg, 1, 10000, &streams) != 0)
				goto usage_error;
			break;
		case O_CURVE_SECRET:
			curve_secret = optarg;
			break;
		case O_EXECUTOR_KEYS:
			executor_keys = optarg;
			break;
		case O_TLS_CERT:
			tls_cert = optarg;
			break;
		case O_TLS_KEY:
			tls_key = optarg;
			break;
		case O_HELP:
			usage(stdout);
			rc = 0;
			goto out;
		default:
			fprintf(stderr, "wf-engine: unknown or incomplete option '%s'\n",
			        argv[optind - 1]);
			goto usage_error;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wf-engine: unexpected argument '%s'\n", argv[optind]);
		goto usage_error;
	}
	if (!id && getenv("WF_ENGINE_ID") && *getenv("WF_ENGINE_ID"))
		id = xstrdup(getenv("WF_ENGINE_ID"));
	if (!id) {
		char host[256] = "engine";
		if (gethostname(host, sizeof host) != 0)
			snprintf(host, sizeof host, "engine");
		host[sizeof host - 1] = '\0';
		id = xasprintf("%s-%ld", host, (long)getpid());
	}
	if (tls_opts(tls_cert, tls_key, &tls_cert_pem, &tls_key_pem) != 0)
		goto usage_error;
	if (!web) {
		web_default = is_dir("web") ? xstrdup("web") : xstrdup(WF_DATADIR "/web");
		web = web_default;
	}

	s = store_open(NULL, err, sizeof err);
	if (!s) {
		log_error("cannot start", "error=%s", err);
		goto out;
	}
	PGconn *db = store_conn(s);
	if (do_migrate) {
		int n = db ? migrate_up(db, err, sizeof err) : -1;
		if (n < 0) {
			log_error("migrations failed", "error=%s", db ? err : store_error(s));
			goto out;
		}
		log_info("migrations applied", "count=%d", n);
	} else if (!db || migrate_check(db, err, sizeof err) != 0) {
		log_error("schema check failed", "error=%s", db ? err : store_error(s));
		fprintf(stderr, "wf-engine: %s\n", db ? err : store_error(s));
		goto out;
	}
	if (!insecure && count_tokens(s) <= 0) {
		fprintf(stderr, "wf-engine: no API token exists, so nobody could use this engine.\n"
		                "Create one with: wfctl token create --role admin --name NAME\n"
		                "or start with --insecure-local (no tokens; loopback only).\n");
		log_error("refusing to start without API tokens", "%s", "");
		goto out;
	}
	if (runs_repair(s) != 0) {
		log_error("crash repair failed", "error=%s", store_error(s));
		goto out;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	struct api_opts ao = {
	    .listen = http,
	    .conninfo = NULL,
	    .web_dir = is_dir(web) ? web : NULL,
	    .engine_id = id,
	    .insecure_local = insecure,
	    .allow_remote = remote,
	    .threads = 4,
	    .rate_per_s = rate,
	    .rate_burst = burst,
	    .max_streams = streams,
	    .tls_cert_pem = tls_cert_pem,
	    .tls_key_pem = tls_key_pem,
	};
	api = api_start(&ao, err, sizeof err);
	if (!api) {
		log_error("cannot start the HTTP server", "listen=%s error=%s", http, err);
		goto out;
	}
	if (curve_opts(insecure, zmq, curve_secret, executor_keys) != 0) {
		log_error("refusing to start without CURVE keys for the executor channel", "%s",
		          "");
		goto out;
	}
	no.engine_id = id;
	nt = notify_start(&no, err, sizeof err);
	if (!nt) {
		log_error("cannot start the notifier", "error=%s", err);
		goto out;
	}
	log_info("engine started",
	         "engine_id=%s http=%s zmq=%s lease_ms=%lld heartbeat_ms=%lld "
	         "batch=%d appliers=%d poll_ms=%d",
	         id, http, zmq, (long long)lease_ms, (long long)heartbeat_ms, batch, appliers,
	         poll_ms);

	struct loop_opts lo = {
	    .zmq_endpoint = zmq,
	    .conninfo = NULL,
	    .engine_id = id,
	    .lease_ms = lease_ms,
	    .heartbeat_ms = heartbeat_ms,
	    .batch = batch,
	    .appliers = appliers,
	    .poll_ms = poll_ms,
	    .max_buffer = 100000,
	    .retention_ms = retention_ms,
	};
	rc = loop_run(&lo, s, &stop_flag, &reload_flag);
	zsec_shutdown();
	log_info("engine stopped", "engine_id=%s exit=%d", id, rc);
	goto out;
usage_error:
	usage(stderr);
	rc = 2;
out:
	notify_stop(nt);
	if (api)
		api_stop(api);
	store_close(s);
	free(id);
	free(web_default);
	free(tls_cert_pem);
	if (tls_key_pem) {
		sodium_memzero(tls_key_pem, strlen(tls_key_pem));
		free(tls_key_pem);
	}
	zsec_shutdown();
	return rc;
}
