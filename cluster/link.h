/*
 * link.h - inter-node links: authenticated WebSocket connections between
 * cluster nodes that multiplex the streams of cross-node pairs.
 *
 * link.c owns the connections (dialling, the HELLO/AUTH handshake,
 * keepalive, redial with backoff, framing and dispatch); link_stream.c turns
 * one stream into a peer endpoint with credit-based flow control. The wire
 * format is specified in cluster/link-protocol.md.
 */
#ifndef RELAY_LINK_H
#define RELAY_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "cluster.h"
#include "relay/matchmaker.h"
#include "relay/metrics.h"
#include "relay/peer.h"

struct link;
struct link_stream;

/* Set up the link layer: links are accepted on and dialled from vhost,
 * streams are paired through matchmaker. */
void link_manager_start(const struct relay_config *config, const struct cluster_identity *self,
                        struct lws_context *context, struct lws_vhost *vhost,
                        struct matchmaker *matchmaker, const void *secret, size_t secret_length);
/* Shutting down: tell every peer (GOAWAY) and close every link. */
void link_manager_stop(void);
void link_manager_free(void);

/* The matchmaker's remote connector (matchmaker_connect_remote). */
struct peer *link_open_stream(void *context, struct peer *waiting,
                              const struct directory_owner *owner);

/* The cluster vhost's WebSocket protocol for links. */
extern const struct lws_protocols link_protocol;

/* Prometheus lines for every link (state, bytes), appended with emit. */
void link_manager_render_metrics(metrics_emit emit, void *buffer);

/* --- used by link_stream.c --------------------------------------------- */

/* Queue a DATA frame (header + bytes) for the peer. 0, or -1 when the link
 * is gone or out of memory. */
int link_send_data(struct link *link, uint32_t stream_id, unsigned flags, const void *data,
                   size_t length);
/* Queue an already encoded control frame. */
int link_send_frame(struct link *link, const uint8_t *frame, size_t length);
/* Forget a stream (it is being freed). */
void link_forget_stream(struct link *link, struct link_stream *stream);
const struct relay_config *link_config(void);
struct matchmaker *link_matchmaker(void);

/* --- link_stream.c ------------------------------------------------------ */

struct link_stream *link_stream_new(struct link *link, uint32_t id, const char *rid,
                                    const char *request_uuid, bool opened_here);
struct peer *link_stream_peer(struct link_stream *stream);
struct link_stream *link_stream_of_peer(struct peer *peer);
uint32_t link_stream_id(const struct link_stream *stream);
bool link_stream_is_opening(const struct link_stream *stream);
/* Frames from the peer node for this stream. */
void link_stream_on_paired(struct link_stream *stream);
void link_stream_on_refused(struct link_stream *stream, enum remote_answer answer);
void link_stream_on_data(struct link_stream *stream, const uint8_t *data, size_t length,
                         unsigned flags);
void link_stream_on_credit(struct link_stream *stream, uint32_t bytes);
/* The peer node closed the stream, or the link is gone (the stream is freed). */
void link_stream_on_closed(struct link_stream *stream);
/* The link became ready: send the OPEN of a stream that waited for it. */
void link_stream_send_open(struct link_stream *stream);

#endif
