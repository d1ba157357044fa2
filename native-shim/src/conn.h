/* conn.c: the socket to the coordinator, and requests over it. No thread
 * reads it: a thread waiting for a reply reads for everyone waiting. */
#ifndef PC_CONN_H
#define PC_CONN_H

#include <stddef.h>
#include <stdint.h>

int pc_conn_up(void);
int pc_conn_dial(const char *path, int *cause);      /* a connected socket, or -errno (*cause: the system's errno) */
int pc_conn_install(int fd, void (*lost_cb)(void));  /* fd becomes the connection; lost_cb hears of its loss */
/* extra: room for a REPLY's payload beyond its status (NULL if none wanted);
 * ms < 0: PINCOH_TIMEOUT_MS */
int pc_request(int type, const void *payload, size_t len, int32_t *status, void *extra, size_t extra_len, int ms);
int pc_notify(int type, const void *payload, size_t len);
/* the handshake, on a socket no other thread knows yet */
int pc_conn_handshake(int fd, const void *hello, size_t len, void *welcome, size_t welcome_len, int timeout_ms);
/* pincoh exec's rank at exit, on a socket of its own: 0 once sent (wait: once answered), -ETIMEDOUT */
int pc_conn_farewell(int fd, const void *farewell, size_t len, int wait, int ms);
int pc_conn_peer_pid(int fd);                        /* the coordinator's pid (SO_PEERCRED), or -errno */
void pc_conn_abandon(void);                          /* give up on the connection: as if it was lost */
int pc_conn_backing_off(void);                       /* 1 for PINCOH_TIMEOUT_MS after an abandon */
void pc_conn_atfork_prepare(void);
void pc_conn_atfork_parent(void);
void pc_conn_atfork_child(void);

#endif
