/* kernel_objects MODE: calls that hand a container a kernel object Docker keeps from it
 * unless it holds a capability (CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON) or, for userfaultfd,
 * at all. Every object is this process's own and goes away with it.
 *   bpf-map       bpf(BPF_MAP_CREATE) of a one-entry array map
 *   perf-event    perf_event_open of a software clock counting this process, user space only
 *   userfaultfd   userfaultfd(UFFD_USER_MODE_ONLY), which the kernel gives anyone; the node
 *                 /dev/userfaultfd is the device rules' business */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "report.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static long bpf_map(void)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
}

static long perf_event(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "bpf-map"))
        return report(bpf_map());
    if (!strcmp(mode, "perf-event"))
        return report(perf_event());
    if (!strcmp(mode, "userfaultfd"))
        return report(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
    return usage("bpf-map | perf-event | userfaultfd");
}
