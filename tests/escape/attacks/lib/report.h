/* What every attack program shares: one line of output saying how the attempt went. */
#ifndef REPORT_H
#define REPORT_H

/* Prints "ok" when result >= 0, else the name of errno ("EPERM"); returns the exit status
 * (0 for ok, 1 otherwise). */
int report(long result);

/* Prints a usage line naming the program and returns 2. */
int usage(const char *synopsis);

#endif
