/* outside MODE [PID]: reaching processes outside the container. In its own pid namespace a
 * container sees only its own processes: a host pid names nothing (or one of its own).
 *   pids            prints the pids /proc lists, one a line
 *   ppid            prints the parent's pid as this process sees it (0: outside the namespace)
 *   kill-all        kill(-1, 0): is there any process this one may signal?
 *   kill PID        kill(PID, 0)
 *   ptrace PID      ptrace(PTRACE_SEIZE, PID): attaches without stopping it; the tracee is
 *                   let go when this process exits
 *   vm-read PID     process_vm_readv of one byte at address 0 of PID: EFAULT once PID is
 *                   reached and may be read, ESRCH when it cannot be named
 *   pidfd PID       pidfd_open(PID)
 *   pidfd-getfd PID pidfd_getfd of PID's fd 0: taking a descriptor of a process outside */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "report.h"

static int pids(void)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return report(-1);
    struct dirent *entry;
    while ((entry = readdir(proc)))
        if (isdigit((unsigned char)entry->d_name[0]))
            puts(entry->d_name);
    return 0;
}

static long vm_read(pid_t pid)
{
    char byte;
    struct iovec local = {&byte, 1}, remote = {NULL, 1};
    return process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

static long pidfd_getfd(pid_t pid)
{
    long pidfd = syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return -1;
    return syscall(SYS_pidfd_getfd, pidfd, 0, 0);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    pid_t pid = argc > 2 ? atoi(argv[2]) : 0;
    if (!strcmp(mode, "pids"))
        return pids();
    if (!strcmp(mode, "ppid")) {
        printf("%d\n", getppid());
        return 0;
    }
    if (!strcmp(mode, "kill-all"))
        return report(kill(-1, 0));
    if (!strcmp(mode, "kill") && pid > 0)
        return report(kill(pid, 0));
    if (!strcmp(mode, "ptrace") && pid > 0)
        return report(ptrace(PTRACE_SEIZE, pid, NULL, NULL));
    if (!strcmp(mode, "vm-read") && pid > 0)
        return report(vm_read(pid));
    if (!strcmp(mode, "pidfd") && pid > 0)
        return report(syscall(SYS_pidfd_open, pid, 0));
    if (!strcmp(mode, "pidfd-getfd") && pid > 0)
        return report(pidfd_getfd(pid));
    return usage("pids | ppid | kill-all | kill PID | ptrace PID | vm-read PID | pidfd PID | "
                 "pidfd-getfd PID");
}
