/* mknod_open PATH c|b MAJOR MINOR r|w|rw: makes a device node (mode 0666) and opens it.
 * Prints "ok" when both worked, else "mknod ERRNO" or the open's errno name alone. An
 * existing node at PATH is used as it is. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "report.h"

int main(int argc, char **argv)
{
    if (argc != 6)
        return usage("PATH c|b MAJOR MINOR r|w|rw");
    mode_t kind = !strcmp(argv[2], "b") ? S_IFBLK : S_IFCHR;
    dev_t dev = makedev(atoi(argv[3]), atoi(argv[4]));
    if (mknod(argv[1], kind | 0666, dev) < 0 && errno != EEXIST) {
        printf("mknod ");
        return report(-1);
    }
    int flags = !strcmp(argv[5], "r") ? O_RDONLY : !strcmp(argv[5], "w") ? O_WRONLY : O_RDWR;
    return report(open(argv[1], flags | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
}
