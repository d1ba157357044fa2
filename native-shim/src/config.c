/* Environment, read once by the constructor. A bad value is named once on
 * stderr and replaced by its default; nothing here can fail the process. */
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "log.h"

struct pc_config pc_cfg = { .timeout_ms = 2000, .rank = -1, .size = 1 };

static int parse_int(const char *name, const char *s, int lo, int hi, int def)
{
	long v = 0;
	const char *p = s;
	if (!s || !*s)
		return def;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > hi) {
			pc_log_bad_int(name, lo, hi, def);
			return def;
		}
		v = v * 10 + (*p - '0');
	}
	if (v < lo || v > hi) {
		pc_log_bad_int(name, lo, hi, def);
		return def;
	}
	return (int)v;
}

/* say 0 (a library dlopen'ed rather than preloaded, inert): values are read
 * but not named, and PINCOH_QUIET is honoured afterwards as usual. */
void pc_config_load(int say)
{
	const char *s;

	s = getenv("PINCOH_QUIET");
	pc_log_quiet = !say || (s && strcmp(s, "1") == 0);
	s = getenv("PINCOH_SOCKET");
	if (s && *s) {
		if (strlen(s) >= sizeof pc_cfg.socket_path)
			pc_log("PINCOH_SOCKET is longer than a Unix socket path can be; running without a coordinator", NULL, -1);
		else
			strcpy(pc_cfg.socket_path, s);
	}
	pc_cfg.timeout_ms = parse_int("PINCOH_TIMEOUT_MS", getenv("PINCOH_TIMEOUT_MS"), 1, 3600000, 2000);
	s = getenv("PINCOH_ON_TIMEOUT");
	if (s && strcmp(s, "abort") == 0)
		pc_cfg.abort_on_timeout = 1;
	else if (s && *s && strcmp(s, "proceed") != 0)
		pc_log("PINCOH_ON_TIMEOUT is neither proceed nor abort; using proceed", NULL, -1);
	s = getenv("PINCOH_JOB");
	strcpy(pc_cfg.job, "default");
	if (s && *s) {
		if (strlen(s) >= sizeof pc_cfg.job)
			pc_log("PINCOH_JOB is longer than 31 bytes; using \"default\"", NULL, -1);
		else
			strcpy(pc_cfg.job, s);
	}
	pc_cfg.rank = parse_int("PINCOH_RANK", getenv("PINCOH_RANK"), 0, 1 << 30, -1);
	pc_cfg.size = parse_int("PINCOH_SIZE", getenv("PINCOH_SIZE"), 1, 1 << 30, 1);
	pc_cfg.rank_pid = parse_int("PINCOH_RANK_PID", getenv("PINCOH_RANK_PID"), 1, 1 << 30, 0);
	/* read by patch.c, which takes anything else for the default */
	s = getenv("PINCOH_LIBC");
	if (s && *s && strcmp(s, "patch") && strcmp(s, "norelease") && strcmp(s, "off"))
		pc_log("PINCOH_LIBC is none of patch, norelease, off; using patch", NULL, -1);
	s = getenv("PINCOH_QUIET");
	pc_log_quiet = s && strcmp(s, "1") == 0;
}
