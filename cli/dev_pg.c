/* wfctl dev: the private PostgreSQL. Its data lives in .wf/pg, or in
 * VAR_DIR/<hash> behind the symlink .wf/pg when the 'postgres' user cannot
 * reach .wf; it listens on a Unix socket only. As root it runs as the
 * 'postgres' user (created when missing). */
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/dev_int.h"
#include "util.h"
#include "xalloc.h"

#define PG_PORT 5432

/* ------------------------------------------------------------------ paths */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) != 0 && errno != ENOENT) {
		fprintf(stderr, "wfctl dev: cannot remove %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* rm -rf path. Returns 0 or -1 (message printed). */
static int remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST) {
		fprintf(stderr, "wfctl dev: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The first 12 hex digits of SHA-256(path + "\n"), as scripts/demo.sh had it. */
static void path_hash(const char *path, char out[13])
{
	unsigned char d[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	char *line = xasprintf("%s\n", path);
	crypto_hash_sha256(d, (const unsigned char *)line, strlen(line));
	free(line);
	hex_encode(d, sizeof d, hex);
	memcpy(out, hex, 12);
	out[12] = '\0';
}

/* Percent-encodes s for a URI query value ('/' kept). New string. */
static char *uri_encode(const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	char *out = xmalloc(3 * strlen(s) + 1), *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hexd[*p >> 4];
			*o++ = hexd[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* s as a PostgreSQL configuration string: 'it''s'. New string. */
static char *conf_quote(const char *s)
{
	char *out = xmalloc(2 * strlen(s) + 3), *o = out;
	*o++ = '\'';
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			*o++ = *s;
		*o++ = *s;
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* The newest /usr/lib/postgresql/N/bin, or $PG_BIN, or NULL (use PATH). */
char *dev_find_pgbin(void)
{
	const char *env = getenv("PG_BIN");
	if (env && *env)
		return xstrdup(env);
	glob_t g;
	char *best = NULL;
	if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (!best || strverscmp(g.gl_pathv[i], best) > 0)
				best = g.gl_pathv[i];
		best = best ? xstrndup(best, strlen(best) - strlen("/pg_ctl")) : NULL;
	}
	globfree(&g);
	return best;
}

static char *pg_prog(const struct dev *d, const char *name)
{
	return d->pgbin ? xasprintf("%s/%s", d->pgbin, name) : xstrdup(name);
}

/* ----------------------------------------------------- the postgres user */

/* As root: PG_USER exists (created when missing). */
int dev_find_pg_user(struct dev *d)
{
	struct passwd *pw = getpwnam(PG_USER);
	if (!pw) {
		char *argv[] = {"useradd", "--system", "--no-create-home", PG_USER, NULL};
		printf("creating the system user '%s' for PostgreSQL ...\n", PG_USER);
		if (dev_run(d, argv, NULL, 0) != 0) {
			fprintf(stderr, "wfctl dev: useradd %s failed\n", PG_USER);
			return -1;
		}
		pw = getpwnam(PG_USER);
		if (!pw) {
			fprintf(stderr, "wfctl dev: no user '%s' after useradd\n", PG_USER);
			return -1;
		}
	}
	d->as_user = 1;
	d->uid = pw->pw_uid;
	d->gid = pw->pw_gid;
	return 0;
}

/* 1 when PG_USER may search (traverse) dir. */
static int user_can_traverse(const struct dev *d, const char *dir)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (initgroups(PG_USER, d->gid) != 0 || setgid(d->gid) != 0 || setuid(d->uid) != 0)
			_exit(2);
		_exit(access(dir, X_OK) == 0 ? 0 : 1);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ------------------------------------------------------------- .wf/ itself */

/* --reset: stops a PostgreSQL left running, removes .wf/ and the data
 * directory behind .wf/pg. */
int dev_reset_data(struct dev *d)
{
	char *link = xasprintf("%s/pg", d->wf);
	char *real = realpath(link, NULL);
	char *data = real ? xasprintf("%s/data", real) : NULL;
	char *pidfile = data ? xasprintf("%s/postmaster.pid", data) : NULL;
	char *pg_ctl = pg_prog(d, "pg_ctl");
	int rc = -1;
	if (pidfile && dev_exists(pidfile)) {
		char *argv[] = {pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "30", "stop", NULL};
		if (dev_run(d, argv, "/dev/null", d->as_user) != 0) {
			char *now[] = {pg_ctl, "-D", data, "-m", "immediate", "stop", NULL};
			if (dev_run(d, now, "/dev/null", d->as_user) != 0 && dev_exists(pidfile)) {
				fprintf(stderr, "wfctl dev: cannot stop the PostgreSQL in %s\n",
				        data);
				goto out;
			}
		}
	}
	struct stat st;
	if (real && lstat(link, &st) == 0 && S_ISLNK(st.st_mode) &&
	    strncmp(real, VAR_DIR "/", strlen(VAR_DIR) + 1) == 0) {
		if (remove_tree(real) != 0)
			goto out;
		printf("removed %s\n", real);
	}
	if (remove_tree(d->wf) != 0)
		goto out;
	printf("removed .wf/\n");
	rc = 0;
out:
	free(pg_ctl);
	free(pidfile);
	free(data);
	free(real);
	free(link);
	return rc;
}

/* Creates .wf, .wf/logs and the PostgreSQL directory (behind a symlink in
 * VAR_DIR when PG_USER cannot reach .wf). Sets pgdir and pgdata. */
int dev_make_dirs(struct dev *d)
{
	char *link = xasprintf("%s/pg", d->wf);
	int rc = -1;
	struct stat st;
	if (make_dir(d->wf, 0700) != 0 || make_dir(d->logs, 0700) != 0)
		goto out;
	/* PG_USER needs to traverse .wf to reach .wf/pg. */
	if (chmod(d->wf, d->as_user ? 0711 : 0700) != 0)
		goto out;
	int is_link = lstat(link, &st) == 0 && S_ISLNK(st.st_mode);
	if (d->as_user && !user_can_traverse(d, d->wf)) {
		char h[13];
		path_hash(d->cwd, h);
		d->pgdir = xasprintf("%s/%s", VAR_DIR, h);
		if (!is_link && lstat(link, &st) == 0) {
			fprintf(stderr,
			        "wfctl dev: the data in %s/ cannot be reached by the '%s' user;\n"
			        "make the parent directories searchable (chmod o+x) or start "
			        "afresh with --reset\n",
			        dev_rel(d, link), PG_USER);
			goto out;
		}
		if (make_dir(VAR_DIR, 0755) != 0 || make_dir(d->pgdir, 0700) != 0)
			goto out;
		if (!is_link && symlink(d->pgdir, link) != 0) {
			fprintf(stderr, "wfctl dev: cannot link %s: %s\n", link, strerror(errno));
			goto out;
		}
	} else if (is_link) {
		/* Made by an earlier run: keep using what it points to. */
		char target[4096];
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n <= 0)
			goto out;
		target[n] = '\0';
		d->pgdir = xstrdup(target);
		if (make_dir(d->pgdir, 0700) != 0)
			goto out;
	} else {
		d->pgdir = xstrdup(link);
		if (make_dir(d->pgdir, 0700) != 0)
			goto out;
	}
	if (d->as_user && (chown(d->pgdir, d->uid, d->gid) != 0 || chmod(d->pgdir, 0700) != 0)) {
		fprintf(stderr, "wfctl dev: cannot give %s to %s: %s\n", d->pgdir, PG_USER,
		        strerror(errno));
		goto out;
	}
	/* sockaddr_un.sun_path holds 107 bytes. */
	if (strlen(d->pgdir) + strlen("/.s.PGSQL.5432") > 107) {
		fprintf(stderr,
		        "wfctl dev: %s is too long a path for PostgreSQL's Unix socket;\n"
		        "run wfctl dev from a directory with a shorter path\n",
		        d->pgdir);
		goto out;
	}
	d->pgdata = xasprintf("%s/data", d->pgdir);
	rc = 0;
out:
	free(link);
	return rc;
}

/* ---------------------------------------------------------------- PostgreSQL */

/* data/wf-dev.conf, included from postgresql.conf: a socket in pgdir, no TCP. */
static int write_pg_conf(struct dev *d)
{
	char *conf = xasprintf("%s/postgresql.conf", d->pgdata);
	char *mine = xasprintf("%s/wf-dev.conf", d->pgdata);
	char *sock = conf_quote(d->pgdir);
	char *text = xasprintf("# written by wfctl dev at each start\n"
	                       "listen_addresses = ''\n"
	                       "unix_socket_directories = %s\n"
	                       "port = %d\n"
	                       "synchronous_commit = off\n"
	                       "max_connections = 100\n",
	                       sock, PG_PORT);
	int rc = -1;
	char line[512];
	int included = 0;
	FILE *f = fopen(conf, "r");
	while (f && fgets(line, sizeof line, f))
		included |= strstr(line, "include_if_exists = 'wf-dev.conf'") != NULL;
	if (f)
		fclose(f);
	if (!included) {
		f = fopen(conf, "a");
		if (!f || fputs("\ninclude_if_exists = 'wf-dev.conf'\n", f) < 0) {
			fprintf(stderr, "wfctl dev: cannot update %s\n", conf);
			if (f)
				fclose(f);
			goto out;
		}
		fclose(f);
	}
	if (dev_write_file(mine, text, 0600) != 0)
		goto out;
	if (d->as_user && chown(mine, d->uid, d->gid) != 0)
		goto out;
	rc = 0;
out:
	free(text);
	free(sock);
	free(mine);
	free(conf);
	return rc;
}

static pid_t read_postmaster_pid(const struct dev *d)
{
	char *path = xasprintf("%s/postmaster.pid", d->pgdata);
	FILE *f = fopen(path, "r");
	long pid = 0;
	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	free(path);
	return (pid_t)pid;
}

int dev_start_pg(struct dev *d)
{
	char *initdb = pg_prog(d, "initdb"), *pg_ctl = pg_prog(d, "pg_ctl");
	char *version = xasprintf("%s/PG_VERSION", d->pgdata);
	char *initlog = xasprintf("%s/initdb.log", d->logs);
	char *pglog = xasprintf("%s/postgres.log", d->logs);
	char *pidfile = xasprintf("%s/postmaster.pid", d->pgdata);
	char *enc = uri_encode(d->pgdir);
	int rc = -1;
	if (!dev_exists(version)) {
		printf("initializing PostgreSQL in .wf/pg (first run) ...\n");
		char *argv[] = {initdb,  "-D", d->pgdata, "-A",        "trust", "-U",
		                PG_USER, "-E", "UTF8",    "--no-sync", NULL};
		int st = dev_run(d, argv, initlog, d->as_user);
		if (st != 0) {
			if (st > 0) {
				fprintf(stderr, "wfctl dev: initdb failed; see %s:\n",
				        dev_rel(d, initlog));
				dev_print_tail(initlog, 8);
			}
			if (!d->pgbin)
				fprintf(stderr,
				        "hint: install PostgreSQL (make deps) or set PG_BIN\n");
			goto out;
		}
	} else {
		printf("reusing the data in .wf/ (wfctl dev --reset starts afresh)\n");
	}
	if (write_pg_conf(d) != 0)
		goto out;
	char *status[] = {pg_ctl, "-D", d->pgdata, "status", NULL};
	if (dev_exists(pidfile) && dev_run(d, status, "/dev/null", d->as_user) == 0) {
		printf("PostgreSQL was still running from an earlier start: using it\n");
	} else {
		printf("starting PostgreSQL ...\n");
		char *argv[] = {pg_ctl, "-D", d->pgdata, "-w", "-t", "60", "start", NULL};
		if (dev_run(d, argv, pglog, d->as_user) != 0) {
			fprintf(stderr, "wfctl dev: PostgreSQL did not start; see %s:\n",
			        dev_rel(d, pglog));
			dev_print_tail(pglog, 8);
			goto out;
		}
	}
	d->pg_running = 1;
	d->postmaster = read_postmaster_pid(d);
	d->dburl =
	    xasprintf("postgresql:///postgres?host=%s&port=%d&user=%s", enc, PG_PORT, PG_USER);
	setenv("WF_DATABASE_URL", d->dburl, 1);
	rc = 0;
out:
	free(enc);
	free(pidfile);
	free(pglog);
	free(initlog);
	free(version);
	free(pg_ctl);
	free(initdb);
	return rc;
}

void dev_stop_pg(struct dev *d)
{
	if (!d->pg_running)
		return;
	char *pg_ctl = pg_prog(d, "pg_ctl");
	char *pglog = xasprintf("%s/postgres.log", d->logs);
	char *argv[] = {pg_ctl, "-D", d->pgdata, "-m", "fast", "-w", "-t", "30", "stop", NULL};
	printf("stopping PostgreSQL ...\n");
	if (dev_run(d, argv, pglog, d->as_user) != 0) {
		char *now[] = {pg_ctl, "-D", d->pgdata, "-m", "immediate", "stop", NULL};
		if (dev_run(d, now, pglog, d->as_user) != 0 && dev_pid_alive(d->postmaster))
			fprintf(stderr, "wfctl dev: PostgreSQL (pid %ld) did not stop\n",
			        (long)d->postmaster);
	}
	/* pg_ctl returns once postmaster.pid is gone, a moment before the
	 * process itself. */
	for (int i = 0; i < 100 && dev_pid_alive(d->postmaster); i++)
		sleep_ms(50);
	d->pg_running = 0;
	free(pglog);
	free(pg_ctl);
}
