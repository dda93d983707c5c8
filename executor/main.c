#include <stdio.h>
int main(void)
{
	fprintf(stderr, "wf-executor: not built yet\n");
	return 1;
}
