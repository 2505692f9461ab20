/* host_admin MODE: calls that act on the whole host (its kernel, clock, swap, I/O ports),
 * which need a capability Docker does not give and which its seccomp profile refuses
 * without that capability. Every mode passes arguments the kernel rejects once it looks at
 * them (a bad fd, a missing path, bad magic numbers, an unknown clock), or a request that
 * changes nothing, so that even with every protection off the call cannot act: EPERM means
 * a protection stopped it, anything else that it reached the kernel.
 *   finit-module    finit_module(-1): EBADF once reached
 *   init-module     init_module of an empty image: ENOEXEC/EINVAL/EFAULT once reached
 *   delete-module   delete_module of a module that does not exist: ENOENT once reached
 *   kexec-load      kexec_load of more segments than the kernel allows: EINVAL once reached
 *   kexec-file      kexec_file_load with bad fds and unknown flags: EINVAL/EBADF once reached
 *   reboot          reboot with bad magic numbers: EINVAL once reached (never acts)
 *   swapon          swapon of a missing file: ENOENT once reached
 *   swapoff         swapoff of a missing file: ENOENT once reached
 *   clock-settime   clock_settime of an unknown clock: EINVAL once reached
 *   settimeofday    settimeofday(NULL, NULL): changes nothing; ok once past the checks
 *   acct            acct of a missing file: ENOENT once reached
 *   quotactl        quotactl Q_GETFMT on a missing device: ENOENT once reached
 *   iopl            iopl(0), the level a process has: ok once reached
 *   ioperm          ioperm(0x80, 1, 0), turning off a port never turned on: ok once reached
 *   syslog          syslog(SYSLOG_ACTION_SIZE_BUFFER): the size of the kernel's log, which
 *                   kernel.dmesg_restrict keeps from processes without CAP_SYSLOG
 *   personality     personality(ADDR_NO_RANDOMIZE), a persona outside Docker's list: ok
 *                   once reached (it changes only this process) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/quota.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static long call(const char *mode)
{
    if (!strcmp(mode, "finit-module"))
        return syscall(SYS_finit_module, -1, "", 0);
    if (!strcmp(mode, "init-module"))
        return syscall(SYS_init_module, "", 0, "");
    if (!strcmp(mode, "delete-module"))
        return syscall(SYS_delete_module, "mini_container_nosuch", O_NONBLOCK);
    if (!strcmp(mode, "kexec-load"))
        return syscall(SYS_kexec_load, 0, 1000, NULL, 0);
    if (!strcmp(mode, "kexec-file"))
        return syscall(SYS_kexec_file_load, -1, -1, 0, "", 0x80000000UL);
    if (!strcmp(mode, "reboot"))
        return syscall(SYS_reboot, 0, 0, 0, NULL);
    if (!strcmp(mode, "swapon"))
        return syscall(SYS_swapon, "/mini-container-nosuch", 0);
    if (!strcmp(mode, "swapoff"))
        return syscall(SYS_swapoff, "/mini-container-nosuch");
    if (!strcmp(mode, "clock-settime")) {
        struct timespec ts = {0, 0};
        return syscall(SYS_clock_settime, 12345, &ts);
    }
    if (!strcmp(mode, "settimeofday"))
        return syscall(SYS_settimeofday, NULL, NULL);
    if (!strcmp(mode, "acct"))
        return syscall(SYS_acct, "/mini-container-nosuch");
    if (!strcmp(mode, "quotactl"))
        return syscall(SYS_quotactl, QCMD(Q_GETFMT, USRQUOTA), "/dev/mini-container-nosuch", 0,
                       NULL);
    if (!strcmp(mode, "iopl"))
        return syscall(SYS_iopl, 0);
    if (!strcmp(mode, "ioperm"))
        return syscall(SYS_ioperm, 0x80, 1, 0);
    if (!strcmp(mode, "syslog"))
        return syscall(SYS_syslog, 10, NULL, 0);
    if (!strcmp(mode, "personality"))
        return syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE);
    return -2;
}

int main(int argc, char **argv)
{
    long rc = call(argc > 1 ? argv[1] : "");
    if (rc == -2)
        return usage("finit-module | init-module | delete-module | kexec-load | kexec-file | "
                     "reboot | swapon | swapoff | clock-settime | settimeofday | acct | "
                     "quotactl | iopl | ioperm | syslog | personality");
    return report(rc);
}
