#include <stdio.h>
int main(void)
{
	fprintf(stderr, "wf-engine: not built yet\n");
	return 1;
}
