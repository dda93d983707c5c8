/* Commands that talk to PostgreSQL directly: migrate, token create. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/migrate.h"
#include "engine/store.h"
#include "util.h"

static PGconn *connect_db(void)
{
	PGconn *db = PQconnectdb(store_default_conninfo());
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "wfctl: cannot connect to PostgreSQL: %s", PQerrorMessage(db));
		fprintf(stderr, "hint: set WF_DATABASE_URL or the PG* variables\n");
		PQfinish(db);
		return NULL;
	}
	PQclear(PQexec(db, "SET client_min_messages = warning"));
	return db;
}

int cmd_migrate(int argc, char **argv)
{
	int check_only = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0)
			check_only = 1;
		else if (strcmp(argv[i], "--json") == 0)
			cli_opts.json = 1;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf(
			    "usage: wfctl migrate [--check]\n\nApplies the missing schema "
			    "migrations (--check: only tell whether the schema is current).\n"
			    "The database comes from WF_DATABASE_URL or libpq's PG* variables.\n");
			return EXIT_OK;
		} else {
			fprintf(stderr, "usage: wfctl migrate [--check]\n");
			return EXIT_USAGE;
		}
	}
	PGconn *db = connect_db();
	if (!db)
		return EXIT_UNAVAIL;
	char err[1024];
	int rc = EXIT_OK;
	if (check_only) {
		if (migrate_check(db, err, sizeof err) != 0) {
			fprintf(stderr, "wfctl: %s\n", err);
			rc = EXIT_FAIL;
		} else if (!cli_opts.json) {
			printf("schema is at version %d (current)\n", migrate_latest());
		}
	} else {
		int n = migrate_up(db, err, sizeof err);
		if (n < 0) {
			fprintf(stderr, "wfctl: migrate: %s\n", err);
			rc = EXIT_FAIL;
		} else if (cli_opts.json) {
			printf("{\"applied\":%d,\"version\":%d}\n", n, migrate_latest());
		} else {
			printf("applied %d migration%s; schema is at version %d\n", n,
			       n == 1 ? "" : "s", migrate_latest());
		}
	}
	if (cli_opts.json && check_only)
		printf("{\"current\":%s,\"version\":%d}\n", rc == EXIT_OK ? "true" : "false",
		       migrate_latest());
	PQfinish(db);
	return rc;
}

/* Tokens: "wf_" + 32 random bytes in hex; only the SHA-256 is stored. */
static void token_hash(const char *token, char *hash)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(digest, (const unsigned char *)token, strlen(token));
	hex_encode(digest, sizeof digest, hash);
}

/* --namespace of "token create" (NULL = every namespace). */
static const char *token_namespace;

int cli_token_create(const char *role, const char *name, char *token, size_t len)
{
	char hash[2 * crypto_hash_sha256_BYTES + 1];
	unsigned char raw[32];
	PGconn *db = NULL;
	PGresult *r = NULL;
	int rc = EXIT_FAIL;

	if (len < CLI_TOKEN_LEN || sodium_init() < 0)
		goto out;
	randombytes_buf(raw, sizeof raw);
	memcpy(token, "wf_", 3);
	hex_encode(raw, sizeof raw, token + 3);
	token_hash(token, hash);
	db = connect_db();
	if (!db) {
		rc = EXIT_UNAVAIL;
		goto out;
	}
	const char *params[4] = {name, role, hash, token_namespace};
	r = PQexecParams(db,
	                 token_namespace
	                     ? "INSERT INTO api_tokens (name, role, hash, namespace)"
	                       " VALUES ($1, $2, $3, $4)"
	                     : "INSERT INTO api_tokens (name, role, hash) VALUES ($1, $2, $3)",
	                 token_namespace ? 4 : 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (state && strcmp(state, "23505") == 0)
			fprintf(stderr, "wfctl: a token named '%s' already exists\n", name);
		else
			fprintf(stderr, "wfctl: token create: %s", PQresultErrorMessage(r));
		goto out;
	}
	rc = EXIT_OK;
out:
	if (rc != EXIT_OK && len > 0)
		sodium_memzero(token, len);
	sodium_memzero(raw, sizeof raw);
	PQclear(r);
	PQfinish(db);
	return rc;
}

int cli_token_known(const char *token)
{
	char hash[2 * crypto_hash_sha256_BYTES + 1];
	int known = -1;
	PGconn *db = connect_db();
	if (!db)
		return -1;
	token_hash(token, hash);
	const char *params[1] = {hash};
	PGresult *r = PQexecParams(db, "SELECT 1 FROM api_tokens WHERE hash = $1", 1, NULL, params,
	                           NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		known = PQntuples(r) > 0;
	else
		fprintf(stderr, "wfctl: cannot look up the token: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(db);
	return known;
}

static int token_create(int argc, char **argv)
{
	const char *role = NULL, *name = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--namespace") == 0 && i + 1 < argc)
			token_namespace = argv[++i];
		else {
			fprintf(stderr, "wfctl: token create: unexpected '%s'\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!role || !name) {
		fprintf(stderr,
		        "usage: wfctl token create --role viewer|operator|admin --name NAME "
		        "[--namespace NS]\n");
		return EXIT_USAGE;
	}
	if (token_namespace && (!*token_namespace || strlen(token_namespace) > 64 ||
	                        strspn(token_namespace, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
	                            strlen(token_namespace))) {
		fprintf(stderr,
		        "wfctl: --namespace '%s': use 1 to 64 characters from a-z, 0-9, '_' "
		        "and '-'\n",
		        token_namespace);
		return EXIT_USAGE;
	}
	if (strcmp(role, "viewer") && strcmp(role, "operator") && strcmp(role, "admin")) {
		fprintf(stderr, "wfctl: --role '%s': expected viewer, operator or admin\n", role);
		return EXIT_USAGE;
	}
	char token[CLI_TOKEN_LEN];
	int rc = cli_token_create(role, name, token, sizeof token);
	if (rc != EXIT_OK)
		return rc;
	if (cli_opts.json) {
		json_t *o = json_pack("{s:s,s:s,s:o,s:s}", "name", name, "role", role, "namespace",
		                      token_namespace ? json_string(token_namespace) : json_null(),
		                      "token", token);
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		printf("%s\n", token);
		fprintf(stderr, "token '%s' (%s%s%s) created; it is shown only once\n", name, role,
		        token_namespace ? ", namespace " : "",
		        token_namespace ? token_namespace : "");
	}
	sodium_memzero(token, sizeof token);
	return rc;
}

int cmd_token(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return token_create(argc, argv);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: wfctl token create --role viewer|operator|admin --name NAME "
		       "[--namespace NS]\n\n"
		       "Creates an API token and prints it once; only its hash is stored.\n"
		       "--namespace limits the token to the workflows of one namespace.\n"
		       "The database comes from WF_DATABASE_URL or libpq's PG* variables.\n");
		return EXIT_OK;
	}
	fprintf(stderr, "usage: wfctl token create --role viewer|operator|admin --name NAME\n");
	return EXIT_USAGE;
}
