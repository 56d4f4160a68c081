/* Parser for pressure stall information (cpu.pressure, memory.pressure, io.pressure). */
#ifndef PCG_PARSE_PSI_H
#define PCG_PARSE_PSI_H

#include "pcg_value.h"

/* Returns 0 and fills the "total=" stall times in microseconds of the "some" and "full"
 * lines (a line that is absent is PCG_VAL_MISSING), or -PCG_EPARSE with *err_line. */
int pcg_parse_psi(const char *buf, size_t len, pcg_value *some_total, pcg_value *full_total,
                  int *err_line);

#endif
