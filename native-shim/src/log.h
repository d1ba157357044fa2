/* log.c: one write(2) per message, no malloc, no stdio. It calls nothing of the shim. */
#ifndef PC_LOG_H
#define PC_LOG_H

extern int pc_log_quiet;   /* PINCOH_QUIET=1 (config.c sets it): no stderr messages */
void pc_log(const char *msg, const char *detail, long num);
void pc_log_bad_int(const char *name, long lo, long hi, long def);
const char *pc_errno_name(int e);  /* "ENOENT (...)" for the errors of a connection attempt, else NULL */

#endif
