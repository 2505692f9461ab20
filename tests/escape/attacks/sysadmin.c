/* sysadmin MODE [ARG]: the calls that need CAP_SYS_ADMIN, which Docker's seccomp profile also
 * refuses without it: mount, umount2, unshare, clone with namespace flags, setns, pivot_root.
 * Modes whose name ends in "-probe" use arguments the kernel rejects (a missing path, a bad
 * fd) once it is reached, so that EPERM (seccomp, or a missing capability) is told apart from
 * ENOENT/EBADF/EINVAL (the kernel looked at the arguments).
 *   mount-tmpfs DIR     mount a tmpfs on DIR (the container's own mount namespace)
 *   mount-probe         mount a tmpfs on a missing directory (ENOENT once reached)
 *   umount PATH         detach the mount at PATH (a masked /proc path: unmasking it)
 *   umount-probe        umount2 with an unknown flag (EINVAL once reached)
 *   unshare-mount       unshare(CLONE_NEWNS)
 *   unshare-user        unshare(CLONE_NEWUSER): the user namespace the kernel gives anyone
 *   userns-mount        unshare(CLONE_NEWUSER|CLONE_NEWNS), then mount a tmpfs on /tmp as
 *                       root of the new user namespace: what an unprivileged escape starts with
 *   clone-user          clone(CLONE_NEWUSER) a child that exits at once
 *   setns-self          setns into this process's own mount namespace
 *   setns-probe         setns(-1) (EBADF once reached)
 *   pivot-root-probe    pivot_root on missing directories (ENOENT or EINVAL once reached) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "report.h"

static char child_stack[64 * 1024] __attribute__((aligned(16)));

static int child(void *arg)
{
    (void)arg;
    return 0;
}

static long clone_user(void)
{
    pid_t pid = clone(child, child_stack + sizeof child_stack, CLONE_NEWUSER | SIGCHLD, NULL);
    if (pid < 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return 0;
}

static long userns_mount(void)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return -1;
    /* The new mount namespace is a copy of the container's: keep it from propagating. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    return mount("none", "/tmp", "tmpfs", 0, NULL);
}

static long setns_self(void)
{
    int fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    return setns(fd, CLONE_NEWNS);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : NULL;
    if (!strcmp(mode, "mount-tmpfs") && arg)
        return report(mount("none", arg, "tmpfs", 0, NULL));
    if (!strcmp(mode, "mount-probe"))
        return report(mount("none", "/mini-container-nosuch", "tmpfs", 0, NULL));
    if (!strcmp(mode, "umount") && arg)
        return report(umount2(arg, MNT_DETACH));
    if (!strcmp(mode, "umount-probe"))
        return report(umount2("/", 0x40000000));
    if (!strcmp(mode, "unshare-mount"))
        return report(unshare(CLONE_NEWNS));
    if (!strcmp(mode, "unshare-user"))
        return report(unshare(CLONE_NEWUSER));
    if (!strcmp(mode, "userns-mount"))
        return report(userns_mount());
    if (!strcmp(mode, "clone-user"))
        return report(clone_user());
    if (!strcmp(mode, "setns-self"))
        return report(setns_self());
    if (!strcmp(mode, "setns-probe"))
        return report(setns(-1, 0));
    if (!strcmp(mode, "pivot-root-probe"))
        return report(syscall(SYS_pivot_root, "/mini-container-nosuch", "/mini-container-nosuch"));
    return usage("mount-tmpfs DIR | mount-probe | umount PATH | umount-probe | unshare-mount | "
                 "unshare-user | userns-mount | clone-user | setns-self | setns-probe | "
                 "pivot-root-probe");
}
