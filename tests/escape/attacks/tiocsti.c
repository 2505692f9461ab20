/* tiocsti TTY TEXT: pushes TEXT and a newline into the input queue of a terminal with
 * ioctl(TIOCSTI), as if typed there: TTY is "-" for stdin (the caller's terminal when stdio is
 * inherited) or a path to open (/dev/tty, the controlling terminal). Whoever reads that
 * terminal next (the caller's shell, once `run` returns) runs the line. Reports the first
 * failure: EPERM when the terminal is not the process's controlling terminal, ENXIO when
 * /dev/tty has none to open. */
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include "report.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return usage("-|TTY TEXT");
    int fd = 0;
    if (strcmp(argv[1], "-")) {
        fd = open(argv[1], O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            return report(fd);
    }
    size_t len = strlen(argv[2]);
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? argv[2][i] : '\n';
        int ret = ioctl(fd, TIOCSTI, &c);
        if (ret < 0)
            return report(ret);
    }
    return report(0);
}
