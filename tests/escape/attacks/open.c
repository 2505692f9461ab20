/* open PATH r|w|rw: opens PATH for reading, writing or both (a device node, a /proc or /sys
 * file) and reports whether the kernel let it. */
#include <fcntl.h>
#include <string.h>
#include "report.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return usage("PATH r|w|rw");
    int flags = !strcmp(argv[2], "r") ? O_RDONLY : !strcmp(argv[2], "w") ? O_WRONLY : O_RDWR;
    return report(open(argv[1], flags | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
}
