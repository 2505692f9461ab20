/* root_walk MODE: walking up and out of the container's root. Prints "inside" when the walk
 * ends at the container's own root, "outside" when it ends somewhere else (the host's tree),
 * or the errno's name of the call that failed.
 *   chroot-dotdot   the classic chroot escape (CAP_SYS_CHROOT, which Docker grants): chroot
 *                   into a subdirectory while the working directory stays above it, chdir
 *                   ".." many times, chroot("."). Only a root that is the mount namespace's
 *                   own (pivot_root) stops it; a chroot'ed root does not.
 *   dotdot          chdir("..") many times from /
 *   proc-root [PID] /proc/PID/root/.. (PID 1 by default): the root of a process as /proc
 *                   shows it; a process outside the container has the host's */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"

static struct stat root;

/* Where the walk ended: "." compared with the container's root, taken at the start. */
static int verdict(const char *where)
{
    struct stat end;
    if (stat(where, &end) < 0)
        return report(-1);
    int inside = end.st_dev == root.st_dev && end.st_ino == root.st_ino;
    puts(inside ? "inside" : "outside");
    return inside ? 1 : 0;
}

static int up(void)
{
    for (int i = 0; i < 64; i++)
        if (chdir("..") < 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (stat("/", &root) < 0)
        return report(-1);
    if (!strcmp(mode, "chroot-dotdot")) {
        if (chdir("/") < 0 || (mkdir("/tmp/root-walk", 0700) < 0 && errno != EEXIST))
            return report(-1);
        if (chroot("/tmp/root-walk") < 0 || up() < 0 || chroot(".") < 0)
            return report(-1);
        return verdict("/");
    }
    if (!strcmp(mode, "dotdot")) {
        if (chdir("/") < 0 || up() < 0)
            return report(-1);
        return verdict(".");
    }
    if (!strcmp(mode, "proc-root")) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/root/..", argc > 2 ? argv[2] : "1");
        return verdict(path);
    }
    return usage("chroot-dotdot | dotdot | proc-root [PID]");
}
