/* Wire frames: every type decodes, every broken field is named. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

static char err[512];

static int decode(const char *s, json_t **out)
{
	err[0] = '\0';
	return wire_decode(s, strlen(s), out, err, sizeof err);
}

static void ok(const char *s)
{
	json_t *m = NULL;
	cr_assert_eq(decode(s, &m), 0, "%s: %s", s, err);
	cr_assert_not_null(m);
	json_decref(m);
}

/* Decoding fails and the error contains want. */
static void bad(const char *s, const char *want)
{
	json_t *m = (json_t *)1;
	cr_assert_eq(decode(s, &m), -1, "accepted: %s", s);
	cr_assert_null(m);
	cr_assert(strstr(err, want), "error '%s' lacks '%s' for %s", err, want, s);
}

#define TASK_HEAD "{\"type\":\"task\",\"task_run_id\":17,\"attempt\":2,\"run_id\":5,"
#define TASK_TAIL "\"workflow\":\"w\",\"task\":\"t\",\"idempotency_key\":\"5-t\"}"

Test(wire, every_type_decodes)
{
	ok("{\"type\":\"hello\",\"executor_id\":\"a\",\"endpoint\":\"tcp://"
	   "x:1\",\"pool\":\"default\","
	   "\"labels\":[\"gpu\"],\"slots\":4,\"version\":\"0.1.0\"}");
	ok("{\"type\":\"heartbeat\",\"executor_id\":\"a\",\"free_slots\":3,\"load\":0.42,"
	   "\"running\":[{\"task_run_id\":17,\"attempt\":2}],\"breakers\":{\"b\":{\"state\":"
	   "\"open\","
	   "\"until_ms\":1764100000000,\"failures\":5}},\"draining\":false}");
	ok("{\"type\":\"heartbeat\",\"executor_id\":\"a\",\"free_slots\":0,\"load\":1,"
	   "\"running\":[],\"breakers\":{},\"draining\":true}");
	ok("{\"type\":\"started\",\"executor_id\":\"a\",\"task_run_id\":17,\"attempt\":2,"
	   "\"at_ms\":1764100000000}");
	ok("{\"type\":\"finished\",\"executor_id\":\"a\",\"task_run_id\":17,\"attempt\":2,"
	   "\"status\":\"succeeded\",\"exit_code\":0,\"http_status\":null,\"output\":\"hi\\n\","
	   "\"error\":null,\"duration_ms\":12,\"outputs\":{\"k\":\"v\"},\"started_ms\":1,"
	   "\"finished_ms\":13}");
	ok("{\"type\":\"bye\",\"executor_id\":\"a\"}");
	ok(TASK_HEAD
	   "\"step\":{\"type\":\"shell\",\"argv\":[\"/bin/echo\",\"hi\"],\"env\":{\"K\":"
	   "\"v\"},\"dir\":null},\"timeout_ms\":600000,\"breaker\":null,\"env\":{\"A\":\"b\"},"
	   "\"lease_ms\":30000,\"engine_id\":\"e1\"," TASK_TAIL);
	ok(TASK_HEAD "\"step\":{\"type\":\"sh\",\"script\":\"echo $X\"}," TASK_TAIL);
	ok(TASK_HEAD
	   "\"step\":{\"type\":\"http\",\"method\":\"POST\",\"url\":\"https://x\","
	   "\"headers\":{\"A\":\"b\"},\"body\":\"x\",\"expect_status\":[200,202],"
	   "\"timeout_ms\":100},\"breaker\":{\"name\":\"b\",\"failures\":5,\"window_ms\":"
	   "60000,\"failure_rate\":0.5,\"open_for_ms\":30000,\"half_open_probes\":2}," TASK_TAIL);
	ok(TASK_HEAD "\"step\":{\"type\":\"noop\"}," TASK_TAIL);
	ok(TASK_HEAD "\"step\":{\"type\":\"sleep\",\"duration_ms\":1000}," TASK_TAIL);
	ok("{\"type\":\"cancel\",\"task_run_id\":17,\"attempt\":2}");
}

Test(wire, not_a_frame)
{
	bad("", "invalid JSON");
	bad("{\"type\":", "invalid JSON at line 1");
	bad("[1,2]", "must be a JSON object");
	bad("\"hello\"", "invalid JSON"); /* jansson refuses a bare scalar at top level */
	bad("{}", "missing field 'type'");
	bad("{\"type\":3}", "field 'type' must be a string");
	bad("{\"type\":\"nope\"}", "unknown type 'nope'");
	bad("{\"type\":\"bye\",\"executor_id\":\"a\",\"executor_id\":\"b\"}", "duplicate");
}

