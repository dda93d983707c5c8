/* wf-executor: runs the steps the engines send over ZeroMQ. */
#include <stdio.h>
#include <stdlib.h>

#include "exec.h"
#include "log.h"

int main(int argc, char **argv)
{
	int rc = 2;
	struct exec_config cfg;
	struct exec *ex = NULL;
	char err[512];

	log_init("wf-executor");
	int p = exec_config_parse(&cfg, argc, argv, err, sizeof err);
	if (p == 1) {
		rc = 0;
		goto out;
	}
	if (p < 0) {
		fprintf(stderr, "wf-executor: %s\n", err);
		goto out;
	}
	ex = exec_new(&cfg);
	if (!ex) {
		rc = 1;
		goto out;
	}
	rc = exec_run(ex);
out:
	exec_free(ex);
	exec_config_release(&cfg);
	return rc;
}
