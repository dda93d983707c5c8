#include <stdio.h>
int main(void)
{
	fprintf(stderr, "wfctl: not built yet\n");
	return 1;
}
