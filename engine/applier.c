/* The applier threads (see applier.h). */
#include "applier.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "util.h"
#include "xalloc.h"

#define IDLE_WAIT_MS   1000
#define BACKOFF_MAX_MS 2000

struct applier {
	pthread_t *threads;
	int nthreads;
	struct ingest *g;
	char *conninfo;
	int batch;
	int fd; /* eventfd: the thread adds, the loop reads */
	atomic_int stop;
	atomic_uint kick;   /* bumped when the loop found the database back */
	atomic_int failing; /* threads whose last attempt failed */
	atomic_ullong applied;
	atomic_llong ms;
};

static void signal_loop(struct applier *a)
{
	uint64_t one = 1;
	while (write(a->fd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

/* A thread's own failure flag, counted in a->failing while set. */
static void set_failing(struct applier *a, int *failing, int on)
{
	if (on != *failing)
		atomic_fetch_add(&a->failing, on ? 1 : -1);
	*failing = on;
}

/* 100 ms, doubling up to BACKOFF_MAX_MS. */
static int64_t next_backoff(int64_t backoff)
{
	if (backoff == 0)
		return 100;
	return backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
}

static void *run(void *arg)
{
	struct applier *a = arg;
	struct store *s = NULL;
	int64_t backoff = 0;
	int logged = 0, failing = 0;
	unsigned kick = atomic_load(&a->kick);
	char err[256];

	while (!atomic_load(&a->stop)) {
		/* the backoff ends early on stop or on the loop's kick */
		for (int64_t t = 0; t < backoff && !atomic_load(&a->stop); t += 20) {
			if (atomic_load(&a->kick) != kick)
				break;
			sleep_ms(20);
		}
		kick = atomic_load(&a->kick);
		if (atomic_load(&a->stop))
			break;
		if (!s) {
			s = store_open(a->conninfo, err, sizeof err);
			if (!s) {
				if (!logged)
					log_warn("applier cannot connect: retrying with backoff",
					         "error=\"%s\"", err);
				logged = 1;
				set_failing(a, &failing, 1);
				backoff = next_backoff(backoff);
				continue;
			}
			store_session(s, STORE_ENGINE_SESSION);
			set_failing(a, &failing, 0);
		}
		/* returns at once when results are waiting to be taken (not
		 * merely in another applier's hands: that would spin) */
		ingest_wait(a->g, IDLE_WAIT_MS);
		if (atomic_load(&a->stop))
			break;
		int64_t t0 = mono_ms();
		int n = ingest_apply_some(a->g, s, a->batch, (size_t)a->batch);
		atomic_fetch_add(&a->ms, mono_ms() - t0);
		if (n < 0) {
			if (!logged)
				log_warn("applying results failed: retrying with backoff",
				         "error=\"%s\" buffered=%zu", store_error(s),
				         ingest_pending(a->g));
			logged = 1;
			set_failing(a, &failing, 1);
			backoff = next_backoff(backoff);
			continue;
		}
		if (logged)
			log_info("applying results resumed", "buffered=%zu", ingest_pending(a->g));
		logged = 0;
		backoff = 0;
		set_failing(a, &failing, 0);
		if (n > 0) {
			atomic_fetch_add(&a->applied, (unsigned long long)n);
			signal_loop(a);
		}
	}
	set_failing(a, &failing, 0);
	store_close(s);
	return NULL;
}

struct applier *applier_start(const char *conninfo, struct ingest *g, int batch, int threads)
{
	struct applier *a = xcalloc(1, sizeof *a);
	a->g = g;
	a->conninfo = conninfo ? xstrdup(conninfo) : NULL;
	a->batch = batch > 0 ? batch : 500;
	a->threads = xcalloc((size_t)(threads > 0 ? threads : 1), sizeof *a->threads);
	a->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->fd < 0) {
		log_error("cannot create the applier's eventfd", "errno=%d", errno);
		applier_stop(a);
		return NULL;
	}
	for (int i = 0; i < (threads > 0 ? threads : 1); i++) {
		if (pthread_create(&a->threads[i], NULL, run, a) != 0) {
			log_error("cannot start an applier thread", "errno=%d", errno);
			applier_stop(a);
			return NULL;
		}
		a->nthreads++;
	}
	return a;
}

int applier_fd(const struct applier *a)
{
	return a->fd;
}

unsigned long long applier_collect(struct applier *a, int64_t *ms)
{
	uint64_t v;
	while (read(a->fd, &v, sizeof v) < 0 && errno == EINTR)
		;
	if (ms)
		*ms = atomic_load(&a->ms);
	return atomic_exchange(&a->applied, 0);
}

int applier_failing(const struct applier *a)
{
	return atomic_load(&a->failing);
}

void applier_kick(struct applier *a)
{
	atomic_fetch_add(&a->kick, 1);
}

void applier_stop(struct applier *a)
{
	if (!a)
		return;
	atomic_store(&a->stop, 1);
	ingest_wake(a->g);
	for (int i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);
	if (a->fd >= 0)
		close(a->fd);
	free(a->threads);
	free(a->conninfo);
	free(a);
}
