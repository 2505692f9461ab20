/* One line per attempt: "ok", or the errno's name, so that tests compare names, not numbers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "report.h"

extern const char *__progname;

int report(long result)
{
    if (result >= 0) {
        puts("ok");
        return 0;
    }
    const char *name = strerrorname_np(errno);
    printf("%s\n", name ? name : "EUNKNOWN");
    return 1;
}

int usage(const char *synopsis)
{
    fprintf(stderr, "usage: %s %s\n", __progname, synopsis);
    return 2;
}
