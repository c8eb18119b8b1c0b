/*
 * offsets_topic.h - which partition of an internal topic coordinates a key.
 *
 * A consumer group is coordinated by the leader of one partition of
 * __consumer_offsets, and a transactional id by the leader of one partition
 * of __transaction_state. Kafka picks the partition as
 * abs(key.hashCode()) mod partition count, where hashCode is Java's
 * String.hashCode over the key's UTF-16 code units and abs maps
 * Integer.MIN_VALUE to 0. Every client and tool that computes a coordinator
 * itself (and every existing __consumer_offsets topic) relies on exactly
 * this function, so it is reproduced bit for bit.
 */
#ifndef GR_BROKER_OFFSETS_TOPIC_H
#define GR_BROKER_OFFSETS_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#define GR_OFFSETS_TOPIC "__consumer_offsets"
#define GR_TRANSACTION_TOPIC "__transaction_state"

/* Java's String.hashCode of the UTF-8 string s (len bytes). Invalid UTF-8
 * bytes count as U+FFFD, as Java's decoder replaces them. */
int32_t gr_java_string_hash(const char *s, size_t len);

/* The partition (0 .. nparts-1) coordinating key; nparts must be > 0. */
int32_t gr_coordinator_partition(const char *key, size_t len, int32_t nparts);

#endif
