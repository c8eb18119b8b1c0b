/* errors.c - see errors.h. */
#include "common/errors.h"

#include <stdio.h>

const char *gr_kafka_error_name(int16_t code)
{
    switch (code) {
#define GR_ERROR_NAME(c, name, retriable)                                                          \
    case c:                                                                                        \
        return #name;
        GR_KAFKA_ERRORS(GR_ERROR_NAME)
#undef GR_ERROR_NAME
    }
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "UNKNOWN_ERROR_%d", code);
    return buf;
}

bool gr_kafka_error_retriable(int16_t code)
{
    switch (code) {
#define GR_ERROR_RETRIABLE(c, name, retriable)                                                     \
    case c:                                                                                        \
        return retriable;
        GR_KAFKA_ERRORS(GR_ERROR_RETRIABLE)
#undef GR_ERROR_RETRIABLE
    }
    return false;
}
