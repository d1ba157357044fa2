/* config.c: read once from the environment by the constructor */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

struct pc_config {
	char socket_path[108];   /* sun_path size; empty: no coordinator */
	int timeout_ms;          /* PINCOH_TIMEOUT_MS, default 2000 */
	int abort_on_timeout;    /* PINCOH_ON_TIMEOUT=abort */
	int rank, size;          /* PINCOH_RANK, PINCOH_SIZE */
	int rank_pid;            /* PINCOH_RANK_PID: pincoh exec's rank, which says farewell at exit (0: none) */
	char job[32];            /* PINCOH_JOB: names and barriers are scoped to it */
};
extern struct pc_config pc_cfg;
void pc_config_load(int say);   /* say 0: bad values are replaced silently (a library not preloaded) */

#endif
