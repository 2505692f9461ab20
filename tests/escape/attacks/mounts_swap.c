/* mounts_swap A B: exchanges the names A and B (renameat2 RENAME_EXCHANGE) in a loop until
 * SIGTERM, to race another container's setup in the same root filesystem: the mount point of
 * a read-only volume swapped with a symlink. Prints "swapping" once the loop runs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include "report.h"

static void stop(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return usage("A B");
    signal(SIGTERM, stop);
    if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) < 0)
        return report(-1);
    puts("swapping");
    fflush(stdout);
    for (;;)
        if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) < 0)
            return report(-1);
}
