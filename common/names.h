/*
 * names.h - rules for names clients choose: topics (and later groups).
 */
#ifndef GR_NAMES_H
#define GR_NAMES_H

#include "common/buf.h"

/* Kafka's limit: 249 characters, so that "<topic>-<partition>" directory
 * names and their suffixes stay within file-name limits. */
#define GR_TOPIC_NAME_MAX 249

/* True if name is a legal topic name: 1..249 characters from
 * [a-zA-Z0-9._-], and neither "." nor "..". */
bool gr_topic_name_valid(gr_str name);

#endif
