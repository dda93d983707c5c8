/* Dangerous libc calls, banned mechanically (after git's banned.h).
 * Included first in every translation unit by the Makefile. */
#ifndef WF_BANNED_H
#define WF_BANNED_H
#include <stdio.h>
#include <string.h>
#include <time.h>
#define BANNED(f) sorry_##f##_is_banned_in_wf
#undef strcpy
#define strcpy(a, b) BANNED(strcpy)
#undef strcat
#define strcat(a, b) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(a, b) BANNED(strtok)
#undef gmtime
#define gmtime(t) BANNED(gmtime)
#undef localtime
#define localtime(t) BANNED(localtime)
#undef asctime
#define asctime(t) BANNED(asctime)
#undef ctime
#define ctime(t) BANNED(ctime)
#undef gets
#define gets(s) BANNED(gets)
#endif
