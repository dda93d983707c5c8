/* The notifier's command-line options and their usage text (see
 * notify.h). */
#include "notify.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

void notify_opts_init(struct notify_opts *o)
{
	memset(o, 0, sizeof *o);
	o->alert_dlq = -1;
	o->poll_ms = 1000;
	o->batch = 50;
	o->max_attempts = 20;
	o->lease_ms = 60000;
	o->timeout_ms = 10000;
	o->backoff_min_ms = 5000;
	o->backoff_max_ms = 3600000;
	o->alert_interval_ms = 5000;
	o->slots_grace_ms = 30000;
}

static const char *const arg_names[] = {"webhook-secret-file", "smtp-url",    "smtp-from",
                                        "public-url",          "alert-dlq",   "alert-min-slots",
                                        "alert-webhook",       "alert-email", "notify-poll-ms",
                                        "notify-lease",        NULL};

static int set_int(const char *name, const char *v, long long min, long long max, long long *out,
                   char *err, size_t errlen)
{
	int64_t x;
	if (parse_int64(v, min, max, &x) != 0) {
		snprintf(err, errlen, "--%s: expected an integer from %lld to %lld, got '%s'", name,
		         min, max, v);
		return -1;
	}
	*out = x;
	return 0;
}

static int set_opt(struct notify_opts *o, int which, const char *v, char *err, size_t errlen)
{
	long long x;
	switch (which) {
	case 0:
		o->webhook_secret_file = v;
		return 0;
	case 1:
		if (strncasecmp(v, "smtp://", 7) != 0 && strncasecmp(v, "smtps://", 8) != 0) {
			snprintf(
			    err, errlen,
			    "--smtp-url: expected smtp://host:port or smtps://host:port, got '%s'",
			    v);
			return -1;
		}
		o->smtp_url = v;
		return 0;
	case 2:
		o->smtp_from = v;
		return 0;
	case 3:
		o->public_url = v;
		return 0;
	case 4:
		return set_int("alert-dlq", v, 0, 1000000000, &o->alert_dlq, err, errlen);
	case 5:
		return set_int("alert-min-slots", v, 1, 1000000000, &o->alert_min_slots, err,
		               errlen);
	case 6:
		if (strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0) {
			snprintf(err, errlen,
			         "--alert-webhook: expected an http or https URL, got '%s'", v);
			return -1;
		}
		o->alert_webhook = v;
		return 0;
	case 7:
		o->alert_email = v;
		return 0;
	case 9:
		if (set_int("notify-lease", v, 1, 3600, &x, err, errlen) != 0)
			return -1;
		o->lease_ms = x * 1000;
		return 0;
	default:
		if (set_int("notify-poll-ms", v, 10, 60000, &x, err, errlen) != 0)
			return -1;
		o->poll_ms = (int)x;
		return 0;
	}
}

int notify_opts_from_args(struct notify_opts *o, int *argc, char **argv, char *err, size_t errlen)
{
	int i = 1;
	while (i < *argc) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			break;
		int which = -1;
		size_t len = 0;
		if (strncmp(a, "--", 2) == 0) {
			const char *eq = strchr(a + 2, '=');
			len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
			for (int k = 0; arg_names[k]; k++)
				if (strlen(arg_names[k]) == len &&
				    strncmp(a + 2, arg_names[k], len) == 0)
					which = k;
		}
		if (which < 0) {
			i++;
			continue;
		}
		int used = 1;
		const char *v = a[2 + len] == '=' ? a + 3 + len : NULL;
		if (!v) {
			if (i + 1 >= *argc) {
				snprintf(err, errlen, "--%s needs a value", arg_names[which]);
				return -1;
			}
			v = argv[i + 1];
			used = 2;
		}
		if (set_opt(o, which, v, err, errlen) != 0)
			return -1;
		memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used + 1) * sizeof *argv);
		*argc -= used;
	}
	return 0;
}

void notify_usage(FILE *f)
{
	fprintf(f,
	        "notifications (webhooks and e-mail from on_success/on_failure, engine alerts):\n"
	        "  --webhook-secret-file FILE  HMAC-SHA256 key for X-WF-Signature (else\n"
	        "                       $WF_WEBHOOK_SECRET; without one webhooks are unsigned)\n"
	        "  --smtp-url URL       smtp://host:port or smtps://host:port for e-mail\n"
	        "                       ($WF_SMTP_USER, $WF_SMTP_PASSWORD when it needs a login)\n"
	        "  --smtp-from ADDR     sender address (default wf@localhost)\n"
	        "  --public-url URL     dashboard address for links (default $WF_PUBLIC_URL)\n"
	        "  --alert-dlq N        alert when more than N dead letters are open\n"
	        "  --alert-min-slots N  alert when online executors have fewer than N slots\n"
	        "  --alert-webhook URL  where engine alerts go (run deadlines also go to the\n"
	        "  --alert-email ADDR   workflow's on_failure targets)\n"
	        "  --notify-poll-ms N   longest wait between looks at the outbox (default 1000)\n"
	        "  --notify-lease S     seconds a claimed delivery is held before another engine\n"
	        "                       may send it again (default 60)\n");
}