Test(wire, limits)
{
	/* oversize */
	size_t n = WIRE_MAX_FRAME + 10;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"type\":\"bye\",\"executor_id\":\"a\"}", 32);
	big[n] = '\0';
	json_t *m;
	cr_assert_eq(wire_decode(big, n, &m, err, sizeof err), -1);
	cr_assert(strstr(err, "exceeds the limit"), "%s", err);
	free(big);
	/* deep */
	char deep[256] = "{\"type\":\"bye\",\"executor_id\":\"a\",\"x\":";
	size_t l = strlen(deep);
	for (int i = 0; i < 40; i++)
		deep[l++] = '[';
	for (int i = 0; i < 40; i++)
		deep[l++] = ']';
	deep[l++] = '}';
	deep[l] = '\0';
	bad(deep, "deeper than 32");
	/* brackets inside strings do not count */
	char s[256];
	snprintf(s, sizeof s, "{\"type\":\"bye\",\"executor_id\":\"%s\"}",
	         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[");
	ok(s);
	/* not UTF-8 */
	bad("{\"type\":\"bye\",\"executor_id\":\"\xff\xfe\"}", "invalid JSON");
	/* NUL inside a string */
	bad("{\"type\":\"bye\",\"executor_id\":\"a\\u0000b\"}", "invalid JSON");
	/* a length that stops before the end: only len bytes are read */
	const char *f = "{\"type\":\"bye\",\"executor_id\":\"a\"}garbage";
	cr_assert_eq(wire_decode(f, 32, &m, err, sizeof err), 0, "%s", err);
	json_decref(m);
}

Test(wire, task_fields)
{
	bad("{\"type\":\"task\",\"attempt\":1}", "task frame: missing field 'task_run_id'");
	bad("{\"type\":\"task\",\"task_run_id\":0,\"attempt\":1}",
	    "field 'task_run_id' must be an integer >= 1");
	bad("{\"type\":\"task\",\"task_run_id\":\"1\",\"attempt\":1}",
	    "field 'task_run_id' must be an integer >= 1");
	bad("{\"type\":\"task\",\"task_run_id\":1,\"attempt\":0}",
	    "field 'attempt' must be an integer >= 1");
	bad("{\"type\":\"task\",\"task_run_id\":1,\"attempt\":1.5}",
	    "field 'attempt' must be an integer >= 1");
	bad("{\"type\":\"task\",\"task_run_id\":1,\"attempt\":1}", "missing field 'run_id'");
	bad(TASK_HEAD TASK_TAIL, "missing field 'step'");
	bad(TASK_HEAD "\"step\":[]," TASK_TAIL, "field 'step' must be an object");
	bad(TASK_HEAD "\"step\":{}," TASK_TAIL, "missing field 'step.type'");
	bad(TASK_HEAD "\"step\":{\"type\":\"python\"}," TASK_TAIL,
	    "field 'step.type' must be one of shell, sh, http, noop, sleep");
	bad(TASK_HEAD "\"step\":{\"type\":\"shell\"}," TASK_TAIL, "missing field 'step.argv'");
	bad(TASK_HEAD "\"step\":{\"type\":\"shell\",\"argv\":[]}," TASK_TAIL,
	    "field 'step.argv' must not be empty");
	bad(TASK_HEAD "\"step\":{\"type\":\"shell\",\"argv\":[\"a\",1]}," TASK_TAIL,
	    "field 'step.argv[1]' must be a string");
	bad(TASK_HEAD "\"step\":{\"type\":\"shell\",\"argv\":[\"a\"],\"env\":{\"K\":1}}," TASK_TAIL,
	    "field 'step.env.K' must be a string");
	bad(TASK_HEAD "\"step\":{\"type\":\"sh\"}," TASK_TAIL, "missing field 'step.script'");
	bad(TASK_HEAD "\"step\":{\"type\":\"http\"}," TASK_TAIL, "missing field 'step.url'");
	bad(TASK_HEAD "\"step\":{\"type\":\"http\",\"url\":\"http://"
	              "x\",\"expect_status\":[\"200\"]}," TASK_TAIL,
	    "field 'step.expect_status[0]' must be an HTTP status");
	bad(TASK_HEAD "\"step\":{\"type\":\"sleep\"}," TASK_TAIL,
	    "missing field 'step.duration_ms'");
	bad(TASK_HEAD "\"step\":{\"type\":\"noop\"},\"timeout_ms\":-1," TASK_TAIL,
	    "field 'timeout_ms' must be an integer >= 0");
	bad(TASK_HEAD "\"step\":{\"type\":\"noop\"},\"env\":{\"A\":null}," TASK_TAIL,
	    "field 'env.A' must be a string");
	bad(TASK_HEAD "\"step\":{\"type\":\"noop\"},\"breaker\":{\"failures\":1}," TASK_TAIL,
	    "missing field 'breaker.name'");
	bad(TASK_HEAD "\"step\":{\"type\":\"noop\"},\"breaker\":{\"name\":\"b\",\"failure_rate\":2}"
	              "," TASK_TAIL,
	    "field 'breaker.failure_rate' must be a number between 0 and 1");
	bad(TASK_HEAD "\"step\":{\"type\":\"noop\"},\"breaker\":7," TASK_TAIL,
	    "field 'breaker' must be an object or null");
	bad(TASK_HEAD "\"step\":{\"type\":\"noop\"},\"workflow\":\"w\",\"task\":\"t\"}",
	    "missing field 'idempotency_key'");
}

Test(wire, executor_frames_fields)
{
	bad("{\"type\":\"hello\"}", "hello frame: missing field 'executor_id'");
	bad("{\"type\":\"hello\",\"executor_id\":\"\"}", "field 'executor_id' must not be empty");
	bad("{\"type\":\"hello\",\"executor_id\":\"a\",\"endpoint\":\"e\",\"pool\":\"p\","
	    "\"labels\":\"gpu\",\"slots\":1}",
	    "field 'labels' must be an array of strings");
	bad("{\"type\":\"hello\",\"executor_id\":\"a\",\"endpoint\":\"e\",\"pool\":\"p\","
	    "\"labels\":[],\"slots\":-1}",
	    "field 'slots' must be an integer >= 0");
	bad("{\"type\":\"heartbeat\",\"executor_id\":\"a\",\"free_slots\":1,\"running\":[],"
	    "\"breakers\":{},\"draining\":false}",
	    "missing field 'load'");
	bad("{\"type\":\"heartbeat\",\"executor_id\":\"a\",\"free_slots\":1,\"load\":0,"
	    "\"running\":[{\"task_run_id\":1}],\"breakers\":{},\"draining\":false}",
	    "field 'running[0]'");
	bad("{\"type\":\"heartbeat\",\"executor_id\":\"a\",\"free_slots\":1,\"load\":0,"
	    "\"running\":[],\"breakers\":{\"b\":{\"state\":\"ajar\"}},\"draining\":false}",
	    "field 'breakers.b'");
	bad("{\"type\":\"heartbeat\",\"executor_id\":\"a\",\"free_slots\":1,\"load\":0,"
	    "\"running\":[],\"breakers\":{},\"draining\":0}",
	    "field 'draining' must be a boolean");
	bad("{\"type\":\"started\",\"executor_id\":\"a\",\"task_run_id\":1,\"attempt\":1}",
	    "missing field 'at_ms'");
	bad("{\"type\":\"finished\",\"executor_id\":\"a\",\"task_run_id\":1,\"attempt\":1}",
	    "missing field 'status'");
	bad("{\"type\":\"finished\",\"executor_id\":\"a\",\"task_run_id\":1,\"attempt\":1,"
	    "\"status\":\"done\"}",
	    "field 'status' must be one of succeeded, failed, timeout, cancelled, breaker_open, "
	    "rejected");
	bad("{\"type\":\"finished\",\"executor_id\":\"a\",\"task_run_id\":1,\"attempt\":1,"
	    "\"status\":\"failed\",\"output\":5}",
	    "field 'output' must be a string");
	bad("{\"type\":\"finished\",\"executor_id\":\"a\",\"task_run_id\":1,\"attempt\":1,"
	    "\"status\":\"failed\",\"outputs\":[]}",
	    "field 'outputs' must be an object or null");
	bad("{\"type\":\"cancel\",\"task_run_id\":1}", "cancel frame: missing field 'attempt'");
}

/* What the constructors build passes the validator, and survives encoding. */
static void roundtrip(json_t *m)
{
	cr_assert_not_null(m);
	char *s = wire_encode(m);
	cr_assert_not_null(s);
	cr_assert_null(strchr(s, '\n'));
	json_t *back;
	cr_assert_eq(wire_decode(s, strlen(s), &back, err, sizeof err), 0, "%s: %s", s, err);
	cr_assert(json_equal(m, back), "%s", s);
	json_decref(back);
	free(s);
	json_decref(m);
}

Test(wire, constructors)
{
	const char *labels[] = {"gpu", "eu"};
	roundtrip(wire_hello("a", "tcp://127.0.0.1:5601", "default", labels, 2, 4));
	json_t *running = json_pack("[{s:i, s:i}]", "task_run_id", 17, "attempt", 2);
	json_t *br = json_pack("{s:{s:s, s:I, s:i}}", "b", "state", "open", "until_ms",
	                       (json_int_t)1764100000000, "failures", 3);
	roundtrip(wire_heartbeat("a", 3, 0.5, running, br, 0));
	roundtrip(wire_heartbeat("a", 0, 0, NULL, NULL, 1));
	roundtrip(wire_started("a", 17, 2, 1764100000000));
	json_t *outs = json_pack("{s:s}", "batch_id", "b-42");
	struct wire_result r = {.task_run_id = 17,
	                        .attempt = 2,
	                        .status = "failed",
	                        .exit_code = 3,
	                        .http_status = 0,
	                        .output = "x\n",
	                        .error = "exit status 3",
	                        .duration_ms = 5,
	                        .outputs = outs,
	                        .started_ms = 1,
	                        .finished_ms = 6};
	json_t *f = wire_finished("a", &r);
	cr_assert_eq(json_integer_value(json_object_get(f, "exit_code")), 3);
	cr_assert_null(json_object_get(f, "http_status")); /* null: left out */
	roundtrip(f);
	json_decref(outs);
	r.exit_code = -1;
	r.error = NULL;
	r.outputs = NULL;
	f = wire_finished("a", &r);
	cr_assert_null(json_object_get(f, "exit_code")); /* null: left out */
	cr_assert_null(json_object_get(f, "error"));     /* null: left out */
	cr_assert_null(json_object_get(f, "outputs"));   /* null: left out */
	roundtrip(f);
	roundtrip(wire_bye("a"));
	roundtrip(wire_cancel(17, 2));
	json_t *step = json_pack("{s:s, s:[s]}", "type", "shell", "argv", "/bin/true");
	struct wire_task t = {.task_run_id = 1,
	                      .attempt = 1,
	                      .run_id = 5,
	                      .workflow = "w",
	                      .task = "t",
	                      .step = step,
	                      .timeout_ms = 1000,
	                      .idempotency_key = "5-t",
	                      .lease_ms = 30000,
	                      .engine_id = "e"};
	roundtrip(wire_task(&t));
	json_decref(step);
}

Test(wire, text_sanitizes_bytes)
{
	char *s = wire_text("ok \xc3\xa9 \xff x\0y \xe2\x82", 14);
	cr_assert_str_eq(s, "ok \xc3\xa9 \xef\xbf\xbd x\xef\xbf\xbdy \xef\xbf\xbd\xef\xbf\xbd");
	free(s);
	/* overlong and surrogate encodings are not UTF-8 */
	s = wire_text("\xc0\xaf\xed\xa0\x80", 5);
	json_t *j = json_string(s);
	cr_assert_not_null(j);
	json_decref(j);
	free(s);
}

/* ---- the plain-JSON paths (common/wire_json.c) against jansson ---- */

/* Whatever wire_load_plain returns, jansson returns too; whatever
 * wire_dump_plain writes, json_dumps writes too. Returns 1 when the plain
 * parse took the text. */
static int same_as_jansson(const char *s, size_t n)
{
	json_t *fast = wire_load_plain(s, n);
	json_t *slow = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	if (fast) {
		cr_assert_not_null(slow, "plain parse took what jansson refuses: %.*s", (int)n, s);
		cr_assert(json_equal(fast, slow), "plain parse differs: %.*s", (int)n, s);
	}
	if (slow) {
		char *a = wire_dump_plain(slow);
		char *b = json_dumps(slow, JSON_COMPACT);
		if (a)
			cr_assert_str_eq(a, b, "plain dump differs for %.*s", (int)n, s);
		free(a);
		free(b);
	}
	json_decref(fast);
	json_decref(slow);
	return fast != NULL;
}

static const char *const plain_corpus[] = {
    /* what executors and engines send */
    "{\"type\":\"task\",\"task_run_id\":1234567,\"attempt\":1,\"run_id\":1234567,"
    "\"workflow\":\"bench-noop\",\"task\":\"a\",\"step\":{\"type\":\"noop\"},"
    "\"idempotency_key\":\"1234567-a\",\"lease_ms\":30000,\"engine_id\":\"e-1\"}",
    "{\"type\":\"finished\",\"executor_id\":\"x1\",\"task_run_id\":9,\"attempt\":2,"
    "\"status\":\"failed\",\"exit_code\":3,\"output\":\"line 1\\nline \\\"2\\\"\\t\\\\\","
    "\"error\":\"exit code 3\",\"duration_ms\":12,\"outputs\":{\"a\":[1,true,null,\"\"]},"
    "\"started_ms\":1764100000000,\"finished_ms\":1764100000012}",
    "{\"type\":\"task\",\"step\":{\"type\":\"shell\",\"argv\":[\"/bin/sh\",\"-c\",\"echo "
    "\\\"$X\\\"\"]},"
    "\"env\":{\"WF_PARAM_X\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}}",
    /* layout and edges the plain parse takes */
    " {\n\t\"a\" : -0 ,\"b\":[ ] ,\"c\":{ },\"d\":\"\\/\\b\\f\\r\",\"e\":false}\r\n",
    "{\"n\":-123456789012345678,\"m\":123456789012345678,\"\":\"empty key\"}",
    "{\"del\":\"\x7f\",\"deep\":[[[[{\"x\":[[]]}]]]]}",
    /* what it leaves to jansson */
    "{\"u\":\"\\u00e9\"}",
    "{\"u\":\"\\u0000\"}",
    "{\"u\":\"\\ud83d\\ude00\"}",
    "{\"r\":0.5}",
    "{\"r\":1e3}",
    "{\"r\":1E-3}",
    "{\"big\":1234567890123456789}",
    "{\"big\":-9223372036854775809}",
    "{\"k\\n\":1}",
    "[1,2]",
    "\"top\"",
    "{\"a\":1,\"a\":2}",
    /* what nobody takes */
    "",
    "{",
    "{\"a\":}",
    "{\"a\":01}",
    "{\"a\":-}",
    "{\"a\":1,}",
    "{\"a\":[1,]}",
    "{\"a\":tru}",
    "{\"a\":truex}",
    "{\"a\":nul}",
    "{\"a\":1}x",
    "{\"a\":1}{}",
    "{a:1}",
    "{\"a\" 1}",
    "{\"a\":\"\x01\"}",
    "{\"a\":\"\\x\"}",
    "{\"a\":\"\\",
    "{\"a\":\"abc",
    "{\"a\":\"\xc3\"}",
    "{\"a\":\"\xc0\xaf\"}",
    "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":\"\xf4\x90\x80\x80\"}",
    "{\"a\":\"\xff\"}",
    "{\"a\":1 2}",
};

Test(wire, plain_parse_and_dump_match_jansson)
{
	size_t n = sizeof plain_corpus / sizeof plain_corpus[0];
	for (size_t i = 0; i < n; i++)
		same_as_jansson(plain_corpus[i], strlen(plain_corpus[i]));
	/* the frames themselves take the plain path, both ways */
	for (size_t i = 0; i < 6; i++)
		cr_assert(same_as_jansson(plain_corpus[i], strlen(plain_corpus[i])),
		          "not taken: %s", plain_corpus[i]);
	for (size_t i = 6; i < n; i++)
		cr_assert(!same_as_jansson(plain_corpus[i], strlen(plain_corpus[i])), "taken: %s",
		          plain_corpus[i]);
	json_t *f = wire_load_plain(plain_corpus[1], strlen(plain_corpus[1]));
	char *d = wire_dump_plain(f);
	cr_assert_not_null(d);
	cr_assert_str_eq(json_string_value(json_object_get(f, "output")), "line 1\nline \"2\"\t\\");
	free(d);
	json_decref(f);
	/* a string jansson cannot dump: neither path writes it */
	json_t *bad_utf8 = json_pack("{s:o}", "a", json_stringn_nocheck("\xff", 1));
	cr_assert_null(wire_dump_plain(bad_utf8));
	cr_assert_null(json_dumps(bad_utf8, JSON_COMPACT));
	json_decref(bad_utf8);
	/* control characters and NUL in a string: jansson's escapes */
	json_t *ctl = json_pack("{s:o}", "a", json_stringn("\x00\x01\x1f\"\\/\x7f", 7));
	char *c = wire_dump_plain(ctl);
	cr_assert_str_eq(c, "{\"a\":\"\\u0000\\u0001\\u001F\\\"\\\\/\x7f\"}");
	free(c);
	json_decref(ctl);
}

/* Random edits of the corpus (a fixed seed): the plain parse never takes
 * what jansson refuses, never reads a value differently, and the dump of
 * whatever jansson reads is jansson's. */
Test(wire, plain_paths_hold_under_random_edits)
{
	static const char pick[] = "{}[]\",:\\ -019eE.tfnu\x01\x7f\xc3\xa9\xff";
	uint64_t x = 88172645463325252ULL;
	size_t n = sizeof plain_corpus / sizeof plain_corpus[0];
	char s[1024];
	int taken = 0;
	for (int round = 0; round < 20000; round++) {
		const char *src = plain_corpus[round % n];
		size_t len = strlen(src);
		memcpy(s, src, len);
		for (int e = 0; e < 1 + round % 3; e++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			size_t at = len ? (size_t)(x >> 20) % len : 0;
			char c = pick[(x >> 8) % (sizeof pick - 1)];
			switch (x % 3) {
			case 0: /* replace */
				if (len)
					s[at] = c;
				break;
			case 1: /* insert */
				if (len + 1 < sizeof s) {
					memmove(s + at + 1, s + at, len - at);
					s[at] = c;
					len++;
				}
				break;
			default: /* delete */
				if (len) {
					memmove(s + at, s + at + 1, len - at - 1);
					len--;
				}
			}
		}
		taken += same_as_jansson(s, len);
	}
	cr_assert_gt(taken, 1000); /* the edits left many plain inputs to compare */
}

/* The finished frame is written as text: the same fields jansson would
 * write, and what is not valid UTF-8 still makes a valid frame. */
Test(wire, finished_text_is_a_valid_frame)
{
	json_t *outs = json_pack("{s:s, s:f}", "k", "v\"", "r", 0.25);
	struct wire_result r = {.task_run_id = 9,
	                        .attempt = 3,
	                        .status = "failed",
	                        .exit_code = 0,
	                        .http_status = 503,
	                        .output = "a\tb\x01\"",
	                        .error = "bad \xff byte",
	                        .duration_ms = 7,
	                        .outputs = outs,
	                        .started_ms = 0,
	                        .finished_ms = 1764100000000};
	char *t = wire_finished_text("x\"1", &r);
	cr_assert_not_null(t);
	json_t *m;
	cr_assert_eq(wire_decode(t, strlen(t), &m, err, sizeof err), 0, "%s: %s", t, err);
	json_t *want = json_pack(
	    "{s:s, s:s, s:I, s:i, s:s, s:i, s:i, s:s, s:s, s:I, s:O, s:I, s:I}", "type", "finished",
	    "executor_id", "x\"1", "task_run_id", (json_int_t)9, "attempt", 3, "status", "failed",
	    "exit_code", 0, "http_status", 503, "output", "a\tb\x01\"", "error",
	    "bad \xef\xbf\xbd byte", "duration_ms", (json_int_t)7, "outputs", outs, "started_ms",
	    (json_int_t)0, "finished_ms", (json_int_t)1764100000000);
	cr_assert(json_equal(m, want), "%s", t);
	json_decref(want);
	json_decref(m);
	free(t);
	r.output = "\xc3(";
	t = wire_finished_text("x", &r);
	cr_assert_eq(wire_decode(t, strlen(t), &m, err, sizeof err), 0, "%s: %s", t, err);
	cr_assert_str_eq(json_string_value(json_object_get(m, "output")),
	                 "[output is not valid UTF-8]");
	json_decref(m);
	free(t);
	cr_assert_null(wire_finished_text("\xff", &r)); /* an executor id is never rewritten */
	json_decref(outs);
}
