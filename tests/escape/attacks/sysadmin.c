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
 *   pivot-root-probe    pivot_root on missing directories (ENOENT or EINVAL once reached)
 *   clone3-user         clone3(CLONE_NEWUSER), whose flags a seccomp filter cannot see
 *                       (Docker's answers ENOSYS, so that the C library falls back to clone)
 *   userns-cgroup1 CONTROLLERS
 *                       unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWCGROUP), then mount the
 *                       cgroup v1 hierarchy of CONTROLLERS read-only on /tmp: the first step of
 *                       CVE-2022-0492 (release_agent), nothing is written
 * The new mount API:
 *   fsopen              fsopen("tmpfs"): a file system context, not mounted anywhere
 *   open-tree           open_tree("/") without OPEN_TREE_CLONE: an O_PATH-like fd
 *   open-tree-clone     open_tree("/", OPEN_TREE_CLONE|AT_RECURSIVE): a detached copy of the
 *                       container's mounts, gone when the fd closes
 *   mount-setattr-probe mount_setattr with an unknown flag (EINVAL once reached)
 *   move-mount-probe    move_mount with an unknown flag (EINVAL once past the capability)
 *   fspick-probe        fspick with an unknown flag (EINVAL once past the capability) */
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

#define OPEN_TREE_CLONE 1
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

/* struct clone_args, as far as CLONE_ARGS_SIZE_VER0. */
struct clone_args_v0 {
    unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static long clone3_user(void)
{
    struct clone_args_v0 args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWUSER;
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(0);
    int status;
    return waitpid(pid, &status, 0) < 0 ? -1 : 0;
}

static long userns_cgroup1(const char *controllers)
{
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) < 0)
        return -1;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    return mount("cgroup", "/tmp", "cgroup", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 controllers);
}

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
    if (!strcmp(mode, "clone3-user"))
        return report(clone3_user());
    if (!strcmp(mode, "userns-cgroup1") && arg)
        return report(userns_cgroup1(arg));
    if (!strcmp(mode, "fsopen"))
        return report(syscall(SYS_fsopen, "tmpfs", 0));
    if (!strcmp(mode, "open-tree"))
        return report(syscall(SYS_open_tree, AT_FDCWD, "/", O_CLOEXEC));
    if (!strcmp(mode, "open-tree-clone"))
        return report(syscall(SYS_open_tree, AT_FDCWD, "/",
                              O_CLOEXEC | OPEN_TREE_CLONE | AT_RECURSIVE));
    if (!strcmp(mode, "mount-setattr-probe")) {
        unsigned long long attr[4] = {0, 0, 0, 0};
        return report(syscall(SYS_mount_setattr, AT_FDCWD, "/", 0x40000000, attr, sizeof attr));
    }
    if (!strcmp(mode, "move-mount-probe"))
        return report(syscall(SYS_move_mount, AT_FDCWD, "/", AT_FDCWD, "/tmp", 0x40000000));
    if (!strcmp(mode, "fspick-probe"))
        return report(syscall(SYS_fspick, AT_FDCWD, "/", 0x40000000));
    return usage("mount-tmpfs DIR | mount-probe | umount PATH | umount-probe | unshare-mount | "
                 "unshare-user | userns-mount | clone-user | setns-self | setns-probe | "
                 "pivot-root-probe | clone3-user | userns-cgroup1 CONTROLLERS | fsopen | open-tree | "
                 "open-tree-clone | mount-setattr-probe | move-mount-probe | fspick-probe");
}
