/* Finding and compiling workflow files for validate, graph and submit. */
#ifndef WF_CLI_FILES_H
#define WF_CLI_FILES_H
#include <jansson.h>

#include "cli/cli.h"
#include "dsl.h"

/* One workflow file and its compilation. */
struct cli_wf_file {
	char *path;
	char *source; /* the file's text, NULL when it could not be read */
	size_t len;
	struct dsl_result res;
	int valid;
};

struct cli_wf_files {
	struct cli_wf_file *v;
	size_t n;
	int invalid; /* how many failed to compile */
};

/* Expands args (files, and directories searched recursively for *.yaml and
 * *.yml, hidden folders skipped; sorted) and compiles each file. A path that
 * does not exist becomes an invalid entry saying so. Returns 0, or -1 when a
 * directory could not be read (message printed). */
int cli_wf_files_load(struct cli_wf_files *fs, const char *const *args, int nargs)
    __attribute__((warn_unused_result));
void cli_wf_files_release(struct cli_wf_files *fs);

/* Prints every error of f as dsl_error_format does, one per line. */
void cli_wf_file_print_errors(const struct cli_wf_file *f, FILE *out);
/* {"file","valid","workflow","hash","errors":[{"file","line","col","field","message"}]}
 * as a new object. */
json_t *cli_wf_file_json(const struct cli_wf_file *f);

#endif
