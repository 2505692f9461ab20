/* seccomp_calls WHAT: makes one system call the seccomp profile decides on and reports the
 * answer. WHAT is
 *   io_uring_setup   io_uring_setup(1, params): denied by Docker's profile since 2023
 *   af_alg           socket(AF_ALG, SOCK_SEQPACKET, 0): the kernel crypto API, denied
 *   i386_getpid      getpid through int $0x80 (the i386 ABI): allowed by rule, not killed
 *   i386_keyctl      keyctl(KEYCTL_GET_KEYRING_ID, session, create) through int $0x80: denied
 *   cachestat        cachestat on /proc/self/exe: Linux 6.5, allowed
 *   fchmodat2        fchmodat2(AT_FDCWD, "/", 0755, 0): Linux 6.6, allowed
 *   futex_wake       futex_wake(&word, mask, 1, FUTEX2_SIZE_U32): Linux 6.7, allowed */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "report.h"

#ifndef AF_ALG
#define AF_ALG 38
#endif

/* The raw answer of a system call (a negative errno on failure) as report() takes it. */
static long raw(long ret)
{
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

/* An i386 system call from this x86_64 program: the kernel sees AUDIT_ARCH_I386. */
static long int80(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "a"(nr), "b"(a), "c"(b), "d"(c)
                     : "memory");
    return raw((long)(int)ret);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return usage("io_uring_setup|af_alg|i386_getpid|i386_keyctl|cachestat|fchmodat2|futex_wake");
    const char *what = argv[1];
    if (!strcmp(what, "io_uring_setup")) {
        uint32_t params[30] = {0}; /* struct io_uring_params */
        return report(syscall(425, 1, params));
    }
    if (!strcmp(what, "af_alg"))
        return report(socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!strcmp(what, "i386_getpid"))
        return report(int80(20, 0, 0, 0)); /* __NR_getpid on i386 */
    if (!strcmp(what, "i386_keyctl"))
        return report(int80(288, 0, -3, 1)); /* __NR_keyctl on i386 */
    if (!strcmp(what, "cachestat")) {
        int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        uint64_t range[2] = {0, 0}; /* struct cachestat_range: the whole file */
        uint64_t stat[5];           /* struct cachestat */
        return report(fd < 0 ? fd : syscall(451, fd, range, stat, 0));
    }
    if (!strcmp(what, "fchmodat2"))
        return report(syscall(452, AT_FDCWD, "/", 0755, 0));
    if (!strcmp(what, "futex_wake")) {
        static uint32_t word;
        return report(syscall(454, &word, 0xffffffffUL, 1, 0x02 /* FUTEX2_SIZE_U32 */));
    }
    return usage("io_uring_setup|af_alg|i386_getpid|i386_keyctl|cachestat|fchmodat2|futex_wake");
}
