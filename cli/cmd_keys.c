/* wfctl keys generate [--out PREFIX]: a CURVE key pair for an engine or an
 * executor. PREFIX.key holds the pair (mode 600, for --curve-secret);
 * PREFIX.pub the public key (for --executor-keys / --engine-key). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "curve.h"
#include "xalloc.h"

static void usage(FILE *f)
{
	fputs("usage: wfctl keys generate [--out PREFIX] [--force]\n"
	      "  Creates a CURVE key pair for the ZeroMQ channel between engines and\n"
	      "  executors and prints its public key. With --out, writes PREFIX.key (the\n"
	      "  pair, mode 600: give it to --curve-secret) and PREFIX.pub (the public key:\n"
	      "  list it in the engine's --executor-keys file or pass it to an executor's\n"
	      "  --engine-key). Without --out, prints both (keep the secret one private).\n"
	      "  --force overwrites existing files.\n",
	      f);
}

/* Writes text to path with mode, refusing to replace a file unless force. */
static int write_file(const char *path, const char *text, mode_t mode, int force)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
	int fd = open(path, flags, mode);
	if (fd < 0) {
		fprintf(stderr, "wfctl: cannot write %s: %s%s\n", path, strerror(errno),
		        errno == EEXIST ? " (use --force to replace it)" : "");
		return -1;
	}
	size_t len = strlen(text), off = 0;
	int rc = fchmod(fd, mode);
	while (rc == 0 && off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = -1;
		else
			off += (size_t)n;
	}
	if (close(fd) != 0)
		rc = -1;
	if (rc != 0)
		fprintf(stderr, "wfctl: cannot write %s: %s\n", path, strerror(errno));
	return rc;
}

int cmd_keys(int argc, char **argv)
{
	int rc = EXIT_USAGE, force = 0;
	const char *prefix = NULL;
	struct curve_keypair kp;
	char *secret_text = NULL, *pub_text = NULL, *kpath = NULL, *ppath = NULL;

	memset(&kp, 0, sizeof kp);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (strcmp(argv[1], "generate") != 0) {
		fprintf(stderr, "wfctl keys: unknown subcommand '%s' (expected generate)\n",
		        argv[1]);
		return EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			prefix = argv[++i];
		else if (strncmp(argv[i], "--out=", 6) == 0)
			prefix = argv[i] + 6;
		else if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "wfctl keys generate: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (prefix && !*prefix) {
		fprintf(stderr, "wfctl keys generate: --out needs a file prefix\n");
		return EXIT_USAGE;
	}
	rc = EXIT_FAIL;
	if (curve_keypair_generate(&kp) != 0) {
		fprintf(stderr,
		        "wfctl: this libzmq cannot make CURVE keys (built without libsodium)\n");
		goto out;
	}
	secret_text = xasprintf("# wf CURVE key pair: keep this file private (mode 600)\n"
	                        "public = %s\nsecret = %s\n",
	                        kp.pub, kp.sec);
	pub_text = xasprintf("%s\n", kp.pub);
	if (!prefix) {
		fputs(secret_text, stdout);
		rc = EXIT_OK;
		goto out;
	}
	kpath = xasprintf("%s.key", prefix);
	ppath = xasprintf("%s.pub", prefix);
	if (write_file(kpath, secret_text, 0600, force) != 0 ||
	    write_file(ppath, pub_text, 0644, force) != 0)
		goto out;
	if (cli_opts.json)
		printf("{\"public_key\":\"%s\",\"secret_file\":\"%s\",\"public_file\":\"%s\"}\n",
		       kp.pub, kpath, ppath);
	else
		printf("%s\n", kp.pub);
	rc = EXIT_OK;
out:
	curve_keypair_wipe(&kp);
	if (secret_text) {
		sodium_memzero(secret_text, strlen(secret_text));
		free(secret_text);
	}
	free(pub_text);
	free(kpath);
	free(ppath);
	return rc;
}

/* Generates PREFIX.key/.pub unless PREFIX.key exists. Returns 0 or -1. */
static int ensure_pair(const char *prefix, char *pub, size_t publen)
{
	int rc = -1;
	struct curve_keypair kp;
	char err[512];
	char *kpath = xasprintf("%s.key", prefix), *ppath = xasprintf("%s.pub", prefix);
	char *secret_text = NULL, *pub_text = NULL;

	memset(&kp, 0, sizeof kp);
	if (access(kpath, F_OK) == 0) {
		if (curve_keypair_load(kpath, &kp, err, sizeof err) != 0) {
			fprintf(stderr, "wfctl: %s\n", err);
			goto out;
		}
	} else {
		if (curve_keypair_generate(&kp) != 0) {
			fprintf(stderr, "wfctl: this libzmq cannot make CURVE keys\n");
			goto out;
		}
		secret_text = xasprintf("# wf CURVE key pair: keep this file private (mode 600)\n"
		                        "public = %s\nsecret = %s\n",
		                        kp.pub, kp.sec);
		pub_text = xasprintf("%s\n", kp.pub);
		if (write_file(kpath, secret_text, 0600, 1) != 0 ||
		    write_file(ppath, pub_text, 0644, 1) != 0)
			goto out;
	}
	snprintf(pub, publen, "%s", kp.pub);
	rc = 0;
out:
	curve_keypair_wipe(&kp);
	if (secret_text) {
		sodium_memzero(secret_text, strlen(secret_text));
		free(secret_text);
	}
	free(pub_text);
	free(kpath);
	free(ppath);
	return rc;
}

int cli_dev_keys(const char *wfdir, struct cli_dev_keys *k)
{
	char dir[400], prefix[450], pub[CURVE_Z85_LEN + 1];
	snprintf(dir, sizeof dir, "%s/keys", wfdir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "wfctl: cannot create %s: %s\n", dir, strerror(errno));
		return -1;
	}
	snprintf(prefix, sizeof prefix, "%s/engine", dir);
	if (ensure_pair(prefix, pub, sizeof pub) != 0)
		return -1;
	snprintf(k->engine_key, sizeof k->engine_key, "%s.key", prefix);
	snprintf(k->engine_pub, sizeof k->engine_pub, "%s.pub", prefix);
	snprintf(prefix, sizeof prefix, "%s/executor", dir);
	if (ensure_pair(prefix, pub, sizeof pub) != 0)
		return -1;
	snprintf(k->executor_key, sizeof k->executor_key, "%s.key", prefix);
	snprintf(k->allow, sizeof k->allow, "%s.pub", prefix);
	return 0;
}
